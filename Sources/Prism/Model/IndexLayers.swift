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
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.config = config }

    public func forward(values: [GraphValue], training: Bool) throws -> GraphValue {
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

/// `torch.eq`, `torch.lt`, `torch.gt`: bool results, the second input broadcast over the first.
public final class CompareOp<Kind: ComparisonKind>: TypedOp {
    public typealias Schema = ComparisonSchema<Kind>
    public let config = NoConfig()
    public init(config: NoConfig, inputs: Shapes, seed: UInt64, engine: Engine) throws {}

    public func forward(values: [GraphValue], training: Bool) throws -> GraphValue {
        switch (values[0], values[1], Kind.name) {
        case let (.float(a), .float(b), "eq"): .integer(try a.equal(b))
        case let (.float(a), .float(b), "lt"): .integer(try a.less(b))
        case let (.float(a), .float(b), _): .integer(try a.greater(b))
        case let (.integer(a), .integer(b), "eq"): .integer(try a.equal(b))
        case let (.integer(a), .integer(b), "lt"): .integer(try a.less(b))
        case let (.integer(a), .integer(b), _): .integer(try a.greater(b))
        default: throw TensorError("\(Kind.name): compares two float32 or two integer values")
        }
    }
}

/// `torch.where(condition, a, b)`, the gradient sent to a where the condition holds, to b elsewhere.
public final class Where: TypedOp {
    public typealias Schema = WhereSchema
    public let config = NoConfig()
    public init(config: NoConfig, inputs: Shapes, seed: UInt64, engine: Engine) throws {}

    public func forward(values: [GraphValue], training: Bool) throws -> GraphValue {
        .float(try Tensor.where(try values[0].integer(), try values[1].float(), try values[2].float()))
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
