import PrismCL

/// Rows of `table` picked by `indices` (PyTorch's `F.embedding` / `nn.Embedding`'s forward, without
/// `padding_idx`, `max_norm` or sparse gradients); records its backward into `table`.
///
/// The gradient of a row is the sum of the output gradients of every position that picked it,
/// added in increasing position order on the device (no atomics), so it is the same on every run.
/// - Parameters:
///   - table: [V, D].
///   - indices: any shape, `.int64` or `.int32`, each in 0..<V.
/// - Throws: `TensorError` when table is not rank 2, the indices are not int64 or int32, or an index
///   lies outside 0..<V (naming it and its position); `CLError` from the device.
/// - Returns: [indices.shape + [D]].
public func embedding(_ table: Tensor, indices: IntTensor) throws -> Tensor {
    guard table.rank == 2 else { throw TensorError.shape("embedding", "the table must be [rows, features]", table.shape, indices.shape) }
    let y = try gatherRows(table, axis: 0, indices: indices, op: "embedding")
    return try y.reshaped(indices.shape + [table.shape[1]])
}

/// The slices of `x` along `axis` that `indices` pick, in their order (PyTorch's `index_select`;
/// an index tensor of any shape, like NumPy's `take`); records its backward into `x`.
///
/// With 1-D indices this is `torch.index_select(x, axis, indices)`. The gradient sums the output
/// gradients of repeated indices in increasing position order on the device (no atomics).
/// - Parameters:
///   - x: any shape of rank ≥ 1.
///   - axis: the axis to pick along; negative counts from the end.
///   - indices: any shape, `.int64` or `.int32`, each in 0..<x.shape[axis].
/// - Throws: `TensorError` when the axis is out of range, the indices are not int64 or int32, or an
///   index lies outside 0..<x.shape[axis] (naming it and its position); `CLError` from the device.
/// - Returns: x.shape[..<axis] + indices.shape + x.shape[(axis + 1)...].
public func gather(_ x: Tensor, axis: Int, indices: IntTensor) throws -> Tensor {
    let ax = axis < 0 ? axis + x.rank : axis
    guard (0..<x.rank).contains(ax) else {
        throw TensorError.shape("gather", "axis \(axis) is out of range for rank \(x.rank)", x.shape, indices.shape)
    }
    let y = try gatherRows(x, axis: ax, indices: indices, op: "gather")
    return try y.reshaped(Array(x.shape[..<ax]) + indices.shape + Array(x.shape[(ax + 1)...]))
}

