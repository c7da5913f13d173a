import Foundation
import PrismFormats
import PrismGraph

extension ONNXExporter {
    /// Writes the ONNX nodes of one Prism node.
    /// - Parameters:
    ///   - inputs: the ONNX names of the values it reads; `shapes` their per-example shapes.
    ///   - target: the name its value must take (taken already): the last node written outputs it.
    /// - Returns: the name of its value (`target`, or an input for a node that is the identity).
    /// - Throws: `DataError` naming the node and its op when it has no ONNX form.
    mutating func emit(_ n: GraphAnalysis.Node, inputs: [String], shapes: [[Int]], target: String, site: ExportSite) throws -> String {
        let name = n.spec.name, x = inputs.first ?? ""
        func config<T: Decodable>(_ type: T.Type) throws -> T {
            do { return try JSONValue.decode(type, from: n.spec.attributes) } catch { throw site.fail("the attributes do not decode (\(error))") }
        }
        func last(_ op: String, _ inputs: [String], _ attributes: [Onnx_AttributeProto] = []) -> String {
            node(op, inputs, name: name, output: target, attributes)
        }
        switch n.spec.op {
        case LinearSchema.kind:
            let c = try config(LinearSchema.Config.self)
            let weight = try parameter(n, "weight", site: site)
            let bias = try (c.bias ?? true) ? parameter(n, "bias", site: site) : nil
            if shapes[0].count == 1 {
                let w = try self.weight(n, site: site)
                return last("Gemm", [x, w] + (bias.map { [initializer("\(name).bias", $0)] } ?? []), [Attribute.int("transB", 1)])
            }
            // Over more axes than the features: MatMul by the weight transposed, then the bias.
            return dense(x, weight: weight, bias: bias, name: name, output: target)
        case Conv2DSchema.kind:
            let c = try config(Conv2DSchema.Config.self)
            let stride = c.stride ?? SizePair(1), padding = c.padding ?? SizePair(0), dilation = c.dilation ?? SizePair(1)
            let w = try weight(n, site: site)
            let b = (c.bias ?? true) ? [initializer("\(name).bias", try parameter(n, "bias", site: site))] : []
            return last("Conv", [x, w] + b, [
                Attribute.ints("kernel_shape", [c.kernel_size.h, c.kernel_size.w]), Attribute.ints("strides", [stride.h, stride.w]),
                Attribute.ints("pads", [padding.h, padding.w, padding.h, padding.w]), Attribute.ints("dilations", [dilation.h, dilation.w]),
                Attribute.int("group", c.groups ?? 1),
            ])
        case FakeQuantizeSchema.kind:
            // QuantizeLinear then DequantizeLinear: the QDQ pair onnxruntime's static quantization writes.
            let c = try config(FakeQuantizeSchema.Config.self)
            let signed = c.quant_min == -128 && c.quant_max == 127
            guard signed || (c.quant_min == 0 && c.quant_max == 255) else {
                throw site.fail("quantization range \(c.quant_min)…\(c.quant_max) has no ONNX type (uint8 0…255 and int8 −128…127 do)")
            }
            let scale = scalar("\(name).scale", Float(c.scale))
            let zero = bytes("\(name).zero_point", [c.zero_point], shape: [], signed: signed)
            let q = node("QuantizeLinear", [x, scale, zero], name: "\(name).quantize")
            return last("DequantizeLinear", [q, scale, zero])
        case MaxPool2DSchema.kind, AvgPool2DSchema.kind:
            // ceil_mode as explicit end padding: ONNX's shape inference keeps a last window that starts
            // in the padding, which PyTorch (and onnxruntime's kernels) drop.
            let c = try config(Pool2DConfig.self)
            let (sh, sw) = c.strides, (ph, pw) = c.paddings, (kh, kw) = (c.kernel_size.h, c.kernel_size.w)
            let (oh, ow) = (n.info.output[1], n.info.output[2])
            let eh = max(ph, (oh - 1) * sh + kh - shapes[0][1] - ph), ew = max(pw, (ow - 1) * sw + kw - shapes[0][2] - pw)
            func attributes(pads: [Int], countPad: Bool?) -> [Onnx_AttributeProto] {
                [Attribute.ints("kernel_shape", [kh, kw]), Attribute.ints("strides", [sh, sw]), Attribute.ints("pads", pads)]
                    + (countPad.map { [Attribute.int("count_include_pad", $0 ? 1 : 0)] } ?? [])
            }
            if n.spec.op == MaxPool2DSchema.kind { return last("MaxPool", [x], attributes(pads: [ph, pw, eh, ew], countPad: nil)) }
            let countPad = c.count_include_pad ?? true
            guard countPad, eh != ph || ew != pw, ph > 0 || pw > 0 else {
                return last("AveragePool", [x], attributes(pads: [ph, pw, eh, ew], countPad: countPad && eh == ph && ew == pw))
            }
            // PyTorch divides by the window within the padded input, not the part past it: the padding as
            // zeros (Pad), then an average over the elements there, past-the-end padding excluded.
            let padded = node("Pad", [x, ints("\(name).pads", [0, 0, ph, pw, 0, 0, ph, pw])], name: "\(name).pad")
            return last("AveragePool", [padded], attributes(pads: [0, 0, eh - ph, ew - pw], countPad: false))
        case AdaptiveAvgPool2DSchema.kind:
            let c = try config(AdaptiveAvgPool2DSchema.Config.self)
            let (h, w) = (shapes[0][1], shapes[0][2])
            if c.output_size.h == 1, c.output_size.w == 1 { return last("GlobalAveragePool", [x]) }
            guard let rows = uniformWindows(h, c.output_size.h), let columns = uniformWindows(w, c.output_size.w) else {
                throw site.fail("output_size \(c.output_size) over a \(h)×\(w) input averages windows of different sizes, which ONNX's AveragePool cannot; ONNX has no adaptive pooling")
            }
            return last("AveragePool", [x], [
                Attribute.ints("kernel_shape", [rows.kernel, columns.kernel]), Attribute.ints("strides", [rows.stride, columns.stride]),
            ])
        case BatchNorm1DSchema.kind, BatchNorm2DSchema.kind:
            let c = try config(BatchNormConfig.self)
            let features = c.num_features
            let affine = c.affine ?? true
            let scale = try affine ? parameter(n, "weight", site: site) : HostTensor(shape: [features], values: .init(repeating: 1, count: features))
            let shift = try affine ? parameter(n, "bias", site: site) : HostTensor(shape: [features], values: .init(repeating: 0, count: features))
            let names = [initializer("\(name).weight", scale), initializer("\(name).bias", shift),
                         initializer("\(name).running_mean", try parameter(n, "running_mean", site: site)),
                         initializer("\(name).running_var", try parameter(n, "running_var", site: site))]
            return last("BatchNormalization", [x] + names, [Attribute.float("epsilon", Float(c.eps ?? 1e-5))])
        case ReLUSchema.kind: return last("Relu", [x])
        case SigmoidSchema.kind: return last("Sigmoid", [x])
        case TanhSchema.kind: return last("Tanh", [x])
        case HardswishSchema.kind: return last("HardSwish", [x])
        case LeakyReLUSchema.kind:
            return last("LeakyRelu", [x], [Attribute.float("alpha", Float(try config(LeakyReLUSchema.Config.self).negative_slope ?? 0.01))])
        case ELUSchema.kind:
            return last("Elu", [x], [Attribute.float("alpha", Float(try config(ELUSchema.Config.self).alpha ?? 1))])
        case SiLUSchema.kind:
            let s = node("Sigmoid", [x], name: "\(name).sigmoid")
            return last("Mul", [x, s])
        case GELUSchema.kind:
            if (try config(GELUSchema.Config.self).approximate ?? "none") == "tanh" {
                // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
                let square = node("Mul", [x, x], name: "\(name).square")
                let cube = node("Mul", [square, x], name: "\(name).cube")
                let scaled = node("Mul", [cube, scalar("\(name).coefficient", 0.044715)], name: "\(name).scaled_cube")
                let inner = node("Add", [x, scaled], name: "\(name).inner")
                let argument = node("Mul", [inner, scalar("\(name).sqrt_2_over_pi", Float((2 / Double.pi).squareRoot()))], name: "\(name).argument")
                let t = node("Tanh", [argument], name: "\(name).tanh")
                let one = node("Add", [t, scalar("\(name).one", 1)], name: "\(name).one_plus")
                let half = node("Mul", [x, scalar("\(name).half", 0.5)], name: "\(name).half_x")
                return last("Mul", [half, one])
            }
            return gelu(x, name: name, output: target)
        case FlattenSchema.kind:
            let c = try config(FlattenSchema.Config.self)
            let full = shapes[0].count + 1, start = c.start_dim ?? 1, end = c.end_dim ?? -1
            if (start < 0 ? start + full : start) == 1, (end < 0 ? end + full : end) == full - 1 {
                return last("Flatten", [x], [Attribute.int("axis", 1)])
            }
            // Other spans: a Reshape keeping the batch (0 copies the input's size).
            return last("Reshape", [x, ints("\(name).shape", [0] + n.info.output)])
        case SoftmaxSchema.kind, LogSoftmaxSchema.kind:
            let axis = try SoftmaxSchema.axis(try config(SoftmaxSchema.Config.self), rank: shapes[0].count) + 1
            return last(n.spec.op == SoftmaxSchema.kind ? "Softmax" : "LogSoftmax", [x], [Attribute.int("axis", axis)])
        case ReshapeSchema.kind:
            // 0 keeps the batch (allowzero 0); the per-example shape as resolved.
            return last("Reshape", [x, ints("\(name).shape", [0] + n.info.output)])
        case PermuteSchema.kind:
            return last("Transpose", [x], [Attribute.ints("perm", try config(PermuteSchema.Config.self).dims)])
        case NarrowSchema.kind:
            let (axis, range) = try NarrowSchema.range(try config(NarrowSchema.Config.self), shape: shapes[0])
            return last("Slice", [x, ints("\(name).starts", [range.lowerBound]), ints("\(name).ends", [range.upperBound]),
                                  ints("\(name).axes", [axis + 1])])
        case MatmulSchema.kind:
            return last("MatMul", inputs)
        case MeanKind.name, SumKind.name, AmaxKind.name:
            let c = try config(ReductionSchema<MeanKind>.Config.self)
            let axes = try ReductionSchema<MeanKind>.axes(c, rank: shapes[0].count).map { $0 + 1 }
            let keep = Attribute.int("keepdims", (c.keepdim ?? false) ? 1 : 0)
            // Opset 17: ReduceSum takes its axes as an input, ReduceMean and ReduceMax as an attribute.
            if n.spec.op == SumKind.name { return last("ReduceSum", [x, ints("\(name).axes", axes)], [keep]) }
            return last(n.spec.op == MeanKind.name ? "ReduceMean" : "ReduceMax", [x], [Attribute.ints("axes", axes), keep])
        case DropoutSchema.kind: return x
        case AddSchema.kind, SubSchema.kind, MulSchema.kind, DivSchema.kind, PowSchema.kind:
            return try binary(n, inputs, shapes: shapes, target: target, site: site)
        case NegSchema.kind, SqrtSchema.kind, ExpSchema.kind, LogSchema.kind, ErfSchema.kind, ReciprocalSchema.kind:
            return last(Self.unaryOps[n.spec.op] ?? n.spec.op, [x])
        case HardsigmoidSchema.kind:
            let c = try config(HardsigmoidSchema.Config.self)
            return last("HardSigmoid", [x], [Attribute.float("alpha", Float(c.alpha ?? 1.0 / 6)), Attribute.float("beta", Float(c.beta ?? 0.5))])
        case HardtanhSchema.kind:
            let c = try config(HardtanhSchema.Config.self)
            return last("Clip", [x, scalar("\(name).min", Float(c.min_val ?? -1)), scalar("\(name).max", Float(c.max_val ?? 1))])
        case PReLUSchema.kind:
            // One slope, or one per channel laid along axis 1 ([C, 1, …] against the example's axes).
            var slope = try parameter(n, "weight", site: site)
            if slope.values.count > 1 { slope.shape = [slope.values.count] + [Int](repeating: 1, count: max(shapes[0].count - 1, 0)) }
            return last("PRelu", [x, initializer("\(name).weight", slope)])
        case CatSchema.kind:
            return last("Concat", inputs, [Attribute.int("axis", try CatSchema.axis(try config(CatSchema.Config.self), rank: shapes[0].count))])
        case LayerNormSchema.kind:
            let c = try config(LayerNormSchema.Config.self)
            let w = initializer("\(name).weight", try parameter(n, "weight", site: site))
            let b = initializer("\(name).bias", try parameter(n, "bias", site: site))
            return last("LayerNormalization", [x, w, b], [Attribute.int("axis", -1), Attribute.float("epsilon", Float(c.eps ?? 1e-5))])
        case EmbeddingSchema.kind:
            let w = initializer("\(name).weight", try parameter(n, "weight", site: site))
            return last("Gather", [w, x], [Attribute.int("axis", 0)])
        case EqualKind.name, LessKind.name, GreaterKind.name:
            let op = n.spec.op == EqualKind.name ? "Equal" : n.spec.op == LessKind.name ? "Less" : "Greater"
            if let other = try config(ComparisonConfig.self).other {
                // The number as a scalar of the input's type (ONNX compares equal types).
                switch analysis.type(ofValue: n.inputs[0]) {
                case .float32: return last(op, [x, scalar("\(name).other", Float(other.value))])
                case .int64: return last(op, [x, ints("\(name).other", [Int(other.value)], shape: [])])
                case let type: throw site.fail("compares \(type.rawValue) values with a number; the export writes that for float32 and int64 inputs")
                }
            }
            try sameRank(shapes, site: site)
            return last(op, inputs)
        case WhereSchema.kind:
            let c = try config(WhereSchema.Config.self)
            var rest = inputs.dropFirst().makeIterator()
            let a = c.x.map { scalar("\(name).x", Float($0.value)) } ?? rest.next() ?? x
            let b = c.y.map { scalar("\(name).y", Float($0.value)) } ?? rest.next() ?? x
            return last("Where", [x, a, b])
        case ExpandSchema.kind:
            // The constant for every example: Expand of [1] + shape to [batch] + shape (the batch from the input).
            let c = try config(ExpandSchema.Config.self)
            var value = try parameter(n, "value", site: site)
            value.shape = [1] + c.shape
            let batch = node("Slice", [node("Shape", [x], name: "\(name).shape"), ints("\(name).zero", [0]), ints("\(name).one", [1])],
                             name: "\(name).batch")
            let target = node("Concat", [batch, ints("\(name).sizes", c.shape)], name: "\(name).target", [Attribute.int("axis", 0)])
            return last("Expand", [initializer("\(name).value", value), target])
        case IndexSelectSchema.kind:
            let c = try config(IndexSelectSchema.Config.self)
            let axis = try IndexSelectSchema.axis(c, rank: shapes[0].count)
            guard let positions = try IndexSelectSchema.positions(c, size: shapes[0][axis - 1]) else {
                throw site.fail("selects positions given as an input; the export writes index_select with constant positions ('index')")
            }
            return last("Gather", [x, ints("\(name).index", positions)], [Attribute.int("axis", axis)])
        case BroadcastToSchema.kind:
            return last("Expand", [x, ints("\(name).shape", [1] + (try config(BroadcastToSchema.Config.self)).shape)])
        case PatchEmbeddingSchema.kind: return try patchEmbedding(n, x, target: target, site: site)
        case TransformerBlockSchema.kind: return try transformerBlock(n, x, target: target, site: site)
        case ClassTokenSchema.kind: return last("Gather", [x, ints("\(name).index", [0], shape: [])], [Attribute.int("axis", 1)])
        case CastSchema.kind:
            return last("Cast", [x], [Attribute.int("to", Int(dataType(try config(CastSchema.Config.self).dtype)))])
        case ConvTranspose2DSchema.kind, UpsampleSchema.kind, PadSchema.kind:
            return try upsampling(n, x, target: target, site: site)
        default:
            throw site.fail("has no ONNX form in Prism's export; it writes \(ONNXExport.supportedKinds.joined(separator: ", "))")
        }
    }

