import Foundation

// The layout, matrix-product and reduction ops of a graph (`reshape`, `permute`, `narrow`,
// `matmul`, `log_softmax`, `mean`, `sum`, `amax`; `softmax` over any axis is `Softmax` in
// Layers.swift): each composes taped tensor ops, so its backward is the tape's.

/// `x.reshape(x.shape[0], *shape)`.
public final class Reshape: Op {
    public typealias Schema = ReshapeSchema
    public let config: ReshapeSchema.Config
    let shape: [Int]
    public init(config: ReshapeSchema.Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        self.config = config
        shape = try ReshapeSchema.outputShape(config, inputs: inputs)
    }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try inputs[0].reshaped([inputs[0].shape[0]] + shape)
    }
}

/// `x.permute(*dims)`, the batch axis first.
public final class Permute: Op {
    public typealias Schema = PermuteSchema
    public let config: PermuteSchema.Config
    let axes: [Int]
    public init(config: PermuteSchema.Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        self.config = config
        axes = [0] + (try PermuteSchema.exampleAxes(config, rank: inputs[0].count)).map { $0 + 1 }
    }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        axes == Array(axes.indices) ? inputs[0] : try inputs[0].permuted(axes)
    }
}

/// `torch.narrow(x, dim, start, length)`.
public final class Narrow: Op {
    public typealias Schema = NarrowSchema
    public let config: NarrowSchema.Config
    let axis: Int, range: Range<Int>
    public init(config: NarrowSchema.Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        self.config = config
        (axis, range) = try NarrowSchema.range(config, shape: inputs[0])
    }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try inputs[0].sliced(axis: axis + 1, range: range)
    }
}

/// `torch.matmul(a, b)`: the leading axes (batch included) flattened into the batch of a rank-3
/// product; a side whose leading axes after the batch are all 1 is repeated over the other's
/// (by a product with ones, so its gradient sums the repeats).
public final class MatMul: Op {
    public typealias Schema = MatmulSchema
    public let config = NoConfig()
    public init(config: NoConfig, inputs: Shapes, seed: UInt64, engine: Engine) throws {}

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let (a, b) = (inputs[0], inputs[1])
        let n = a.shape[0]
        let (pa, pb) = (Array(a.shape.dropFirst()), Array(b.shape.dropFirst()))
        let lead = try MatmulSchema.leading(pa, pb), l = lead.reduce(1, *)
        let (m, k, cols) = (pa[pa.count - 2], pa[pa.count - 1], pb[pb.count - 1])
        let x = try expand(a, rows: m, cols: k, n: n, l: l), y = try expand(b, rows: k, cols: cols, n: n, l: l)
        return try matmul(x, y).reshaped([n] + lead + [m, cols])
    }

    /// t as [n·l, rows, cols], repeated l times when its leading axes hold one matrix per example.
    private func expand(_ t: Tensor, rows: Int, cols: Int, n: Int, l: Int) throws -> Tensor {
        if t.count == n * l * rows * cols { return try t.reshaped([n * l, rows, cols]) }
        let ones = try Tensor.ones([n, l, 1], engine: t.engine)
        return try matmul(ones, try t.reshaped([n, 1, rows * cols])).reshaped([n * l, rows, cols])
    }
}

/// `nn.LogSoftmax(dim)`.
public final class LogSoftmax: Op {
    public typealias Schema = LogSoftmaxSchema
    public let config: SoftmaxSchema.Config
    let axis: Int
    public init(config: SoftmaxSchema.Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        self.config = config
        axis = try SoftmaxSchema.axis(config, rank: inputs[0].count) + 1
    }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try alongLastAxis(inputs[0], axis: axis) { try $0.logSoftmax() }
    }
}

/// `f` (an op over the last axis) applied over `axis` instead: the axis swapped to the end and back.
func alongLastAxis(_ x: Tensor, axis: Int, _ f: (Tensor) throws -> Tensor) throws -> Tensor {
    let last = x.rank - 1
    if axis == last { return try f(x) }
    var axes = Array(0..<x.rank)
    axes.swapAt(axis, last)
    return try f(try x.permuted(axes)).permuted(axes)
}

/// How a reduction kind runs over one axis of a tensor.
public protocol TensorReduction: ReductionKind {
    static func reduce(_ x: Tensor, axis: Int, keepDims: Bool) throws -> Tensor
}
extension MeanKind: TensorReduction {
    public static func reduce(_ x: Tensor, axis: Int, keepDims: Bool) throws -> Tensor { try x.mean(axis: axis, keepDims: keepDims) }
}
extension SumKind: TensorReduction {
    public static func reduce(_ x: Tensor, axis: Int, keepDims: Bool) throws -> Tensor { try x.sum(axis: axis, keepDims: keepDims) }
}
extension AmaxKind: TensorReduction {
    public static func reduce(_ x: Tensor, axis: Int, keepDims: Bool) throws -> Tensor { try x.amax(axis: axis, keepDims: keepDims) }
}

/// `torch.mean`, `torch.sum`, `torch.amax(x, dim, keepdim)`: one axis at a time, the last first
/// (so the earlier axes keep their indices).
public final class Reduction<Kind: TensorReduction>: Op {
    public typealias Schema = ReductionSchema<Kind>
    public let config: Schema.Config
    let axes: [Int]
    public init(config: Schema.Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        self.config = config
        axes = try Schema.axes(config, rank: inputs[0].count).map { $0 + 1 }
    }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try axes.reversed().reduce(inputs[0]) { x, axis in try Kind.reduce(x, axis: axis, keepDims: config.keepdim ?? false) }
    }
}
