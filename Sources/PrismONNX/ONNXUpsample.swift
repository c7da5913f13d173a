import PrismFormats
import PrismGraph

// ConvTranspose, Resize and Pad as PyTorch's exporters write them for decoders and segmentation
// networks: `conv_transpose2d`, `upsample` and `pad` nodes.

extension ONNXImporter {
    /// The Prism node of a ConvTranspose, Resize or Pad node, or nil for other ops.
    /// - Throws: `DataError` naming the node, its op and the opset when it does not import.
    mutating func translateUpsampling(_ node: Onnx_NodeProto, _ inputs: [ONNXValue?], _ site: Site) throws -> ONNXValue? {
        func value(_ i: Int) -> ONNXValue? { i < inputs.count ? inputs[i] : nil }
        func graphValue() throws -> String {
            guard case let .node(name)? = value(0) else {
                throw site.fail("input 0 is \(value(0) == nil ? "missing" : "a constant"); Prism imports \(node.opType) on values computed from the model's input")
            }
            return name
        }
        func fixedInts(_ i: Int, _ what: String) throws -> [Int]? {
            guard let v = value(i) else { return nil }
            guard case let .int(c) = v else { throw site.fail("its \(what) (input \(i)) must be an integer constant") }
            return try c.values.map { guard let n = $0.value else { throw site.fail("its \(what) depend on the batch size") }; return n }
        }
        switch node.opType {
        case "ConvTranspose": return try convTranspose(node, inputs, try graphValue(), site: site)
        case "Resize": return try resize(node, inputs, try graphValue(), site: site)
        case "Pad":
            let a = try Attributes(node, site: site, known: ["mode"])
            let x = try graphValue()
            guard let shape = shapes[x], shape.count == 3 else {
                throw site.fail("input [batch] + \(shapes[x] ?? []); Prism imports Pad of [N, C, H, W]")
            }
            let mode = try a.string("mode") ?? "constant"
            let modes = ["constant": "constant", "reflect": "reflect", "edge": "replicate"]
            guard let prismMode = modes[mode] else { throw site.fail("mode '\(mode)'; Prism imports Pad in modes constant, reflect and edge") }
            guard let pads = try fixedInts(1, "pads") else { throw site.fail("pads (input 1) must be an integer constant") }
            let axes = try fixedInts(3, "axes").map { $0.map { $0 < 0 ? $0 + 4 : $0 } } ?? [0, 1, 2, 3]
            guard pads.count == 2 * axes.count, axes.allSatisfy({ (0..<4).contains($0) }), Set(axes).count == axes.count else {
                throw site.fail("pads \(pads) for axes \(axes) of a rank-4 value do not pair up (begins, then ends)")
            }
            var begin = [0, 0, 0, 0], end = [0, 0, 0, 0]
            for (i, axis) in axes.enumerated() { (begin[axis], end[axis]) = (pads[i], pads[i + axes.count]) }
            guard begin[0] == 0, end[0] == 0, begin[1] == 0, end[1] == 0, (begin + end).allSatisfy({ $0 >= 0 }) else {
                throw site.fail("pads \(pads); Prism imports non-negative pads of the last two axes (H, W) only")
            }
            var constant: Float = 0
            if let v = value(2) {
                guard case let .float(t) = v, t.values.count <= 1 else { throw site.fail("constant_value (input 2) must be a float constant scalar") }
                constant = t.values.first ?? 0
            }
            var config: [String: JSONValue] = ["pad": .array([begin[3], end[3], begin[2], end[2]].map { .int($0) }), "mode": .string(prismMode)]
            if prismMode == "constant" { config["value"] = decimal(constant) } else if constant != 0 {
                throw site.fail("constant_value \(constant) with mode '\(mode)'; it applies to mode constant only")
            }
            return try emit(PadSchema.kind, config, inputs: [x], name: name(for: node), site: site)
        default:
            return nil
        }
    }

    /// A ConvTranspose node: explicit (NOTSET) symmetric pads, no output_shape.
    private mutating func convTranspose(_ node: Onnx_NodeProto, _ inputs: [ONNXValue?], _ x: String, site: Site) throws -> ONNXValue {
        let a = try Attributes(node, site: site, known: ["auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape", "pads", "strides"])
        guard inputs.count > 1, case let .float(w)? = inputs[1] else { throw site.fail("its weight (input 1) must be a float32 initializer or constant") }
        var bias: HostTensor?
        if inputs.count > 2, let b = inputs[2] {
            guard case let .float(t) = b else { throw site.fail("its bias (input 2) must be a float32 initializer or constant") }
            bias = t
        }
        guard w.shape.count == 4 else { throw site.fail("weight of shape \(w.shape); Prism imports 2-D transposed convolutions (a weight [in, out, kh, kw])") }
        let groups = try a.int("group", 1)
        guard groups >= 1, w.shape[0] % groups == 0, let outChannels = HostMemory.product([w.shape[1], groups]) else {
            throw site.fail("group \(groups) does not divide the weight's \(w.shape[0]) input channels")
        }
        guard try a.ints("output_shape") == nil else { throw site.fail("output_shape is set; Prism imports ConvTranspose with pads and output_padding") }
        guard (try a.string("auto_pad") ?? "NOTSET") == "NOTSET" else { throw site.fail("auto_pad \(try a.string("auto_pad") ?? ""); Prism imports explicit pads (NOTSET)") }
        if let k = try a.ints("kernel_shape"), k != Array(w.shape[2...]) { throw site.fail("kernel_shape \(k) differs from the weight's \(w.shape)") }
        let (pads, strides, dilations) = try windows(a, kernel: Array(w.shape[2...]), site: site)
        let extra = try a.ints("output_padding") ?? [0, 0]
        guard extra.count == 2, extra[0] >= 0, extra[1] >= 0, extra[0] < strides[0], extra[1] < strides[1] else {
            throw site.fail("output_padding \(extra); Prism imports two entries, each below its stride \(strides)")
        }
        var config: [String: JSONValue] = [
            "in_channels": .int(w.shape[0]), "out_channels": .int(outChannels), "kernel_size": pair(w.shape[2], w.shape[3]),
            "stride": pair(strides[0], strides[1]), "padding": pair(pads[0], pads[1]), "output_padding": pair(extra[0], extra[1]),
            "dilation": pair(dilations[0], dilations[1]), "groups": .int(groups),
        ]
        var parameters = ["weight": w]
        if let bias { parameters["bias"] = bias } else { config["bias"] = .bool(false) }
        let weightName = node.input.count > 1 ? node.input[1] : nil
        return try emit(ConvTranspose2DSchema.kind, config, inputs: [x], parameters: parameters, name: name(for: node, weight: weightName), site: site)
    }

