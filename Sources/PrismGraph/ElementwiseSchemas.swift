import PrismFormats

// The schemas of the element-wise op kinds beyond the activations of Schemas.swift: PyTorch's
// binary functions (`torch.add`, `torch.sub`, `torch.mul`, `torch.div`, `torch.pow`) with
// broadcasting, its unary functions (`torch.neg`, `torch.sqrt`, …) and the activations with
// parameters (`nn.Hardsigmoid`, `nn.Hardtanh`, `nn.PReLU`).

/// The shape of a binary op of two graph values: the second broadcast over the first (both with
/// the batch axis, as `Broadcast.of` allows), giving the first's shape.
/// - Throws: `TensorError` naming both shapes when the second does not broadcast over the first.
func broadcastOutputShape(_ inputs: Shapes) throws -> [Int] {
    guard Broadcast.of([2] + inputs[1], over: [2] + inputs[0]) != nil else {
        throw TensorError("the second input \(inputs[1]) does not broadcast over the first \(inputs[0])")
    }
    return inputs[0]
}

/// Which function a `BinarySchema` is.
public protocol BinaryKind {
    /// The registry name: PyTorch's function name.
    static var name: String { get }
    /// The value of a constant operand before a model file sets it (so that input op other = input).
    static var identity: Double { get }
}
public enum AddKind: BinaryKind { public static let name = "add"; public static let identity = 0.0 }
public enum SubKind: BinaryKind { public static let name = "sub"; public static let identity = 0.0 }
public enum MulKind: BinaryKind { public static let name = "mul"; public static let identity = 1.0 }
public enum DivKind: BinaryKind { public static let name = "div"; public static let identity = 1.0 }
public enum PowKind: BinaryKind { public static let name = "pow"; public static let identity = 1.0 }

/// The attributes of a binary op: none with two inputs; with one, the constant operand `other` (a
/// buffer of the node, like a registered buffer in PyTorch) and which side it is on.
public struct BinaryConfig: OpConfig {
    /// The shape of the buffer `other` (no batch axis: it broadcasts over every example); only for a
    /// node with one input.
    public var other_shape: [Int]?
    /// True: other op input (`torch.sub(other, input)`, `2 ** x`); false (default): input op other.
    public var other_first: Bool?
    public static let attributes = ["other_shape", "other_first"]
    public init(other_shape: [Int]? = nil, other_first: Bool? = nil) { (self.other_shape, self.other_first) = (other_shape, other_first) }
}

/// `torch.add`, `torch.sub`, `torch.mul`, `torch.div`, `torch.pow`: two graph values, the second
/// broadcast over the first (same shape, per-channel [C, 1, 1], per-example [N, C, 1, 1] and the like,
/// as `Broadcast.of` allows); or one graph value and the constant buffer `other` broadcast over it,
/// on either side. The output has the (first) graph value's shape.
public struct BinarySchema<Kind: BinaryKind>: OpSchema {
    public typealias Config = BinaryConfig
    public static var kind: String { Kind.name }
    public static var arity: ClosedRange<Int> { 1...2 }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        if inputs.count == 2 {
            guard config.other_shape == nil, config.other_first == nil else {
                throw TensorError("other_shape and other_first are for a node with one input (the other a buffer)")
            }
            return try broadcastOutputShape(inputs)
        }
        guard let other = config.other_shape else {
            throw TensorError("takes 2 inputs, or 1 input and other_shape (the shape of the constant buffer 'other')")
        }
        let x = inputs[0]
        guard other.allSatisfy({ $0 > 0 }), HostMemory.product(other) != nil else { throw TensorError("other_shape \(other) must have positive sizes") }
        // `other` has no batch axis: after its leading 1s it must fit within one example.
        guard other.drop(while: { $0 == 1 }).count <= x.count, Broadcast.of(other, over: [2] + x) != nil else {
            throw TensorError("other_shape \(other) does not broadcast over the input \(x)")
        }
        return x
    }

    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] {
        inputs.count == 1 ? config.other_shape.map { [("other", $0)] } ?? [] : []
    }
}

