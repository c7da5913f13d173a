/// `nn.ConvTranspose2d`: see `ConvTranspose2DSchema` and `convTranspose2d`.
public final class ConvTranspose2DLayer: Op {
    public typealias Schema = ConvTranspose2DSchema
    public typealias Config = ConvTranspose2DSchema.Config
    public let config: Config
    public let weight: Tensor
    public let bias: Tensor?

    /// Initialized as PyTorch does: uniform in ±1/√fan_in with fan_in = (out_channels / groups)·kH·kW
    /// (the weight's second axis times the kernel area).
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        let (c, k, kernel) = (config.in_channels, config.out_channels, config.kernel_size)
        guard c > 0, k > 0, kernel.h > 0, kernel.w > 0 else {
            throw TensorError("conv_transpose2d: sizes must be positive: \(c) → \(k), kernel \(kernel)")
        }
        let groups = config.groups ?? 1
        guard groups >= 1, c % groups == 0, k % groups == 0 else {
            throw TensorError("conv_transpose2d: \(c) input and \(k) output channels do not split into \(groups) groups")
        }
        self.config = config
        let fanIn = k / groups * kernel.h * kernel.w
        weight = try defaultInitialization([c, k / groups, kernel.h, kernel.w], fanIn: fanIn, seed: seed, engine: engine)
        bias = config.bias ?? true ? try defaultInitialization([k], fanIn: fanIn, seed: seed &+ 1, engine: engine) : nil
    }

    public var parameters: [(name: String, tensor: Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try convTranspose2d(inputs[0], weight: weight, bias: bias, stride: (config.stride ?? SizePair(1)).pair,
                            padding: (config.padding ?? SizePair(0)).pair, outputPadding: (config.output_padding ?? SizePair(0)).pair,
                            dilation: (config.dilation ?? SizePair(1)).pair, groups: config.groups ?? 1)
    }
}

/// `nn.Upsample` / `F.interpolate`: see `UpsampleSchema` and `upsample`.
public final class Upsample: Op {
    public typealias Schema = UpsampleSchema
    public typealias Config = UpsampleSchema.Config
    public let config: Config

    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        _ = try UpsampleSchema.mode(config)
        self.config = config
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        let shape = try UpsampleSchema.outputShape(config, inputs: [Array(x.shape.dropFirst())])
        let mode: UpsampleMode = try UpsampleSchema.mode(config) == "bilinear" ? .bilinear : .nearest
        return try upsample(x, size: (shape[1], shape[2]), scale: config.scale_factor.map { ($0.h, $0.w) }, mode: mode,
                            alignCorners: config.align_corners ?? false)
    }
}

/// `F.pad` over the last two axes: see `PadSchema` and `pad2d`.
public final class Pad: Op {
    public typealias Schema = PadSchema
    public typealias Config = PadSchema.Config
    public let config: Config

    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        _ = try PadSchema.pads(config)
        self.config = config
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        guard let mode = PadMode(rawValue: config.mode ?? "constant") else { throw TensorError("pad: mode '\(config.mode ?? "")' is not supported") }
        return try pad2d(inputs[0], pads: try PadSchema.pads(config), mode: mode, value: Float(config.value ?? 0))
    }
}
