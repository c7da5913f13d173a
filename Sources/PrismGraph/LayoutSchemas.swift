import PrismFormats

// The schemas of the layout, matrix-product and reduction ops: `reshape`, `permute`, `narrow`,
// `matmul`, `log_softmax` and the reductions `mean`, `sum`, `amax`. Axes (`dim`, `dims`) count the
// batch axis, as PyTorch's do on the whole tensor; none of these ops may move or reduce the batch.

/// One axis or a list of axes (`dim=1` or `dim=(1, 2)` in PyTorch).
public struct AxisList: Codable, Equatable, Sendable, CustomStringConvertible {
    public var axes: [Int]
    /// Written as one int rather than a list.
    var single: Bool

    public init(_ axes: [Int]) { (self.axes, single) = (axes, false) }
    public init(_ axis: Int) { (axes, single) = ([axis], true) }

    public var description: String { single ? "\(axes[0])" : "\(axes)" }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let n = try? container.decode(Int.self) {
            (axes, single) = ([n], true)
        } else {
            (axes, single) = (try container.decode([Int].self), false)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        if single { try container.encode(axes[0]) } else { try container.encode(axes) }
    }
}

/// An axis of a batch of per-example rank `rank` (negative counts from the end), as an index into
/// the per-example shape.
/// - Throws: `TensorError` when it is the batch axis or outside the rank.
public func exampleAxis(_ dim: Int, rank: Int) throws -> Int {
    let axis = dim < 0 ? dim + rank + 1 : dim
    guard axis >= 1, axis <= rank else { throw TensorError("dim \(dim) must name an axis after the batch axis (rank \(rank + 1))") }
    return axis - 1
}

/// `x.reshape(x.shape[0], *shape)`: the per-example shape changed, the batch axis kept; one entry
/// may be -1 (inferred).
public enum ReshapeSchema: OpSchema {
    public struct Config: OpConfig {
        public var shape: [Int]
        public static let attributes = ["shape"]
        public init(shape: [Int]) { self.shape = shape }
    }
    public static let kind = "reshape"

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard let count = HostMemory.product(inputs[0]) else { throw TensorError("has more elements than an Int can count") }
        var shape = config.shape
        guard shape.allSatisfy({ $0 > 0 || $0 == -1 }), shape.filter({ $0 == -1 }).count <= 1 else {
            throw TensorError("shape \(shape) needs positive sizes and at most one -1")
        }
        guard let known = HostMemory.product(shape.filter { $0 != -1 }) else { throw TensorError("shape \(shape) is too large") }
        if let i = shape.firstIndex(of: -1) {
            guard count % known == 0 else { throw TensorError("cannot reshape \(inputs[0]) to \(config.shape)") }
            shape[i] = count / known
        }
        guard HostMemory.product(shape) == count else {
            throw TensorError("cannot reshape \(inputs[0]) (\(count) elements per example) to \(config.shape)")
        }
        return shape
    }
}

/// `x.permute(*dims)`: dims over the whole shape, the batch axis first (dims[0] == 0).
public enum PermuteSchema: OpSchema {
    public struct Config: OpConfig {
        public var dims: [Int]
        public static let attributes = ["dims"]
        public init(dims: [Int]) { self.dims = dims }
    }
    public static let kind = "permute"

    /// The permutation of the per-example axes.
    public static func exampleAxes(_ config: Config, rank: Int) throws -> [Int] {
        let full = rank + 1
        let dims = config.dims.map { $0 < 0 ? $0 + full : $0 }
        guard dims.count == full, dims.sorted() == Array(0..<full) else {
            throw TensorError("dims \(config.dims) are not a permutation of the \(full) axes")
        }
        guard dims[0] == 0 else { throw TensorError("dims \(config.dims) move the batch axis; it must stay first") }
        return dims.dropFirst().map { $0 - 1 }
    }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard inputs[0].count <= 5 else { throw TensorError("permutes tensors of rank 6 at most, got rank \(inputs[0].count + 1)") }
        return try exampleAxes(config, rank: inputs[0].count).map { inputs[0][$0] }
    }
}

/// `torch.narrow(x, dim, start, length)`: `length` entries from `start` along an axis after the batch
/// (a negative start counts from the end).
public enum NarrowSchema: OpSchema {
    public struct Config: OpConfig {
        public var dim: Int
        public var start: Int
        public var length: Int
        public static let attributes = ["dim", "start", "length"]
        public init(dim: Int, start: Int, length: Int) { (self.dim, self.start, self.length) = (dim, start, length) }
    }
    public static let kind = "narrow"

