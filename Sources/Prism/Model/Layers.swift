import Foundation
import PrismCL

/// The checked length of a window sliding over `length` (sizes come from files): PyTorch's
/// ⌊(length + 2·padding − dilation·(kernel − 1) − 1) / stride⌋ + 1, or with `ceil` the ceiling,
/// dropping a last window that would start in the right padding.
/// - Throws: `TensorError` for a non-positive kernel, stride or dilation, a negative padding, an
///   overflow, or an empty output.
func slidingLength(_ length: Int, kernel: Int, stride: Int, padding: Int, dilation: Int = 1, ceil: Bool = false) throws -> Int {
    guard kernel > 0, stride > 0, dilation > 0, padding >= 0 else {
        throw TensorError("needs a positive kernel, stride and dilation and a non-negative padding (kernel \(kernel), stride \(stride), padding \(padding), dilation \(dilation))")
    }
    guard let span = HostMemory.product([dilation, kernel - 1]), let twice = HostMemory.product([padding, 2]),
          case let (padded, false) = length.addingReportingOverflow(twice), padded <= Int(Int32.max) else {
        throw TensorError("padding \(padding) or dilation \(dilation) is too large")
    }
    let reach = padded - span - 1
    guard reach >= 0 else { throw TensorError("output is empty (window \(span + 1) over \(padded) padded elements)") }
    var out = (ceil ? (reach + stride - 1) / stride : reach / stride) + 1
    if ceil, (out - 1) * stride >= length + padding { out -= 1 }
    return out
}

/// The per-example shape is [C, H, W] (a 2-D op's input).
func requireImage(_ inputs: Shapes, channels: Int? = nil) throws -> (c: Int, h: Int, w: Int) {
    guard let x = inputs.first, x.count == 3, channels == nil || x[0] == channels else {
        throw TensorError("expects [\(channels.map(String.init) ?? "C"), H, W]")
    }
    return (x[0], x[1], x[2])
}

/// Uniform in ±1/√fanIn: PyTorch's default initialisation of Linear and Conv2d weights and biases
/// (kaiming_uniform with a = √5 gives exactly this bound for the weights).
func defaultInitialization(_ shape: [Int], fanIn: Int, seed: UInt64, engine: Engine) throws -> Tensor {
    let bound = 1 / Float(max(fanIn, 1)).squareRoot()
    return try Tensor.uniform(shape, low: -bound, high: bound, seed: seed, engine: engine, requiresGrad: true)
}

/// y = x·Wᵀ + b, with W [out, in] (PyTorch's layout); optionally followed by a fused ReLU.
public final class Linear: ReLUFusable {
    public struct Config: OpConfig {
        public var in_features: Int
        public var out_features: Int
        public var bias: Bool?
        public static let attributes = ["in_features", "out_features", "bias"]
        public init(in_features: Int, out_features: Int, bias: Bool? = nil) {
            (self.in_features, self.out_features, self.bias) = (in_features, out_features, bias)
        }
    }
    public static let kind = "linear"

    public let weight: Tensor
    public let bias: Tensor?

    public init(weight: Tensor, bias: Tensor?) throws {
        guard weight.rank == 2 else { throw TensorError("linear: weight must be [out, in], got \(weight.shape)") }
        if let bias, bias.shape != [weight.shape[0]] {
            throw TensorError.shape("linear", "bias must have shape [\(weight.shape[0])]", bias.shape, weight.shape)
        }
        self.weight = weight
        self.bias = bias
    }

    /// Initialized like `nn.Linear(inFeatures, outFeatures)`.
    public convenience init(inFeatures: Int, outFeatures: Int, bias: Bool = true, seed: UInt64, engine: Engine) throws {
        guard inFeatures > 0, outFeatures > 0 else { throw TensorError("linear: sizes must be positive: \(inFeatures) → \(outFeatures)") }
        try self.init(weight: try defaultInitialization([outFeatures, inFeatures], fanIn: inFeatures, seed: seed, engine: engine),
                      bias: bias ? try defaultInitialization([outFeatures], fanIn: inFeatures, seed: seed &+ 1, engine: engine) : nil)
    }

