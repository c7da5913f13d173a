import PrismFormats
import PrismGraph

// QuantizeLinear and DequantizeLinear as onnxruntime's quantization tools (QDQ format) and
// PyTorch's quantized exports write them: quantized weights (int8/uint8 initializers) are
// dequantized at import; a QuantizeLinear of a graph value followed by its DequantizeLinear becomes
// one `fake_quantize` node, the float simulation onnxruntime runs without its integer kernels.

extension ONNXImporter {
    /// A QuantizeLinear or DequantizeLinear node (see above).
    /// - Throws: `DataError` naming the node for per-axis activations, block quantization, a type
    ///   other than int8/uint8, or a DequantizeLinear of a value quantized with another scale.
    mutating func quantization(_ node: Onnx_NodeProto, _ inputs: [ONNXValue?], site: Site) throws -> ONNXValue {
        let a = try Attributes(node, site: site, known: ["axis", "saturate", "block_size", "output_dtype"])
        guard try a.int("block_size", 0) == 0, try a.int("output_dtype", 0) == 0 else { throw site.fail("block quantization and output_dtype are not supported") }
        guard inputs.count >= 2, case let .float(scale)? = inputs[1] else { throw site.fail("needs a float32 constant scale (input 1)") }
        let zero: IntConstant?
        switch inputs.count > 2 ? inputs[2] : nil {
        case nil: zero = nil
        case let .int(c)?: zero = c
        default: throw site.fail("its zero point (input 2) must be an integer constant")
        }
        let zeros = try (zero?.values ?? [.fixed(0)]).map { d -> Int in
            guard let v = d.value else { throw site.fail("its zero point depends on the batch size") }
            return v
        }
        guard scale.values.allSatisfy({ $0.isFinite && $0 > 0 }) else { throw site.fail("its scale must be positive and finite") }
        if node.opType == "DequantizeLinear" {
            switch inputs[0] {
            case let .int(q)?:
                // Quantized weights: (q − zero point) · scale, per tensor or per slice along `axis`.
                let values = try q.values.map { d -> Int in
                    guard let v = d.value else { throw site.fail("dequantizes a shape") }
                    return v
                }
                guard scale.values.count == 1 || q.shape.count > 0 else { throw site.fail("a per-axis scale needs a tensor") }
                let axis = try a.int("axis", 1), rank = q.shape.count
                let k = axis < 0 ? axis + rank : axis
                if scale.values.count > 1 {
                    guard (0..<rank).contains(k), q.shape[k] == scale.values.count, zeros.count == 1 || zeros.count == scale.values.count else {
                        throw site.fail("scale of \\(scale.values.count) entries along axis \\(axis) of \\(q.shape)")
                    }
                }
                let inner = scale.values.count > 1 ? q.shape[(k + 1)...].reduce(1, *) : 1
                let out = values.indices.map { i -> Float in
                    let c = scale.values.count > 1 ? (i / inner) % scale.values.count : 0
                    return Float(values[i] - zeros[zeros.count == 1 ? 0 : c]) * scale.values[c]
                }
                return .float(HostTensor(shape: q.shape, values: out))
            case let .node(name)?:
                guard let source = node.input.first, let q = quantized[source], q.node == name else {
                    throw site.fail("dequantizes a float value; Prism imports DequantizeLinear of integer constants or of a QuantizeLinear's output")
                }
                guard scale.values.count == 1, zeros.count == 1, scale.values[0] == q.scale, zeros[0] == q.zeroPoint else {
                    throw site.fail("uses another scale or zero point than the QuantizeLinear of '\\(source)'; Prism imports matching pairs")
                }
                return .node(name)
            default:
                throw site.fail("dequantizes an input Prism does not read as integers")
            }
        }
        // QuantizeLinear of a graph value: the range from the zero point's type (uint8 without one).
        guard scale.values.count == 1, zeros.count == 1 else { throw site.fail("per-axis quantization of values is not supported; Prism imports one scale and zero point per tensor") }
        let zeroName = node.input.count > 2 ? node.input[2] : ""
        let type = zeroName.isEmpty ? Int32(Onnx_TensorProto.DataType.uint8.rawValue)
            : graph.initializer.first(where: { $0.name == zeroName })?.dataType ?? 0
        let range: ClosedRange<Int>
        switch Onnx_TensorProto.DataType(rawValue: Int(type)) {
        case .uint8?: range = 0...255
        case .int8?: range = -128...127
        default: throw site.fail("quantizes to \\(dataTypeName(type)); Prism imports int8 and uint8 quantization")
        }
        guard try a.int("saturate", 1) == 1 else { throw site.fail("saturate 0 is not supported") }
        let config: [String: JSONValue] = ["scale": .double(Double(scale.values[0])), "zero_point": .int(zeros[0]),
                                           "quant_min": .int(range.lowerBound), "quant_max": .int(range.upperBound)]
        let x: String
        switch inputs[0] {
        case let .node(name)?: x = name
        case let .view(v)?: x = try materialize(v, site: site, for: node)
        default: throw site.fail("quantizes a constant; Prism imports QuantizeLinear of values computed from the input")
        }
        let value = try emit(FakeQuantizeSchema.kind, config, inputs: [x], name: name(for: node), site: site)
        if case let .node(made) = value, let output = node.output.first { quantized[output] = (made, scale.values[0], zeros[0]) }
        return value
    }
}