    /// The per-example axis and the range along it.
    public static func range(_ config: Config, shape: [Int]) throws -> (axis: Int, range: Range<Int>) {
        let axis = try exampleAxis(config.dim, rank: shape.count), size = shape[axis]
        let start = config.start < 0 ? config.start + size : config.start
        guard config.length > 0, start >= 0, start <= size, config.length <= size - start else {
            throw TensorError("start \(config.start) and length \(config.length) do not fit an axis of \(size)")
        }
        return (axis, start..<(start + config.length))
    }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let (axis, range) = try range(config, shape: inputs[0])
        var out = inputs[0]
        out[axis] = range.count
        return out
    }
}

/// `torch.matmul(a, b)` of two values of rank 3 or more (with the batch): [*, M, K] × [*, K, N] →
/// [*, M, N], the leading axes after the batch equal or, on one side, all 1 (broadcast).
public enum MatmulSchema: OpSchema {
    public typealias Config = NoConfig
    public static let kind = "matmul"
    public static let arity = 2...2

    /// The leading per-example axes of the product.
    public static func leading(_ a: [Int], _ b: [Int]) throws -> [Int] {
        guard a.count >= 2, b.count >= 2 else { throw TensorError("multiplies values of per-example rank 2 or more, got \(a) and \(b)") }
        guard a.count <= 5, b.count <= 5 else { throw TensorError("multiplies values of rank 6 at most") }
        let la = Array(a.dropLast(2)), lb = Array(b.dropLast(2))
        if la == lb || lb.allSatisfy({ $0 == 1 }) && lb.count <= la.count { return la }
        if la.allSatisfy({ $0 == 1 }) && la.count <= lb.count { return lb }
        throw TensorError("leading axes \(la) and \(lb) must be equal, or all 1 on one side")
    }

    public static func outputShape(_ config: NoConfig, inputs: Shapes) throws -> [Int] {
        let (a, b) = (inputs[0], inputs[1])
        let lead = try leading(a, b)
        guard a[a.count - 1] == b[b.count - 2] else { throw TensorError("inner sizes differ: \(a) × \(b)") }
        return lead + [a[a.count - 2], b[b.count - 1]]
    }

    public static func flops(_ config: NoConfig, inputs: Shapes, output: [Int]) -> Double {
        2 * Double(output.reduce(1, *)) * Double(inputs[0].last ?? 0)
    }
}

/// `nn.LogSoftmax(dim)` (default the last axis).
public enum LogSoftmaxSchema: OpSchema {
    public typealias Config = SoftmaxSchema.Config
    public static let kind = "log_softmax"
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        try SoftmaxSchema.outputShape(config, inputs: inputs)
    }
}

/// Which reduction a `ReductionSchema` is.
public protocol ReductionKind { static var name: String { get } }
public enum MeanKind: ReductionKind { public static let name = "mean" }
public enum SumKind: ReductionKind { public static let name = "sum" }
public enum AmaxKind: ReductionKind { public static let name = "amax" }

/// `torch.mean`, `torch.sum`, `torch.amax(x, dim, keepdim)` over axes after the batch.
public struct ReductionSchema<Kind: ReductionKind>: OpSchema {
    public struct Config: OpConfig {
        public var dim: AxisList
        public var keepdim: Bool?
        public static var attributes: [String] { ["dim", "keepdim"] }
        public init(dim: AxisList, keepdim: Bool? = nil) { (self.dim, self.keepdim) = (dim, keepdim) }
    }
    public static var kind: String { Kind.name }

    /// The reduced per-example axes, sorted.
    public static func axes(_ config: Config, rank: Int) throws -> [Int] {
        let axes = try config.dim.axes.map { try exampleAxis($0, rank: rank) }
        guard !axes.isEmpty, Set(axes).count == axes.count else { throw TensorError("dim \(config.dim) must name distinct axes") }
        return axes.sorted()
    }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let axes = try axes(config, rank: inputs[0].count)
        if Kind.name != SumKind.name, let empty = axes.first(where: { inputs[0][$0] == 0 }) {
            throw TensorError("axis \(empty + 1) is empty")
        }
        if config.keepdim ?? false { return inputs[0].enumerated().map { axes.contains($0.offset) ? 1 : $0.element } }
        return inputs[0].enumerated().filter { !axes.contains($0.offset) }.map(\.element)
    }
}