public typealias AddSchema = BinarySchema<AddKind>
public typealias SubSchema = BinarySchema<SubKind>
public typealias MulSchema = BinarySchema<MulKind>
public typealias DivSchema = BinarySchema<DivKind>
public typealias PowSchema = BinarySchema<PowKind>

/// Which function a `UnarySchema` is.
public protocol UnaryKind { static var name: String { get } }
public enum NegKind: UnaryKind { public static let name = "neg" }
public enum SqrtKind: UnaryKind { public static let name = "sqrt" }
public enum ExpKind: UnaryKind { public static let name = "exp" }
public enum LogKind: UnaryKind { public static let name = "log" }
public enum ErfKind: UnaryKind { public static let name = "erf" }
public enum ReciprocalKind: UnaryKind { public static let name = "reciprocal" }

/// `torch.neg`, `torch.sqrt`, `torch.exp`, `torch.log`, `torch.erf`, `torch.reciprocal`.
public struct UnarySchema<Kind: UnaryKind>: ElementwiseSchema {
    public typealias Config = NoConfig
    public static var kind: String { Kind.name }
}

public typealias NegSchema = UnarySchema<NegKind>
public typealias SqrtSchema = UnarySchema<SqrtKind>
public typealias ExpSchema = UnarySchema<ExpKind>
public typealias LogSchema = UnarySchema<LogKind>
public typealias ErfSchema = UnarySchema<ErfKind>
public typealias ReciprocalSchema = UnarySchema<ReciprocalKind>

/// `nn.Hardsigmoid`: relu6(x + 3)/6, that is alpha·x + beta clamped to [0, 1] with alpha 1/6 and
/// beta 0.5; other alpha and beta are ONNX HardSigmoid's.
public enum HardsigmoidSchema: OpSchema {
    public struct Config: OpConfig {
        public var alpha: Double?
        public var beta: Double?
        public static let attributes = ["alpha", "beta"]
        public init(alpha: Double? = nil, beta: Double? = nil) { (self.alpha, self.beta) = (alpha, beta) }
    }
    public static let kind = "hardsigmoid"
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard (config.alpha ?? 0).isFinite, (config.beta ?? 0).isFinite else { throw TensorError("alpha and beta must be finite") }
        return inputs[0]
    }
}

/// `nn.Hardtanh(min_val, max_val)`: x clamped to [min_val, max_val] (`nn.ReLU6` is hardtanh(0, 6)).
public enum HardtanhSchema: OpSchema {
    public struct Config: OpConfig {
        public var min_val: Double?
        public var max_val: Double?
        public static let attributes = ["min_val", "max_val"]
        public init(min_val: Double? = nil, max_val: Double? = nil) { (self.min_val, self.max_val) = (min_val, max_val) }
    }
    public static let kind = "hardtanh"
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let low = config.min_val ?? -1, high = config.max_val ?? 1
        guard !low.isNaN, !high.isNaN, low <= high else { throw TensorError("needs min_val ≤ max_val, got \(low) and \(high)") }
        return inputs[0]
    }
}

/// `nn.PReLU(num_parameters, init)`: x for x > 0, weight·x otherwise; one weight, or one per channel
/// (axis 1 counted with the batch).
public enum PReLUSchema: OpSchema {
    public struct Config: OpConfig {
        public var num_parameters: Int?
        public var `init`: Double?
        public static let attributes = ["num_parameters", "init"]
        public init(num_parameters: Int? = nil, init value: Double? = nil) { (self.num_parameters, self.`init`) = (num_parameters, value) }
    }
    public static let kind = "prelu"
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let n = config.num_parameters ?? 1
        guard n == 1 || inputs[0].first == n else {
            throw TensorError("num_parameters \(n) must be 1 or the channel count (axis 1) of the input \(inputs[0])")
        }
        return inputs[0]
    }
    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] {
        [("weight", [max(config.num_parameters ?? 1, 1)])]
    }
}
