import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

@Suite struct SmoothGradTests {
    /// The gradient of a linear model does not change with noise: SmoothGrad = w, SmoothGrad² = w²,
    /// VarGrad = 0.
    @Test(arguments: SmoothGrad.Variant.allCases)
    func linearModelClosedForms(variant: SmoothGrad.Variant) throws {
        let engine = try testEngine()
        let linear = AttributionLinearModel(inputShape: [1, 2, 5], classes: 3, seed: 41)
        let x = seededFloats(2 * 10, seed: 42)
        let e = try SmoothGrad(model: linear.model(engine), samples: 6, variant: variant, seed: 1, rowsPerChunk: 4)
            .explain(instances: x, targets: .classes([2, 0]))
        #expect(e.method == variant.rawValue)
        #expect(e.modelEvaluations == 2 * 6 * 3 + 2)
        for i in 0..<2 {
            for (t, c) in [2, 0].enumerated() {
                let w = (0..<10).map { linear.w(c, $0) }
                let expected = switch variant {
                case .smoothGrad: w
                case .squared: w.map { $0 * $0 }
                case .varGrad: [Double](repeating: 0, count: 10)
                }
                let check = closeness(attributionFloats(e, instance: i, output: t), expected, atol: 1e-6, rtol: 1e-5, label: "\(variant)")
                #expect(check.passed, Comment(rawValue: check.message))
            }
        }
    }

    /// f(x) = Σ relu(x): ∂f/∂xₑ = 1[xₑ + ε > 0], whose mean under ε ~ N(0, σ²) is Φ(xₑ/σ). With
    /// 2000 samples SmoothGrad lies within 5 standard errors of it, and reports those errors.
    @Test func reluSumMatchesTheNormalCDF() throws {
        let engine = try testEngine()
        let ones = try Tensor.ones([1, 8], engine: engine)
        let model = DifferentiableModel(engine: engine, inputShape: [8], classCount: 1) { x in
            try linear(x.relu(), weight: ones, bias: nil)
        }
        let x: [Float] = [-1, -0.5, -0.2, 0, 0.1, 0.3, 0.6, 1]
        let n = 2000, level = 0.25
        let e = try SmoothGrad(model: model, samples: n, noiseLevel: level, seed: 7, rowsPerChunk: 512)
            .explain(instances: x, targets: .classes([0]))
        let sigma = level * 2
        for k in 0..<8 {
            let p = 0.5 * erfc(-Double(x[k]) / sigma / 2.0.squareRoot())
            let se = (p * (1 - p) / Double(n)).squareRoot()
            #expect(abs(e.values[k] - p) <= 5 * se + 1e-9, "element \(k): \(e.values[k]) vs Φ = \(p)")
            #expect(abs(e.standardErrors![k] - se) <= 0.2 * se + 1e-9, "standard error \(k): \(e.standardErrors![k]) vs \(se)")
        }
    }

    @Test func seedDeterminesTheResultWhateverTheChunkSize() throws {
        let engine = try testEngine()
        let net = try AttributionNetworks.reluMLP(engine)
        let x = seededFloats(2 * 12, seed: 43)
        func run(seed: UInt64, rows: Int) throws -> [Double] {
            try SmoothGrad(model: DifferentiableModel(net), samples: 10, noiseLevel: 0.3, variant: .varGrad, seed: seed, rowsPerChunk: rows)
                .explain(instances: x, targets: .perInstance([1, 2])).values
        }
        let reference = try run(seed: 5, rows: 1000)
        for rows in [1, 7] {
            let check = closeness(try run(seed: 5, rows: rows).map { Float($0) }, reference, atol: 1e-7, rtol: 1e-5, label: "chunk \(rows)")
            #expect(check.passed, Comment(rawValue: check.message))
        }
        #expect(try run(seed: 6, rows: 1000) != reference)
    }
}
