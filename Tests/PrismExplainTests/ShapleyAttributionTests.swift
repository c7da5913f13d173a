import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

/// SHAP as an attribution method: on a linear model, exact Shapley values against a background are
/// w_cj · (x_j − mean_b x_j) with base value w_c · mean_b x + b_c (closed form), for each target.
@Suite struct ShapleyAttributionTests {
    @Test func exactShapleyOfALinearModelForTargets() throws {
        let engine = try testEngine()
        let spec = try ModelSpec.mlp(inputShape: [5], hidden: [], classes: 3)
        let model = try Model(spec: spec, seed: 11, engine: engine)
        let state = try model.stateDict()
        let w = state["1.weight"]!.values, b = state["1.bias"]!.values
        let background = seededFloats(4 * 5, seed: 1), x = seededFloats(2 * 5, seed: 2)
        let mean = (0..<5).map { j in (0..<4).reduce(0.0) { $0 + Double(background[$1 * 5 + j]) } / 4 }
        let method = ShapleyAttribution(model: model, estimator: ExactShapley(), background: background)
        let e = try method.explain(instances: x, targets: .perInstance([2, 0]))
        #expect(e.instanceCount == 2 && e.featureCount == 5 && e.outputCount == 1)
        for (i, c) in [2, 0].enumerated() {
            let phi = e.attributions(instance: i, output: 0)
            for j in 0..<5 {
                let expected = Double(w[c * 5 + j]) * (Double(x[i * 5 + j]) - mean[j])
                #expect(abs(phi[j] - expected) <= 1e-5 + 1e-5 * abs(expected), "instance \(i) feature \(j)")
            }
            let base = (0..<5).reduce(Double(b[c])) { $0 + Double(w[c * 5 + $1]) * mean[$1] }
            #expect(abs(e.baseValues![i] - base) <= 1e-5)
            #expect(abs(e.additivityGap(instance: i, output: 0)!) <= 1e-5)
        }
        #expect(throws: ExplainError.self) { try method.explain(instances: x, targets: .classes([3])) }
    }

    /// With one reference row per instance, a linear model's exact values are w·(x − r) for the
    /// instance's own reference r (the background is not used).
    @Test func referenceRowsReplaceTheBackgroundPerInstance() throws {
        let engine = try testEngine()
        let model = try Model(spec: try ModelSpec.mlp(inputShape: [4], hidden: [], classes: 2), seed: 3, engine: engine)
        let w = try model.stateDict()["1.weight"]!.values
        let x = seededFloats(2 * 4, seed: 5), references = seededFloats(2 * 4, seed: 6)
        var method = ShapleyAttribution(model: model, estimator: ExactShapley(), background: seededFloats(3 * 4, seed: 7),
                                        references: references)
        let e = try method.explain(instances: x, targets: .perInstance([1, 0]))
        for (i, c) in [1, 0].enumerated() {
            let phi = e.attributions(instance: i, output: 0)
            for j in 0..<4 {
                let expected = Double(w[c * 4 + j]) * (Double(x[i * 4 + j]) - Double(references[i * 4 + j]))
                #expect(abs(phi[j] - expected) <= 1e-5 + 1e-5 * abs(expected), "instance \(i) feature \(j)")
            }
        }
        method.references = Array(references.prefix(4))
        #expect(throws: ExplainError.self) { try method.explain(instances: x, targets: .perInstance([1, 0])) }
    }
}
