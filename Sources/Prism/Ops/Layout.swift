import PrismCL

extension Tensor {
    /// The tensor with its axes reordered: axis k of the result is axis `axes[k]` of self (PyTorch's
    /// `permute`), copied into a new contiguous buffer; records its backward (the inverse permutation).
    /// - Parameter axes: a permutation of 0..<rank; rank at most 6.
    /// - Throws: `TensorError` when `axes` is not a permutation of the axes or the rank exceeds 6.
    public func permuted(_ axes: [Int]) throws -> Tensor {
        guard rank <= 6 else { throw TensorError.shape("permute", "rank above 6 is not supported", shape, axes) }
        guard axes.sorted() == Array(0..<rank) else {
            throw TensorError.shape("permute", "axes are not a permutation of 0..<\(rank)", shape, axes)
        }
        guard count < Int(Int32.max) else { throw TensorError.shape("permute", "tensor too large for 32-bit indexing", shape, axes) }
        let engine = engine, n = count
        let y = try Tensor.empty(axes.map { shape[$0] }, engine: engine)
        var strides = [Int](repeating: 1, count: rank)
        for k in stride(from: rank - 2, through: 0, by: -1) { strides[k] = strides[k + 1] * shape[k + 1] }
        let pad = 6 - rank
        let dims = [Int](repeating: 1, count: pad) + y.shape
        let steps = [Int](repeating: 0, count: pad) + axes.map { strides[$0] }
        try engine.launch("layout.cl", "permute_f32", global: [roundUp(n, flatKernelGroupSize)], local: [flatKernelGroupSize],
                          [storage, y.storage, Int32(n)] + (dims + steps).map { Int32($0) })
        var inverse = axes
        for (k, a) in axes.enumerated() { inverse[a] = k }
        y.record(inputs: [self], op: "permute") { dy in [try dy.permuted(inverse)] }
        return y
    }

    /// The tensor with its axes of size 1 repeated to `target` (of its rank), as PyTorch's `expand`
    /// but copied; records its backward (the gradient summed over the repeated axes).
    /// - Throws: `TensorError` when an axis is neither 1 nor the target's size, or for rank above 6.
    public func broadcast(to target: [Int]) throws -> Tensor {
        guard target.count == rank, rank <= 6, zip(shape, target).allSatisfy({ $0 == $1 || $0 == 1 }), target.allSatisfy({ $0 >= 0 }) else {
            throw TensorError.shape("broadcast", "axes of size 1 repeat to a target of the same rank (6 at most)", shape, target)
        }
        if target == shape { return self }
        let engine = engine, n = target.reduce(1, *)
        guard n < Int(Int32.max) else { throw TensorError.shape("broadcast", "tensor too large for 32-bit indexing", shape, target) }
        let y = try Tensor.empty(target, engine: engine)
        var strides = [Int](repeating: 1, count: rank)
        for k in stride(from: rank - 2, through: 0, by: -1) { strides[k] = strides[k + 1] * shape[k + 1] }
        let pad = 6 - rank
        let dims = [Int](repeating: 1, count: pad) + target
        let steps = [Int](repeating: 0, count: pad) + target.indices.map { shape[$0] == target[$0] ? strides[$0] : 0 }
        if n > 0 {
            try engine.launch("layout.cl", "permute_f32", global: [roundUp(n, flatKernelGroupSize)], local: [flatKernelGroupSize],
                              [storage, y.storage, Int32(n)] + (dims + steps).map { Int32($0) })
        }
        let repeated = target.indices.filter { shape[$0] != target[$0] }
        y.record(inputs: [self], op: "broadcast") { dy in
            var g = dy
            for axis in repeated { g = try g.sum(axis: axis, keepDims: true) }
            return [g]
        }
        return y
    }

    /// The last two axes swapped (a matrix transpose, batched over the leading axes).
    /// - Throws: `TensorError` for rank below 2 or above 6.
    public func transposed() throws -> Tensor {
        guard rank >= 2 else { throw TensorError.shape("transpose", "needs rank 2 or more", shape) }
        var axes = Array(0..<rank)
        axes.swapAt(rank - 2, rank - 1)
        return try permuted(axes)
    }

