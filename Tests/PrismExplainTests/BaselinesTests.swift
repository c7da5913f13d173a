import Foundation
import PrismExplain
import PrismTestSupport
import Testing

/// The mean and blur baselines against closed forms.
@Suite struct BaselinesTests {
    @Test func meanIsThePerElementMean() throws {
        let rows: [Float] = [1, 2, 3, 3, 6, 9]
        guard case let .values(mean) = try AttributionBaseline.mean(of: rows, elementCount: 3) else { Issue.record("not values"); return }
        #expect(mean == [2, 4, 6])
        #expect(throws: ExplainError.self) { try AttributionBaseline.mean(of: [1, 2], elementCount: 3) }
    }

    @Test func blurKeepsConstantsAndSpreadsAnImpulseAsAGaussian() throws {
        let (h, w) = (21, 19), sigma = 1.3
        let constant = try AttributionBaseline.gaussianBlur([Float](repeating: 0.75, count: h * w), channels: 1, height: h, width: w, sigma: sigma)
        #expect(constant.allSatisfy { abs($0 - 0.75) <= 1e-6 })
        // An impulse whose blur stays more than the radius ⌈3σ⌉ = 4 from every border (where the kernel
        // is renormalized): the product of two normalized 1-D Gaussians centred on it.
        var impulse = [Float](repeating: 0, count: 2 * h * w)
        impulse[h * w + 10 * w + 9] = 1
        let blurred = try AttributionBaseline.gaussianBlur(impulse, channels: 2, height: h, width: w, sigma: sigma)
        let g = (-4...4).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
        let total = g.reduce(0, +)
        for y in 0..<h {
            for x in 0..<w {
                let dy = y - 10, dx = x - 9
                let expected = abs(dy) <= 4 && abs(dx) <= 4 ? g[dy + 4] * g[dx + 4] / (total * total) : 0
                #expect(abs(Double(blurred[h * w + y * w + x]) - expected) <= 1e-6, "(\(y), \(x))")
                #expect(blurred[y * w + x] == 0)
            }
        }
        #expect(throws: ExplainError.self) { try AttributionBaseline.gaussianBlur([0, 1], channels: 1, height: 1, width: 2, sigma: 0) }
        guard case let .values(two) = try AttributionBaseline.blurred(impulse, shape: [1, h, w], sigma: sigma) else { Issue.record("not values"); return }
        #expect(two.count == impulse.count && abs(Double(two[h * w + 10 * w + 9]) - g[4] * g[4] / (total * total)) <= 1e-6)
    }
}
