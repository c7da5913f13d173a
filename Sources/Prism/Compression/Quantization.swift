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
/// each convolution's BatchNorm folded into its weights and the ReLU after it fused, evaluated with
/// the integer kernels of `quantized.cl` — convolutions (groups 1), Linear layers, residual Adds,
/// max pooling, ReLU and reshapes in integers; every other node (grouped convolutions, other
/// activations, average pooling, concatenation, …) in float between a dequantization and a
/// quantization, as onnxruntime runs a QDQ graph's nodes that have no integer kernel.
///
/// Values are numbered as `GraphAnalysis` numbers them (0 the normalized input, i + 1 node i's
/// output). A value read by an integer node is held in uint8 and every reader sees it so; its range
/// comes from calibration, or, after a node that keeps values on the grid (max pooling, ReLU,
/// reshapes, permutations, slices), from the node's input.
public final class QuantizedModel {
    /// How a step runs.
    public enum Kind: String, Sendable {
        /// A convolution of one group, the BatchNorm after it folded in and the ReLU after that fused.
        case conv
        /// A Linear layer and the ReLU after it.
        case linear
        /// The sum of two values of one shape (TensorFlow Lite's Add) and the ReLU after it.
        case add
        /// Max pooling of bytes (square windows, no padding, dilation or ceil mode).
        case maxPool
        /// ReLU of bytes.
        case relu
        /// Flatten, reshape or inference dropout: the same bytes.
        case reshape
        /// A node without an integer kernel, in float: its inputs dequantized, its output quantized
        /// when the value is held in uint8.
        case float
    }

    /// One step of the integer model.
    public struct Step {
        public var kind: Kind
        /// The graph nodes it runs (a convolution, its BatchNorm, its ReLU).
        public var nodes: [Int]
        /// The values read and the value written.
        public var inputs: [Int]
        public var output: Int
        /// conv and linear: the int8 weights, the BatchNorm folded in.
        public var weights: QuantizedWeights?
        public var relu: Bool
    }

    public let original: Model
    public let steps: [Step]
    /// The quantization of every value held in uint8, by value.
    public let quantizations: [Int: AffineQuantization]
    /// The values whose quantization comes from calibration (the rest take their input's).
    public let calibrated: [Int]
    /// BatchNorm nodes folded into the convolution before them: BatchNorm node → convolution node.
    public let folded: [Int: Int]
    var engine: Engine { original.engine }
    /// Each conv/linear step's weights on the device, by step index, made once.
    private var device: [Int: DeviceQuantizedWeights] = [:]

    /// The quantization of the first layer's input (after the input normalization), when it is held in uint8.
    public var input: AffineQuantization? { quantizations[0] }

    /// Nodes that keep quantized values on the quantization grid (so their output takes their input's quantization).
    static let gridPreserving: Set<String> = ["maxpool2d", "relu", "flatten", "reshape", "dropout", "permute", "narrow"]

    /// Checks, before any calibration, that the model can be quantized: one float input, float values, and a
    /// convolution, Linear layer or Add to run in integers.
    /// - Throws: `TensorError` saying what is missing.
    public static func requireCovered(_ model: Model) throws {
        let (steps, _, _) = try plan(model)
        guard steps.contains(where: { [.conv, .linear, .add].contains($0.kind) }) else {
            throw TensorError("quantize: the model has no conv2d of one group, linear or add node to run in integers")
        }
    }