    /// The ONNX ops of Prism's unary functions.
    static let unaryOps = [NegSchema.kind: "Neg", SqrtSchema.kind: "Sqrt", ExpSchema.kind: "Exp", LogSchema.kind: "Log", ErfSchema.kind: "Erf",
                           ReciprocalSchema.kind: "Reciprocal"]

    /// add, sub, mul, div, pow: of two values (of one rank), or of a value and the constant `other`
    /// (an initializer, on its side; a plain [C] that Prism reads as the channels of [C, H, W] written
    /// as [C, 1, 1], since ONNX aligns it with the last axis).
    mutating func binary(_ n: GraphAnalysis.Node, _ inputs: [String], shapes: [[Int]], target: String, site: ExportSite) throws -> String {
        let op = ["add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow"][n.spec.op] ?? n.spec.op
        if inputs.count == 2 {
            try sameRank(shapes, site: site)
            return node(op, inputs, name: n.spec.name, output: target)
        }
        let c: BinaryConfig
        do { c = try JSONValue.decode(BinaryConfig.self, from: n.spec.attributes) } catch { throw site.fail("the attributes do not decode (\(error))") }
        var other = try parameter(n, "other", site: site)
        let x = shapes[0]
        if x.count == 3, other.shape.count == 1, other.shape[0] != x[2], other.shape[0] != 1 { other.shape = [other.shape[0], 1, 1] }
        let constant = initializer("\(n.spec.name).other", other)
        return node(op, c.other_first ?? false ? [constant, inputs[0]] : [inputs[0], constant], name: n.spec.name, output: target)
    }

