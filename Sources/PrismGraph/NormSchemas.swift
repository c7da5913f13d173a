import PrismFormats

/// `nn.GroupNorm(num_groups, num_channels, eps, affine)`: per example [C, *], the channels split into
/// `num_groups` groups, each normalized over its channels and every position by its own mean and
/// (biased) variance, then scaled and shifted per channel. `num_groups` = C is an instance norm
/// (`nn.InstanceNorm2d(C, affine=True)`, ONNX InstanceNormalization), 1 a layer norm over [C, *].
public enum GroupNormSchema: OpSchema {
    public struct Config: OpConfig {
        public var num_groups: Int
        public var num_channels: Int
        public var eps: Double?
        public var affine: Bool?
        public static let attributes = ["num_groups", "num_channels", "eps", "affine"]
        public init(num_groups: Int, num_channels: Int, eps: Double? = nil, affine: Bool? = nil) {
            (self.num_groups, self.num_channels, self.eps, self.affine) = (num_groups, num_channels, eps, affine)
        }
    }
    public static let kind = "groupnorm"
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let (g, c) = (config.num_groups, config.num_channels)
        guard g > 0, c > 0, c % g == 0 else { throw TensorError("num_groups \(g) must be positive and divide num_channels \(c)") }
        guard (config.eps ?? 1e-5) > 0 else { throw TensorError("eps must be positive") }
        guard let x = inputs.first, x.first == c else { throw TensorError("expects [\(c), *] (channels first)") }
        return x
    }
    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] {
        config.affine ?? true ? [("weight", [config.num_channels]), ("bias", [config.num_channels])] : []
    }
}

/// A constant repeated for every example, as `token.expand(x.size(0), -1, -1)` makes it (a class
/// token before its concatenation): per example the buffer `value` of shape `shape`. The input
/// gives the batch size only; no gradient flows to it.
public enum ExpandSchema: OpSchema {
    public struct Config: OpConfig {
        public var shape: [Int]
        public static let attributes = ["shape"]
        public init(shape: [Int]) { self.shape = shape }
    }
    public static let kind = "expand"
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard !config.shape.isEmpty, config.shape.allSatisfy({ $0 > 0 }), HostMemory.product(config.shape) != nil else {
            throw TensorError("shape \(config.shape) must be non-empty with positive sizes")
        }
        return config.shape
    }
    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] { [("value", config.shape)] }
    public static func outputType(_ config: Config, inputs: [ElementType]) throws -> ElementType { .float32 }
}

/// `torch.fake_quantize_per_tensor_affine(x, scale, zero_point, quant_min, quant_max)`: x quantized
/// to integers in [quant_min, quant_max] and back (ONNX's QuantizeLinear → DequantizeLinear pair).
public enum FakeQuantizeSchema: ElementwiseSchema {
    public struct Config: OpConfig {
        public var scale: Double
        public var zero_point: Int
        public var quant_min: Int
        public var quant_max: Int
        public static let attributes = ["scale", "zero_point", "quant_min", "quant_max"]
    }
    public static let kind = "fake_quantize"
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard config.scale.isFinite, config.scale > 0, config.quant_min <= config.quant_max,
              (config.quant_min...config.quant_max).contains(config.zero_point) else {
            throw TensorError("needs a positive scale and quant_min ≤ zero_point ≤ quant_max")
        }
        return inputs[0]
    }
}