/// The gather of `gather` and `embedding`: the result as [outer, K, inner] flattened to
/// x.shape[..<axis] + [K] + x.shape[(axis + 1)...], with its backward recorded.
private func gatherRows(_ x: Tensor, axis: Int, indices: IntTensor, op: String) throws -> Tensor {
    guard indices.dtype == .int64 || indices.dtype == .int32 else {
        throw TensorError("\(op): indices must be int64 or int32, not \(indices.dtype.rawValue)")
    }
    let engine = x.engine
    let v = x.shape[axis], k = indices.count
    let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[(axis + 1)...].reduce(1, *)
    var outShape = x.shape
    outShape[axis] = k
    let outCount = outShape.reduce(1, *)
    guard x.count < Int(Int32.max), outCount < Int(Int32.max), k < Int(Int32.max) else {
        throw TensorError.shape(op, "tensor too large for 32-bit indexing", x.shape, indices.shape)
    }
    if let p = try firstFlagged(engine, k, { first in
        try engine.launch("index.cl", "index_first_outside", global: [roundUp(k, flatKernelGroupSize)], local: [flatKernelGroupSize],
                          [indices.storage, first, Int32(k), Int32(0), Int32(v)])
    }) {
        let value = try indices.storage.read(p..<(p + 1))[0]
        let what = op == "embedding" ? "a table of \(v) rows" : "axis \(axis) of size \(v) (shape \(x.shape))"
        throw TensorError("\(op): index \(value) at position \(p) is out of range for \(what)")
    }
    let y = try Tensor.empty(outShape, engine: engine)
    let sizes: [any KernelArgument] = [Int32(outer), Int32(v), Int32(k), Int32(inner)]
    if outCount > 0 {
        try engine.launch("index.cl", "gather_f32", global: [roundUp(outCount, flatKernelGroupSize)], local: [flatKernelGroupSize],
                          [x.storage, indices.storage, y.storage] + sizes)
    }
    let xShape = x.shape, idx = indices.storage
    y.record(inputs: [x], op: op) { dy in
        let dx = try Tensor.empty(xShape, engine: engine)
        guard dx.count > 0 else { return [dx] }
        // Positions grouped by the row they picked, ascending within each row (a counting sort).
        let picked = try idx.read(0..<k)
        var starts = [Int32](repeating: 0, count: v + 1)
        for r in picked { starts[Int(r) + 1] += 1 }
        for r in 0..<v { starts[r + 1] += starts[r] }
        var next = starts
        var positions = [Int32](repeating: 0, count: k)
        for (p, r) in picked.enumerated() {
            positions[Int(next[Int(r)])] = Int32(p)
            next[Int(r)] += 1
        }
        let startsBuffer = try engine.context.buffer(starts)
        let positionsBuffer = try engine.context.buffer(positions)
        try engine.launch("index.cl", "gather_backward_f32", global: [roundUp(dx.count, flatKernelGroupSize)], local: [flatKernelGroupSize],
                          [dy.storage, startsBuffer, positionsBuffer, dx.storage] + sizes)
        return [dx]
    }
    return y
}

/// Runs a kernel that lowers `first[0]` (set to `n` before) to the smallest flagged position.
/// - Returns: that position, or nil when none was flagged.
func firstFlagged(_ engine: Engine, _ n: Int, _ launch: (Buffer<Int32>) throws -> Void) throws -> Int? {
    guard n > 0 else { return nil }
    let first = try engine.context.buffer([Int32(n)])
    try launch(first)
    let p = Int(try first.read(0..<1)[0])
    return p < n ? p : nil
}

extension Tensor {
    // MARK: comparisons

    /// self == other element by element, as a `.bool` tensor (NaN equals nothing); other broadcasts
    /// as `Broadcast.of(_:over:)` describes.
    /// - Throws: `TensorError` naming both shapes when other does not broadcast over self.
    public func equal(_ other: Tensor) throws -> IntTensor { try compare(.equal, other) }
    /// self < other element by element, as a `.bool` tensor (false where either is NaN; broadcast as in `equal`).
    public func less(_ other: Tensor) throws -> IntTensor { try compare(.less, other) }
    /// self > other element by element, as a `.bool` tensor (false where either is NaN; broadcast as in `equal`).
    public func greater(_ other: Tensor) throws -> IntTensor { try compare(.greater, other) }

    func compare(_ op: Comparison, _ other: Tensor) throws -> IntTensor {
        let cast = try comparisonBroadcast(op, shape, other.shape)
        return try launchComparison("compare_f32", op, cast, count: count, shape: shape, engine: engine, storage, other.storage)
    }

    // MARK: selection

