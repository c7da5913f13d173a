extension Reference {
    /// The slices of x along one axis picked by indices (NumPy's `take`; `index_select` for 1-D
    /// indices, `embedding` for a [V, D] table along axis 0).
    ///
    /// x: [outer, v, inner] (the axes before, at and after the picked one), indices: [k] with each
    /// in 0..<v → y: [outer, k, inner]
    public static func gather(x: [Double], outer: Int, v: Int, inner: Int, indices: [Int]) -> [Double] {
        var y: [Double] = []
        y.reserveCapacity(outer * indices.count * inner)
        for o in 0..<outer {
            for r in indices {
                y += x[((o * v + r) * inner)..<((o * v + r + 1) * inner)]
            }
        }
        return y
    }

    /// Backward of `gather`: each output gradient added into the slice its index picked.
    ///
    /// dy: [outer, k, inner] → dx: [outer, v, inner]
    public static func gatherBackward(dy: [Double], outer: Int, v: Int, inner: Int, indices: [Int]) -> [Double] {
        var dx = [Double](repeating: 0, count: outer * v * inner)
        let k = indices.count
        for o in 0..<outer {
            for (p, r) in indices.enumerated() {
                for j in 0..<inner { dx[(o * v + r) * inner + j] += dy[(o * k + p) * inner + j] }
            }
        }
        return dx
    }

    /// Element-wise comparisons as 0/1, b broadcast over a as `binary` does: element i of a pairs with
    /// b[(i / inner) mod bcount]. NaN compares false.
    ///
    /// a: [n], b: [bcount] → y: [n]
    public static func compare(_ a: [Double], _ b: [Double], inner: Int, bcount: Int, _ op: (Double, Double) -> Bool) -> [Int64] {
        a.indices.map { i in op(a[i], b[(i / inner) % bcount]) ? 1 : 0 }
    }

    /// a where the condition is nonzero, else b.
    ///
    /// condition, a, b: [n] → y: [n]
    public static func select(condition: [Int64], a: [Double], b: [Double]) -> [Double] {
        condition.indices.map { condition[$0] != 0 ? a[$0] : b[$0] }
    }

    /// Backward of `select`: dy to a where the condition holds, to b elsewhere.
    ///
    /// condition, dy: [n] → da, db: [n]
    public static func selectBackward(condition: [Int64], dy: [Double]) -> (da: [Double], db: [Double]) {
        (condition.indices.map { condition[$0] != 0 ? dy[$0] : 0 }, condition.indices.map { condition[$0] != 0 ? 0 : dy[$0] })
    }

    /// Truncation toward zero (C's and PyTorch's float → integer conversion), nil for NaN, infinities
    /// and truncations outside `range`.
    ///
    /// x: [n] → y: [n]
    public static func truncate(_ x: [Double], range: ClosedRange<Int64>) -> [Int64?] {
        x.map { value in
            guard value.isFinite else { return nil }
            let t = value.rounded(.towardZero)
            guard t >= Double(range.lowerBound), t <= Double(range.upperBound) else { return nil }
            return Int64(t)
        }
    }
}