    public convenience init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        try self.init(inFeatures: config.in_features, outFeatures: config.out_features, bias: config.bias ?? true, seed: seed, engine: engine)
    }

    public var config: Config { Config(in_features: weight.shape[1], out_features: weight.shape[0], bias: bias != nil) }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard config.in_features > 0, config.out_features > 0 else { throw TensorError("needs positive sizes") }
        guard let x = inputs.first, x.last == config.in_features else { throw TensorError("expects \(config.in_features) features on the last axis") }
        return Array(x.dropLast()) + [config.out_features]
    }

    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] {
        [("weight", [config.out_features, config.in_features])] + (config.bias ?? true ? [("bias", [config.out_features])] : [])
    }

    public static func flops(_ config: Config, inputs: Shapes, output: [Int]) -> Double {
        2 * Double(config.in_features) * Double(config.out_features) * Double(output.dropLast().reduce(1, *))
    }

    public var parameters: [(name: String, tensor: Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try linear(inputs[0], weight: weight, bias: bias)
    }

    public func forward(_ x: Tensor, weight: Tensor, bias: Tensor?, relu: Bool) throws -> Tensor {
        try linear(x, weight: weight, bias: bias, relu: relu)
    }
}

/// 2-D convolution, like `nn.Conv2d`: rectangular kernels, per-axis stride, padding and dilation,
/// groups (depthwise included), optional bias.
public final class Conv2DLayer: ReLUFusable {
    public struct Config: OpConfig {
        public var in_channels: Int
        public var out_channels: Int
        public var kernel_size: SizePair
        public var stride: SizePair?
        public var padding: SizePair?
        public var dilation: SizePair?
        public var groups: Int?
        public var bias: Bool?
        public static let attributes = ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"]
    }
    public static let kind = "conv2d"

    public let weight: Tensor
    public let bias: Tensor?
    public let stride: (Int, Int)
    public let padding: (Int, Int)
    public let dilation: (Int, Int)
    public let groups: Int

