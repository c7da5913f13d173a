import PrismFormats

// The schemas of the upsampling ops a decoder or segmentation network uses: `conv_transpose2d`,
// `upsample` and `pad`.

/// A scale factor for height and width: one number or two (`scale_factor=2.0` or `(2.0, 1.5)`).
public struct ScalePair: Codable, Equatable, Sendable, CustomStringConvertible {
    public var h: Double
    public var w: Double

    public init(_ h: Double, _ w: Double) { (self.h, self.w) = (h, w) }
    public init(_ both: Double) { (h, w) = (both, both) }

    public var description: String { h == w ? "\(h)" : "(\(h), \(w))" }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let x = try? container.decode(Double.self) {
            (h, w) = (x, x)
            return
        }
        let list = try container.decode([Double].self)
        guard list.count == 2 else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected a number or two numbers, got \(list.count)")
        }
        (h, w) = (list[0], list[1])
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        if h == w { try container.encode(h) } else { try container.encode([h, w]) }
    }
}

/// `nn.ConvTranspose2d`: weight [in_channels, out_channels / groups, kH, kW], per-axis stride,
/// padding, output_padding (each below its stride) and dilation, groups, optional bias.
public enum ConvTranspose2DSchema: OpSchema {
    public struct Config: OpConfig {
        public var in_channels: Int
        public var out_channels: Int
        public var kernel_size: SizePair
        public var stride: SizePair?
        public var padding: SizePair?
        public var output_padding: SizePair?
        public var dilation: SizePair?
        public var groups: Int?
        public var bias: Bool?
        public static let attributes = ["in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding", "dilation", "groups", "bias"]
        public init(in_channels: Int, out_channels: Int, kernel_size: SizePair, stride: SizePair? = nil, padding: SizePair? = nil,
                    output_padding: SizePair? = nil, dilation: SizePair? = nil, groups: Int? = nil, bias: Bool? = nil) {
            (self.in_channels, self.out_channels, self.kernel_size) = (in_channels, out_channels, kernel_size)
            (self.stride, self.padding, self.output_padding, self.dilation) = (stride, padding, output_padding, dilation)
            (self.groups, self.bias) = (groups, bias)
        }
    }
    public static let kind = "conv_transpose2d"

    /// The output length of one axis: (n − 1)·stride − 2·padding + dilation·(kernel − 1) + output_padding + 1.
    static func length(_ n: Int, kernel: Int, stride: Int, padding: Int, outputPadding: Int, dilation: Int) throws -> Int {
        let limit = 1 << 24
        guard kernel > 0, stride > 0, dilation > 0, padding >= 0, outputPadding >= 0, outputPadding < stride,
              [n, kernel, stride, padding, dilation].allSatisfy({ $0 < limit }) else {
            throw TensorError("needs a positive kernel, stride and dilation, a non-negative padding and an output_padding below the stride (kernel \(kernel), stride \(stride), padding \(padding), output_padding \(outputPadding), dilation \(dilation))")
        }
        let out = (n - 1) * stride - 2 * padding + dilation * (kernel - 1) + outputPadding + 1
        guard out > 0 else { throw TensorError("output is empty (\(out) from \(n))") }
        return out
    }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard config.in_channels > 0, config.out_channels > 0 else { throw TensorError("needs positive channel counts") }
        let groups = config.groups ?? 1
        guard groups > 0, config.in_channels % groups == 0, config.out_channels % groups == 0 else {
            throw TensorError("\(config.in_channels) input and \(config.out_channels) output channels do not split into \(groups) groups")
        }
        let (_, h, w) = try requireImage(inputs, channels: config.in_channels)
        let stride = config.stride ?? SizePair(1), padding = config.padding ?? SizePair(0)
        let extra = config.output_padding ?? SizePair(0), dilation = config.dilation ?? SizePair(1)
        return [config.out_channels,
                try length(h, kernel: config.kernel_size.h, stride: stride.h, padding: padding.h, outputPadding: extra.h, dilation: dilation.h),
                try length(w, kernel: config.kernel_size.w, stride: stride.w, padding: padding.w, outputPadding: extra.w, dilation: dilation.w)]
    }

    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] {
        [("weight", [config.in_channels, config.out_channels / max(config.groups ?? 1, 1), config.kernel_size.h, config.kernel_size.w])]
            + (config.bias ?? true ? [("bias", [config.out_channels])] : [])
    }

    public static func flops(_ config: Config, inputs: Shapes, output: [Int]) -> Double {
        let pixels = inputs.first.map { Double($0.dropFirst().reduce(1, *)) } ?? 0
        let groups = Double(max(config.groups ?? 1, 1))
        return 2 * Double(config.out_channels) * Double(config.in_channels) / groups * Double(config.kernel_size.h * config.kernel_size.w) * pixels
    }
}

