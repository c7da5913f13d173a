import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

/// GradientSHAP on a quadratic model, where expected gradients have a closed form: f_k(x) =
/// Σ_j U_kj (Ax)_j (Bx)_j has a gradient linear in x, so E_α[∂f/∂x at r + α(x − r)] = ∂f/∂x at
/// (x + r)/2 and φ = mean over r of (x − r) ⊙ ∇f((x + r)/2).
@Suite struct GradientShapTests {
    static let json = #"""
    {"format": 2, "input_shape": [4], "outputs": 2, "nodes": [
      {"name": "a", "op": "linear", "in_features": 4, "out_features": 3, "bias": false, "inputs": ["input"]},
      {"name": "b", "op": "linear", "in_features": 4, "out_features": 3, "bias": false, "inputs": ["input"]},
      {"name": "p", "op": "mul", "inputs": ["a", "b"]},
      {"name": "u", "op": "linear", "in_features": 3, "out_features": 2, "bias": false}
    ]}
    """#

    func quadratic(_ engine: Engine) throws -> (Model, exact: ([Float], [Float]) -> [Double]) {
        let model = try Model(spec: try ModelSpec.decode(json: Self.json), seed: 91, engine: engine)
        let p = try model.stateDict().mapValues { $0.values.map(Double.init) }
        let (a, b, u) = (p["a.weight"]!, p["b.weight"]!, p["u.weight"]!)
        // φ [4][2] for instance x against background rows.
        func exact(_ x: [Float], _ background: [Float]) -> [Double] {
            let rows = background.count / 4
            var phi = [Double](repeating: 0, count: 8)
            for row in 0..<rows {
                let r = (0..<4).map { Double(background[row * 4 + $0]) }, xd = x.map(Double.init)
                let z = (0..<4).map { (xd[$0] + r[$0]) / 2 }
                let az = (0..<3).map { j in (0..<4).reduce(0.0) { $0 + a[j * 4 + $1] * z[$1] } }
                let bz = (0..<3).map { j in (0..<4).reduce(0.0) { $0 + b[j * 4 + $1] * z[$1] } }
                for k in 0..<2 {
                    for e in 0..<4 {
                        var g = 0.0
                        for j in 0..<3 { g += u[k * 3 + j] * (bz[j] * a[j * 4 + e] + az[j] * b[j * 4 + e]) }
                        phi[e * 2 + k] += (xd[e] - r[e]) * g / Double(rows)
                    }
                }
            }
            return phi
        }
        return (model, exact)
    }

    @Test func meanConvergesToExpectedGradients() throws {
        let engine = try testEngine()
        let (model, exact) = try quadratic(engine)
        let x = seededFloats(4, seed: 1), background = seededFloats(6 * 4, seed: 2)
        let e = try GradientShap(model: DifferentiableModel(model), background: background, samples: 6000, seed: 3)
            .explain(instances: x, targets: .classes([0, 1]))
        let truth = exact(x, background), scale = truth.map(abs).max()!
        for (k, (got, want)) in zip(e.values, truth).enumerated() {
            #expect(abs(got - want) <= 0.03 * scale, "value \(k): \(got) vs \(want)")
            #expect(abs(got - want) <= 5 * e.standardErrors![k] + 1e-7, "value \(k): \(got) vs \(want), standard error \(e.standardErrors![k])")
        }
        // Without noise the sum is f(x) − E f(r) in expectation.
        for t in 0..<2 {
            let gap = e.additivityGap(instance: 0, output: t)!
            #expect(abs(gap) <= 0.03 * max(1, abs(e.outputs![t])), "target \(t): gap \(gap)")
        }
    }

    /// The 95% interval φ ± 1.96·SE covers the closed form for 80–99% of the values over 50 seeds.
    @Test func intervalsNeitherUnderNorOverCover() throws {
        let engine = try testEngine()
        let (model, exact) = try quadratic(engine)
        let x = seededFloats(2 * 4, seed: 4), background = seededFloats(8 * 4, seed: 5)
        let truth = exact(Array(x[0..<4]), background) + exact(Array(x[4..<8]), background)
        var covered = 0, total = 0
        let differentiable = DifferentiableModel(model)
        for seed in 0..<50 {
            let e = try GradientShap(model: differentiable, background: background, samples: 64, seed: UInt64(seed))
                .explain(instances: x, targets: .classes([0, 1]))
            for (k, want) in truth.enumerated() {
                total += 1
                if abs(e.values[k] - want) <= 1.96 * e.standardErrors![k] { covered += 1 }
            }
        }
        let rate = Double(covered) / Double(total)
        #expect(rate >= 0.80 && rate <= 0.99, "coverage \(rate) over \(total) values")
    }

    @Test func drawsDependOnTheSeedOnlyAndTheRuleStopsEarly() throws {
        let engine = try testEngine()
        let (model, _) = try quadratic(engine)
        let differentiable = DifferentiableModel(model)
        let x = seededFloats(3 * 4, seed: 6), background = seededFloats(5 * 4, seed: 7)
        let whole = try GradientShap(model: differentiable, background: background, samples: 100, noiseLevel: 0.1, seed: 8, rowsPerChunk: 512)
            .explain(instances: x, targets: .classes([1]))
        let split = try GradientShap(model: differentiable, background: background, samples: 100, noiseLevel: 0.1, seed: 8, rowsPerChunk: 7)
            .explain(instances: x, targets: .classes([1]))
        let check = closeness(split.values.map { Float($0) }, whole.values, atol: 1e-6, rtol: 1e-5)
        #expect(check.passed, Comment(rawValue: check.message))
        // The second instance alone draws what it drew among three (its draws follow its number).
        var alone = GradientShap(model: differentiable, background: background, samples: 100, noiseLevel: 0.1, seed: 8)
        alone.firstInstance = 1
        let one = try alone.explain(instances: Array(x[4..<8]), targets: .classes([1]))
        let same = closeness(one.values.map { Float($0) }, Array(whole.values[4..<8]), atol: 1e-6, rtol: 1e-5)
        #expect(same.passed, Comment(rawValue: same.message))

        let stopped = try GradientShap(model: differentiable, background: background, samples: 4096, stopThreshold: 0.2, seed: 8)
            .explain(instances: x, targets: .classes([0, 1]))
        #expect(stopped.settings["samples_drawn"].flatMap { if case let .int(v) = $0 { v } else { nil } }.map { $0 < 3 * 4096 } == true)
        #expect(throws: ExplainError.self) {
            try GradientShap(model: differentiable, background: [1, 2, 3], samples: 10).explain(instances: x, targets: .classes([0]))
        }
    }
}