    /// The elements whose index along `axis` lies in `range` (PyTorch's `narrow`), copied into a new
    /// buffer; records its backward (the gradient scattered into zeros).
    /// - Parameters:
    ///   - axis: the sliced axis; negative counts from the end.
    ///   - range: indices along it, within 0...shape[axis].
    /// - Throws: `TensorError` when the axis or the range is out of bounds.
    public func sliced(axis: Int, range: Range<Int>) throws -> Tensor {
        let ax = axis < 0 ? axis + rank : axis
        guard (0..<rank).contains(ax) else { throw TensorError.shape("slice", "axis \(axis) is out of range for rank \(rank)", shape) }
        guard range.lowerBound >= 0, range.upperBound <= shape[ax] else {
            throw TensorError.shape("slice", "range \(range) is outside 0..<\(shape[ax]) on axis \(axis)", shape)
        }
        guard count < Int(Int32.max) else { throw TensorError.shape("slice", "tensor too large for 32-bit indexing", shape) }
        let engine = engine, inShape = shape
        let outer = shape[..<ax].reduce(1, *), inner = shape[(ax + 1)...].reduce(1, *)
        let full = shape[ax] * inner, width = range.count * inner, offset = range.lowerBound * inner
        var outShape = shape
        outShape[ax] = range.count
        let y = try Tensor.empty(outShape, engine: engine)
        try copyRows(engine, from: storage, to: y.storage, rows: outer, width: width, source: (full, offset), destination: (width, 0))
        y.record(inputs: [self], op: "slice") { dy in
            let dx = try Tensor.zeros(inShape, engine: engine)
            try copyRows(engine, from: dy.storage, to: dx.storage, rows: outer, width: width, source: (width, 0), destination: (full, offset))
            return [dx]
        }
        return y
    }
}

/// The tensors joined along `axis` (PyTorch's `cat`); records its backward (each input gets its slice).
/// - Parameters:
///   - tensors: one or more tensors of equal rank whose shapes agree except along `axis`.
///   - axis: the joined axis; negative counts from the end.
/// - Throws: `TensorError` naming the shapes when they disagree, or when the list is empty.
public func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor {
    guard let first = tensors.first else { throw TensorError("concat: no tensors to join") }
    let rank = first.rank, ax = axis < 0 ? axis + rank : axis
    let shapes = tensors.map(\.shape)
    guard (0..<rank).contains(ax) else {
        throw TensorError("concat: axis \(axis) is out of range for rank \(rank): " + shapes.map { "\($0)" }.joined(separator: " × "))
    }
    for t in tensors.dropFirst() {
        var a = first.shape, b = t.shape
        guard a.count == b.count else {
            throw TensorError("concat: ranks differ: " + shapes.map { "\($0)" }.joined(separator: " × "))
        }
        a[ax] = 0; b[ax] = 0
        guard a == b else {
            throw TensorError("concat: shapes differ outside axis \(axis): " + shapes.map { "\($0)" }.joined(separator: " × "))
        }
    }
    let engine = first.engine
    let outer = first.shape[..<ax].reduce(1, *), inner = first.shape[(ax + 1)...].reduce(1, *)
    var outShape = first.shape
    outShape[ax] = tensors.reduce(0) { $0 + $1.shape[ax] }
    guard outShape.reduce(1, *) < Int(Int32.max) else { throw TensorError("concat: result \(outShape) too large for 32-bit indexing") }
    let full = outShape[ax] * inner
    let y = try Tensor.empty(outShape, engine: engine)
    var offsets: [Int] = []
    var offset = 0
    for t in tensors {
        let width = t.shape[ax] * inner
        try copyRows(engine, from: t.storage, to: y.storage, rows: outer, width: width, source: (width, 0), destination: (full, offset))
        offsets.append(offset)
        offset += width
    }
    y.record(inputs: tensors, op: "concat") { dy in
        try zip(tensors, offsets).map { t, offset in
            guard t.requiresGrad else { return nil }
            let width = t.shape[ax] * inner
            let dx = try Tensor.empty(t.shape, engine: engine)
            try copyRows(engine, from: dy.storage, to: dx.storage, rows: outer, width: width, source: (full, offset), destination: (width, 0))
            return dx
        }
    }
    return y
}

/// dst[r·destination.stride + destination.offset + j] = src[r·source.stride + source.offset + j].
private func copyRows(_ engine: Engine, from src: Buffer<Float>, to dst: Buffer<Float>, rows: Int, width: Int,
                      source: (stride: Int, offset: Int), destination: (stride: Int, offset: Int)) throws {
    let arguments: [any KernelArgument] = [src, dst, Int32(rows), Int32(width), Int32(source.stride), Int32(source.offset),
                                           Int32(destination.stride), Int32(destination.offset)]
    // Over (column, row) when the rows fit the second axis (65,535 work-groups at most on some GPU
    // drivers): no division per element; short rows share a work-group of about 64 work-items.
    let perGroup = width < flatKernelGroupSize ? max(1, min(rows, flatKernelGroupSize / width)) : 1
    if (rows + perGroup - 1) / perGroup <= 65535 {
        let (global, local) = width < flatKernelGroupSize
            ? ([width, roundUp(rows, perGroup)], [width, perGroup])
            : ([roundUp(width, flatKernelGroupSize), rows], [flatKernelGroupSize, 1])
        try engine.launch("layout.cl", "copy_rows_f32", defines: ["COPY_ROWS_2D": "1"], global: global, local: local, arguments)
    } else {
        try engine.launch("layout.cl", "copy_rows_f32", global: [roundUp(rows * width, flatKernelGroupSize)], local: [flatKernelGroupSize], arguments)
    }
}
