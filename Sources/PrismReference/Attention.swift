import Foundation

extension Reference {
    /// Which keys query i may see: keys 0 ..< limit (causal: j ≤ i; padding: j < the batch element's length).
    static func attentionLimit(_ i: Int, t: Int, causal: Bool, keyLength: Int?) -> Int {
        var limit = t
        if let keyLength { limit = min(limit, keyLength) }
        if causal { limit = min(limit, i + 1) }
        return max(limit, 0)
    }

    /// Attention probabilities P = softmax(Q·Kᵀ·scale + mask) per head; a row that sees no key is all zeros.
    ///
    /// q, k: [B·H, T, D] → P: [B·H, T, T]; `keyLengths` has one entry per batch element (B = B·H / heads).
    public static func attentionProbabilities(q: [Double], k: [Double], heads: Int, t: Int, d: Int, scale: Double,
                                              causal: Bool = false, keyLengths: [Int]? = nil) -> [Double] {
        let bh = q.count / (t * d)
        var p = [Double](repeating: 0, count: bh * t * t)
        for z in 0..<bh {
            let length = keyLengths?[z / heads]
            for i in 0..<t {
                let limit = attentionLimit(i, t: t, causal: causal, keyLength: length)
                guard limit > 0 else { continue }
                var s = [Double](repeating: 0, count: limit)
                for j in 0..<limit {
                    var dot = 0.0
                    for c in 0..<d { dot += q[(z * t + i) * d + c] * k[(z * t + j) * d + c] }
                    s[j] = dot * scale
                }
                let m = s.max()!
                let e = s.map { Foundation.exp($0 - m) }
                let sum = e.reduce(0, +)
                for j in 0..<limit { p[(z * t + i) * t + j] = e[j] / sum }
            }
        }
        return p
    }

    /// Scaled dot-product attention O = P·V.
    ///
    /// q, k, v: [B·H, T, D] → O: [B·H, T, D]
    public static func attention(q: [Double], k: [Double], v: [Double], heads: Int, t: Int, d: Int, scale: Double,
                                 causal: Bool = false, keyLengths: [Int]? = nil) -> [Double] {
        let p = attentionProbabilities(q: q, k: k, heads: heads, t: t, d: d, scale: scale, causal: causal, keyLengths: keyLengths)
        let bh = q.count / (t * d)
        var o = [Double](repeating: 0, count: q.count)
        for z in 0..<bh { for i in 0..<t { for j in 0..<t where p[(z * t + i) * t + j] != 0 {
            for c in 0..<d { o[(z * t + i) * d + c] += p[(z * t + i) * t + j] * v[(z * t + j) * d + c] }
        } } }
        return o
    }

    /// Backward of `attention`: with P from the forward, dV = Pᵀ·dO, dP = dO·Vᵀ,
    /// dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = scale · dS·K, dK = scale · dSᵀ·Q.
    ///
    /// q, k, v, dout: [B·H, T, D] → (dQ, dK, dV): [B·H, T, D] each
    public static func attentionBackward(q: [Double], k: [Double], v: [Double], dout: [Double], heads: Int, t: Int, d: Int,
                                         scale: Double, causal: Bool = false, keyLengths: [Int]? = nil)
        -> (dq: [Double], dk: [Double], dv: [Double]) {
        let p = attentionProbabilities(q: q, k: k, heads: heads, t: t, d: d, scale: scale, causal: causal, keyLengths: keyLengths)
        let bh = q.count / (t * d)
        var dq = [Double](repeating: 0, count: q.count), dk = dq, dv = dq
        for z in 0..<bh {
            for i in 0..<t {
                var dp = [Double](repeating: 0, count: t)
                var rowDot = 0.0
                for j in 0..<t {
                    var s = 0.0
                    for c in 0..<d { s += dout[(z * t + i) * d + c] * v[(z * t + j) * d + c] }
                    dp[j] = s
                    rowDot += s * p[(z * t + i) * t + j]
                }
                for j in 0..<t {
                    let pij = p[(z * t + i) * t + j]
                    guard pij != 0 else { continue }
                    let ds = pij * (dp[j] - rowDot)
                    for c in 0..<d {
                        dv[(z * t + j) * d + c] += pij * dout[(z * t + i) * d + c]
                        dq[(z * t + i) * d + c] += scale * ds * k[(z * t + j) * d + c]
                        dk[(z * t + j) * d + c] += scale * ds * q[(z * t + i) * d + c]
                    }
                }
            }
        }
        return (dq, dk, dv)
    }
}
