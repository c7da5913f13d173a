extension Reference {
    /// Row-major strides of `shape`.
    public static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        for k in stride(from: shape.count - 2, through: 0, by: -1) { s[k] = s[k + 1] * shape[k + 1] }
        return s
    }

    /// Axis k of the result is axis axes[k] of x.
    ///
    /// x: shape → y: [shape[axes[0]], shape[axes[1]], …]
    public static func permute(x: [Double], shape: [Int], axes: [Int]) -> [Double] {
        let outShape = axes.map { shape[$0] }
        let inStrides = strides(shape)
        var y = [Double](repeating: 0, count: x.count)
        for e in y.indices {
            var rest = e, src = 0
            for k in stride(from: axes.count - 1, through: 0, by: -1) {
                src += (rest % outShape[k]) * inStrides[axes[k]]
                rest /= outShape[k]
            }
            y[e] = x[src]
        }
        return y
    }

    /// Backward of `permute`: dy permuted by the inverse permutation.
    ///
    /// dy: permuted shape → dx: shape
    public static func permuteBackward(dy: [Double], shape: [Int], axes: [Int]) -> [Double] {
        var dx = [Double](repeating: 0, count: dy.count)
        let outShape = axes.map { shape[$0] }
        let inStrides = strides(shape)
        for e in dy.indices {
            var rest = e, src = 0
            for k in stride(from: axes.count - 1, through: 0, by: -1) {
                src += (rest % outShape[k]) * inStrides[axes[k]]
                rest /= outShape[k]
            }
            dx[src] += dy[e]
        }
        return dx
    }

    /// The tensors joined along `axis`.
    ///
    /// xs[k]: shapes[k] (equal except along axis) → y: shape with the axis sizes summed
    public static func concat(_ xs: [[Double]], shapes: [[Int]], axis: Int) -> [Double] {
        let outer = shapes[0][..<axis].reduce(1, *), inner = shapes[0][(axis + 1)...].reduce(1, *)
        var y: [Double] = []
        for o in 0..<outer {
            for (x, shape) in zip(xs, shapes) {
                let width = shape[axis] * inner
                y += x[(o * width)..<((o + 1) * width)]
            }
        }
        return y
    }

    /// Backward of `concat`: each input's part of dy.
    ///
    /// dy: concatenated shape → dxs[k]: shapes[k]
    public static func concatBackward(dy: [Double], shapes: [[Int]], axis: Int) -> [[Double]] {
        var start = 0
        return shapes.map { shape in
            defer { start += shape[axis] }
            return slice(x: dy, shape: concatShape(shapes, axis: axis), axis: axis, range: start..<(start + shape[axis]))
        }
    }

    /// The shape of `concat`'s result.
    public static func concatShape(_ shapes: [[Int]], axis: Int) -> [Int] {
        var s = shapes[0]
        s[axis] = shapes.reduce(0) { $0 + $1[axis] }
        return s
    }

    /// The elements whose index along `axis` is in `range`.
    ///
    /// x: shape → y: shape with shape[axis] = range.count
    public static func slice(x: [Double], shape: [Int], axis: Int, range: Range<Int>) -> [Double] {
        let (outer, len, inner) = split(shape, axis: axis)
        var y: [Double] = []
        for o in 0..<outer {
            for l in range { y += x[((o * len + l) * inner)..<((o * len + l + 1) * inner)] }
        }
        return y
    }

    /// Backward of `slice`: dy placed at its indices, zeros elsewhere.
    ///
    /// dy: sliced shape → dx: shape
    public static func sliceBackward(dy: [Double], shape: [Int], axis: Int, range: Range<Int>) -> [Double] {
        let (outer, len, inner) = split(shape, axis: axis)
        var dx = [Double](repeating: 0, count: outer * len * inner)
        var k = 0
        for o in 0..<outer {
            for l in range {
                for i in 0..<inner { dx[(o * len + l) * inner + i] = dy[k]; k += 1 }
            }
        }
        return dx
    }
}