    /// The graph as steps (without weights), the values whose range calibration must give (in order),
    /// and the BatchNorm nodes folded into convolutions. With `dynamic`, BatchNorm is not folded and
    /// only convolutions and Linear layers run in integers.
    static func plan(_ model: Model, dynamic: Bool = false) throws -> (steps: [Step], calibrated: [Int], folded: [Int: Int]) {
        let graph = model.graph
        guard graph.isFloat, model.extraInputs.isEmpty else {
            throw TensorError("quantize: int8 quantization takes models of one float input whose values are all float32")
        }
        var readers = [[Int]](repeating: [], count: graph.nodes.count + 1)
        for (i, node) in graph.nodes.enumerated() { for v in node.inputs { readers[v].append(i) } }
        /// The node that alone reads value `v`, when it is of `op` and reads nothing else.
        func soleReader(_ v: Int, op: String) -> Int? {
            guard v != graph.output, readers[v].count == 1 else { return nil }
            let r = readers[v][0]
            return graph.nodes[r].spec.op == op && graph.nodes[r].inputs == [v] ? r : nil
        }
        let shapes = (0...graph.nodes.count).map { graph.shape(ofValue: $0, input: model.spec.inputShape) }
        var steps: [Step] = [], folded: [Int: Int] = [:], fused = Set<Int>()
        for (i, node) in graph.nodes.enumerated() where !fused.contains(i) {
            let spec = node.spec
            var nodes = [i], output = i + 1, relu = false
            func fuseReLU() {
                guard let r = soleReader(output, op: "relu") else { return }
                nodes.append(r); fused.insert(r); output = r + 1; relu = true
            }
            var kind = Kind.float
            switch spec.op {
            case "conv2d" where (spec.attributes["groups"] ?? .int(1)) == .int(1):
                kind = .conv
                if !dynamic, let bn = soleReader(output, op: "batchnorm2d") { nodes.append(bn); fused.insert(bn); folded[bn] = i; output = bn + 1 }
                fuseReLU()
            case "linear":
                kind = .linear
                fuseReLU()
            case "add" where !dynamic && node.inputs.count == 2 && shapes[node.inputs[0]] == shapes[node.inputs[1]]:
                kind = .add
                fuseReLU()
            case "maxpool2d" where !dynamic:
                let k = pair(spec, "kernel_size", 1), s = spec.attributes["stride"] == nil ? k : pair(spec, "stride", 1)
                let fits = k.0 == k.1 && s.0 == s.1 && pair(spec, "padding", 0) == (0, 0) && (spec.attributes["ceil_mode"] ?? .bool(false)) == .bool(false)
                kind = fits ? .maxPool : .float
            case "relu" where !dynamic: kind = .relu
            case "flatten", "reshape", "dropout": kind = dynamic ? .float : .reshape
            default: kind = .float
            }
            steps.append(Step(kind: kind, nodes: nodes, inputs: node.inputs, output: output, weights: nil, relu: relu))
        }
        if dynamic { return (steps, [], folded) }
        // Which values are held in uint8: the integer nodes' inputs and outputs, and what grid-keeping
        // nodes make of them.
        let integerKinds: Set<Kind> = [.conv, .linear, .add]
        var readByInteger = Set<Int>()
        for step in steps where integerKinds.contains(step.kind) { readByInteger.formUnion(step.inputs) }
        var calibrated: [Int] = [], held = Set<Int>()
        if readByInteger.contains(0) { calibrated.append(0); held.insert(0) }
        for k in steps.indices {
            if integerKinds.contains(steps[k].kind) {
                calibrated.append(steps[k].output); held.insert(steps[k].output)
                continue
            }
            let op = graph.nodes[steps[k].nodes[0]].spec.op
            if Self.gridPreserving.contains(op), steps[k].inputs.count == 1, held.contains(steps[k].inputs[0]) {
                held.insert(steps[k].output)
            } else {
                steps[k].kind = .float
                if readByInteger.contains(steps[k].output) { calibrated.append(steps[k].output); held.insert(steps[k].output) }
            }
        }
        return (steps, calibrated, folded)
    }

    /// Calibrates `model` on `calibration` ([count] + input shape, raw inputs as the model takes them)
    /// and quantizes it.
    /// - Throws: `TensorError` when the model cannot be quantized (see `requireCovered`), or a range does not quantize.
    public init(_ model: Model, calibration: [Float], count: Int, observer: QuantizationObserver = .minMax, batch: Int = 256) throws {
        try Self.requireCovered(model)
        var (steps, calibrated, folded) = try Self.plan(model)
        guard count > 0, calibration.count == count * model.spec.inputShape.reduce(1, *) else {
            throw TensorError("quantize: \(calibration.count) calibration values for \(count) examples of shape \(model.spec.inputShape)")
        }
        let engine = model.engine
        let d = model.spec.inputShape.reduce(1, *)
        var ranges = [Int: RangeObservation](uniqueKeysWithValues: calibrated.map { ($0, RangeObservation(observer)) })
        let captured = Set(calibrated.filter { $0 > 0 }.map { model.activationName($0 - 1) })
        for start in stride(from: 0, to: count, by: batch) {
            let rows = min(batch, count - start)
            let x = try Tensor(Array(calibration[(start * d)..<((start + rows) * d)]), shape: [rows] + model.spec.inputShape, engine: engine)
            try engine.noGrad {
                if ranges[0] != nil { ranges[0]!.add(try model.normalizedInput(x).toArray()) }
                let (_, activations) = try model.forward(x, capture: captured)
                for v in calibrated where v > 0 { ranges[v]!.add(try activations[model.activationName(v - 1)]!.toArray()) }
            }
        }
        var quantizations: [Int: AffineQuantization] = [:]
        for v in calibrated {
            let (low, high) = try ranges[v]!.range()
            quantizations[v] = try AffineQuantization(low: low, high: high)
        }
        // Grid-keeping steps pass their input's quantization on.
        for step in steps where quantizations[step.output] == nil {
            if let q = step.inputs.first.flatMap({ quantizations[$0] }), Self.gridPreserving.contains(model.graph.nodes[step.nodes[0]].spec.op) {
                quantizations[step.output] = q
            }
        }
        let state = try model.plainState()
        for k in steps.indices where [.conv, .linear].contains(steps[k].kind) {
            steps[k].weights = try Self.weights(model, step: steps[k], state: state)
        }
        (original, self.steps, self.quantizations, self.calibrated, self.folded) = (model, steps, quantizations, calibrated, folded)
        for (k, step) in steps.enumerated() {
            guard let w = step.weights else { continue }
            device[k] = try DeviceQuantizedWeights(w, input: quantizations[step.inputs[0]]!, output: quantizations[step.output]!, engine: engine)
        }
    }

