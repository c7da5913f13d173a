import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

@Suite struct OcclusionTests {
    /// With 1×1 windows on a linear model each drop is one term: attribution = w ⊙ (x − x′).
    @Test(arguments: [1, 5, 1000])
    func singlePixelWindowsOnALinearModel(rowsPerChunk: Int) throws {
        let engine = try testEngine()
        let linear = AttributionLinearModel(inputShape: [1, 3, 4], classes: 3, seed: 51)
        let x = seededFloats(2 * 12, seed: 52)
        let e = try Occlusion(model: linear.model(engine), window: (1, 1), baseline: .constant(0.5), rowsPerChunk: rowsPerChunk)
            .explain(instances: x, targets: .classes([0, 2]))
        #expect(e.modelEvaluations == 2 * 13)
        #expect(e.settings["windows"] == 12)
        for i in 0..<2 {
            for (t, c) in [0, 2].enumerated() {
                let expected = (0..<12).map { linear.w(c, $0) * (Double(x[i * 12 + $0]) - 0.5) }
                let check = closeness(attributionFloats(e, instance: i, output: t), expected, atol: 1e-5, rtol: 1e-4)
                #expect(check.passed, Comment(rawValue: check.message))
                #expect(abs(e.outputs![i * 2 + t] - linear.output(Array(x[(i * 12)..<((i + 1) * 12)]), c)) < 1e-5)
            }
        }
    }

    /// Overlapping 2×3 windows with stride (1, 2) on two channels: each pixel gets the mean over the
    /// windows covering it of Σ_window w ⊙ (x − x′), computed here on the host.
    @Test func overlappingWindowsAverageLikeCaptum() throws {
        let engine = try testEngine()
        let (ch, h, w) = (2, 5, 8)
        let linear = AttributionLinearModel(inputShape: [ch, h, w], classes: 2, seed: 53)
        let d = ch * h * w
        let x = seededFloats(d, seed: 54)
        let baseline = seededFloats(d, seed: 55)
        let e = try Occlusion(model: linear.model(engine), window: (2, 3), stride: (1, 2), baseline: .values(baseline), rowsPerChunk: 3)
            .explain(instances: x, targets: .classes([1]))
        var total = [Double](repeating: 0, count: h * w), count = [Double](repeating: 0, count: h * w)
        for top in 0...(h - 2) {
            for left in stride(from: 0, through: w - 3, by: 2) {
                var drop = 0.0
                for c in 0..<ch { for y in top..<(top + 2) { for xx in left..<(left + 3) {
                    let k = (c * h + y) * w + xx
                    drop += linear.w(1, k) * (Double(x[k]) - Double(baseline[k]))
                } } }
                for y in top..<(top + 2) { for xx in left..<(left + 3) { total[y * w + xx] += drop; count[y * w + xx] += 1 } }
            }
        }
        let perPixel = zip(total, count).map { $1 > 0 ? $0 / $1 : 0 }
        #expect(count[w - 1] == 0)  // windows start at columns 0, 2, 4: the last column is never covered and gets 0
        let check = closeness(attributionFloats(e, instance: 0, output: 0), perPixel + perPixel, atol: 1e-5, rtol: 1e-4)
        #expect(check.passed, Comment(rawValue: check.message))
    }

    /// A model that reads only one 2×2 patch: aligned 2×2 occlusion marks exactly that patch.
    @Test func modelReadingOnePatchHighlightsIt() throws {
        let engine = try testEngine()
        var weight = [Float](repeating: 0, count: 64)
        for y in 2..<4 { for x in 4..<6 { weight[y * 8 + x] = 1 } }
        let wt = try Tensor(weight, shape: [1, 64], engine: engine)
        let model = DifferentiableModel(engine: engine, inputShape: [1, 8, 8], classCount: 1) { x in
            try linear(x.reshaped([x.shape[0], 64]), weight: wt, bias: nil).relu()
        }
        let image = seededFloats(64, seed: 56, low: 0.5, high: 1)
        let e = try Occlusion(model: model, window: (2, 2), stride: (2, 2)).explain(instances: image, targets: .classes([0]))
        let patch = Set([2 * 8 + 4, 2 * 8 + 5, 3 * 8 + 4, 3 * 8 + 5])
        let total = Double(weight.indices.filter(patch.contains).reduce(Float(0)) { $0 + image[$1] })
        for p in 0..<64 {
            if patch.contains(p) {
                #expect(abs(e.values[p] - total) < 1e-5, "pixel \(p)")
            } else {
                #expect(e.values[p] == 0, "pixel \(p)")
            }
        }
    }

    @Test func windowMustFit() throws {
        let engine = try testEngine()
        let model = try AttributionLinearModel(inputShape: [1, 3, 4], classes: 1, seed: 1).model(engine)
        #expect(throws: ExplainError.self) {
            try Occlusion(model: model, window: (4, 1)).explain(instances: [Float](repeating: 0, count: 12), targets: .classes([0]))
        }
    }
}
