extension Reference {
    /// The reductions of a tensor seen as [outer, len, inner] over the middle axis.
    public enum Reduction: Sendable { case sum, mean, max }

    /// (outer, len, inner) of `shape` around `axis`.
    public static func split(_ shape: [Int], axis: Int) -> (outer: Int, len: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    /// Sum, mean or maximum along `axis` (the maximum also gives the first position of it along the
    /// axis; NaN counts as the largest value, the first NaN wins).
    ///
    /// x: shape [d0, …, d(axis), …] → y and argmax: the shape without `axis` (row-major).
    public static func reduce(_ kind: Reduction, x: [Double], shape: [Int], axis: Int) -> (y: [Double], argmax: [Int]) {
        let (outer, len, inner) = split(shape, axis: axis)
        var y = [Double](repeating: 0, count: outer * inner)
        var argmax = [Int](repeating: 0, count: outer * inner)
        for o in 0..<outer {
            for i in 0..<inner {
                let values = (0..<len).map { x[(o * len + $0) * inner + i] }
                let t = o * inner + i
                switch kind {
                case .sum: y[t] = values.reduce(0, +)
                case .mean: y[t] = values.reduce(0, +) / Double(len)
                case .max:
                    var best = 0
                    for l in 1..<Swift.max(len, 1) where values[l] > values[best] || (values[l].isNaN && !values[best].isNaN) { best = l }
                    y[t] = values[best]
                    argmax[t] = best
                }
            }
        }
        return (y, argmax)
    }

    /// Backward of `reduce`: sum spreads dy, mean spreads dy / len, max routes dy to its argmax.
    ///
    /// dy, argmax: shape without `axis` → dx: shape
    public static func reduceBackward(_ kind: Reduction, dy: [Double], argmax: [Int], shape: [Int], axis: Int) -> [Double] {
        let (outer, len, inner) = split(shape, axis: axis)
        var dx = [Double](repeating: 0, count: outer * len * inner)
        for o in 0..<outer {
            for l in 0..<len {
                for i in 0..<inner {
                    let t = o * inner + i
                    switch kind {
                    case .sum: dx[(o * len + l) * inner + i] = dy[t]
                    case .mean: dx[(o * len + l) * inner + i] = dy[t] / Double(len)
                    case .max: if argmax[t] == l { dx[(o * len + l) * inner + i] = dy[t] }
                    }
                }
            }
        }
        return dx
    }
}