    /// Refuses a binary op whose inputs differ in rank: Prism lines the second up with the first's
    /// trailing axes per example, ONNX over the whole batch, which differ there.
    func sameRank(_ shapes: [[Int]], site: ExportSite) throws {
        guard shapes.count == 2, shapes[0].count == shapes[1].count else {
            throw site.fail("inputs of shapes [batch] + \(shapes.first ?? []) and [batch] + \(shapes.dropFirst().first ?? []) differ in rank; the export needs one rank (broadcast with 1s)")
        }
    }

    /// The one window size and step of adaptive average pooling from `length` to `count` windows
    /// (PyTorch's windows [⌊i·L/n⌋, ⌈(i + 1)·L/n⌉)), or nil when the windows differ in size or step.
    func uniformWindows(_ length: Int, _ count: Int) -> (kernel: Int, stride: Int)? {
        guard count > 0, length >= count else { return nil }
        let windows = (0..<count).map { i in (start: i * length / count, end: ((i + 1) * length + count - 1) / count) }
        let kernel = windows[0].end - windows[0].start
        let stride = count == 1 ? 1 : windows[1].start - windows[0].start
        guard stride > 0 || count == 1 else { return nil }
        for (i, window) in windows.enumerated() where window.end - window.start != kernel || window.start != i * stride { return nil }
        return (kernel, stride)
    }
}