    /// A convolution's or Linear layer's int8 weights, with the BatchNorm of its step folded in:
    /// w ← w · γ / √(var + ε), b ← (b − mean) · γ / √(var + ε) + β, per output channel.
    static func weights(_ model: Model, step: Step, state: [String: HostTensor]) throws -> QuantizedWeights {
        let name = model.nodeName(step.nodes[0])
        guard let w = state[name + ".weight"] else { throw TensorError("quantize: node '\(name)' has no weight") }
        var values = w.values, bias = state[name + ".bias"]?.values
        if let bn = step.nodes.dropFirst().first(where: { model.graph.nodes[$0].spec.op == "batchnorm2d" }),
           let norm = model.ops[bn] as? BatchNormLayer {
            let engine = model.engine
            let (folded, shift) = try engine.noGrad {
                try norm.fold(weight: try Tensor(values, shape: w.shape, engine: engine),
                              bias: try bias.map { try Tensor($0, shape: [w.shape[0]], engine: engine) })
            }
            (values, bias) = (try folded.toArray(), try shift.toArray())
        }
        return try QuantizedWeights(weights: values, shape: w.shape, bias: bias)
    }

    /// An attribute that is one size or a pair (kernel_size, stride, padding, dilation).
    static func pair(_ spec: NodeSpec, _ key: String, _ fallback: Int) -> (Int, Int) {
        switch spec.attributes[key] {
        case let .int(v)?: return (v, v)
        case let .array(a)? where a.count == 2: if case let .int(h) = a[0], case let .int(w) = a[1] { return (h, w) }; return (fallback, fallback)
        default: return (fallback, fallback)
        }
    }

