import Foundation
import PrismFormats
import PrismGraph

/// The ONNX ops that import, for messages.
let supportedONNXOps = [
    "Add", "AveragePool", "BatchNormalization", "Cast", "Clip (constant bounds)", "Concat", "Constant", "ConstantOfShape", "Conv", "ConvTranspose",
    "DequantizeLinear", "Div", "Dropout", "Elu", "Equal", "Erf", "Exp", "Expand", "Flatten", "Gather", "Gelu", "Gemm", "GlobalAveragePool", "Greater",
    "GroupNormalization", "HardSigmoid", "HardSwish", "Identity", "InstanceNormalization", "LayerNormalization (last axis)", "LeakyRelu", "Less",
    "Log", "LogSoftmax", "MatMul", "Max (with a number)", "MaxPool", "Min (with a number)", "Mod (on integer constants)", "Mul", "Neg", "Not", "Pad",
    "Pow", "PRelu", "QuantizeLinear", "Range (on integer constants)", "Reciprocal", "ReduceMax", "ReduceMean", "ReduceSum", "Relu", "Reshape",
    "Resize (nearest, linear)", "Shape", "Sigmoid", "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze", "Where",
]

extension ONNXImporter {
    /// The Prism value (or constant) computed by one ONNX node.
    /// - Throws: `DataError` naming the node, its op and the opset when it does not import.
    mutating func translate(_ node: Onnx_NodeProto, _ inputs: [ONNXValue?], _ site: Site) throws -> ONNXValue {
        let op = node.opType
        func value(_ i: Int) -> ONNXValue? { i < inputs.count ? inputs[i] : nil }
        func graphValue(_ i: Int = 0) throws -> String {
            guard case let .node(name)? = value(i) else {
                throw site.fail("input \(i) is \(value(i) == nil ? "missing" : "a constant"); Prism imports \(op) on values computed from the model's input")
            }
            return name
        }
        func weight(_ i: Int, _ what: String) throws -> HostTensor {
            guard case let .float(t)? = value(i) else { throw site.fail("its \(what) (input \(i)) must be a float32 initializer or constant") }
            return t
        }
        func optionalWeight(_ i: Int, _ what: String) throws -> HostTensor? { value(i) == nil ? nil : try weight(i, what) }
        func attributes(_ known: Set<String>) throws -> Attributes { try Attributes(node, site: site, known: known) }
        func elementwise(_ kind: String, _ config: [String: JSONValue] = [:]) throws -> ONNXValue {
            try emit(kind, config, inputs: [graphValue()], name: name(for: node), site: site)
        }
        func weightName(_ i: Int) -> String? { i < node.input.count ? node.input[i] : nil }

        if op == "Constant" { return try constant(node, site: site) }
        if op == "QuantizeLinear" || op == "DequantizeLinear" { return try quantization(node, inputs, site: site) }
        if let read = node.input.first(where: { quantized[$0] != nil }) {
            throw site.fail("reads '\(read)', the integers of a QuantizeLinear; Prism imports them only through a DequantizeLinear with the same scale and zero point")
        }
        if let typed = try translateTyped(node, inputs, site) { return typed }
        if let folded = try fold(node, inputs, site: site) { return folded }
        if let laid = try translateLayout(node, inputs, site) { return laid }
        if let resampled = try translateUpsampling(node, inputs, site) { return resampled }
        switch op {
        case "Identity":
            _ = try attributes([])
            guard let v = value(0) else { throw site.fail("has no input") }
            return v
        case "Dropout":
            _ = try attributes(["seed"])
            if case let .int(mode)? = value(2), mode.values != [.fixed(0)] {
                throw site.fail("training_mode is set; Prism imports Dropout at inference (the identity)")
            }
            return .node(try graphValue())
        case "Relu": _ = try attributes([]); return try elementwise(ReLUSchema.kind)
        case "Sigmoid": _ = try attributes([]); return try elementwise(SigmoidSchema.kind)
        case "Tanh": _ = try attributes([]); return try elementwise(TanhSchema.kind)
        case "HardSwish": _ = try attributes([]); return try elementwise(HardswishSchema.kind)
        case "LeakyRelu": return try elementwise(LeakyReLUSchema.kind, ["negative_slope": decimal(try attributes(["alpha"]).float("alpha", 0.01))])
        case "Elu": return try elementwise(ELUSchema.kind, ["alpha": decimal(try attributes(["alpha"]).float("alpha", 1))])
        case "Conv":
            let a = try attributes(["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])
            let x = try graphValue(), w = try weight(1, "weight"), b = try optionalWeight(2, "bias")
            guard w.shape.count == 4 else { throw site.fail("weight of shape \(w.shape); Prism imports 2-D convolutions (a weight [out, in/groups, kh, kw])") }
            let (pads, strides, dilations) = try windows(a, kernel: Array(w.shape[2...]), site: site)
            if let k = try a.ints("kernel_shape"), k != Array(w.shape[2...]) { throw site.fail("kernel_shape \(k) differs from the weight's \(w.shape)") }
            let groups = try a.int("group", 1)
            guard groups > 0, let inChannels = HostMemory.product([w.shape[1], groups]) else { throw site.fail("group \(groups) is not positive") }
            var config: [String: JSONValue] = [
                "in_channels": .int(inChannels), "out_channels": .int(w.shape[0]), "kernel_size": pair(w.shape[2], w.shape[3]),
                "stride": pair(strides[0], strides[1]), "padding": pair(pads[0], pads[1]), "dilation": pair(dilations[0], dilations[1]),
                "groups": .int(groups),
            ]
            var parameters = ["weight": w]
            if let b { parameters["bias"] = b } else { config["bias"] = .bool(false) }
            return try emit(Conv2DSchema.kind, config, inputs: [x], parameters: parameters, name: name(for: node, weight: weightName(1)), site: site)
        case "MaxPool", "AveragePool":
            let maxPool = op == "MaxPool"
            let a = try attributes(maxPool ? ["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"]
                                           : ["auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"])
            guard let kernel = try a.ints("kernel_shape"), kernel.count == 2 else { throw site.fail("needs a two-entry kernel_shape; Prism imports 2-D pooling") }
            let (pads, strides, dilations) = try windows(a, kernel: kernel, site: site)
            guard dilations == [1, 1] else { throw site.fail("dilations \(dilations); Prism imports pooling without dilation") }
            guard try a.int("storage_order", 0) == 0 else { throw site.fail("storage_order 1 is not supported") }
            var config: [String: JSONValue] = [
                "kernel_size": pair(kernel[0], kernel[1]), "stride": pair(strides[0], strides[1]), "padding": pair(pads[0], pads[1]),
                "ceil_mode": .bool(try a.int("ceil_mode", 0) != 0),
            ]
            if !maxPool { config["count_include_pad"] = .bool(try a.int("count_include_pad", 0) != 0) }
            return try elementwise(maxPool ? MaxPool2DSchema.kind : AvgPool2DSchema.kind, config)
        case "GlobalAveragePool":
            _ = try attributes([])
            return try elementwise(AdaptiveAvgPool2DSchema.kind, ["output_size": .int(1)])
        case "ReduceMean":
            let a = try attributes(["axes", "keepdims", "noop_with_empty_axes"])
            let x = try graphValue(), rank = (shapes[x]?.count ?? 0) + 1
            var axes = try a.ints("axes")
            if case let .int(c)? = value(1) { axes = c.values.compactMap(\.value) }
            let normalized = Set((axes ?? []).map { $0 < 0 ? $0 + rank : $0 })
            guard rank == 4, normalized == [2, 3] else {  // other axes: `translateLayout`
                throw site.fail("axes \(axes.map { "\($0)" } ?? "(all)") of a rank-\(rank) value are not those of global average pooling")
            }
            let pooled = try elementwise(AdaptiveAvgPool2DSchema.kind, ["output_size": .int(1)])
            guard try a.int("keepdims", 1) == 0, case let .node(p) = pooled else { return pooled }
            return try emit(FlattenSchema.kind, inputs: [p], name: name(for: node), site: site)
        case "BatchNormalization":
            let a = try attributes(["epsilon", "momentum", "training_mode"])
            guard try a.int("training_mode", 0) == 0 else { throw site.fail("training_mode 1; Prism imports BatchNormalization at inference") }
            let x = try graphValue(), rank = shapes[x]?.count ?? 0
            let scale = try weight(1, "scale"), bias = try weight(2, "bias"), mean = try weight(3, "mean"), variance = try weight(4, "variance")
            let momentum = try a.float("momentum", 0.9)
            let config: [String: JSONValue] = [
                "num_features": .int(scale.shape.first ?? 0), "eps": decimal(try a.float("epsilon", 1e-5)),
                "momentum": decimal(Float(String(format: "%.6g", 1 - Double(momentum))) ?? 1 - momentum),
            ]
            guard (1...3).contains(rank) else { throw site.fail("input of rank \(rank + 1); Prism imports BatchNormalization of [N, C], [N, C, L] or [N, C, H, W]") }
            return try emit(rank == 3 ? BatchNorm2DSchema.kind : BatchNorm1DSchema.kind, config, inputs: [x],
                            parameters: ["weight": scale, "bias": bias, "running_mean": mean, "running_var": variance],
                            name: name(for: node, weight: weightName(1)), site: site)
        case "Expand":
            _ = try attributes([])
            guard case let .float(t)? = value(0), case let .int(target)? = value(1), target.shape.count == 1 else {
                throw site.fail("Prism imports Expand of a float32 constant to a constant shape (a class token repeated for the batch)")
            }
            // NumPy's broadcast of the constant's shape and the target, right-aligned.
            let rank = max(t.shape.count, target.values.count)
            let have = [Int](repeating: 1, count: rank - t.shape.count) + t.shape
            let want = [Dim](repeating: .fixed(1), count: rank - target.values.count) + target.values
            var shape: [Dim] = []
            for (h, w) in zip(have, want) {
                switch w {
                case let .fixed(n) where n == h || n == 1: shape.append(.fixed(h))
                case let .fixed(n) where h == 1 && n > 0: shape.append(.fixed(n))
                case .batch(times: 1) where h == 1 && shape.isEmpty: shape.append(w)
                default: throw site.fail("expands \(t.shape) to \(target.values); Prism imports a constant expanded to fixed sizes, the batch first")
                }
            }
            let sizes = try shape.dropFirst(shape.first == .batch(times: 1) ? 1 : 0).map { d -> Int in
                guard let n = d.value else { throw site.fail("the batch size must be the first entry of the target shape") }
                return n
            }
            guard let count = HostMemory.product(sizes), count <= 1 << 24 else { throw site.fail("expands to \(sizes), too large") }
            let values = expanded(t.values, Array(have.dropFirst(rank - sizes.count)), to: sizes)
            guard shape.first == .batch(times: 1) else { return .float(HostTensor(shape: sizes, values: values)) }
            // Repeated for every example: an `expand` node (the model's input gives the batch size).
            guard have.first == 1 else { throw site.fail("expands \(t.shape) along the batch; Prism repeats a constant whose first size is 1") }
            return try emit(ExpandSchema.kind, ["shape": .array(sizes.map { .int($0) })], inputs: [GraphAnalysis.inputName],
                            parameters: ["value": HostTensor(shape: sizes, values: values)], name: name(for: node, weight: node.input.first), site: site)
        case "GroupNormalization":
            // Opsets 18–20: scale and bias per group (opset 21, not imported, made them per channel);
            // Prism's groupnorm takes them per channel, each group's repeated over its channels.
            let a = try attributes(["epsilon", "num_groups", "stash_type"])
            let x = try graphValue(), scale = try weight(1, "scale"), bias = try weight(2, "bias")
            let groups = try a.int("num_groups", 0)
            guard let c = shapes[x]?.first, (shapes[x]?.count ?? 0) >= 2, groups > 0, c % groups == 0 else {
                throw site.fail("input [batch] + \(shapes[x] ?? []) with num_groups \(groups); Prism imports [N, C, *] with C divisible by num_groups")
            }
            let perChannel: (HostTensor) throws -> HostTensor = { t in
                guard t.shape == [groups] else { throw site.fail("scale and bias of shape \(t.shape); opsets 18–20 take [num_groups] = [\(groups)]") }
                return HostTensor(shape: [c], values: (0..<c).map { t.values[$0 / (c / groups)] })
            }
            let config: [String: JSONValue] = ["num_groups": .int(groups), "num_channels": .int(c), "eps": decimal(try a.float("epsilon", 1e-5))]
            return try emit(GroupNormSchema.kind, config, inputs: [x], parameters: ["weight": try perChannel(scale), "bias": try perChannel(bias)],
                            name: name(for: node, weight: weightName(1)), site: site)
        case "InstanceNormalization":
            // nn.InstanceNorm2d(affine=True) and the core of nn.GroupNorm's export: a group norm with
            // one channel per group.
            let a = try attributes(["epsilon"])
            let x = try graphValue(), scale = try weight(1, "scale"), bias = try weight(2, "B")
            guard let c = shapes[x]?.first, (shapes[x]?.count ?? 0) >= 2, scale.shape == [c], bias.shape == [c] else {
                throw site.fail("input [batch] + \(shapes[x] ?? []), scale \(scale.shape), B \(bias.shape); Prism imports [N, C, *] with a scale and B of [C]")
            }
            let config: [String: JSONValue] = ["num_groups": .int(c), "num_channels": .int(c), "eps": decimal(try a.float("epsilon", 1e-5))]
            return try emit(GroupNormSchema.kind, config, inputs: [x], parameters: ["weight": scale, "bias": bias],
                            name: name(for: node, weight: weightName(1)), site: site)
        case "Gemm":
            let a = try attributes(["alpha", "beta", "transA", "transB"])
            guard try a.int("transA", 0) == 0 else { throw site.fail("transA 1; Prism imports Gemm with transA 0 as a linear layer") }
            let x = try graphValue(), b = try weight(1, "weight")
            guard b.shape.count == 2 else { throw site.fail("weight of shape \(b.shape); Gemm takes a matrix") }
            var w = try a.int("transB", 0) != 0 ? b : transpose(b)
            let alpha = try a.float("alpha", 1), beta = try a.float("beta", 1)
            if alpha != 1 { w.values = w.values.map { $0 * alpha } }
            var bias = try optionalWeight(2, "bias")
            if let c = bias {
                guard c.shape == [w.shape[0]] || c.shape == [1, w.shape[0]] else {
                    throw site.fail("C of shape \(c.shape); Prism imports Gemm with a bias of shape [\(w.shape[0])] or [1, \(w.shape[0])]")
                }
                bias = HostTensor(shape: [w.shape[0]], values: beta == 1 ? c.values : c.values.map { $0 * beta })
            }
            return try linear(x, weight: w, bias: bias, node: node, site: site)
        case "MatMul":
            _ = try attributes([])
            let x = try graphValue()
            guard case let .float(b)? = value(1), b.shape.count == 2 else {
                throw site.fail("the second input is not a constant matrix; Prism imports MatMul by a constant 2-D weight (a linear layer)")
            }
            let made = try linear(x, weight: transpose(b), bias: nil, node: node, site: site)
            if case let .node(name) = made { biasless[name] = nodes.count - 1 }
            return made
        case "Add", "Sub", "Mul", "Div", "Pow":
            return try binary(node, inputs, site: site)
        case "Neg", "Sqrt", "Exp", "Log", "Erf", "Reciprocal":
            _ = try attributes([])
            if case let .float(t)? = value(0) { return .float(foldUnary(op, t)) }
            return try elementwise(Self.unaryKinds[op] ?? op)
        case "HardSigmoid": return try hardSigmoid(node, try graphValue(), site: site)
        case "Clip": return try clip(node, inputs, try graphValue(), site: site)
        case "PRelu": return try prelu(node, inputs, try graphValue(), site: site)
        case "Flatten":
            let x = try graphValue(), rank = (shapes[x]?.count ?? 0) + 1
            let axis = try attributes(["axis"]).int("axis", 1)
            guard axis == 1 || axis == 1 - rank else { throw site.fail("axis \(axis); Prism imports Flatten with axis 1 (keeping the batch)") }
            return shapes[x]?.count == 1 ? .node(x) : try emit(FlattenSchema.kind, inputs: [x], name: name(for: node), site: site)
        case "Concat":
            let axis = try attributes(["axis"]).int("axis", 0)
            let names = try (0..<inputs.count).map { try graphValue($0) }
            let rank = (shapes[names[0]]?.count ?? 0) + 1
            let normalized = axis < 0 ? axis + rank : axis
            guard normalized >= 1, normalized < rank else { throw site.fail("axis \(axis) of rank-\(rank) values; Prism imports Concat along an axis after the batch") }
            return try emit(CatSchema.kind, ["dim": .int(normalized)], inputs: names, name: name(for: node), site: site)
        default:
            throw site.fail("op not supported; Prism imports \(supportedONNXOps.joined(separator: ", "))")
        }
    }

    /// The symmetric pads (per axis), strides and dilations of a 2-D window op.
    func windows(_ a: Attributes, kernel: [Int], site: Site) throws -> (pads: [Int], strides: [Int], dilations: [Int]) {
        let autoPad = try a.string("auto_pad") ?? "NOTSET"
        guard autoPad == "NOTSET" || autoPad == "VALID" else { throw site.fail("auto_pad \(autoPad); Prism imports explicit pads (NOTSET) or VALID") }
        let pads = autoPad == "VALID" ? [0, 0, 0, 0] : try a.ints("pads") ?? [0, 0, 0, 0]
        let strides = try a.ints("strides") ?? [1, 1], dilations = try a.ints("dilations") ?? [1, 1]
        guard kernel.count == 2, pads.count == 4, strides.count == 2, dilations.count == 2 else {
            throw site.fail("pads \(pads), strides \(strides), dilations \(dilations); Prism imports 2-D windows (4 pads, 2 strides, 2 dilations)")
        }
        guard pads[0] == pads[2], pads[1] == pads[3] else {
            throw site.fail("asymmetric pads \(pads) (top, left, bottom, right); Prism imports equal padding on both sides of each axis")
        }
        return ([pads[0], pads[1]], strides, dilations)
    }

    /// A linear node of weight [out, in] reading `x`.
    mutating func linear(_ x: String, weight: HostTensor, bias: HostTensor?, node: Onnx_NodeProto, site: Site) throws -> ONNXValue {
        var config: [String: JSONValue] = ["in_features": .int(weight.shape[1]), "out_features": .int(weight.shape[0])]
        var parameters = ["weight": weight]
        if let bias { parameters["bias"] = bias } else { config["bias"] = .bool(false) }
        let weightName = node.input.count > 1 ? node.input[1] : nil
        return try emit(LinearSchema.kind, config, inputs: [x], parameters: parameters, name: name(for: node, weight: weightName), site: site)
    }
}

/// A matrix transposed.
func transpose(_ t: HostTensor) -> HostTensor {
    let (rows, cols) = (t.shape[0], t.shape[1])
    var out = [Float](repeating: 0, count: t.values.count)
    for r in 0..<rows { for c in 0..<cols { out[c * rows + r] = t.values[r * cols + c] } }
    return HostTensor(shape: [cols, rows], values: out)
}
