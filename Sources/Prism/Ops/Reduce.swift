import Foundation
import PrismCL

/// The reductions of `reduce.cl`.
enum ReduceKind {
    case sum, mean, max

    var name: String {
        switch self {
        case .sum: "sum"
        case .mean: "mean"
        case .max: "max"
        }
    }
}

// The maximum is `amax` (as in PyTorch), not `max`: a member named `max` would hide Swift's global
// `max` inside every `Tensor` extension.
extension Tensor {
    /// The sum along `axis` (negative counts from the end), recording its backward.
    /// - Parameter keepDims: keep the reduced axis with size 1 (for broadcasting back).
    /// - Throws: `TensorError` when the axis is out of range.
    public func sum(axis: Int, keepDims: Bool = false) throws -> Tensor { try reduce(.sum, axis: axis, keepDims: keepDims) }

    /// The mean along `axis` (negative counts from the end), recording its backward.
    /// - Throws: `TensorError` when the axis is out of range or empty.
    public func mean(axis: Int, keepDims: Bool = false) throws -> Tensor { try reduce(.mean, axis: axis, keepDims: keepDims) }

    /// The maximum along `axis` (negative counts from the end), recording its backward: the
    /// gradient goes to the first position of the maximum (NaN counts as the largest value).
    /// - Throws: `TensorError` when the axis is out of range or empty.
    public func amax(axis: Int, keepDims: Bool = false) throws -> Tensor { try reduce(.max, axis: axis, keepDims: keepDims) }

    /// The sum of every element: shape [] (or all ones with `keepDims`), recording its backward.
    public func sum(keepDims: Bool = false) throws -> Tensor { try reduceAll(.sum, keepDims: keepDims) }

    /// The mean of every element, recording its backward.
    /// - Throws: `TensorError` for an empty tensor.
    public func mean(keepDims: Bool = false) throws -> Tensor { try reduceAll(.mean, keepDims: keepDims) }

    /// The largest element, recording its backward (to the first position of the maximum).
    /// - Throws: `TensorError` for an empty tensor.
    public func amax(keepDims: Bool = false) throws -> Tensor { try reduceAll(.max, keepDims: keepDims) }

    private func reduce(_ kind: ReduceKind, axis: Int, keepDims: Bool) throws -> Tensor {
        let ax = axis < 0 ? axis + rank : axis
        guard (0..<rank).contains(ax) else {
            throw TensorError.shape(kind.name, "axis \(axis) is out of range for rank \(rank)", shape)
        }
        let len = shape[ax]
        guard len > 0 || kind == .sum else { throw TensorError.shape(kind.name, "axis \(axis) is empty", shape) }
        guard count < Int(Int32.max) else { throw TensorError.shape(kind.name, "tensor too large for 32-bit indexing", shape) }
        let outer = shape[..<ax].reduce(1, *), inner = shape[(ax + 1)...].reduce(1, *)
        var outShape = shape
        if keepDims { outShape[ax] = 1 } else { outShape.remove(at: ax) }
        return try reduceLaid(kind, outer: outer, len: len, inner: inner, outShape: outShape)
    }

    /// The reduction of x seen as [outer, len, inner] over its middle axis, with backward.
    private func reduceLaid(_ kind: ReduceKind, outer: Int, len: Int, inner: Int, outShape: [Int]) throws -> Tensor {
        let engine = engine, inShape = shape
        let op: Int32 = kind == .max ? 1 : 0
        let scale: Float = kind == .mean ? 1 / Float(len) : 1
        let geometry: [any KernelArgument] = [Int32(outer), Int32(len), Int32(inner), op, scale]
        let y = try Tensor.empty(outShape, engine: engine)
        let argmax = try engine.context.buffer(Int32.self, count: kind == .max ? y.count : 1)
        try engine.launch("reduce.cl", "reduce_axis_f32", global: [roundUp(y.count, flatKernelGroupSize)], local: [flatKernelGroupSize],
                          [storage, y.storage, argmax] + geometry)
        y.record(inputs: [self], op: kind.name) { dy in
            try reduceBackward(engine: engine, dy: dy, argmax: argmax, shape: inShape, geometry: geometry)
        }
        return y
    }

    private func reduceAll(_ kind: ReduceKind, keepDims: Bool) throws -> Tensor {
        let n = count
        guard n > 0 || kind == .sum else { throw TensorError.shape(kind.name, "tensor is empty", shape) }
        guard n < Int(Int32.max) else { throw TensorError.shape(kind.name, "tensor too large for 32-bit indexing", shape) }
        let outShape = keepDims ? [Int](repeating: 1, count: rank) : []
        if n == 0 { return try Tensor.zeros(outShape, engine: engine) }
        let engine = engine, inShape = shape
        // Level by level: blocks of about √n elements, so each level is about √n work-items.
        var values = storage, indices: Buffer<Int32>? = nil, length = n
        repeat {
            let block = Swift.min(1024, Swift.max(8, Int(Double(length).squareRoot().rounded(.up))))
            let blocks = (length + block - 1) / block
            let next = try engine.buffer(count: blocks)
            let global = [roundUp(blocks, flatKernelGroupSize)], local = [flatKernelGroupSize]
            if kind == .max {
                let nextIndices = try engine.context.buffer(Int32.self, count: blocks)
                try engine.launch("reduce.cl", "max_blocks_f32", global: global, local: local,
                                  [values, indices ?? nextIndices, next, nextIndices, Int32(length), Int32(block), Int32(indices == nil ? 0 : 1)])
                indices = nextIndices
            } else {
                try engine.launch("reduce.cl", "sum_blocks_f32", global: global, local: local, [values, next, Int32(length), Int32(block)])
            }
            values = next
            length = blocks
        } while length > 1
        let y: Tensor
        if kind == .mean {
            y = try Tensor.empty(outShape, engine: engine)
            try engine.launch("elementwise.cl", "affine_f32", global: [1], [values, y.storage, 1 / Float(n), Float(0), Int32(1)])
        } else {
            y = try Tensor(engine: engine, shape: outShape, storage: values)
        }
        let argmax = try indices ?? engine.context.buffer(Int32.self, count: 1)
        let geometry: [any KernelArgument] = [Int32(1), Int32(n), Int32(1), Int32(kind == .max ? 1 : 0), kind == .mean ? 1 / Float(n) : Float(1)]
        y.record(inputs: [self], op: kind.name) { dy in
            try reduceBackward(engine: engine, dy: dy, argmax: argmax, shape: inShape, geometry: geometry)
        }
        return y
    }
}

/// dx of a reduction of x (shape `shape`) laid out as `geometry` = (outer, len, inner, op, scale).
private func reduceBackward(engine: Engine, dy: Tensor, argmax: Buffer<Int32>, shape: [Int],
                            geometry: [any KernelArgument]) throws -> [Tensor?] {
    let dx = try Tensor.empty(shape, engine: engine)
    try engine.launch("reduce.cl", "reduce_axis_backward_f32", global: [roundUp(dx.count, flatKernelGroupSize)], local: [flatKernelGroupSize],
                      [dy.storage, argmax, dx.storage] + geometry)
    return [dx]
}
