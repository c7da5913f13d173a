import Foundation

// The element-wise graph ops beyond the activations of Layers.swift and PyTorchLayers.swift:
// PyTorch's binary functions with broadcasting (two graph values, or one and a constant buffer),
// its unary functions, and the activations Hardsigmoid, Hardtanh and PReLU.

/// How a `BinaryLayer` runs on the device: the kernel's op, and the reflected one for a constant
/// that comes first.
public protocol DeviceBinaryKind: BinaryKind {
    static var op: BinaryOp { get }
    /// other op input, with `other` (the operand broadcast) passed second.
    static var reflected: BinaryOp { get }
}
extension AddKind: DeviceBinaryKind { public static let op = BinaryOp.add, reflected = BinaryOp.add }
extension SubKind: DeviceBinaryKind { public static let op = BinaryOp.sub, reflected = BinaryOp.rsub }
extension MulKind: DeviceBinaryKind { public static let op = BinaryOp.mul, reflected = BinaryOp.mul }
extension DivKind: DeviceBinaryKind { public static let op = BinaryOp.div, reflected = BinaryOp.rdiv }
extension PowKind: DeviceBinaryKind { public static let op = BinaryOp.pow, reflected = BinaryOp.rpow }

/// a op b (`torch.add`, `torch.sub`, `torch.mul`, `torch.div`, `torch.pow`) with b broadcast over a:
/// two graph values, or one and the constant buffer `other` (set from the model file; before that
/// the op's identity, 0 or 1) on the side `other_first` says.
public final class BinaryLayer<Kind: DeviceBinaryKind>: Op {
    public typealias Schema = BinarySchema<Kind>
    public let config: BinaryConfig
    /// The constant operand of a node with one input.
    public let other: Tensor?

    public init(config: BinaryConfig, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        self.config = config
        if inputs.count == 1, let shape = config.other_shape {
            other = try Tensor([Float](repeating: Float(Kind.identity), count: shape.reduce(1, *)), shape: shape, engine: engine)
        } else {
            other = nil
        }
    }

    public var buffers: [(name: String, tensor: Tensor)] { other.map { [("other", $0)] } ?? [] }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try forward(inputs, relu: false) }
}

extension BinaryLayer: ReLUFusableBinary {
    public func forward(_ inputs: [Tensor], relu: Bool) throws -> Tensor {
        if inputs.count == 2 { return try inputs[0].binary(Kind.op, inputs[1], relu: relu) }
        guard let other else { throw TensorError("\(Kind.name): one input and no other_shape") }
        return try inputs[0].binary(config.other_first ?? false ? Kind.reflected : Kind.op, other, relu: relu)
    }
}

public typealias Add = BinaryLayer<AddKind>
public typealias Sub = BinaryLayer<SubKind>
public typealias Mul = BinaryLayer<MulKind>
public typealias Div = BinaryLayer<DivKind>
public typealias Pow = BinaryLayer<PowKind>

/// How a `UnaryLayer` runs on the device.
public protocol DeviceUnaryKind: UnaryKind {
    static func apply(_ x: Tensor) throws -> Tensor
}
extension NegKind: DeviceUnaryKind { public static func apply(_ x: Tensor) throws -> Tensor { try x.scaled(by: -1) } }
extension SqrtKind: DeviceUnaryKind { public static func apply(_ x: Tensor) throws -> Tensor { try x.sqrt() } }
extension ExpKind: DeviceUnaryKind { public static func apply(_ x: Tensor) throws -> Tensor { try x.exp() } }
extension LogKind: DeviceUnaryKind { public static func apply(_ x: Tensor) throws -> Tensor { try x.log() } }
extension ErfKind: DeviceUnaryKind { public static func apply(_ x: Tensor) throws -> Tensor { try x.erf() } }
extension ReciprocalKind: DeviceUnaryKind { public static func apply(_ x: Tensor) throws -> Tensor { try x.reciprocal() } }

/// `torch.neg`, `torch.sqrt`, `torch.exp`, `torch.log`, `torch.erf`, `torch.reciprocal`.
public final class UnaryLayer<Kind: DeviceUnaryKind>: Op {
    public typealias Schema = UnarySchema<Kind>
    public let config = NoConfig()
    public init(config: NoConfig, inputs: Shapes, seed: UInt64, engine: Engine) throws {}
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try Kind.apply(inputs[0]) }
}

public typealias Neg = UnaryLayer<NegKind>
public typealias Sqrt = UnaryLayer<SqrtKind>
public typealias Exp = UnaryLayer<ExpKind>
public typealias Log = UnaryLayer<LogKind>
public typealias Erf = UnaryLayer<ErfKind>
public typealias Reciprocal = UnaryLayer<ReciprocalKind>

/// `nn.Hardsigmoid`: relu6(x + 3)/6; with alpha and beta (ONNX HardSigmoid) alpha·x + beta clamped to [0, 1].
public final class Hardsigmoid: Op {
    public typealias Schema = HardsigmoidSchema
    public let config: HardsigmoidSchema.Config
    public init(config: HardsigmoidSchema.Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.config = config }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try inputs[0].hardsigmoid(alpha: Float(config.alpha ?? 1.0 / 6), beta: Float(config.beta ?? 0.5))
    }
}

/// `nn.Hardtanh(min_val, max_val)`: x clamped to [min_val, max_val].
public final class Hardtanh: Op {
    public typealias Schema = HardtanhSchema
    public let config: HardtanhSchema.Config
    public init(config: HardtanhSchema.Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.config = config }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try inputs[0].hardtanh(min: Float(config.min_val ?? -1), max: Float(config.max_val ?? 1))
    }
}

/// `nn.PReLU(num_parameters, init)`: x for x > 0, weight·x otherwise; the weight (trained) starts at
/// `init` (0.25).
public final class PReLU: Op {
    public typealias Schema = PReLUSchema
    public let config: PReLUSchema.Config
    public let weight: Tensor

    public init(config: PReLUSchema.Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        let n = config.num_parameters ?? 1
        guard n > 0 else { throw TensorError("prelu: num_parameters must be positive, got \(n)") }
        self.config = config
        weight = try Tensor([Float](repeating: Float(config.`init` ?? 0.25), count: n), shape: [n], engine: engine, requiresGrad: true)
    }

    public var parameters: [(name: String, tensor: Tensor)] { [("weight", weight)] }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].prelu(weight: weight) }
}
