import Foundation
import PrismCL

/// Uniform in ±1/√fanIn: PyTorch's default initialisation of Linear and Conv2d weights and biases
/// (kaiming_uniform with a = √5 gives exactly this bound for the weights).
func defaultInitialization(_ shape: [Int], fanIn: Int, seed: UInt64, engine: Engine) throws -> Tensor {
    let bound = 1 / Float(max(fanIn, 1)).squareRoot()
    return try Tensor.uniform(shape, low: -bound, high: bound, seed: seed, engine: engine, requiresGrad: true)
}

/// y = x·Wᵀ + b, with W [out, in] (PyTorch's layout); optionally followed by a fused ReLU.
public final class Linear: ReLUFusable {
    public typealias Schema = LinearSchema
    public typealias Config = LinearSchema.Config

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
    public typealias Schema = Conv2DSchema
    public typealias Config = Conv2DSchema.Config

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

/// Max pooling, like `nn.MaxPool2d`.
public final class MaxPool2DLayer: Op {
    public typealias Schema = MaxPool2DSchema
    public let config: Pool2DConfig
    public var kernel: (Int, Int) { config.kernel_size.pair }
    public var stride: (Int, Int) { config.strides }
    public init(config: Pool2DConfig, inputs: Shapes, seed: UInt64, engine: Engine) { self.config = config }
    public init(kernel: Int, stride: Int) { config = Pool2DConfig(kernel_size: SizePair(kernel), stride: SizePair(stride)) }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try maxPool2d(inputs[0], kernel: kernel, stride: stride, padding: config.paddings, ceilMode: config.ceil_mode ?? false)
    }
}

/// Average pooling, like `nn.AvgPool2d` (padding counts in the divisor unless `count_include_pad` is false).
public final class AvgPool2DLayer: Op {
    public typealias Schema = AvgPool2DSchema
    public let config: Pool2DConfig
    public var kernel: (Int, Int) { config.kernel_size.pair }
    public var stride: (Int, Int) { config.strides }
    public init(config: Pool2DConfig, inputs: Shapes, seed: UInt64, engine: Engine) { self.config = config }
    public init(kernel: Int, stride: Int) { config = Pool2DConfig(kernel_size: SizePair(kernel), stride: SizePair(stride)) }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try avgPool2d(inputs[0], kernel: kernel, stride: stride, padding: config.paddings, ceilMode: config.ceil_mode ?? false,
                      countIncludePad: config.count_include_pad ?? true)
    }
}

public final class ReLU: Op {
    public typealias Schema = ReLUSchema
    public let config = NoConfig()
    public init() {}
    public convenience init(config: NoConfig, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.init() }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].relu() }
}

/// GELU, like `nn.GELU(approximate=…)`: "none" (erf) or "tanh".
public final class GELU: Op {
    public typealias Schema = GELUSchema
    public typealias Config = GELUSchema.Config
    public let config: Config
    public init() { config = Config() }
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        guard ["none", "tanh"].contains(config.approximate ?? "none") else {
            throw TensorError("gelu: approximate must be \"none\" or \"tanh\", got \"\(config.approximate ?? "")\"")
        }
        self.config = config
    }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].gelu(approximate: config.approximate == "tanh") }
}

public final class Sigmoid: Op {
    public typealias Schema = SigmoidSchema
    public let config = NoConfig()
    public init(config: NoConfig, inputs: Shapes, seed: UInt64, engine: Engine) throws {}
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].sigmoid() }
}

public final class Tanh: Op {
    public typealias Schema = TanhSchema
    public let config = NoConfig()
    public init(config: NoConfig, inputs: Shapes, seed: UInt64, engine: Engine) throws {}
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].tanh() }
}

/// [N, …] → the axes start_dim…end_dim (counted with the batch, as `nn.Flatten`) merged into one.
public final class Flatten: Op {
    public typealias Schema = FlattenSchema
    public typealias Config = FlattenSchema.Config
    public let config: Config
    public init() { config = Config() }
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.config = config }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        return try x.reshaped([x.shape[0]] + FlattenSchema.outputShape(config, inputs: [Array(x.shape.dropFirst())]))
    }
}

/// Softmax over one axis (`nn.Softmax(dim)`, default the last).
public final class Softmax: Op {
    public typealias Schema = SoftmaxSchema
    public typealias Config = SoftmaxSchema.Config
    public let config: Config
    public init() { config = Config() }
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        _ = try SoftmaxSchema.axis(config, rank: inputs[0].count)
        self.config = config
    }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        return try alongLastAxis(x, axis: try SoftmaxSchema.axis(config, rank: x.rank - 1) + 1) { try $0.softmax() }
    }
}

/// Inverted dropout (`nn.Dropout(p)`): in training each element is zeroed with probability p and
/// the rest scaled by 1 / (1 − p); identity in evaluation. Each training call draws a new mask from
/// (seed, call number), so a run is reproducible and a resumed run continues the sequence.
public final class Dropout: Op {
    public typealias Schema = DropoutSchema
    public typealias Config = DropoutSchema.Config
    public let probability: Float
    public let seed: UInt64
    /// Training calls so far (saved with checkpoints).
    public var calls: UInt64 = 0
    /// Data-parallel training: the position in the whole batch of the first example this copy sees
    /// (its slice's start), so that it draws the whole batch's masks for its examples; 0 otherwise.
    public var exampleOffset = 0

    public init(probability: Float, seed: UInt64) throws {
        guard probability >= 0, probability < 1 else { throw TensorError("dropout: probability \(probability) outside [0, 1)") }
        (self.probability, self.seed) = (probability, seed)
    }

    public convenience init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        try self.init(probability: Float(config.p ?? 0.5), seed: seed)
    }

    public var config: Config { Config(p: Double(String(describing: probability)) ?? Double(probability)) }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        guard training, probability > 0 else { return x }
        var mixer = SplitMix64(seed: seed ^ (calls &* 0x9E37_79B9_7F4A_7C15))
        calls += 1
        // The tensor is batch-major: a slice's elements start exampleOffset examples into the batch's.
        let perExample = x.rank > 0 && x.shape[0] > 0 ? x.count / x.shape[0] : 0
        return try dropout(x, p: probability, seed: mixer.next(), training: true,
                           elementOffset: UInt64(exampleOffset) * UInt64(perExample))
    }
}

/// Concatenation along an axis (`torch.cat(…, dim)`; dim counts the batch axis, default 1: channels).
public final class Cat: Op {
    public typealias Schema = CatSchema
    public typealias Config = CatSchema.Config
    public let config: Config
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.config = config }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try concat(inputs, axis: CatSchema.axis(config, rank: inputs[0].rank - 1))
    }
}