    /// a where `condition` is true, else b, element by element (PyTorch's `torch.where`); records its
    /// backward: the gradient goes to a where the condition holds and to b elsewhere.
    /// - Parameters:
    ///   - condition: a `.bool` tensor of the same shape (a comparison's result).
    ///   - a, b: tensors of the same shape.
    /// - Throws: `TensorError` when the shapes differ or the condition is not `.bool`.
    public static func `where`(_ condition: IntTensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        guard condition.dtype == .bool else {
            throw TensorError("where: the condition must be bool, not \(condition.dtype.rawValue) (compare with a value to make one)")
        }
        guard condition.shape == a.shape, a.shape == b.shape else {
            throw TensorError.shape("where", "condition, a and b must have one shape", condition.shape, a.shape, b.shape)
        }
        guard a.count < Int(Int32.max) else { throw TensorError.shape("where", "tensor too large for 32-bit indexing", a.shape) }
        let engine = a.engine, n = a.count, mask = condition.storage
        let out = try Tensor.empty(a.shape, engine: engine)
        if n > 0 {
            try engine.launch("index.cl", "where_f32", global: [roundUp(n, flatKernelGroupSize)], local: [flatKernelGroupSize],
                              [mask, a.storage, b.storage, out.storage, Int32(n)])
        }
        out.record(inputs: [a, b], op: "where") { dy in
            let da = try Tensor.empty(a.shape, engine: engine), db = try Tensor.empty(b.shape, engine: engine)
            if n > 0 {
                try engine.launch("index.cl", "where_backward_f32", global: [roundUp(n, flatKernelGroupSize)], local: [flatKernelGroupSize],
                                  [mask, dy.storage, da.storage, db.storage, Int32(n)])
            }
            return [a.requiresGrad ? da : nil, b.requiresGrad ? db : nil]
        }
        return out
    }

    // MARK: casts

    /// The values as integers of `dtype`: truncated toward zero for int64, int32 and int8 (as
    /// PyTorch's `.long()`, `.int()`, `.to(torch.int8)`), nonzero → 1 for bool (`.bool()`). Not recorded
    /// (integers carry no gradient).
    /// - Throws: `TensorError` naming the first element that is NaN, infinite (integer types), or
    ///   whose truncation the type cannot hold (int64 values must fit 32 bits on the device; int8
    ///   −128…127), instead of wrapping it as PyTorch would; `CLError` from the device.
    public func toInteger(_ dtype: IntegerType) throws -> IntTensor {
        let (out, flagged) = try castToInteger(dtype, wholeNumbers: false)
        if let (p, value) = flagged { throw integerCastError(dtype, index: p, value: value) }
        return out
    }

    /// The cast of `toInteger`, and the first element it refused (index, value), if any; with
    /// `wholeNumbers`, an element that is not a whole number is refused too (checked on the device
    /// in the same pass).
    public func castToInteger(_ dtype: IntegerType, wholeNumbers: Bool) throws -> (IntTensor, flagged: (Int, Float)?) {
        guard count < Int(Int32.max) else { throw TensorError.shape("toInteger", "tensor too large for 32-bit indexing", shape) }
        let n = count
        let out = try IntTensor(engine: engine, shape: shape, storage: try engine.context.buffer(Int32.self, count: n), dtype: dtype)
        // Truncations in [lo, hi) fit; both bounds are exact floats.
        let mode: Int32 = dtype == .bool ? 1 : wholeNumbers ? 2 : 0
        let (lo, hi): (Float, Float) = dtype == .int8 ? (-128, 128) : (-2_147_483_648, 2_147_483_648)
        guard let p = try firstFlagged(engine, n, { first in
            try engine.launch("index.cl", "f32_to_i32", global: [roundUp(n, flatKernelGroupSize)], local: [flatKernelGroupSize],
                              [storage, out.storage, first, Int32(n), mode, lo, hi])
        }) else { return (out, nil) }
        return (out, (p, try storage.read(p..<(p + 1))[0]))
    }

    /// The one-line refusal of `toInteger` for the element at `p` holding `value`.
    func integerCastError(_ dtype: IntegerType, index p: Int, value: Float) -> TensorError {
            let why: String
            if value.isNaN {
                why = " is NaN"
            } else if value.isInfinite {
                why = " is infinite"
            } else if let t = Int64(exactly: value.rounded(.towardZero)), let problem = dtype.problem(with: t) {
                why = ": \(problem)"
            } else {
                why = ": its truncation lies outside \(dtype.rawValue)'s range on the device, \(dtype.range.lowerBound)…\(dtype.range.upperBound)"
            }
            return TensorError("toInteger(\(dtype.rawValue)): value \(value) at index \(p)\(why)")
    }
}