    /// The logits of raw inputs `x` ([batch] + input shape): integer steps on uint8 values, float
    /// steps on their dequantized inputs; the output dequantized at the end.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let graph = original.graph
        var bytes: [Int: QuantizedTensor] = [:], reals: [Int: Tensor] = [:]
        var pending = [Int](repeating: 0, count: graph.nodes.count + 1)
        for step in steps { for v in step.inputs { pending[v] += 1 } }
        pending[graph.output] += 1
        func store(_ v: Int, _ t: Tensor) throws {
            if let q = quantizations[v] { bytes[v] = try t.quantized(q) } else { reals[v] = t }
        }
        func real(_ v: Int) throws -> Tensor {
            if let t = reals[v] { return t }
            guard let q = bytes[v] else { throw TensorError("quantized model: value \(v) was not computed") }
            let t = try q.dequantized()
            reals[v] = t
            return t
        }
        func integer(_ v: Int) throws -> QuantizedTensor {
            guard let q = bytes[v] else { throw TensorError("quantized model: value \(v) is not held in uint8") }
            return q
        }
        try store(0, try original.normalizedInput(x))
        let batch = x.shape[0]
        for (k, step) in steps.enumerated() {
            let spec = graph.nodes[step.nodes[0]].spec
            let shape = [batch] + graph.shape(ofValue: step.output, input: original.spec.inputShape)
            switch step.kind {
            case .conv:
                bytes[step.output] = try quantizedConv2D(try integer(step.inputs[0]), step.weights!, device[k]!, stride: Self.pair(spec, "stride", 1),
                                                         padding: Self.pair(spec, "padding", 0), dilation: Self.pair(spec, "dilation", 1),
                                                         output: quantizations[step.output]!, relu: step.relu)
            case .linear:
                let q = try integer(step.inputs[0])
                let rows = try q.reshaped([q.count / step.weights!.shape[1], step.weights!.shape[1]])
                bytes[step.output] = try quantizedLinear(rows, step.weights!, device[k]!, output: quantizations[step.output]!, relu: step.relu).reshaped(shape)
            case .add:
                bytes[step.output] = try quantizedAdd(try integer(step.inputs[0]), try integer(step.inputs[1]), output: quantizations[step.output]!, relu: step.relu)
            case .maxPool:
                let k = Self.pair(spec, "kernel_size", 1)
                bytes[step.output] = try quantizedMaxPool2D(try integer(step.inputs[0]), kernel: k.0,
                                                            stride: spec.attributes["stride"] == nil ? k.0 : Self.pair(spec, "stride", 1).0)
            case .relu:
                bytes[step.output] = try quantizedReLU(try integer(step.inputs[0]))
            case .reshape:
                bytes[step.output] = try integer(step.inputs[0]).reshaped(shape)
            case .float:
                try store(step.output, try original.ops[step.nodes[0]].forward(try step.inputs.map(real), training: false))
            }
            for v in step.inputs {
                pending[v] -= 1
                if pending[v] == 0 { bytes[v] = nil; reals[v] = nil }
            }
        }
        return try real(graph.output)
    }

    /// The nodes that run in float (no integer kernel, or not reading uint8 values), as "'name' (op)".
    public var floatNodes: [String] {
        steps.filter { $0.kind == .float }.map { "\(original.graph.nodes[$0.nodes[0]].spec)" }
    }

    /// The float simulation of the integer model (what onnxruntime's QDQ form computes): the original
    /// graph with each folded BatchNorm removed (its convolution's weights hold it), a `fake_quantize`
    /// node after the input and after every value whose range calibration gave, the weights replaced
    /// by their dequantized int8 values and the biases by their int32 values at scale s_x · s_w. Every
    /// explainer runs on it (fake quantization passes gradients straight through), and it computes
    /// the integer model's outputs within rounding.
    /// - Returns: the description and its tensors (the int8 weights as `QuantizedWeights`, by node).
    public func simulation() throws -> (spec: ModelSpec, tensors: [String: HostTensor], weights: [String: QuantizedWeights]) {
        let graph = original.graph
        var spec = original.spec
        var tensors = try original.plainState()
        var weights: [String: QuantizedWeights] = [:]
        for step in steps {
            guard let w = step.weights else { continue }
            let name = original.nodeName(step.nodes[0])
            let (bias, _) = try w.requantization(input: quantizations[step.inputs[0]]!, output: quantizations[step.output]!)
            let inputScale = Double(quantizations[step.inputs[0]]!.scale)
            tensors[name + ".weight"] = HostTensor(shape: w.shape, values: w.dequantized)
            if w.bias != nil {
                tensors[name + ".bias"] = HostTensor(shape: [w.scales.count], values: w.scales.indices.map { Float(Double(bias[$0]) * inputScale * Double(w.scales[$0])) })
            }
            weights[name] = w
        }
        func valueName(_ v: Int) -> String { v == 0 ? GraphAnalysis.inputName : graph.nodes[v - 1].spec.name }
        var used = Set(spec.nodes.map(\.name) + [GraphAnalysis.inputName])
        var alias: [String: String] = [:]
        func resolved(_ name: String) -> String { alias[name] ?? name }
        var nodes: [NodeSpec] = []
        func addFake(_ v: Int, reading: String) {
            let q = quantizations[v]!
            var name = valueName(v) + "_quant", k = 1
            while used.contains(name) { k += 1; name = "\(valueName(v))_quant_\(k)" }
            used.insert(name)
            nodes.append(NodeSpec(name: name, op: FakeQuantizeSchema.kind, inputs: [reading],
                                  attributes: ["scale": .double(Double(q.scale)), "zero_point": .int(Int(q.zeroPoint)), "quant_min": .int(0), "quant_max": .int(255)]))
            alias[valueName(v)] = name
        }
        let fakes = Set(calibrated)
        if fakes.contains(0) { addFake(0, reading: GraphAnalysis.inputName) }
        for (i, node) in graph.nodes.enumerated() {
            if let conv = folded[i] {
                // The BatchNorm is in the convolution's weights: its readers read the convolution.
                alias[node.spec.name] = resolved(graph.nodes[conv].spec.name)
                for (name, _) in original.ops[i].parameters + original.ops[i].buffers { tensors[node.spec.name + "." + name] = nil }
                if fakes.contains(i + 1) { addFake(i + 1, reading: alias[node.spec.name]!) }
                continue
            }
            var copy = node.spec
            copy.inputs = node.inputs.map { resolved(valueName($0)) }
            if weights[copy.name]?.bias != nil { copy.attributes["bias"] = .bool(true) }
            nodes.append(copy)
            if fakes.contains(i + 1) { addFake(i + 1, reading: copy.name) }
        }
        spec.nodes = nodes
        spec.output = resolved(valueName(graph.output))
        return (spec, tensors, weights)
    }
}