    /// A Resize node (opset 13+) over H and W: nearest (asymmetric, floor) or linear (half_pixel,
    /// pytorch_half_pixel, align_corners), scales or sizes constant.
    private mutating func resize(_ node: Onnx_NodeProto, _ inputs: [ONNXValue?], _ x: String, site: Site) throws -> ONNXValue {
        let a = try Attributes(node, site: site, known: ["antialias", "axes", "coordinate_transformation_mode", "cubic_coeff_a", "exclude_outside",
                                                          "extrapolation_value", "keep_aspect_ratio_policy", "mode", "nearest_mode"])
        guard site.opset >= 13 else { throw site.fail("Prism imports Resize from opset 13 on (inputs X, roi, scales, sizes)") }
        guard let shape = shapes[x], shape.count == 3 else { throw site.fail("input [batch] + \(shapes[x] ?? []); Prism imports Resize of [N, C, H, W]") }
        let mode = try a.string("mode") ?? "nearest"
        let transform = try a.string("coordinate_transformation_mode") ?? "half_pixel"
        guard try a.int("antialias", 0) == 0, try a.int("exclude_outside", 0) == 0 else { throw site.fail("antialias or exclude_outside is set; Prism imports neither") }
        guard (try a.string("keep_aspect_ratio_policy") ?? "stretch") == "stretch" else { throw site.fail("keep_aspect_ratio_policy is not stretch") }
        let axes = try a.ints("axes").map { $0.map { $0 < 0 ? $0 + 4 : $0 } }
        guard axes == nil || axes == [2, 3] else { throw site.fail("axes \(axes ?? []); Prism imports Resize over H and W (axes 2, 3)") }
        let leading = axes == nil ? 2 : 0   // entries of scales or sizes before H and W
        var config: [String: JSONValue] = [:]
        var outSize: [Int]
        if inputs.count > 3, case let .int(sizes)? = inputs[3] {
            let fixed = sizes.values.map(\.value)
            guard fixed.count == leading + 2, let h = fixed[leading], let w = fixed[leading + 1], h > 0, w > 0,
                  leading == 0 || fixed[1] == shape[0] else {
                throw site.fail("sizes \(sizes.values); Prism imports sizes that keep N and C and give H and W as positive constants")
            }
            outSize = [h, w]
            config["size"] = pair(h, w)
        } else if inputs.count > 2, case let .float(scales)? = inputs[2], !scales.values.isEmpty {
            let s = scales.values
            guard s.count == leading + 2, leading == 0 || (s[0] == 1 && s[1] == 1), s[leading] > 0, s[leading + 1] > 0 else {
                throw site.fail("scales \(s); Prism imports scales of 1 for N and C and positive ones for H and W")
            }
            outSize = [Int((Double(shape[1]) * Double(s[leading])).rounded(.down)), Int((Double(shape[2]) * Double(s[leading + 1])).rounded(.down))]
            config["scale_factor"] = s[leading] == s[leading + 1] ? decimal(s[leading]) : .array([decimal(s[leading]), decimal(s[leading + 1])])
        } else {
            throw site.fail("neither scales (input 2) nor sizes (input 3) is a constant")
        }
        switch mode {
        case "nearest":
            let nearest = try a.string("nearest_mode") ?? "round_prefer_floor"
            guard transform == "asymmetric", nearest == "floor" else {
                throw site.fail("nearest with coordinate_transformation_mode \(transform) and nearest_mode \(nearest); Prism imports nearest as PyTorch exports it (asymmetric, floor)")
            }
        case "linear":
            switch transform {
            case "half_pixel": config["align_corners"] = .bool(false)
            case "pytorch_half_pixel":
                guard !outSize.contains(1) else { throw site.fail("pytorch_half_pixel to an output of length 1; Prism imports outputs longer than 1") }
                config["align_corners"] = .bool(false)
            case "align_corners": config["align_corners"] = .bool(true)
            default: throw site.fail("linear with coordinate_transformation_mode \(transform); Prism imports half_pixel, pytorch_half_pixel and align_corners")
            }
            config["mode"] = .string("bilinear")
        default:
            throw site.fail("mode \(mode); Prism imports Resize in modes nearest and linear")
        }
        return try emit(UpsampleSchema.kind, config, inputs: [x], name: name(for: node), site: site)
    }
}
