import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

/// Attributions at a layer: where the rest of the model is linear they have a closed form, and
/// Integrated Gradients at a convolution's output keeps completeness after the per-position sums.
@Suite struct LayerAttributionTests {
    /// The MLP's last ReLU feeds only the final Linear: IG there is W[k] ⊙ (a − a′) exactly.
    @Test func integratedGradientsBeforeTheLastLinearIsWeightsTimesDifference() throws {
        let engine = try testEngine()
        let net = try AttributionNetworks.reluMLP(engine)
        let layer = net.activationName(4), weight = try net.stateDict()["5.weight"]!.values
        let x = seededFloats(2 * 12, seed: 1), baseline = seededFloats(2 * 12, seed: 2)
        let method = try LayerAttribution(model: net, layer: layer, references: baseline, perInstance: true) { model, references in
            IntegratedGradients(model: model, steps: 8, baseline: .values(references))
        }
        let e = try method.explain(instances: x, targets: .classes([0, 2]))
        #expect(e.featureCount == 8 && e.settings["layer"] == .string(layer))
        let a = try method.activations(x, rows: 2), ar = try method.activations(baseline, rows: 2)
        for i in 0..<2 {
            for (t, k) in [0, 2].enumerated() {
                for j in 0..<8 {
                    let exact = Double(weight[k * 8 + j]) * Double(a[i * 8 + j] - ar[i * 8 + j])
                    #expect(abs(e.attributions(instance: i, output: t)[j] - exact) <= 1e-5 * max(1, abs(exact)))
                }
            }
        }
    }

    /// IG at the first ReLU of the CNN ([C, 8, 8]), summed over channels per position: 64 values whose
    /// sum is f(x) − f at the reference activation up to the quadrature error; GradientSHAP with the
    /// background mapped through the layer sums to about f(x) − E f.
    @Test func perPositionSumsKeepCompleteness() throws {
        let engine = try testEngine()
        let net = try AttributionNetworks.cnn(engine)
        let layer = net.activationName(1)
        let x = seededFloats(2 * 100, seed: 3, low: 0, high: 1)
        let ig = try LayerAttribution(model: net, layer: layer, references: [Float](repeating: 0, count: 200), perInstance: true) { model, references in
            IntegratedGradients(model: model, steps: 64, baseline: .values(references))
        }.explain(instances: x, targets: .classes([1]))
        #expect(ig.featureCount == 64)
        for i in 0..<2 {
            let gap = ig.additivityGap(instance: i, output: 0)!
            #expect(abs(gap) <= 1e-3 * max(1, abs(ig.outputs![i])), "instance \(i): gap \(gap)")
        }
        let background = seededFloats(6 * 100, seed: 4, low: 0, high: 1)
        let shap = try LayerAttribution(model: net, layer: layer, references: background, perInstance: false) { model, references in
            GradientShap(model: model, background: references, samples: 400, seed: 5)
        }.explain(instances: x, targets: .classes([1]))
        for i in 0..<2 {
            let gap = shap.additivityGap(instance: i, output: 0)!
            #expect(abs(gap) <= 0.1 * max(1, abs(shap.outputs![i])), "instance \(i): gap \(gap)")
        }
        #expect(throws: ExplainError.self) { try LayerAttribution(model: net, layer: "nope", references: [], perInstance: true) { m, _ in Saliency(model: m) } }
    }
}
