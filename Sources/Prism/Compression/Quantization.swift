import Foundation

/// How calibration turns the values a tensor took into its quantization range.
public enum QuantizationObserver: Codable, Equatable, Sendable {
    /// The smallest and largest value seen (PyTorch's MinMaxObserver).
    case minMax
    /// The p-th and (100 − p)-th percentiles of the values seen (outliers clipped), p in (50, 100].
    case percentile(Double)

    /// The range of `values`.
    func range(_ values: [Float]) throws -> (Float, Float) {
        guard !values.isEmpty else { throw TensorError("calibration: no values observed") }
        switch self {
        case .minMax:
            return (values.min()!, values.max()!)
        case let .percentile(p):
            guard p > 50, p <= 100 else { throw TensorError("calibration: percentile \(p) must lie in (50, 100]") }
            let sorted = values.sorted()
            func at(_ q: Double) -> Float { sorted[min(sorted.count - 1, max(0, Int((q / 100 * Double(sorted.count - 1)).rounded())))] }
            return (at(100 - p), at(p))
        }
    }
}

/// A model quantized to int8 after training (static post-training quantization): uint8 activations
/// with per-tensor affine quantization from calibration, int8 weights symmetric per output channel,
/// each convolution or Linear layer fused with the ReLU after it, evaluated with the integer kernels
/// of `quantized.cl`. Covers chains of conv2d (groups 1), linear, relu, maxpool2d (no padding),
/// flatten and dropout — the reference cnn and MLPs.
public final class QuantizedModel {
    /// One integer step.
    public enum Step {
        case conv(name: String, weights: QuantizedWeights, stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int), output: AffineQuantization, relu: Bool)
        case linear(name: String, weights: QuantizedWeights, output: AffineQuantization, relu: Bool)
        case maxPool(kernel: Int, stride: Int)
        case flatten
    }

    public let original: Model
    /// The quantization of the first layer's input (after the input normalization).
    public let input: AffineQuantization
    public let steps: [Step]
    var engine: Engine { original.engine }
    /// Each conv/linear step's weights on the device, by step index, made once.
    private var device: [Int: DeviceQuantizedWeights] = [:]

    /// Checks, before any calibration, that the integer kernels cover every node of `model`.
    /// - Throws: `TensorError` naming the first node they do not cover.
    public static func requireCovered(_ model: Model) throws { _ = try plan(model) }

    /// The nodes of `model` grouped into integer steps: (step kind, node indices, the node whose output the step's output is).
    static func plan(_ model: Model) throws -> [(kind: String, nodes: [Int], output: Int)] {
        let graph = model.graph
        guard model.spec.inputType == nil || model.spec.inputType == .float32, model.extraInputs.isEmpty else {
            throw TensorError("quantize: int8 quantization takes one float input")
        }
        var plan: [(String, [Int], Int)] = []
        var i = 0
        while i < graph.nodes.count {
            let node = graph.nodes[i]
            func refuse(_ why: String) -> TensorError { TensorError("quantize: node '\(node.spec.name)' (\(node.spec.op)): \(why)") }
            guard node.inputs == [i] else { throw refuse("int8 quantization covers chains (each node reading the one before)") }
            let reluNext = i + 1 < graph.nodes.count && graph.nodes[i + 1].spec.op == "relu" && graph.nodes[i + 1].inputs == [i + 1]
                && graph.output != i + 1
            switch node.spec.op {
            case "conv2d":
                if case let .int(g)? = node.spec.attributes["groups"], g != 1 { throw refuse("grouped convolutions have no int8 kernel") }
                if case let .string(mode)? = node.spec.attributes["padding_mode"], mode != "zeros" { throw refuse("padding mode \(mode) has no int8 kernel") }
                plan.append(("conv", reluNext ? [i, i + 1] : [i], reluNext ? i + 1 : i))
                i += reluNext ? 2 : 1
            case "linear":
                plan.append(("linear", reluNext ? [i, i + 1] : [i], reluNext ? i + 1 : i))
                i += reluNext ? 2 : 1
            case "maxpool2d":
                plan.append(("maxpool", [i], i)); i += 1
            case "flatten":
                plan.append(("flatten", [i], i)); i += 1
            case "dropout":
                i += 1
            default:
                throw refuse("has no int8 kernel (int8 quantization covers conv2d, linear, relu after them, maxpool2d, flatten and dropout)")
            }
        }
        guard let last = plan.last, ["conv", "linear"].contains(last.0), last.2 == graph.output - 1 else {
            throw TensorError("quantize: the model must end with its output layer, a linear or conv2d node")
        }
        return plan
    }

    /// Calibrates `model` on `calibration` ([count] + input shape, raw inputs as the model takes them)
    /// and quantizes it.
    /// - Throws: `TensorError` naming a node the integer kernels do not cover, or a range that does not quantize.
    public init(_ model: Model, calibration: [Float], count: Int, observer: QuantizationObserver = .minMax, batch: Int = 256) throws {
        let plan = try Self.plan(model)
        guard count > 0, calibration.count == count * model.spec.inputShape.reduce(1, *) else {
            throw TensorError("quantize: \(calibration.count) calibration values for \(count) examples of shape \(model.spec.inputShape)")
        }
        let engine = model.engine
        let d = model.spec.inputShape.reduce(1, *)
        let captured = Set(plan.filter { ["conv", "linear"].contains($0.kind) }.map { model.activationName($0.output) })
        var observed: [String: [Float]] = [:], inputs: [Float] = []
        for start in stride(from: 0, to: count, by: batch) {
            let rows = min(batch, count - start)
            let x = try Tensor(Array(calibration[(start * d)..<((start + rows) * d)]), shape: [rows] + model.spec.inputShape, engine: engine)
            try engine.noGrad {
                inputs += try model.normalizedInput(x).toArray()
                let (_, activations) = try model.forward(x, capture: captured)
                for (name, t) in activations { observed[name, default: []] += try t.toArray() }
            }
        }
        let (low, high) = try observer.range(inputs)
        input = try AffineQuantization(low: low, high: high)
        var steps: [Step] = []
        let parameters = Dictionary(uniqueKeysWithValues: try model.plainState().map { ($0.key, $0.value) })
        for entry in plan {
            let spec = model.graph.nodes[entry.nodes[0]].spec
            func weights() throws -> QuantizedWeights {
                guard let w = parameters[spec.name + ".weight"] else { throw TensorError("quantize: node '\(spec.name)' has no weight") }
                return try QuantizedWeights(weights: w.values, shape: w.shape, bias: parameters[spec.name + ".bias"]?.values)
            }
            func output() throws -> AffineQuantization {
                let (a, b) = try observer.range(observed[model.activationName(entry.output)] ?? [])
                return try AffineQuantization(low: a, high: b)
            }
            func pair(_ key: String, _ fallback: Int) -> (Int, Int) { Self.pair(spec, key, fallback) }
            switch entry.kind {
            case "conv":
                steps.append(.conv(name: spec.name, weights: try weights(), stride: pair("stride", 1), padding: pair("padding", 0),
                                   dilation: pair("dilation", 1), output: try output(), relu: entry.nodes.count == 2))
            case "linear":
                steps.append(.linear(name: spec.name, weights: try weights(), output: try output(), relu: entry.nodes.count == 2))
            case "maxpool":
                let k = pair("kernel_size", 1)
                let s = spec.attributes["stride"] == nil ? k : pair("stride", 1)
                guard k.0 == k.1, s.0 == s.1, pair("padding", 0) == (0, 0), pair("dilation", 1) == (1, 1),
                      spec.attributes["ceil_mode"] == nil || spec.attributes["ceil_mode"] == .bool(false) else {
                    throw TensorError("quantize: node '\(spec.name)' (maxpool2d): the int8 kernel takes square windows without padding, dilation or ceil mode")
                }
                steps.append(.maxPool(kernel: k.0, stride: s.0))
            default:
                steps.append(.flatten)
            }
        }
        self.original = model
        self.steps = steps
        var scale = input
        for (i, step) in steps.enumerated() {
            switch step {
            case let .conv(_, w, _, _, _, output, _), let .linear(_, w, output, _):
                device[i] = try DeviceQuantizedWeights(w, input: scale, output: output, engine: engine)
                scale = output
            default: break
            }
        }
    }

    /// An attribute that is one size or a pair (kernel_size, stride, padding, dilation).
    static func pair(_ spec: NodeSpec, _ key: String, _ fallback: Int) -> (Int, Int) {
        switch spec.attributes[key] {
        case let .int(v)?: return (v, v)
        case let .array(a)? where a.count == 2: if case let .int(h) = a[0], case let .int(w) = a[1] { return (h, w) }; return (fallback, fallback)
        default: return (fallback, fallback)
        }
    }

    /// The logits of raw inputs `x` ([batch] + input shape), computed in integers and dequantized at the end.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        var q = try original.normalizedInput(x).quantized(input)
        for (i, step) in steps.enumerated() {
            switch step {
            case let .conv(_, w, stride, padding, dilation, output, relu):
                q = try quantizedConv2D(q, w, device[i]!, stride: stride, padding: padding, dilation: dilation, output: output, relu: relu)
            case let .linear(_, w, output, relu):
                if q.shape.count != 2 { q = try QuantizedTensor(engine: engine, shape: [q.shape[0], q.count / q.shape[0]], storage: q.storage, quantization: q.quantization) }
                q = try quantizedLinear(q, w, device[i]!, output: output, relu: relu)
            case let .maxPool(kernel, stride):
                q = try quantizedMaxPool2D(q, kernel: kernel, stride: stride)
            case .flatten:
                q = try QuantizedTensor(engine: engine, shape: [q.shape[0], q.count / q.shape[0]], storage: q.storage, quantization: q.quantization)
            }
        }
        return try q.dequantized()
    }

    /// The float simulation of the integer model (what onnxruntime's QDQ form computes): the original
    /// graph with a `fake_quantize` node after the input and after every convolution and Linear layer
    /// (after its ReLU when fused), the weights replaced by their dequantized int8 values and the biases
    /// by their int32 values at scale s_x · s_w. Every explainer runs on it (fake quantization passes
    /// gradients straight through), and it computes the integer model's outputs within rounding.
    /// - Returns: the description and its tensors (the int8 weights as `QuantizedWeights`, by node).
    public func simulation() throws -> (spec: ModelSpec, tensors: [String: HostTensor], weights: [String: QuantizedWeights]) {
        var spec = original.spec
        var tensors = try original.plainState()
        var weights: [String: QuantizedWeights] = [:]
        var nodes: [NodeSpec] = []
        func fake(_ name: String, _ q: AffineQuantization) throws -> NodeSpec {
            NodeSpec(name: name, op: FakeQuantizeSchema.kind, attributes: ["scale": .double(Double(q.scale)), "zero_point": .int(Int(q.zeroPoint)),
                                                                   "quant_min": .int(0), "quant_max": .int(255)])
        }
        let names = Set(spec.nodes.map(\.name))
        func fresh(_ base: String) -> String {
            var name = base, k = 1
            while names.contains(name) || nodes.contains(where: { $0.name == name }) { k += 1; name = "\(base)_\(k)" }
            return name
        }
        nodes.append(try fake(fresh("input_quant"), input))
        // Steps by the node whose output they quantize.
        var outputs: [String: AffineQuantization] = [:]
        var inputScale = input
        for step in steps {
            switch step {
            case let .conv(name, w, _, _, _, output, _), let .linear(name, w, output, _):
                let (bias, _) = try w.requantization(input: inputScale, output: output)
                tensors[name + ".weight"] = HostTensor(shape: w.shape, values: w.dequantized)
                if tensors[name + ".bias"] != nil {
                    tensors[name + ".bias"] = HostTensor(shape: [w.scales.count], values: w.scales.indices.map { Float(Double(bias[$0]) * Double(inputScale.scale) * Double(w.scales[$0])) })
                }
                weights[name] = w
                outputs[name] = output
                inputScale = output
            default: break
            }
        }
        // Chains only (see plan): every node reads the one before, so inserted nodes keep the chain.
        var previous = nodes[0].name
        for (i, node) in original.spec.nodes.enumerated() {
            var copy = node
            copy.inputs = [previous]
            nodes.append(copy)
            previous = copy.name
            let quantizedHere: AffineQuantization? = {
                if let q = outputs[node.name], !(i + 1 < original.spec.nodes.count && original.spec.nodes[i + 1].op == "relu") { return q }
                if node.op == "relu", i > 0, let q = outputs[original.spec.nodes[i - 1].name] { return q }
                return nil
            }()
            if let q = quantizedHere {
                let f = try fake(fresh(node.name + "_quant"), q)
                var n = f
                n.inputs = [previous]
                nodes.append(n)
                previous = n.name
            }
        }
        spec.nodes = nodes
        spec.output = previous
        return (spec, tensors, weights)
    }
}