    public init(weight: Tensor, bias: Tensor?, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1),
                groups: Int = 1) throws {
        guard weight.rank == 4 else { throw TensorError("conv2d: weight must be [K, C/groups, R, S], got \(weight.shape)") }
        guard groups >= 1, weight.shape[0] % groups == 0 else {
            throw TensorError("conv2d: \(weight.shape[0]) output channels do not split into \(groups) groups")
        }
        self.weight = weight
        self.bias = bias
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
    }

    /// Initialized like `nn.Conv2d(inChannels, outChannels, kernel, stride, padding)`.
    public convenience init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                            seed: UInt64, engine: Engine) throws {
        try self.init(config: Config(in_channels: inChannels, out_channels: outChannels, kernel_size: SizePair(kernel),
                                      stride: SizePair(stride), padding: SizePair(padding)),
                      inputs: [], seed: seed, engine: engine)
    }

    public convenience init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        let (c, k, kernel) = (config.in_channels, config.out_channels, config.kernel_size)
        guard c > 0, k > 0, kernel.h > 0, kernel.w > 0 else {
            throw TensorError("conv2d: sizes must be positive: \(c) → \(k), kernel \(kernel)")
        }
        let groups = config.groups ?? 1
        guard groups >= 1, c % groups == 0, k % groups == 0 else {
            throw TensorError("conv2d: \(c) input and \(k) output channels do not split into \(groups) groups")
        }
        let fanIn = c / groups * kernel.h * kernel.w
        try self.init(weight: try defaultInitialization([k, c / groups, kernel.h, kernel.w], fanIn: fanIn, seed: seed, engine: engine),
                      bias: config.bias ?? true ? try defaultInitialization([k], fanIn: fanIn, seed: seed &+ 1, engine: engine) : nil,
                      stride: (config.stride ?? SizePair(1)).pair, padding: (config.padding ?? SizePair(0)).pair,
                      dilation: (config.dilation ?? SizePair(1)).pair, groups: groups)
    }

    public var config: Config {
        Config(in_channels: weight.shape[1] * groups, out_channels: weight.shape[0], kernel_size: SizePair(weight.shape[2], weight.shape[3]),
               stride: SizePair(stride.0, stride.1), padding: SizePair(padding.0, padding.1), dilation: SizePair(dilation.0, dilation.1),
               groups: groups, bias: bias != nil)
    }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let groups = config.groups ?? 1
        guard config.in_channels > 0, config.out_channels > 0, groups > 0 else { throw TensorError("needs positive channel counts and groups") }
        guard config.in_channels % groups == 0, config.out_channels % groups == 0 else {
            throw TensorError("\(config.in_channels) input and \(config.out_channels) output channels do not split into \(groups) groups")
        }
        let (_, h, w) = try requireImage(inputs, channels: config.in_channels)
        let stride = config.stride ?? SizePair(1), padding = config.padding ?? SizePair(0), dilation = config.dilation ?? SizePair(1)
        return [config.out_channels,
                try slidingLength(h, kernel: config.kernel_size.h, stride: stride.h, padding: padding.h, dilation: dilation.h),
                try slidingLength(w, kernel: config.kernel_size.w, stride: stride.w, padding: padding.w, dilation: dilation.w)]
    }

    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] {
        let groups = max(config.groups ?? 1, 1)
        return [("weight", [config.out_channels, config.in_channels / groups, config.kernel_size.h, config.kernel_size.w])]
            + (config.bias ?? true ? [("bias", [config.out_channels])] : [])
    }

    public static func flops(_ config: Config, inputs: Shapes, output: [Int]) -> Double {
        let groups = Double(max(config.groups ?? 1, 1))
        return 2 * Double(config.out_channels) * Double(config.in_channels) / groups * Double(config.kernel_size.h * config.kernel_size.w)
            * Double(output.dropFirst().reduce(1, *))
    }

    public var parameters: [(name: String, tensor: Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try forward(inputs[0], weight: weight, bias: bias, relu: false)
    }

    public func forward(_ x: Tensor, weight: Tensor, bias: Tensor?, relu: Bool) throws -> Tensor {
        try conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups, relu: relu)
    }

    /// The layer with `weight` and `bias` (followed by a ReLU when `relu` is set) and 2×2 max pooling
    /// with stride 2, in one kernel; inference only, one group (see `conv2dMaxPool2x2`).
    public func forwardPooled(_ x: Tensor, weight: Tensor, bias: Tensor?, relu: Bool) throws -> Tensor {
        try conv2dMaxPool2x2(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, relu: relu)
    }
}

/// The attributes of `nn.MaxPool2d` and `nn.AvgPool2d`.
public struct Pool2DConfig: OpConfig {
    public var kernel_size: SizePair
    public var stride: SizePair?
    public var padding: SizePair?
    public var ceil_mode: Bool?
    public var count_include_pad: Bool?
    public static let attributes = ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"]

    var strides: (Int, Int) { (stride ?? kernel_size).pair }
    var paddings: (Int, Int) { (padding ?? SizePair(0)).pair }

    func outputShape(_ inputs: Shapes, op: String) throws -> [Int] {
        let (c, h, w) = try requireImage(inputs)
        if op == "maxpool2d", count_include_pad != nil { throw TensorError("count_include_pad applies to avgpool2d only") }
        let ceil = ceil_mode ?? false
        let (ph, pw) = paddings
        guard 2 * ph <= kernel_size.h, 2 * pw <= kernel_size.w else {
            throw TensorError("padding \(padding ?? SizePair(0)) is more than half the kernel \(kernel_size)")
        }
        return [c, try slidingLength(h, kernel: kernel_size.h, stride: strides.0, padding: ph, ceil: ceil),
                try slidingLength(w, kernel: kernel_size.w, stride: strides.1, padding: pw, ceil: ceil)]
    }
}

/// Max pooling, like `nn.MaxPool2d`.
public final class MaxPool2DLayer: Op {
    public static let kind = "maxpool2d"
    public let config: Pool2DConfig
    public var kernel: (Int, Int) { config.kernel_size.pair }
    public var stride: (Int, Int) { config.strides }
    public init(config: Pool2DConfig, inputs: Shapes, seed: UInt64, engine: Engine) { self.config = config }
    public init(kernel: Int, stride: Int) { config = Pool2DConfig(kernel_size: SizePair(kernel), stride: SizePair(stride)) }
    public static func outputShape(_ config: Pool2DConfig, inputs: Shapes) throws -> [Int] { try config.outputShape(inputs, op: kind) }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try maxPool2d(inputs[0], kernel: kernel, stride: stride, padding: config.paddings, ceilMode: config.ceil_mode ?? false)
    }
}

