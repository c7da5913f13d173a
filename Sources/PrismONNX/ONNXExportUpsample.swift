import PrismFormats
import PrismGraph

extension ONNXExporter {
    /// The ONNX nodes of `conv_transpose2d` (ConvTranspose), `upsample` (Resize) and `pad` (Pad).
    /// - Throws: `DataError` naming the node when its attributes do not decode or it has no ONNX form.
    mutating func upsampling(_ n: GraphAnalysis.Node, _ x: String, target: String, site: ExportSite) throws -> String {
        let name = n.spec.name
        func config<T: Decodable>(_ type: T.Type) throws -> T {
            do { return try JSONValue.decode(type, from: n.spec.attributes) } catch { throw site.fail("the attributes do not decode (\(error))") }
        }
        switch n.spec.op {
        case ConvTranspose2DSchema.kind:
            let c = try config(ConvTranspose2DSchema.Config.self)
            let stride = c.stride ?? SizePair(1), padding = c.padding ?? SizePair(0), dilation = c.dilation ?? SizePair(1)
            let extra = c.output_padding ?? SizePair(0)
            let w = initializer("\(name).weight", try parameter(n, "weight", site: site))
            let b = (c.bias ?? true) ? [initializer("\(name).bias", try parameter(n, "bias", site: site))] : []
            return node("ConvTranspose", [x, w] + b, name: name, output: target, [
                Attribute.ints("kernel_shape", [c.kernel_size.h, c.kernel_size.w]), Attribute.ints("strides", [stride.h, stride.w]),
                Attribute.ints("pads", [padding.h, padding.w, padding.h, padding.w]), Attribute.ints("dilations", [dilation.h, dilation.w]),
                Attribute.ints("output_padding", [extra.h, extra.w]), Attribute.int("group", c.groups ?? 1),
            ])
        case UpsampleSchema.kind:
            // Nearest as PyTorch exports it (asymmetric, floor); bilinear as half_pixel (which, unlike
            // pytorch_half_pixel, keeps PyTorch's coordinates for an output of length 1) or align_corners.
            let c = try config(UpsampleSchema.Config.self)
            let bilinear = try UpsampleSchema.mode(c) == "bilinear"
            let attributes = bilinear
                ? [Attribute.string("mode", "linear"), Attribute.string("coordinate_transformation_mode", c.align_corners ?? false ? "align_corners" : "half_pixel")]
                : [Attribute.string("mode", "nearest"), Attribute.string("coordinate_transformation_mode", "asymmetric"), Attribute.string("nearest_mode", "floor")]
            if let scale = c.scale_factor {
                let scales = initializer("\(name).scales", HostTensor(shape: [4], values: [1, 1, Float(scale.h), Float(scale.w)]))
                return node("Resize", [x, "", scales], name: name, output: target, attributes)
            }
            // Sizes [N, C, H, W] with the batch read from the input: its Shape's first two entries.
            let shape = node("Shape", [x], name: "\(name).shape", [Attribute.int("end", 2)])
            let sizes = node("Concat", [shape, ints("\(name).size", [n.info.output[1], n.info.output[2]])], name: "\(name).sizes", [Attribute.int("axis", 0)])
            return node("Resize", [x, "", "", sizes], name: name, output: target, attributes)
        case PadSchema.kind:
            let c = try config(PadSchema.Config.self)
            let p = try PadSchema.pads(c)
            let rank = n.info.output.count + 1
            var begin = [Int](repeating: 0, count: rank), end = begin
            (begin[rank - 1], end[rank - 1]) = (p.left, p.right)
            if c.pad.count == 4 { (begin[rank - 2], end[rank - 2]) = (p.top, p.bottom) }
            let mode = ["constant": "constant", "reflect": "reflect", "replicate": "edge"][c.mode ?? "constant"] ?? "constant"
            let value = mode == "constant" ? [scalar("\(name).value", Float(c.value ?? 0))] : []
            return node("Pad", [x, ints("\(name).pads", begin + end)] + value, name: name, output: target, [Attribute.string("mode", mode)])
        default:
            throw site.fail("has no ONNX form in Prism's export")
        }
    }
}
