import Foundation
import Prism

/// Gradient attributions taken at a named node's output rather than at the input (Captum's
/// `LayerIntegratedGradients` and `LayerGradientShap`, with the path in the layer's space): for each
/// instance x, the method built by `make` explains the function a ↦ f(x with node `layer`'s output
/// replaced by a) at a = layer(x), against references mapped through the layer (a′ = layer(x′) for
/// Integrated Gradients' baseline, layer(r) for each background row of GradientSHAP). The values are
/// then summed per position: over the channel axis of a [C, H, W] output (one value per H × W
/// position), over the last axis of a [T, D] output (one per token), as they are for a [D] output.
/// Summing keeps Integrated Gradients' completeness: Σφ = f(x) − f at the reference activation.
/// Standard errors (GradientSHAP's) are not carried over: a sum's needs the covariances.
public struct LayerAttribution: AttributionMethod {
    public let model: Model
    /// The node, as an activation name (`4.relu`, or its own name).
    public let layer: String
    /// The node's name, as overrides take it.
    let node: String
    let make: (DifferentiableModel, _ references: [Float]) throws -> AttributionMethod
    /// Rows mapped through the layer to become the references (one per instance, or a background).
    public let references: [Float]
    /// Whether `references` holds one row per instance (a baseline) or rows shared by all (a background).
    public let perInstance: Bool

    /// - Parameters:
    ///   - references: input rows whose layer outputs are the references: one per instance
    ///     (`perInstance`, a baseline) or shared rows (a background).
    ///   - make: the attribution method over the layer's output, given the model of it and the
    ///     references in the layer's space (row-major, the layer's width per row).
    /// - Throws: `ExplainError` for a float-input model without that node, or a node of integers.
    public init(model: Model, layer: String, references: [Float], perInstance: Bool,
                make: @escaping (DifferentiableModel, _ references: [Float]) throws -> AttributionMethod) throws {
        guard model.spec.inputType == nil || model.spec.inputType == .float32 else {
            throw ExplainError("layer attribution: the model takes \(model.spec.inputType!.rawValue) inputs; token models use the embedding attribution")
        }
        guard let i = model.node(activation: layer) else {
            throw ExplainError("layer attribution: no node '\(layer)'; names are \(model.graph.nodes.indices.map(model.activationName).joined(separator: ", "))")
        }
        guard model.graph.nodes[i].info.type == .float32 else { throw ExplainError("layer attribution: node '\(layer)' computes integers") }
        self.model = model
        self.layer = model.activationName(i)
        node = model.nodeName(i)
        self.references = references
        self.perInstance = perInstance
        self.make = make
    }

    public var name: String { "layer attribution" }

    /// The node's output per example, e.g. [C, H, W].
    public var layerShape: [Int] { model.graph.nodes[model.node(activation: layer)!].info.output }

    /// Positions the values are summed to, and the width summed over.
    var positions: (count: Int, width: Int) {
        let shape = layerShape, total = shape.reduce(1, *)
        switch shape.count {
        case 3: return (shape[1] * shape[2], shape[0])
        case 2: return (shape[0], shape[1])
        default: return (total, 1)
        }
    }

    /// The layer's output for `rows` inputs, row-major.
    public func activations(_ inputs: [Float], rows: Int) throws -> [Float] {
        let engine = model.engine
        let x = try Tensor(inputs, shape: [rows] + model.spec.inputShape, engine: engine)
        return try engine.noGrad {
            guard let a = try model.forward(x, capture: [layer]).activations[layer] else { throw ExplainError("layer attribution: '\(layer)' was not captured") }
            return try a.toArray()
        }
    }

    public func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation {
        let d = model.spec.inputShape.reduce(1, *), shape = layerShape, width = shape.reduce(1, *)
        guard d > 0, !instances.isEmpty, instances.count % d == 0 else {
            throw ExplainError("layer attribution: \(instances.count) values are not a whole number of inputs of shape \(model.spec.inputShape)")
        }
        let count = instances.count / d
        try targets.validate(instanceCount: count, classCount: model.spec.classCount)
        guard !references.isEmpty, references.count % d == 0, !perInstance || references.count == count * d else {
            throw ExplainError("layer attribution: \(references.count) reference values for \(count) instances of \(d) elements")
        }
        let mapped = try activations(references, rows: references.count / d)
        let engine = model.engine, (p, summed) = positions
        var parts: [Explanation] = []
        for i in 0..<count {
            let x = try Tensor(Array(instances[(i * d)..<((i + 1) * d)]), shape: [1] + model.spec.inputShape, engine: engine)
            var repeatedX: (rows: Int, tensor: Tensor)?
            let differentiable = DifferentiableModel(engine: engine, inputShape: shape, classCount: model.spec.classCount,
                                                     parameters: model.parameters) { [model, node] a in
                let rows = a.shape[0]
                if repeatedX?.rows != rows { repeatedX = (rows, try engine.noGrad { try concat([Tensor](repeating: x, count: rows), axis: 0) }) }
                return try model.forward(.float(repeatedX!.tensor), inputs: [:], overrides: [node: a]).output
            }
            let method = try make(differentiable, perInstance ? Array(mapped[(i * width)..<((i + 1) * width)]) : mapped)
            let e = try method.explain(instances: try activations(Array(instances[(i * d)..<((i + 1) * d)]), rows: 1),
                                       targets: .classes(targets.classes(instance: i)))
            // Summed per position: channels of [C, H, W] (c·HW + position), the width of [T, D] (t·D + j).
            var values = [Double](repeating: 0, count: p * e.outputCount)
            for k in 0..<width {
                let position = shape.count == 3 ? k % p : k / summed
                for o in 0..<e.outputCount { values[position * e.outputCount + o] += e.values[k * e.outputCount + o] }
            }
            var settings = e.settings
            settings["layer"] = .string(layer)
            settings["layer_shape"] = .ints(shape)
            parts.append(try Explanation(method: e.method, instanceCount: 1, featureCount: p, outputCount: e.outputCount, values: values,
                                         baseValues: e.baseValues, outputs: e.outputs,
                                         modelEvaluations: e.modelEvaluations, seconds: e.seconds, settings: settings))
        }
        return try Explanation(stacking: parts)
    }
}
