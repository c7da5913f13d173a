import Foundation
import Prism

/// Layer-wise Relevance Propagation (Bach et al. 2015; rules as in Montavon et al. 2019) through a
/// `Sequential`: the target's logit is the relevance at the output, and each layer hands its
/// relevance R to its input a by Rₐ = a ⊙ ∂/∂a ⟨z(a), s⟩ with s = R / (z + ε·sign z) held fixed,
/// z being the layer recomputed with the rule's weights. The vector–Jacobian product ∂⟨z, s⟩/∂a is
/// the layer's own backward pass on the device, so every instance of a chunk runs at once.
///
/// - Linear and Conv2D: the layer's rule (ε, z⁺ or γ), configurable per layer index.
/// - MaxPool2D and AvgPool2D: the ε-rule with a tiny ε (max pooling sends relevance to the maximum,
///   average pooling shares it in proportion to the inputs).
/// - ReLU, Dropout (inference) and Flatten: relevance passes through unchanged.
///
/// Relevance is conserved layer by layer except what biases and stabilizers absorb: `baseValues`
/// are zero and `outputs` are f(x), so `additivityGap` is Σ R_input − f_c(x); its largest magnitude is
/// recorded in `settings["conservation_gap"]`.
public struct LRP: AttributionMethod {
    /// A propagation rule for Linear and Conv2D layers.
    public enum Rule: Equatable, Sendable, CustomStringConvertible {
        /// z = W a + b; denominator z + ε·sign(z).
        case epsilon(Double)
        /// z⁺ (α = 1, β = 0): only positive weights, no bias.
        case zPlus
        /// W + γW⁺ and b + γb⁺ (Montavon et al. 2019), with a tiny ε.
        case gamma(Double)

        public var description: String {
            switch self {
            case let .epsilon(e): "epsilon(\(e))"
            case .zPlus: "z-plus"
            case let .gamma(g): "gamma(\(g))"
            }
        }

        var stabilizer: Double {
            if case let .epsilon(e) = self { return e }
            return 1e-9
        }
    }

    public let model: Sequential
    /// The rule of Linear and Conv2D layers without an entry in `layerRules`.
    public var rule: Rule
    /// Rules by layer index (`Sequential.layers`), overriding `rule`.
    public var layerRules: [Int: Rule]
    /// Instances per device batch (nil: sized from the device's memory).
    public var rowsPerChunk: Int?

    public var name: String { "lrp" }

    public init(model: Sequential, rule: Rule = .epsilon(1e-6), layerRules: [Int: Rule] = [:], rowsPerChunk: Int? = nil) {
        self.model = model
        self.rule = rule
        self.layerRules = layerRules
        self.rowsPerChunk = rowsPerChunk
    }

    /// - Returns: values [instances][input elements][targets] (relevances); `outputs` f(x), `baseValues` 0.
    /// - Throws: `ExplainError` for a layer LRP has no rule for (GELU, Softmax).
    public func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation {
        let start = DispatchTime.now()
        let differentiable = DifferentiableModel(model)
        let setup = try AttributionSetup(model: differentiable, instances: instances, targets: targets, rowsPerChunk: rowsPerChunk)
        for (i, layer) in model.layers.enumerated() where layer is GELU || layer is Softmax {
            throw ExplainError("lrp: no rule for layer \(i) (\(layer.kind))")
        }
        let engine = model.engine, d = differentiable.elementCount, n = setup.instanceCount, slots = targets.outputCount
        let c = differentiable.classCount
        var values = [Double](repeating: 0, count: n * d * slots)
        var outputs = [Float](repeating: 0, count: n * c)
        var evaluations = 0
        var first = 0
        while first < n {
            let rows = min(setup.rowsPerChunk, n - first)
            let x = try Tensor(Array(instances[(first * d)..<((first + rows) * d)]), shape: [rows] + model.spec.inputShape, engine: engine)
            // The input of every layer, then the logits.
            var layerInputs: [Tensor] = []
            let logits: [Float] = try engine.noGrad {
                var h = try model.normalizedInput(x)
                for layer in model.layers {
                    layerInputs.append(h)
                    h = try layer.forward(h, training: false)
                }
                return try h.toArray()
            }
            outputs.replaceSubrange((first * c)..<((first + rows) * c), with: logits)
            for t in 0..<slots {
                var seed = [Float](repeating: 0, count: rows * c)
                for r in 0..<rows {
                    let k = targets.classes(instance: first + r)[t]
                    seed[r * c + k] = logits[r * c + k]
                }
                var relevance = try Tensor(seed, shape: [rows, c], engine: engine)
                for l in model.layers.indices.reversed() {
                    relevance = try propagate(relevance, layer: l, input: layerInputs[l])
                }
                let r = try relevance.toArray()
                for j in 0..<rows {
                    for e in 0..<d { values[((first + j) * d + e) * slots + t] = Double(r[j * d + e]) }
                }
            }
            evaluations += rows * (1 + slots)
            first += rows
        }
        var explanation = try Explanation(method: name, instanceCount: n, featureCount: d, outputCount: slots, values: values,
                                          baseValues: [Double](repeating: 0, count: n * slots), outputs: setup.targetOutputs(outputs),
                                          modelEvaluations: evaluations, seconds: 0,
                                          settings: ["rule": .string(rule.description), "targets": .string(targets.description),
                                                     "rows_per_chunk": .int(setup.rowsPerChunk)])
        if !layerRules.isEmpty {
            explanation.settings["layer_rules"] = .string(layerRules.keys.sorted().map { "\($0):\(layerRules[$0]!)" }.joined(separator: ","))
        }
        var gap = 0.0
        for i in 0..<n {
            for t in 0..<slots { gap = Swift.max(gap, abs(explanation.additivityGap(instance: i, output: t) ?? 0)) }
        }
        explanation.settings["conservation_gap"] = .double(gap)
        explanation.seconds = AttributionSetup.seconds(since: start)
        return explanation
    }

