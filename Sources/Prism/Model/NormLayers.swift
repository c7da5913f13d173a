/// `nn.GroupNorm`: see `GroupNormSchema`. γ = 1 and β = 0 at initialization, as in PyTorch.
public final class GroupNorm: Op {
    public typealias Schema = GroupNormSchema
    public typealias Config = GroupNormSchema.Config
    public let config: Config
    public let weight: Tensor?
    public let bias: Tensor?

    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        self.config = config
        let affine = config.affine ?? true
        weight = affine ? try Tensor.ones([config.num_channels], engine: engine, requiresGrad: true) : nil
        bias = affine ? try Tensor.zeros([config.num_channels], engine: engine, requiresGrad: true) : nil
    }

    public var parameters: [(name: String, tensor: Tensor)] {
        (weight.map { [("weight", $0)] } ?? []) + (bias.map { [("bias", $0)] } ?? [])
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try groupNorm(inputs[0], groups: config.num_groups, weight: weight, bias: bias, eps: Float(config.eps ?? 1e-5))
    }
}

/// Group normalization of x [N, C, *]: each example's channels in `groups` groups, every group
/// normalized by its mean and biased variance over its channels and positions, then
/// y = x̂·γ[c] + β[c]. Composed of taped tensor ops (the backward is theirs).
/// - Throws: `TensorError` when C is not divisible by `groups` or γ, β are not [C].
public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
    guard x.rank >= 2, groups > 0, x.shape[1] % groups == 0 else {
        throw TensorError.shape("group_norm", "needs [N, C, *] with C divisible by \(groups) groups", x.shape, [groups])
    }
    let (n, c) = (x.shape[0], x.shape[1])
    let rest = x.count / max(n * c, 1)
    for p in [weight, bias].compactMap({ $0 }) where p.shape != [c] {
        throw TensorError.shape("group_norm", "weight and bias must be [C]", x.shape, p.shape)
    }
    let grouped = try x.reshaped([n, groups, (c / groups) * rest])
    let centered = try grouped.sub(try grouped.mean(axis: 2, keepDims: true))
    let variance = try centered.mul(centered).mean(axis: 2, keepDims: true)
    var y = try centered.div(try variance.shifted(by: eps).unary(.sqrt)).reshaped([n, c, rest])
    if let weight { y = try y.mul(try weight.reshaped([c, 1])) }
    if let bias { y = try y.add(try bias.reshaped([c, 1])) }
    return try y.reshaped(x.shape)
}

/// A constant repeated for every example (see `ExpandSchema`): `value` is a buffer, zero until loaded.
public final class Expand: TypedOp {
    public typealias Schema = ExpandSchema
    public typealias Config = ExpandSchema.Config
    public let config: Config
    public let value: Tensor

    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        self.config = config
        value = try Tensor.zeros(config.shape, engine: engine)
    }

    public var buffers: [(name: String, tensor: Tensor)] { [("value", value)] }

    /// The input gives the batch size only (it may be integer: token ids).
    public func forward(values: [GraphValue], training: Bool) throws -> GraphValue {
        .float(try Tensor.zeros([values[0].shape[0]] + config.shape, engine: value.engine).add(value))
    }
}

/// `torch.fake_quantize_per_tensor_affine` as a node (see `FakeQuantizeSchema`).
public final class FakeQuantize: Op {
    public typealias Schema = FakeQuantizeSchema
    public typealias Config = FakeQuantizeSchema.Config
    public let config: Config
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.config = config }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try inputs[0].fakeQuantize(scale: Float(config.scale), zeroPoint: config.zero_point, quantMin: config.quant_min, quantMax: config.quant_max)
    }
}
