import Foundation
import PrismFiles
import PrismFormats
import PrismGraph
import SwiftProtobuf

/// Prism models written as ONNX files (opset 17, IR version 8) that onnxruntime runs with the
/// outputs Prism's `predict` reports: one input named `input` of shape [batch, …] (the batch
/// symbolic, named `batch`), one output named `logits` of shape [batch, outputs].
///
/// The input normalization of the description (and a tabular model's feature standardization, when
/// given) are `Sub` and `Div` nodes in front, so the file takes what Prism's commands take (pixels
/// in [0, 1], raw feature values). Parameters keep their PyTorch names (`conv1.weight`). Each Prism
/// op kind maps onto ONNX ops (see `ONNXExport.supportedKinds`); any other node is refused in one
/// line naming the node and its op.
public enum ONNXExport {
    /// The opset of the default domain the files import.
    public static let opset = 17
    /// The IR version the files declare.
    public static let irVersion = 8
    /// The names of the graph's input and output and of the symbolic batch axis.
    public static let inputName = "input", outputName = "logits", batchName = "batch"

    /// The Prism op kinds that export, for messages.
    public static let supportedKinds = [
        "linear", "conv2d", "maxpool2d", "avgpool2d", "adaptiveavgpool2d (windows of one size)", "batchnorm1d", "batchnorm2d", "relu",
        "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid", "hardtanh", "prelu", "gelu", "leakyrelu", "elu", "flatten", "softmax", "dropout",
        "add", "sub", "mul", "div", "pow", "neg", "sqrt", "exp", "log", "erf", "reciprocal", "cat", "layernorm",
        "embedding", "eq", "lt", "gt", "where", "cast", "patch_embed", "block", "cls_token", "conv_transpose2d", "upsample", "pad", "input", "broadcast_to", "index_select (constant positions)", "expand", "log_softmax", "reshape", "permute",
        "narrow", "matmul", "mean", "sum", "amax", "fake_quantize (QuantizeLinear + DequantizeLinear)",
    ]

    /// The ONNX ModelProto of a model, serialized.
    /// - Parameters:
    ///   - spec: the model description.
    ///   - tensors: its parameters and buffers under their names (`<node>.<parameter>`).
    ///   - standardization: a tabular model's per-feature standardization, applied before the input
    ///     normalization ((x − mean) / std), as Prism's commands apply it to raw feature values.
    ///   - source: names the model in errors.
    /// - Throws: `DataError` of one line naming `source`: a description that does not check, a node
    ///   whose op (or configuration) has no ONNX form, a missing parameter or one of another shape.
    ///   - int8Weights: weights stored as int8 with per-output-channel scales (an int8-quantized model),
    ///     by tensor name: exported as int8 initializers read through DequantizeLinear (QDQ form).
    public static func serialized(spec: ModelSpec, tensors: [String: HostTensor], standardization: ModelSpec.InputNormalization? = nil,
                                  int8Weights: [String: Int8Weight] = [:], source: String) throws -> [UInt8] {
        var exporter = try ONNXExporter(spec: spec, tensors: tensors, source: source)
        exporter.int8Weights = int8Weights
        let model = try exporter.model(standardization: standardization)
        do {
            return try model.serializedBytes()
        } catch {
            throw DataError("\(source): the ONNX model does not serialize (\(error))")
        }
    }

    /// Writes a model as an ONNX file, atomically (a temporary file renamed over `path`).
    /// - Throws: `DataError` as `serialized` does; `FileError` when `path` cannot be written.
    public static func write(spec: ModelSpec, tensors: [String: HostTensor], standardization: ModelSpec.InputNormalization? = nil,
                             source: String, to path: String) throws {
        let file = try OutputFile(path: path)
        let bytes = try serialized(spec: spec, tensors: tensors, standardization: standardization, source: source)
        try file.write(bytes)
    }
}

extension ONNXExport {
    /// An int8 weight: values symmetric per output channel (the first axis), real = scale[c] · q.
    public struct Int8Weight: Sendable {
        public var shape: [Int]
        public var values: [Int8]
        public var scales: [Float]
        public init(shape: [Int], values: [Int8], scales: [Float]) { (self.shape, self.values, self.scales) = (shape, values, scales) }
    }
}

/// Builds the ModelProto of one Prism model, node by node.
struct ONNXExporter {
    let spec: ModelSpec
    let tensors: [String: HostTensor]
    var int8Weights: [String: ONNXExport.Int8Weight] = [:]
    let source: String
    let analysis: GraphAnalysis
    var graph = Onnx_GraphProto()
    /// Names taken by values and initializers.
    var taken: Set<String> = [ONNXExport.inputName, ONNXExport.outputName]

    init(spec: ModelSpec, tensors: [String: HostTensor], source: String) throws {
        do {
            analysis = try spec.validate()
        } catch let error as TensorError {
            throw DataError("\(source): \(error.message)")
        }
        (self.spec, self.tensors, self.source) = (spec, tensors, source)
    }