/// The range calibration gives a value: running bounds (min-max) or every value seen (percentile).
struct RangeObservation {
    let observer: QuantizationObserver
    var low = Float.infinity, high = -Float.infinity
    var values: [Float] = []

    init(_ observer: QuantizationObserver) { self.observer = observer }

    mutating func add(_ batch: [Float]) {
        if case .minMax = observer {
            for v in batch { low = min(low, v); high = max(high, v) }
        } else {
            values += batch
        }
    }

    func range() throws -> (Float, Float) {
        if case .minMax = observer {
            guard low <= high else { throw TensorError("calibration: no values observed") }
            return (low, high)
        }
        return try observer.range(values)
    }
}

extension QuantizedModel {
    /// Accuracy and mean cross-entropy of the integer model's logits on `data`.
    public func evaluate(on data: LabeledData, batchSize: Int = 256) throws -> EvaluationResult {
        try Prism.evaluate([original], on: data, batchSize: batchSize) { _, x in try self(x) }
    }

    /// The output's quantization (one step of the integer model's logits), when the output is held in uint8.
    public var outputQuantization: AffineQuantization? { quantizations[original.graph.output] }
}

/// A model quantized dynamically (PyTorch's `quantize_dynamic`): int8 weights per output channel,
/// each convolution's (groups 1) and Linear layer's input quantized to uint8 over its own range at
/// run time, the products summed in int32 and dequantized to float (`dynamicQuantized`), a ReLU after
/// them fused; every other node in float. No calibration.
public final class DynamicQuantizedModel {
    public let original: Model
    /// The int8 weights by node name.
    public let weights: [String: QuantizedWeights]
    let steps: [QuantizedModel.Step]
    private let device: [String: DeviceInt8Weights]

    /// - Throws: `TensorError` when the model has integer values or several inputs, or no convolution or Linear layer.
    public init(_ model: Model) throws {
        steps = try QuantizedModel.plan(model, dynamic: true).steps
        guard steps.contains(where: { [.conv, .linear].contains($0.kind) }) else {
            throw TensorError("quantize: the model has no conv2d of one group or linear node to quantize")
        }
        let state = try model.plainState()
        var weights: [String: QuantizedWeights] = [:], device: [String: DeviceInt8Weights] = [:]
        for step in steps where [.conv, .linear].contains(step.kind) {
            let name = model.nodeName(step.nodes[0])
            let q = try QuantizedModel.weights(model, step: step, state: state)
            weights[name] = q
            device[name] = try DeviceInt8Weights(q, engine: model.engine)
        }
        (original, self.weights, self.device) = (model, weights, device)
    }

    /// The logits of raw inputs `x`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let graph = original.graph
        var values = [Tensor?](repeating: nil, count: graph.nodes.count + 1)
        var pending = [Int](repeating: 0, count: graph.nodes.count + 1)
        for step in steps { for v in step.inputs { pending[v] += 1 } }
        pending[graph.output] += 1
        values[0] = try original.normalizedInput(x)
        for step in steps {
            let spec = graph.nodes[step.nodes[0]].spec
            let inputs = try step.inputs.map { v -> Tensor in
                guard let t = values[v] else { throw TensorError("quantized model: value \(v) was not computed") }
                return t
            }
            switch step.kind {
            case .conv:
                values[step.output] = try dynamicQuantized(inputs[0], weights[spec.name]!, device[spec.name]!,
                                                           convolution: (QuantizedModel.pair(spec, "stride", 1), QuantizedModel.pair(spec, "padding", 0),
                                                                         QuantizedModel.pair(spec, "dilation", 1)),
                                                           relu: step.relu)
            case .linear:
                let h = inputs[0], k = weights[spec.name]!.shape[1]
                let y = try dynamicQuantized(try h.reshaped([h.count / k, k]), weights[spec.name]!, device[spec.name]!, convolution: nil, relu: step.relu)
                values[step.output] = try y.reshaped(Array(h.shape.dropLast()) + [weights[spec.name]!.shape[0]])
            default:
                values[step.output] = try original.ops[step.nodes[0]].forward(inputs, training: false)
            }
            for v in step.inputs {
                pending[v] -= 1
                if pending[v] == 0 { values[v] = nil }
            }
        }
        guard let output = values[graph.output] else { throw TensorError("quantized model: the output was not computed") }
        return output
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
