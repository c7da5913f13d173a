extension Reference {
    /// Batched matrix product C = op(A)·op(B).
    ///
    /// a: [batch, M, K], or [batch, K, M] with `transposeA`; b: [batch, K, N], or [batch, N, K] with
    /// `transposeB` — a single [K, N] (or [N, K]) shared by the batch with `broadcastB` → c: [batch, M, N].
    public static func matmul(a: [Double], b: [Double], batch: Int = 1, m: Int, n: Int, k: Int,
                              transposeA: Bool = false, transposeB: Bool = false, broadcastB: Bool = false) -> [Double] {
        var c = [Double](repeating: 0, count: batch * m * n)
        for z in 0..<batch {
            let ab = z * m * k, bb = broadcastB ? 0 : z * k * n
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0
                    for p in 0..<k {
                        let av = a[ab + (transposeA ? p * m + i : i * k + p)]
                        let bv = b[bb + (transposeB ? j * k + p : p * n + j)]
                        sum += av * bv
                    }
                    c[(z * m + i) * n + j] = sum
                }
            }
        }
        return c
    }

    /// Backward of `matmul`: dop(A) = dC·op(B)ᵀ and dop(B) = op(A)ᵀ·dC, each stored like its operand
    /// (transposed back where the operand was read transposed); a shared b gets the sum over the batch.
    ///
    /// dc: [batch, M, N]; a, b as in `matmul` → da: shape of a, db: shape of b.
    public static func matmulBackward(dc: [Double], a: [Double], b: [Double], batch: Int = 1, m: Int, n: Int, k: Int,
                                      transposeA: Bool = false, transposeB: Bool = false,
                                      broadcastB: Bool = false) -> (da: [Double], db: [Double]) {
        var da = [Double](repeating: 0, count: a.count)
        var db = [Double](repeating: 0, count: b.count)
        for z in 0..<batch {
            let ab = z * m * k, bb = broadcastB ? 0 : z * k * n
            for i in 0..<m {
                for j in 0..<n {
                    let g = dc[(z * m + i) * n + j]
                    for p in 0..<k {
                        let ai = ab + (transposeA ? p * m + i : i * k + p)
                        let bi = bb + (transposeB ? j * k + p : p * n + j)
                        da[ai] += g * b[bi]
                        db[bi] += g * a[ai]
                    }
                }
            }
        }
        return (da, db)
    }

    /// Fully connected layer y = x·weightᵀ + bias, then max(·, 0) with `relu` (PyTorch's Linear).
    ///
    /// x: [rows, in]; weight: [out, in]; bias: [out] or nil → y: [rows, out].
    public static func linear(x: [Double], weight: [Double], bias: [Double]?, rows: Int, inFeatures: Int, outFeatures: Int,
                              relu: Bool = false) -> [Double] {
        var y = matmul(a: x, b: weight, m: rows, n: outFeatures, k: inFeatures, transposeB: true)
        for r in 0..<rows {
            for o in 0..<outFeatures {
                var v = y[r * outFeatures + o] + (bias?[o] ?? 0)
                if relu { v = max(v, 0) }
                y[r * outFeatures + o] = v
            }
        }
        return y
    }

    /// Backward of `linear`: with `relu`, dy is first masked where the pre-activation is not positive.
    ///
    /// dy: [rows, out]; x: [rows, in]; weight: [out, in]; bias: [out] or nil
    /// → dx: [rows, in], dw: [out, in], db: [out] (column sums of the masked dy).
    public static func linearBackward(dy: [Double], x: [Double], weight: [Double], bias: [Double]?, rows: Int, inFeatures: Int,
                                      outFeatures: Int, relu: Bool = false) -> (dx: [Double], dw: [Double], db: [Double]) {
        var dz = dy
        if relu {
            let z = linear(x: x, weight: weight, bias: bias, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
            for i in dz.indices where !(z[i] > 0) { dz[i] = 0 }
        }
        let g = matmulBackward(dc: dz, a: x, b: weight, m: rows, n: outFeatures, k: inFeatures, transposeB: true)
        var db = [Double](repeating: 0, count: outFeatures)
        for r in 0..<rows {
            for o in 0..<outFeatures { db[o] += dz[r * outFeatures + o] }
        }
        return (g.da, g.db, db)
    }
}