extension QuantizedModel {
    /// Accuracy and mean cross-entropy of the integer model's logits on `data`.
    public func evaluate(on data: LabeledData, batchSize: Int = 256) throws -> EvaluationResult {
        try Prism.evaluate([original], on: data, batchSize: batchSize) { _, x in try self(x) }
    }

    /// The output layer's quantization: one step of the integer model's logits.
    public var outputQuantization: AffineQuantization {
        for step in steps.reversed() {
            if case let .conv(_, _, _, _, _, q, _) = step { return q }
            if case let .linear(_, _, q, _) = step { return q }
        }
        return input
    }
}

/// A model quantized dynamically (PyTorch's `quantize_dynamic`): int8 weights per output channel,
/// each convolution's and Linear layer's input quantized to uint8 over its own range at run time,
/// the products summed in int32 and dequantized to float (`dynamicQuantized`); pooling and the rest in
/// float. No calibration. Covers the chains `QuantizedModel` covers.
public final class DynamicQuantizedModel {
    public let original: Model
    /// The int8 weights by node name.
    public let weights: [String: QuantizedWeights]
    let plan: [(kind: String, nodes: [Int], output: Int)]
    private let device: [String: DeviceInt8Weights]

    /// - Throws: `TensorError` naming a node the integer kernels do not cover.
    public init(_ model: Model) throws {
        plan = try QuantizedModel.plan(model)
        let state = try model.plainState()
        var weights: [String: QuantizedWeights] = [:], device: [String: DeviceInt8Weights] = [:]
        for entry in plan where ["conv", "linear"].contains(entry.kind) {
            let name = model.graph.nodes[entry.nodes[0]].spec.name
            guard let w = state[name + ".weight"] else { throw TensorError("quantize: node '\(name)' has no weight") }
            let q = try QuantizedWeights(weights: w.values, shape: w.shape, bias: state[name + ".bias"]?.values)
            weights[name] = q
            device[name] = try DeviceInt8Weights(q, engine: model.engine)
        }
        (original, self.weights, self.device) = (model, weights, device)
    }