    /// The whole model.
    mutating func model(standardization: ModelSpec.InputNormalization?) throws -> Onnx_ModelProto {
        graph.name = spec.architecture
        let inputType = spec.inputType ?? .float32
        graph.input = [valueInfo(ONNXExport.inputName, type: inputType, shape: spec.inputShape)]
        var x = ONNXExport.inputName
        let channelShape = spec.inputShape.isEmpty ? [] : [spec.inputShape[0]] + [Int](repeating: 1, count: spec.inputShape.count - 1)
        for (label, affine) in [("standardization", standardization), ("normalization", spec.inputNormalization)] {
            guard let affine else { continue }
            guard inputType == .float32 else { throw DataError("\(source): input \(label) applies to float32 inputs, not \(inputType.rawValue)") }
            do { try affine.validate(inputShape: spec.inputShape) } catch let error as TensorError {
                throw DataError("\(source): input \(label): \(error.message)")
            }
            let mean = initializer("input_\(label).mean", HostTensor(shape: channelShape, values: affine.mean))
            let std = initializer("input_\(label).std", HostTensor(shape: channelShape, values: affine.std))
            let centered = node("Sub", [x, mean], name: "input_\(label).sub")
            x = node("Div", [centered, std], name: "input_\(label).div")
        }
        // Only the nodes the output depends on (a description may go on past its output node).
        var needed = Set([analysis.output])
        for (i, n) in analysis.nodes.enumerated().reversed() where needed.contains(i + 1) { needed.formUnion(n.inputs) }
        // Value v (0: the input, i + 1: node i's output) by its ONNX name.
        var values = [x]
        for (i, n) in analysis.nodes.enumerated() {
            guard needed.contains(i + 1) else {
                values.append("")
                continue
            }
            let isOutput = i + 1 == analysis.output
            let site = ExportSite(node: n.spec, source: source)
            if n.spec.op == InputSchema.kind {
                // One more graph input, under the node's name.
                guard !isOutput, !taken.contains(n.spec.name) else { throw site.fail("an input named '\(n.spec.name)' cannot be exported beside the others") }
                taken.insert(n.spec.name)
                graph.input.append(valueInfo(n.spec.name, type: n.info.type, shape: n.info.output))
                values.append(n.spec.name)
                continue
            }
            let inputs = n.inputs.map { values[$0] }
            let shapes = n.inputs.map { analysis.shape(ofValue: $0, input: spec.inputShape) }
            let target = isOutput ? ONNXExport.outputName : fresh(n.spec.name)
            var made = try emit(n, inputs: inputs, shapes: shapes, target: target, site: site)
            if isOutput, made != ONNXExport.outputName { made = node("Identity", [made], name: "output", output: ONNXExport.outputName) }
            values.append(made)
        }
        graph.output = [valueInfo(ONNXExport.outputName, type: .float32, shape: [spec.classCount])]
        var model = Onnx_ModelProto()
        model.irVersion = Int64(ONNXExport.irVersion)
        model.producerName = "prism"
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = Int64(ONNXExport.opset)
        model.opsetImport = [opset]
        model.graph = graph
        return model
    }

    // MARK: building blocks

    /// `base` made unique among the graph's names (`base_2`, `base_3`, …), and taken.
    mutating func fresh(_ base: String) -> String {
        var candidate = base.isEmpty ? "value" : base, n = 1
        while taken.contains(candidate) {
            n += 1
            candidate = "\(base)_\(n)"
        }
        taken.insert(candidate)
        return candidate
    }

    /// Adds a node; its output is `output` when given (already taken), else a fresh name after `name`.
    /// - Returns: the output's name.
    @discardableResult
    mutating func node(_ op: String, _ inputs: [String], name: String, output: String? = nil, _ attributes: [Onnx_AttributeProto] = []) -> String {
        let out = output ?? fresh(name)
        var n = Onnx_NodeProto()
        n.opType = op
        n.name = name
        n.input = inputs
        n.output = [out]
        n.attribute = attributes
        graph.node.append(n)
        return out
    }

    /// Adds a float32 initializer (raw little-endian data).
    /// - Returns: its name (`name`, made unique).
    mutating func initializer(_ name: String, _ tensor: HostTensor) -> String {
        let unique = fresh(name)
        var t = Onnx_TensorProto()
        t.name = unique
        t.dims = tensor.shape.map { Int64($0) }
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        var bytes = [UInt8]()
        bytes.reserveCapacity(4 * tensor.values.count)
        for v in tensor.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        t.rawData = Data(bytes)
        graph.initializer.append(t)
        return unique
    }