/// Average pooling, like `nn.AvgPool2d` (padding counts in the divisor unless `count_include_pad` is false).
public final class AvgPool2DLayer: Op {
    public static let kind = "avgpool2d"
    public let config: Pool2DConfig
    public var kernel: (Int, Int) { config.kernel_size.pair }
    public var stride: (Int, Int) { config.strides }
    public init(config: Pool2DConfig, inputs: Shapes, seed: UInt64, engine: Engine) { self.config = config }
    public init(kernel: Int, stride: Int) { config = Pool2DConfig(kernel_size: SizePair(kernel), stride: SizePair(stride)) }
    public static func outputShape(_ config: Pool2DConfig, inputs: Shapes) throws -> [Int] { try config.outputShape(inputs, op: kind) }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try avgPool2d(inputs[0], kernel: kernel, stride: stride, padding: config.paddings, ceilMode: config.ceil_mode ?? false,
                      countIncludePad: config.count_include_pad ?? true)
    }
}

/// An op applied element by element: the output has the input's shape.
public protocol ElementwiseOp: Op {}
extension ElementwiseOp {
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] { inputs[0] }
}

public final class ReLU: ElementwiseOp {
    public static let kind = "relu"
    public let config = NoConfig()
    public init() {}
    public convenience init(config: NoConfig, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.init() }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].relu() }
}

/// GELU, like `nn.GELU(approximate=…)`: "none" (erf) or "tanh".
public final class GELU: ElementwiseOp {
    public struct Config: OpConfig {
        public var approximate: String?
        public static let attributes = ["approximate"]
    }
    public static let kind = "gelu"
    public let config: Config
    public init() { config = Config() }
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        guard ["none", "tanh"].contains(config.approximate ?? "none") else {
            throw TensorError("gelu: approximate must be \"none\" or \"tanh\", got \"\(config.approximate ?? "")\"")
        }
        self.config = config
    }
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard ["none", "tanh"].contains(config.approximate ?? "none") else { throw TensorError("approximate must be \"none\" or \"tanh\"") }
        return inputs[0]
    }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].gelu(approximate: config.approximate == "tanh") }
}

public final class Sigmoid: ElementwiseOp {
    public static let kind = "sigmoid"
    public let config = NoConfig()
    public init(config: NoConfig, inputs: Shapes, seed: UInt64, engine: Engine) throws {}
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].sigmoid() }
}

public final class Tanh: ElementwiseOp {
    public static let kind = "tanh"
    public let config = NoConfig()
    public init(config: NoConfig, inputs: Shapes, seed: UInt64, engine: Engine) throws {}
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].tanh() }
}

/// [N, …] → the axes start_dim…end_dim (counted with the batch, as `nn.Flatten`) merged into one.
public final class Flatten: Op {
    public struct Config: OpConfig {
        public var start_dim: Int?
        public var end_dim: Int?
        public static let attributes = ["start_dim", "end_dim"]
    }
    public static let kind = "flatten"
    public let config: Config
    public init() { config = Config() }
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.config = config }

    /// The merged axes of a per-example shape (batch excluded).
    static func span(_ config: Config, rank: Int) throws -> ClosedRange<Int> {
        let full = rank + 1
        let start = config.start_dim ?? 1, end = config.end_dim ?? -1
        let s = start < 0 ? start + full : start, e = end < 0 ? end + full : end
        guard s >= 1, e < full, s <= e else { throw TensorError("start_dim \(start) and end_dim \(end) must name axes after the batch axis, start ≤ end") }
        return (s - 1)...(e - 1)
    }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let x = inputs[0]
        let span = try span(config, rank: x.count)
        guard let merged = HostMemory.product(Array(x[span])) else { throw TensorError("has more elements than an Int can count") }
        return Array(x[..<span.lowerBound]) + [merged] + Array(x[(span.upperBound + 1)...])
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        return try x.reshaped([x.shape[0]] + Self.outputShape(config, inputs: [Array(x.shape.dropFirst())]))
    }
}

