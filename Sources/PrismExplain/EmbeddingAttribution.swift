import Foundation
import Prism

/// Gradient attributions of a model whose input is token ids, taken at its embedding's output and
/// summed over the embedding's width per token: what Captum's layer methods on an embedding layer
/// (`LayerIntegratedGradients`, `LayerGradientXActivation`) give for text models, whose integer
/// inputs have no gradients.
///
/// For each instance, the attribution method built by `make` explains the function e ↦ f(ids, e) of
/// the embedding's output e (the ids still feed every other node that reads them; the model's bound
/// extra inputs, such as an attention mask, stay as bound), at e = embedding(ids), with the reference
/// e′ = embedding(baseline token at every position). Summing over the width keeps Integrated
/// Gradients' completeness: Σ φ = f(e) − f(e′).
public struct EmbeddingAttribution: AttributionMethod {
    public let model: Model
    /// The embedding node reading the ids.
    public let node: String
    /// The id whose embedding is the reference.
    public let baselineToken: Int
    let make: (DifferentiableModel, _ reference: [Float]) throws -> AttributionMethod

    /// - Parameters:
    ///   - make: the attribution method over the embedding's output, given the model of it and the
    ///     reference embeddings (one row: tokens × width).
    /// - Throws: `ExplainError` when the model's input is not integer or no embedding reads it.
    public init(model: Model, baselineToken: Int, make: @escaping (DifferentiableModel, _ reference: [Float]) throws -> AttributionMethod) throws {
        guard let type = model.spec.inputType, type.isInteger else {
            throw ExplainError("embedding attribution: the model's input is float32; explain it directly")
        }
        guard let i = model.graph.nodes.firstIndex(where: { $0.spec.op == "embedding" && $0.inputs == [0] }) else {
            throw ExplainError("embedding attribution: no embedding reads the model's token ids, so there is no layer to take gradients at")
        }
        self.model = model
        node = model.nodeName(i)
        self.baselineToken = baselineToken
        self.make = make
    }

    public var name: String { "embedding attribution" }

    /// Tokens per example.
    var tokens: Int { model.spec.inputShape.reduce(1, *) }

    /// The embedding's output for one example's ids (as floats), [tokens × width].
    public func embedded(_ ids: [Float]) throws -> [Float] {
        let engine = model.engine
        let x = try IntTensor(ids.map { Int64($0) }, shape: [1] + model.spec.inputShape, dtype: IntegerType(rawValue: model.spec.inputType!.rawValue) ?? .int64, engine: engine)
        return try engine.noGrad {
            let (_, activations) = try model.forward(.integer(x), inputs: [:], capture: [node])
            guard let e = activations[node] else { throw ExplainError("embedding attribution: node '\(node)' was not captured") }
            return try e.toArray()
        }
    }

    public func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation {
        let t = tokens
        guard t > 0, !instances.isEmpty, instances.count % t == 0 else {
            throw ExplainError("embedding attribution: \(instances.count) ids are not a whole number of inputs of \(t) tokens")
        }
        let count = instances.count / t
        try targets.validate(instanceCount: count, classCount: model.spec.classCount)
        let engine = model.engine, shape = model.spec.inputShape
        let outputShape = model.graph.nodes[model.nodeIndex(node)!].info.output
        let width = outputShape.reduce(1, *) / t
        let reference = try embedded([Float](repeating: Float(baselineToken), count: t))
        var parts: [Explanation] = []
        for i in 0..<count {
            let ids = Array(instances[(i * t)..<((i + 1) * t)])
            let idTensors = IdCache(ids: ids, shape: shape, type: IntegerType(rawValue: model.spec.inputType!.rawValue) ?? .int64, engine: engine)
            let differentiable = DifferentiableModel(engine: engine, inputShape: outputShape, classCount: model.spec.classCount,
                                                     parameters: model.parameters) { [model, node] e in
                try model.forward(.integer(try idTensors.repeated(e.shape[0])), inputs: [:], overrides: [node: e]).output
            }
            let method = try make(differentiable, reference)
            let e = try method.explain(instances: try embedded(ids), targets: .classes(targets.classes(instance: i)))
            // Summed over the width: one value per token.
            var values = [Double](repeating: 0, count: t * e.outputCount)
            for p in 0..<t {
                for j in 0..<width {
                    for o in 0..<e.outputCount { values[p * e.outputCount + o] += e.values[(p * width + j) * e.outputCount + o] }
                }
            }
            var settings = e.settings
            settings["layer"] = .string(node)
            settings["baseline_token"] = .int(baselineToken)
            parts.append(try Explanation(method: e.method, instanceCount: 1, featureCount: t, outputCount: e.outputCount, values: values,
                                         baseValues: e.baseValues, outputs: e.outputs, modelEvaluations: e.modelEvaluations,
                                         seconds: e.seconds, settings: settings))
        }
        return try Explanation(stacking: parts)
    }
}

/// One example's ids on the device, repeated for a batch size (kept for the last size asked).
private final class IdCache {
    let ids: [Float]
    let shape: [Int]
    let type: IntegerType
    let engine: Engine
    var last: (rows: Int, tensor: IntTensor)?

    init(ids: [Float], shape: [Int], type: IntegerType, engine: Engine) {
        (self.ids, self.shape, self.type, self.engine) = (ids, shape, type, engine)
    }

    func repeated(_ rows: Int) throws -> IntTensor {
        if let last, last.rows == rows { return last.tensor }
        let one = ids.map { Int64($0) }
        var all: [Int64] = []
        all.reserveCapacity(one.count * rows)
        for _ in 0..<rows { all += one }
        let tensor = try IntTensor(all, shape: [rows] + shape, dtype: type, engine: engine)
        last = (rows, tensor)
        return tensor
    }
}