    /// The logits of raw inputs `x`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = try original.normalizedInput(x)
        for entry in plan {
            let spec = original.graph.nodes[entry.nodes[0]].spec
            let relu = entry.nodes.count == 2
            switch entry.kind {
            case "conv":
                h = try dynamicQuantized(h, weights[spec.name]!, device[spec.name]!,
                                         convolution: (QuantizedModel.pair(spec, "stride", 1), QuantizedModel.pair(spec, "padding", 0), QuantizedModel.pair(spec, "dilation", 1)),
                                         relu: relu)
            case "linear":
                if h.rank != 2 { h = try h.reshaped([h.shape[0], h.count / h.shape[0]]) }
                h = try dynamicQuantized(h, weights[spec.name]!, device[spec.name]!, convolution: nil, relu: relu)
            case "maxpool":
                let k = QuantizedModel.pair(spec, "kernel_size", 1)
                h = try maxPool2d(h, kernel: k, stride: spec.attributes["stride"] == nil ? k : QuantizedModel.pair(spec, "stride", 1))
            default:
                h = try h.reshaped([h.shape[0], h.count / h.shape[0]])
            }
        }
        return h
    }

    /// Accuracy and mean cross-entropy on `data`.
    public func evaluate(on data: LabeledData, batchSize: Int = 256) throws -> EvaluationResult {
        try Prism.evaluate([original], on: data, batchSize: batchSize) { _, x in try self(x) }
    }

    /// The original graph with the weights replaced by their dequantized int8 values (what explanations
    /// run on; the run-time quantization of the activations depends on the batch and is not in it).
    public func simulation() throws -> [String: HostTensor] {
        var tensors = try original.plainState()
        for (name, w) in weights { tensors[name + ".weight"] = HostTensor(shape: w.shape, values: w.dequantized) }
        return tensors
    }
}