/// Softmax over the last axis (`nn.Softmax(dim=-1)`).
public final class Softmax: ElementwiseOp {
    public struct Config: OpConfig {
        public var dim: Int?
        public static let attributes = ["dim"]
    }
    public static let kind = "softmax"
    public let config: Config
    public init() { config = Config() }
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.config = config }
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let last = inputs[0].count
        guard config.dim == nil || config.dim == -1 || config.dim == last else {
            throw TensorError("softmax runs over the last axis only (dim -1 or \(last)), got dim \(config.dim!)")
        }
        return inputs[0]
    }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].softmax() }
}

/// Inverted dropout (`nn.Dropout(p)`): in training each element is zeroed with probability p and
/// the rest scaled by 1 / (1 − p); identity in evaluation. Each training call draws a new mask from
/// (seed, call number), so a run is reproducible and a resumed run continues the sequence.
public final class Dropout: ElementwiseOp {
    public struct Config: OpConfig {
        public var p: Double?
        public static let attributes = ["p"]
    }
    public static let kind = "dropout"
    public let probability: Float
    public let seed: UInt64
    /// Training calls so far (saved with checkpoints).
    public var calls: UInt64 = 0

    public init(probability: Float, seed: UInt64) throws {
        guard probability >= 0, probability < 1 else { throw TensorError("dropout: probability \(probability) outside [0, 1)") }
        (self.probability, self.seed) = (probability, seed)
    }

    public convenience init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        try self.init(probability: Float(config.p ?? 0.5), seed: seed)
    }

    public var config: Config { Config(p: Double(String(describing: probability)) ?? Double(probability)) }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard let p = config.p ?? 0.5 as Double?, p >= 0, p < 1 else { throw TensorError("p \(config.p ?? 0) is outside [0, 1)") }
        return inputs[0]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        guard training, probability > 0 else { return x }
        var mixer = SplitMix64(seed: seed ^ (calls &* 0x9E37_79B9_7F4A_7C15))
        calls += 1
        return try dropout(x, p: probability, seed: mixer.next(), training: true)
    }
}

/// a + b (`torch.add`), b broadcast over a (same shape, or per-channel [C, 1, 1] and the like).
public final class Add: Op {
    public static let kind = "add"
    public static let arity = 2...2
    public let config = NoConfig()
    public init(config: NoConfig, inputs: Shapes, seed: UInt64, engine: Engine) throws {}
    public static func outputShape(_ config: NoConfig, inputs: Shapes) throws -> [Int] {
        guard Broadcast.of([2] + inputs[1], over: [2] + inputs[0]) != nil else {
            throw TensorError("the second input \(inputs[1]) does not broadcast over the first \(inputs[0])")
        }
        return inputs[0]
    }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].add(inputs[1]) }
}

/// Concatenation along an axis (`torch.cat(…, dim)`; dim counts the batch axis, default 1: channels).
public final class Cat: Op {
    public struct Config: OpConfig {
        public var dim: Int?
        public static let attributes = ["dim"]
    }
    public static let kind = "cat"
    public static let arity = 2...Int.max
    public let config: Config
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.config = config }

    static func axis(_ config: Config, rank: Int) throws -> Int {
        let dim = config.dim ?? 1
        let axis = dim < 0 ? dim + rank + 1 : dim
        guard axis >= 1, axis <= rank else { throw TensorError("dim \(dim) must name an axis after the batch axis") }
        return axis
    }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let first = inputs[0]
        let axis = try axis(config, rank: first.count) - 1
        var total = 0
        for shape in inputs {
            guard shape.count == first.count, shape.indices.allSatisfy({ $0 == axis || shape[$0] == first[$0] }) else {
                throw TensorError("inputs must agree on every axis but \(axis + 1)")
            }
            total += shape[axis]
        }
        var out = first
        out[axis] = total
        return out
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try concat(inputs, axis: Self.axis(config, rank: inputs[0].rank - 1))
    }
}
