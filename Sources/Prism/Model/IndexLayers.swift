import Foundation
import PrismCL

// The ops with integer values: embeddings of token ids, index selection, comparisons, where and
// casts (their schemas in PrismGraph say which inputs are integer).

/// `nn.Embedding`: rows of `weight` [V, D] for integer ids; the table's gradient sums the rows'
/// uses in a fixed order (deterministic). `padding_idx` is read for inference (PyTorch zeroes that
/// row when it initializes a model); training such a model is refused, since PyTorch also keeps the
/// row's gradient at zero.
public final class Embedding: TypedOp {
    public typealias Schema = EmbeddingSchema
    public typealias Config = EmbeddingSchema.Config
    public let config: Config
    public let weight: Tensor

    /// N(0, 1) rows (PyTorch's initialization), the padding row zero.
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        self.config = config
        var rng = SplitMix64(seed: seed)
        let (v, d) = (config.num_embeddings, config.embedding_dim)
        var values = (0..<(v * d)).map { _ in rng.nextNormal() }
        if let p = config.padding_idx {
            let row = p < 0 ? p + v : p
            for j in 0..<d { values[row * d + j] = 0 }
        }
        weight = try Tensor(values, shape: [v, d], engine: engine, requiresGrad: true)
    }

    public var parameters: [(name: String, tensor: Tensor)] { [("weight", weight)] }

    public func forward(values: [GraphValue], training: Bool) throws -> GraphValue {
        if training, config.padding_idx != nil {
            throw TensorError("embedding: training with padding_idx (PyTorch keeps that row's gradient at zero) is not supported")
        }
        return .float(try embedding(weight, indices: try values[0].integer()))
    }
}

/// `torch.index_select(x, dim, index)`, the gradient scattered back to x.
public final class IndexSelect: TypedOp {
    public typealias Schema = IndexSelectSchema
    public typealias Config = IndexSelectSchema.Config
    public let config: Config
    /// The constant positions on the device, when the config holds them.
    public let constant: IntTensor?

    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        self.config = config
        let axis = try IndexSelectSchema.axis(config, rank: inputs[0].count)
        constant = try IndexSelectSchema.positions(config, size: inputs[0][axis - 1]).map { try IntTensor($0, shape: [$0.count], engine: engine) }
    }

    public func forward(values: [GraphValue], training: Bool) throws -> GraphValue {
        if let constant {
            let x = try values[0].float()
            return .float(try gather(x, axis: try IndexSelectSchema.axis(config, rank: x.rank - 1), indices: constant))
        }
        let x = try values[0].float(), index = try values[1].integer()
        guard index.rank == 2, index.shape[0] == x.shape[0] || index.shape[0] == 1 else {
            throw TensorError("index_select: positions of shape \(index.shape) for a batch of \(x.shape[0])")
        }
        let axis = try IndexSelectSchema.axis(config, rank: x.rank - 1)
        // One list of positions for the whole batch: PyTorch's index_select takes a 1-D index.
        let positions = try index.toArray()
        let k = index.shape[1]
        for row in 1..<index.shape[0] where Array(positions[(row * k)..<((row + 1) * k)]) != Array(positions[0..<k]) {
            throw TensorError("index_select: example \(row) selects other positions than example 0; one list for the batch is supported")
        }
        let first = try IntTensor(Array(positions[0..<k]), shape: [k], dtype: index.dtype, engine: x.engine)
        return .float(try gather(x, axis: axis, indices: first))
    }
}

/// `torch.eq`, `torch.lt`, `torch.gt`: bool results, the second input broadcast over the first (or a
/// number, `other`).
public final class CompareOp<Kind: ComparisonKind>: TypedOp {
    public typealias Schema = ComparisonSchema<Kind>
    public let config: Schema.Config
    public init(config: Schema.Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.config = config }

    public func forward(values: [GraphValue], training: Bool) throws -> GraphValue {
        var second = values.count > 1 ? values[1] : nil
        if second == nil, let other = config.other?.value {
            switch values[0] {
            case let .float(a): second = .float(try Tensor([Float(other)], shape: [1], engine: a.engine))
            case let .integer(a): second = .integer(try IntTensor([Int64(other)], shape: [1], dtype: a.dtype == .bool ? .int32 : a.dtype, engine: a.engine))
            }
        }
        switch (values[0], second, Kind.name) {
        case let (.float(a), .float(b)?, "eq"): return .integer(try a.equal(b))
        case let (.float(a), .float(b)?, "lt"): return .integer(try a.less(b))
        case let (.float(a), .float(b)?, _): return .integer(try a.greater(b))
        case let (.integer(a), .integer(b)?, "eq"): return .integer(try a.equal(b))
        case let (.integer(a), .integer(b)?, "lt"): return .integer(try a.less(b))
        case let (.integer(a), .integer(b)?, _): return .integer(try a.greater(b))
        default: throw TensorError("\(Kind.name): compares two float32 or two integer values")
        }
    }
}

/// `torch.where(condition, a, b)`, the gradient sent to a where the condition holds, to b elsewhere;
/// a or b may be numbers (`config.x`, `config.y`).
public final class Where: TypedOp {
    public typealias Schema = WhereSchema
    public let config: WhereSchema.Config
    public init(config: WhereSchema.Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.config = config }

    public func forward(values: [GraphValue], training: Bool) throws -> GraphValue {
        let condition = try values[0].integer()
        var rest = values.dropFirst().makeIterator()
        func operand(_ number: Scalar?) throws -> Tensor {
            if let number { return try Tensor.full(condition.shape, Float(number.value), engine: condition.engine) }
            guard let v = rest.next() else { throw TensorError("where: an input is missing") }
            return try v.float()
        }
        let a = try operand(config.x), b = try operand(config.y)
        return .float(try Tensor.where(condition, a, b))
    }
}

/// A model input besides the first (see `InputSchema`): `Model.forward(_:inputs:)` feeds it by name,
/// so the op itself never runs.
public final class InputNode: TypedOp {
    public typealias Schema = InputSchema
    public let config: InputSchema.Config
    public init(config: InputSchema.Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.config = config }

    public func forward(values: [GraphValue], training: Bool) throws -> GraphValue {
        throw TensorError("input: the model's inputs are fed by Model.forward, not run as an op")
    }
}

/// A value's axes of size 1 repeated (`x.expand(batch, *shape)`; see `BroadcastToSchema`).
public final class BroadcastTo: Op {
    public typealias Schema = BroadcastToSchema
    public let config: BroadcastToSchema.Config
    public init(config: BroadcastToSchema.Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.config = config }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try inputs[0].broadcast(to: [inputs[0].shape[0]] + config.shape)
    }
}

/// `Tensor.to(dtype)` between float32 and the integer types (truncating toward zero; values that
/// do not fit, NaN and infinities are refused).
public final class Cast: TypedOp {
    public typealias Schema = CastSchema
    public typealias Config = CastSchema.Config
    public let config: Config
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.config = config }

    public func forward(values: [GraphValue], training: Bool) throws -> GraphValue {
        switch (values[0], config.dtype) {
        case let (.float(x), .float32): return .float(x)
        case let (.integer(x), .float32): return .float(try x.toFloat())
        case let (.float(x), type):
            guard let integer = IntegerType(rawValue: type.rawValue) else { throw TensorError("cast: no integer type \(type.rawValue)") }
            return .integer(try x.toInteger(integer))
        case let (.integer(x), _): return .integer(x)
        }
    }
}