    /// The relevance of layer `l`'s input from that of its output.
    private func propagate(_ relevance: Tensor, layer l: Int, input: Tensor) throws -> Tensor {
        let layer = model.layers[l]
        switch layer {
        case is ReLU, is Dropout: return relevance
        case is Flatten: return try relevance.detached().reshaped(input.shape)
        default: break
        }
        let rule = layerRules[l] ?? self.rule
        let a = try Tensor(engine: input.engine, shape: input.shape, storage: input.storage, requiresGrad: true)
        let z: Tensor
        switch layer {
        case let linear as Linear:
            let (w, b) = try weights(linear.weight, linear.bias, rule)
            z = try Prism.linear(a, weight: w, bias: b)
        case let conv as Conv2DLayer:
            let (w, b) = try weights(conv.weight, conv.bias, rule)
            z = try conv2d(a, weight: w, bias: b, stride: conv.stride, padding: conv.padding)
        case let pool as MaxPool2DLayer:
            z = try maxPool2d(a, kernel: (pool.kernel, pool.kernel), stride: (pool.stride, pool.stride))
        case let pool as AvgPool2DLayer:
            z = try avgPool2d(a, kernel: (pool.kernel, pool.kernel), stride: (pool.stride, pool.stride))
        default:
            throw ExplainError("lrp: no rule for layer \(l) (\(layer.kind))")
        }
        guard z.shape == relevance.shape else {
            throw ExplainError("lrp: layer \(l) (\(layer.kind)) gives shape \(z.shape), its relevance has \(relevance.shape)")
        }
        // s = R / (z + ε·sign z) on the host (sign(0) counts as +), then c = ∂⟨z, s⟩/∂a on the device.
        let epsilon = layer is Linear || layer is Conv2DLayer ? rule.stabilizer : 1e-9
        let zs = try z.toArray(), rs = try relevance.toArray()
        let s = zip(zs, rs).map { z, r in Float(Double(r) / (Double(z) + (z >= 0 ? epsilon : -epsilon))) }
        try z.backward(try Tensor(s, shape: z.shape, engine: z.engine))
        guard let grad = a.grad else { throw ExplainError("lrp: layer \(l) (\(layer.kind)) recorded no backward") }
        return try input.engine.noGrad { try input.detached() * grad }
    }

    /// The rule's weights and bias, detached from the parameters (no gradient reaches them).
    private func weights(_ weight: Tensor, _ bias: Tensor?, _ rule: Rule) throws -> (Tensor, Tensor?) {
        try weight.engine.noGrad {
            let w = try weight.detached(), b = try bias?.detached()
            switch rule {
            case .epsilon: return (w, b)
            case .zPlus: return (try w.relu(), nil)
            case let .gamma(g):
                return (try w + w.relu() * Float(g), try b.map { try $0 + $0.relu() * Float(g) })
            }
        }
    }
}
