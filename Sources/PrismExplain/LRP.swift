import Foundation
import Prism

/// Layer-wise Relevance Propagation (Bach et al. 2015; rules as in Montavon et al. 2019) through a
/// `Model`'s graph: the target's logit is the relevance at the output, and each node hands its
/// relevance R to its inputs aᵢ by Rᵢ = aᵢ ⊙ ∂/∂aᵢ ⟨z(a), s⟩ with s = R / (z + ε·sign z) held fixed,
/// z being the node recomputed with the rule's weights. The vector–Jacobian product ∂⟨z, s⟩/∂a is
/// the op's own backward pass on the device, so every instance of a chunk runs at once. A value read
/// by several nodes (a residual branch) receives the sum of their relevances.
///
/// The rules live with the ops (`LRPRule`):
/// - Linear and Conv2D: the layer's rule (ε, z⁺ or γ), configurable per node index.
/// - MaxPool2D, AvgPool2D, AdaptiveAvgPool2D, BatchNorm (inference), Add, Sub and Cat: the ε-rule with a
///   tiny ε through the op itself (max pooling sends relevance to the maximum, average pooling and
///   sums share it in proportion to the inputs; BatchNorm's shift and a constant operand absorb their
///   share, as a bias does).
/// - Mul and Div: the first operand takes all the relevance, the second (a constant, or a gate such as
///   squeeze-excitation's) none (Arras et al. 2017); Pow by a constant passes it through.
/// - ReLU, LeakyReLU, ELU, SiLU, Hardswish, Hardsigmoid, Hardtanh, PReLU, Sigmoid, Tanh and Dropout
///   (inference): relevance passes through unchanged (element-wise activations, as in Montavon et al.
///   2019); Flatten reshapes it.
/// - GELU, Softmax, LayerNorm and the transformer ops have no rule: LRP refuses such models.
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

    public let model: Model
    /// The rule of Linear and Conv2D layers without an entry in `layerRules`.
    public var rule: Rule
    /// Rules by node index (`Model.ops`), overriding `rule`.
    public var layerRules: [Int: Rule]
    /// Instances per device batch (nil: sized from the device's memory).
    public var rowsPerChunk: Int?

    public var name: String { "lrp" }

    public init(model: Model, rule: Rule = .epsilon(1e-6), layerRules: [Int: Rule] = [:], rowsPerChunk: Int? = nil) {
        self.model = model
        self.rule = rule
        self.layerRules = layerRules
        self.rowsPerChunk = rowsPerChunk
    }

    /// - Returns: values [instances][input elements][targets] (relevances); `outputs` f(x), `baseValues` 0.
    /// - Throws: `ExplainError` naming a node LRP has no rule for (GELU, Softmax, …).
    public func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation {
        let start = DispatchTime.now()
        let differentiable = DifferentiableModel(model)
        let setup = try AttributionSetup(model: differentiable, instances: instances, targets: targets, rowsPerChunk: rowsPerChunk)
        for (i, op) in model.ops.enumerated() where !(op is any LRPRule) {
            throw ExplainError("lrp: no rule for node \(i) '\(model.nodeName(i))' (\(op.kind)); LRP propagates through \(LRP.supportedOps.joined(separator: ", "))")
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
            // Every value of the graph, then the logits.
            let (graphValues, logits): ([Tensor], [Float]) = try engine.noGrad {
                let all = try model.values(x)
                return (all, try all[model.graph.output].toArray())
            }
            outputs.replaceSubrange((first * c)..<((first + rows) * c), with: logits)
            for t in 0..<slots {
                var seed = [Float](repeating: 0, count: rows * c)
                for r in 0..<rows {
                    let k = targets.classes(instance: first + r)[t]
                    seed[r * c + k] = logits[r * c + k]
                }
                let r = try propagate(try Tensor(seed, shape: [rows, c], engine: engine), values: graphValues).toArray()
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

    /// The relevance of the model's (normalized) input, from `relevance` at the output, node by node
    /// from the last; relevances of a value read by several nodes add up.
    private func propagate(_ relevance: Tensor, values: [Tensor]) throws -> Tensor {
        let graph = model.graph
        var relevances = [Tensor?](repeating: nil, count: values.count)
        relevances[graph.output] = relevance
        for i in graph.nodes.indices.reversed() {
            guard let r = relevances[i + 1] else { continue }
            relevances[i + 1] = nil
            let op = model.ops[i], node = graph.nodes[i]
            guard let rule = op as? any LRPRule else { throw ExplainError("lrp: no rule for node \(i) '\(node.spec.name)' (\(op.kind))") }
            let inputs = node.inputs.map { values[$0] }
            let parts = try rule.relevance(r, inputs: inputs, rule: layerRules[i] ?? self.rule)
            guard parts.count == inputs.count, zip(parts, inputs).allSatisfy({ $0.shape == $1.shape }) else {
                throw ExplainError("lrp: node '\(node.spec.name)' (\(op.kind)) gave relevances of shapes \(parts.map(\.shape)) for inputs \(inputs.map(\.shape))")
            }
            for (v, part) in zip(node.inputs, parts) {
                if let existing = relevances[v] {
                    relevances[v] = try model.engine.noGrad { try existing + part }
                } else {
                    relevances[v] = part
                }
            }
        }
        guard let input = relevances[0] else { throw ExplainError("lrp: no relevance reaches the input") }
        return input
    }

    /// The ops with a rule (the registry kinds of the standard `LRPRule` conformances).
    public static let supportedOps = [Linear.kind, Conv2DLayer.kind, MaxPool2DLayer.kind, AvgPool2DLayer.kind, AdaptiveAvgPool2DLayer.kind,
                                      BatchNorm1D.kind, BatchNorm2D.kind, Add.kind, Sub.kind, Mul.kind, Div.kind, Pow.kind, Cat.kind, ReLU.kind, LeakyReLU.kind, ELU.kind,
                                      SiLU.kind, Hardswish.kind, Hardsigmoid.kind, Hardtanh.kind, PReLU.kind, Sigmoid.kind, Tanh.kind,
                                      Dropout.kind, Flatten.kind, Reshape.kind, Permute.kind, Narrow.kind, BroadcastTo.kind, IndexSelect.kind,
                                      MeanKind.name, SumKind.name, AmaxKind.name, Upsample.kind, Pad.kind, NegKind.name, SqrtKind.name, ExpKind.name,
                                      LogKind.name, ErfKind.name, ReciprocalKind.name, FakeQuantize.kind, Expand.kind]
}

/// How an op hands relevance from its output to its inputs (see `LRP`).
public protocol LRPRule: Op {
    /// The relevance of each input, from `relevance` at the output.
    /// - Parameters:
    ///   - inputs: the op's inputs in the explained forward pass.
    ///   - rule: the rule chosen for this node (used by layers with weights).
    func relevance(_ relevance: Tensor, inputs: [Tensor], rule: LRP.Rule) throws -> [Tensor]
}

extension LRPRule {
    /// Rᵢ = aᵢ ⊙ ∂/∂aᵢ ⟨z, s⟩ with s = R / (z + ε·sign z), z = `forward(a)` recomputed on the tape.
    func epsilonRule(_ relevance: Tensor, inputs: [Tensor], epsilon: Double, forward: ([Tensor]) throws -> Tensor) throws -> [Tensor] {
        let a = try inputs.map { try Tensor(engine: $0.engine, shape: $0.shape, storage: $0.storage, requiresGrad: true) }
        let z = try forward(a)
        guard z.shape == relevance.shape else {
            throw ExplainError("lrp: \(kind) gives shape \(z.shape), its relevance has \(relevance.shape)")
        }
        // s = R / (z + ε·sign z) on the host (sign(0) counts as +), then c = ∂⟨z, s⟩/∂a on the device.
        let zs = try z.toArray(), rs = try relevance.toArray()
        let s = zip(zs, rs).map { z, r in Float(Double(r) / (Double(z) + (z >= 0 ? epsilon : -epsilon))) }
        try z.backward(try Tensor(s, shape: z.shape, engine: z.engine))
        return try zip(inputs, a).map { input, leaf in
            guard let grad = leaf.grad else { throw ExplainError("lrp: \(kind) recorded no backward") }
            return try input.engine.noGrad { try input.detached() * grad }
        }
    }
}

/// The tiny stabilizer of the parameter-free ε-rules.
private let tinyEpsilon = 1e-9

extension Linear: LRPRule {
    public func relevance(_ relevance: Tensor, inputs: [Tensor], rule: LRP.Rule) throws -> [Tensor] {
        let (w, b) = try LRP.weights(weight, bias, rule)
        return try epsilonRule(relevance, inputs: inputs, epsilon: rule.stabilizer) { try Prism.linear($0[0], weight: w, bias: b) }
    }
}

extension Conv2DLayer: LRPRule {
    public func relevance(_ relevance: Tensor, inputs: [Tensor], rule: LRP.Rule) throws -> [Tensor] {
        let (w, b) = try LRP.weights(weight, bias, rule)
        return try epsilonRule(relevance, inputs: inputs, epsilon: rule.stabilizer) {
            try conv2d($0[0], weight: w, bias: b, stride: stride, padding: padding, dilation: dilation, groups: groups)
        }
    }
}

/// Ops whose own forward pass is the ε-rule's z (pooling, sums, concatenation).
protocol ProportionalRule: LRPRule {}
extension ProportionalRule {
    public func relevance(_ relevance: Tensor, inputs: [Tensor], rule: LRP.Rule) throws -> [Tensor] {
        try epsilonRule(relevance, inputs: inputs, epsilon: tinyEpsilon) { try forward($0, training: false) }
    }
}
extension MaxPool2DLayer: ProportionalRule {}
extension AdaptiveAvgPool2DLayer: ProportionalRule {}
extension BatchNorm1D: ProportionalRule {}
extension BatchNorm2D: ProportionalRule {}
extension AvgPool2DLayer: ProportionalRule {}
/// How a binary op hands relevance to its operands.
public enum BinaryRelevance: Sendable {
    /// Sums: the ε-rule through the op (shared in proportion; a constant operand absorbs its share).
    case proportional
    /// Products and quotients: the first operand (the signal, of the output's shape) takes it all, the
    /// second (a gate, such as squeeze-excitation's) none: the signal-take-all rule (Arras et al.
    /// 2017). With a constant operand the op is linear in its input, which takes it all.
    case signalTakesAll
    /// Powers: by a constant, element-wise, relevance passes through; of two values, no rule.
    case constantOnly
}

/// The binary ops with a relevance rule.
public protocol RelevanceBinaryKind: DeviceBinaryKind { static var relevanceRule: BinaryRelevance { get } }
extension AddKind: RelevanceBinaryKind { public static var relevanceRule: BinaryRelevance { .proportional } }
extension SubKind: RelevanceBinaryKind { public static var relevanceRule: BinaryRelevance { .proportional } }
extension MulKind: RelevanceBinaryKind { public static var relevanceRule: BinaryRelevance { .signalTakesAll } }
extension DivKind: RelevanceBinaryKind { public static var relevanceRule: BinaryRelevance { .signalTakesAll } }
extension PowKind: RelevanceBinaryKind { public static var relevanceRule: BinaryRelevance { .constantOnly } }

extension BinaryLayer: LRPRule where Kind: RelevanceBinaryKind {
    public func relevance(_ relevance: Tensor, inputs: [Tensor], rule: LRP.Rule) throws -> [Tensor] {
        switch Kind.relevanceRule {
        case .proportional:
            return try epsilonRule(relevance, inputs: inputs, epsilon: tinyEpsilon) { try forward($0, training: false) }
        case .signalTakesAll:
            return try [relevance] + inputs.dropFirst().map { try Tensor.zeros($0.shape, engine: $0.engine) }
        case .constantOnly:
            guard inputs.count == 1 else { throw ExplainError("lrp: no rule for \(kind) of two values (only of a value and a constant)") }
            return [relevance]
        }
    }
}
extension Cat: ProportionalRule {}

/// Element-wise activations and inference-time dropout: relevance passes through unchanged.
protocol PassRule: LRPRule {}
extension PassRule {
    public func relevance(_ relevance: Tensor, inputs: [Tensor], rule: LRP.Rule) throws -> [Tensor] { [relevance] }
}
extension ReLU: PassRule {}
extension Sigmoid: PassRule {}
extension Tanh: PassRule {}
extension Dropout: PassRule {}
extension LeakyReLU: PassRule {}
extension ELU: PassRule {}
extension SiLU: PassRule {}
extension Hardswish: PassRule {}
extension Hardsigmoid: PassRule {}
extension Hardtanh: PassRule {}
extension PReLU: PassRule {}

/// Ops that move values without arithmetic (reshape, permute, narrow, constant index_select,
/// broadcast_to): relevance follows the values back — the op's backward applied to the relevance
/// (a selected element gets its copies' relevance, one left out none), so the total is conserved
/// (except for what an op leaves out: narrow's and index_select's unselected elements carry none).
protocol RelocationRule: LRPRule {}
extension RelocationRule {
    public func relevance(_ relevance: Tensor, inputs: [Tensor], rule: LRP.Rule) throws -> [Tensor] {
        [try relocated(relevance, input: inputs[0]) { try forward([$0], training: false) }]
    }
}

extension LRPRule {
    /// `relevance` carried back to `input` along the values: the backward of `forward` applied to it.
    func relocated(_ relevance: Tensor, input: Tensor, forward: (Tensor) throws -> Tensor) throws -> Tensor {
        let a = try Tensor(engine: input.engine, shape: input.shape, storage: input.storage, requiresGrad: true)
        let z = try forward(a)
        guard z.shape == relevance.shape else { throw ExplainError("lrp: \(kind) gives shape \(z.shape), its relevance has \(relevance.shape)") }
        try z.backward(try relevance.detached())
        guard let moved = a.grad else { throw ExplainError("lrp: \(kind) recorded no backward") }
        return moved
    }
}
extension Reshape: RelocationRule {}
extension Permute: RelocationRule {}
extension Narrow: RelocationRule {}
extension BroadcastTo: RelocationRule {}
extension IndexSelect: RelocationRule {
    public func relevance(_ relevance: Tensor, inputs: [Tensor], rule: LRP.Rule) throws -> [Tensor] {
        guard constant != nil, inputs.count == 1 else { throw ExplainError("lrp: no rule for index_select with positions given as an input") }
        return [try relocated(relevance, input: inputs[0]) { try forward(values: [.float($0)], training: false).float() }]
    }
}

/// Sums, means and maxima over axes, and resampling (linear in the input): the ε-rule through the op.
extension Reduction: ProportionalRule {}
extension Upsample: ProportionalRule {}
extension Pad: ProportionalRule {}

/// Element-wise functions and fake quantization pass relevance through, as the activations do.
extension UnaryLayer: PassRule {}
extension FakeQuantize: PassRule {}

/// A constant repeated for every example (a class token): its input gives the batch size only and
/// gets no relevance; the constant absorbs what reaches it, as a bias does.
extension Expand: LRPRule {
    public func relevance(_ relevance: Tensor, inputs: [Tensor], rule: LRP.Rule) throws -> [Tensor] {
        [try Tensor.zeros(inputs[0].shape, engine: inputs[0].engine)]
    }
}

extension Flatten: LRPRule {
    public func relevance(_ relevance: Tensor, inputs: [Tensor], rule: LRP.Rule) throws -> [Tensor] {
        [try relevance.detached().reshaped(inputs[0].shape)]
    }
}

extension LRP {
    /// The rule's weights and bias, detached from the parameters (no gradient reaches them).
    static func weights(_ weight: Tensor, _ bias: Tensor?, _ rule: Rule) throws -> (Tensor, Tensor?) {
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