/// `nn.Upsample` / `F.interpolate` over [C, H, W]: `size` or `scale_factor` (exactly one), mode
/// "nearest" (the default) or "bilinear", `align_corners` for bilinear only.
public enum UpsampleSchema: OpSchema {
    public struct Config: OpConfig {
        public var size: SizePair?
        public var scale_factor: ScalePair?
        public var mode: String?
        public var align_corners: Bool?
        public static let attributes = ["size", "scale_factor", "mode", "align_corners"]
        public init(size: SizePair? = nil, scale_factor: ScalePair? = nil, mode: String? = nil, align_corners: Bool? = nil) {
            (self.size, self.scale_factor, self.mode, self.align_corners) = (size, scale_factor, mode, align_corners)
        }
    }
    public static let kind = "upsample"

    /// The checked mode name.
    public static func mode(_ config: Config) throws -> String {
        let mode = config.mode ?? "nearest"
        guard mode == "nearest" || mode == "bilinear" else { throw TensorError("mode '\(mode)' is not supported (nearest or bilinear)") }
        if mode == "nearest", config.align_corners != nil { throw TensorError("align_corners applies to mode bilinear only") }
        return mode
    }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        _ = try mode(config)
        let (c, h, w) = try requireImage(inputs)
        switch (config.size, config.scale_factor) {
        case let (size?, nil):
            guard size.h > 0, size.w > 0, size.h < 1 << 24, size.w < 1 << 24 else { throw TensorError("size \(size) must be positive") }
            return [c, size.h, size.w]
        case let (nil, scale?):
            let out = [Double(h) * scale.h, Double(w) * scale.w].map { $0.rounded(.down) }
            guard scale.h > 0, scale.w > 0, out.allSatisfy({ $0 >= 1 && $0 < Double(1 << 24) }) else {
                throw TensorError("scale_factor \(scale) must be positive and give a non-empty output below 2^24")
            }
            return [c, Int(out[0]), Int(out[1])]
        default:
            throw TensorError("exactly one of size and scale_factor must be given")
        }
    }

    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] { [] }
}

/// `F.pad` over the last two axes: `pad` = (left, right) or (left, right, top, bottom), each ≥ 0;
/// mode "constant" (the default, filled with `value`), "reflect" or "replicate".
public enum PadSchema: OpSchema {
    public struct Config: OpConfig {
        public var pad: [Int]
        public var mode: String?
        public var value: Double?
        public static let attributes = ["pad", "mode", "value"]
        public init(pad: [Int], mode: String? = nil, value: Double? = nil) { (self.pad, self.mode, self.value) = (pad, mode, value) }
    }
    public static let kind = "pad"

    /// (left, right, top, bottom), checked.
    public static func pads(_ config: Config) throws -> (left: Int, right: Int, top: Int, bottom: Int) {
        guard config.pad.count == 2 || config.pad.count == 4 else { throw TensorError("pad \(config.pad) must hold 2 or 4 numbers") }
        guard config.pad.allSatisfy({ $0 >= 0 && $0 < 1 << 24 }) else { throw TensorError("pad \(config.pad) must be non-negative") }
        let p = config.pad + [0, 0]
        return (p[0], p[1], p[2], p[3])
    }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let p = try pads(config)
        let mode = config.mode ?? "constant"
        guard ["constant", "reflect", "replicate"].contains(mode) else { throw TensorError("mode '\(mode)' is not supported (constant, reflect or replicate)") }
        if mode != "constant", config.value != nil { throw TensorError("value applies to mode constant only") }
        guard var x = inputs.first, x.count >= (config.pad.count == 4 ? 2 : 1) else {
            throw TensorError("pad \(config.pad) needs an input of rank ≥ \(config.pad.count / 2) after the batch axis")
        }
        let r = x.count
        x[r - 1] += p.left + p.right
        if config.pad.count == 4 { x[r - 2] += p.top + p.bottom }
        if mode == "reflect" {
            let inputs = inputs[0]
            guard p.left < inputs[r - 1], p.right < inputs[r - 1], config.pad.count == 2 || (p.top < inputs[r - 2] && p.bottom < inputs[r - 2]) else {
                throw TensorError("reflect padding \(config.pad) must be below the padded axes' sizes")
            }
        }
        return x
    }

    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] { [] }
}