    /// Adds an 8-bit integer initializer (int8 or uint8, raw data).
    mutating func bytes(_ name: String, _ values: [Int], shape: [Int], signed: Bool) -> String {
        let unique = fresh(name)
        var t = Onnx_TensorProto()
        t.name = unique
        t.dims = shape.map { Int64($0) }
        t.dataType = Int32((signed ? Onnx_TensorProto.DataType.int8 : Onnx_TensorProto.DataType.uint8).rawValue)
        t.rawData = Data(values.map { UInt8(truncatingIfNeeded: $0) })
        graph.initializer.append(t)
        return unique
    }

    /// A weight as an input of its node: a float initializer, or for an int8 weight (`int8Weights`) its
    /// int8 initializer through DequantizeLinear per output channel (axis 0, zero points 0).
    mutating func weight(_ n: GraphAnalysis.Node, site: ExportSite) throws -> String {
        let key = "\(n.spec.name).weight"
        guard let q = int8Weights[key] else { return initializer(key, try parameter(n, "weight", site: site)) }
        if let shape = n.info.parameters.first(where: { $0.name == "weight" })?.shape, shape != q.shape {
            throw site.fail("its int8 weight '\(key)' has shape \(q.shape), the node expects \(shape)")
        }
        guard let channels = q.shape.first, q.scales.count == channels, q.values.count == q.shape.reduce(1, *) else {
            throw site.fail("its int8 weight '\(key)' has \(q.scales.count) scales for shape \(q.shape)")
        }
        let values = bytes("\(key)_quantized", q.values.map(Int.init), shape: q.shape, signed: true)
        let scale = initializer("\(key)_scale", HostTensor(shape: [channels], values: q.scales))
        let zero = bytes("\(key)_zero_point", [Int](repeating: 0, count: channels), shape: [channels], signed: true)
        return node("DequantizeLinear", [values, scale, zero], name: "\(key).dequantize", [Attribute.int("axis", 0)])
    }

    /// Adds a 1-D int64 initializer (shapes, indices).
    mutating func ints(_ name: String, _ values: [Int], shape: [Int]? = nil) -> String {
        let unique = fresh(name)
        var t = Onnx_TensorProto()
        t.name = unique
        t.dims = (shape ?? [values.count]).map { Int64($0) }
        t.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        t.int64Data = values.map { Int64($0) }
        graph.initializer.append(t)
        return unique
    }

    /// A scalar float32 constant.
    mutating func scalar(_ name: String, _ value: Float) -> String { initializer(name, HostTensor(shape: [], values: [value])) }

    /// The input or output description: element type and [batch] + `shape`.
    func valueInfo(_ name: String, type: ElementType, shape: [Int]) -> Onnx_ValueInfoProto {
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = dataType(type)
        var dims = Onnx_TensorShapeProto()
        var batch = Onnx_TensorShapeProto.Dimension()
        batch.dimParam = ONNXExport.batchName
        dims.dim = [batch] + shape.map { n in
            var d = Onnx_TensorShapeProto.Dimension()
            d.dimValue = Int64(n)
            return d
        }
        tensor.shape = dims
        var type = Onnx_TypeProto()
        type.tensorType = tensor
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.type = type
        return info
    }

    /// A parameter of node `n`, checked against the shape its schema gives.
    func parameter(_ n: GraphAnalysis.Node, _ name: String, site: ExportSite) throws -> HostTensor {
        let key = "\(n.spec.name).\(name)"
        guard let tensor = tensors[key] else { throw site.fail("its parameter '\(key)' is missing") }
        if let shape = n.info.parameters.first(where: { $0.name == name })?.shape, shape != tensor.shape {
            throw site.fail("its parameter '\(key)' has shape \(tensor.shape), the node expects \(shape)")
        }
        guard tensor.values.count == HostMemory.product(tensor.shape) else {
            throw site.fail("its parameter '\(key)' holds \(tensor.values.count) values for shape \(tensor.shape)")
        }
        return tensor
    }
}

/// The ONNX element type code of a Prism element type.
func dataType(_ type: ElementType) -> Int32 {
    let code: Onnx_TensorProto.DataType
    switch type {
    case .float32: code = .float
    case .int64: code = .int64
    case .int32: code = .int32
    case .int8: code = .int8
    case .bool: code = .bool
    }
    return Int32(code.rawValue)
}

/// An attribute of an ONNX node.
enum Attribute {
    static func int(_ name: String, _ value: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = Int64(value)
        return a
    }

    static func ints(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = values.map { Int64($0) }
        return a
    }

    static func string(_ name: String, _ value: String) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .string
        a.s = Data(value.utf8)
        return a
    }

    static func float(_ name: String, _ value: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .float
        a.f = value
        return a
    }
}

/// Where an export refusal happened: one Prism node.
struct ExportSite {
    let node: NodeSpec
    let source: String

    func fail(_ what: String) -> DataError { DataError("\(source): node '\(node.name)' (\(node.op)): \(what)") }
}
