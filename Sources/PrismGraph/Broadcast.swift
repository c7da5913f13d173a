/// How b is laid over a in a broadcasting binary op: a is seen as [outer, bcount, inner] and
/// b as [bcount], so element i of a pairs with b[(i / inner) mod bcount].
public struct Broadcast: Equatable, Sendable {
    public let inner: Int
    public let bcount: Int

    public init(inner: Int, bcount: Int) {
        self.inner = inner
        self.bcount = bcount
    }

    /// The broadcast of a tensor of shape `b` over one of shape `a`, or nil when there is none.
    ///
    /// b is aligned with a's trailing axes (leading 1s of b dropped, missing leading axes count as
    /// 1, as in NumPy); the axes where b is not 1 must equal a's and be contiguous, so b covers a
    /// block of a's axes: [C] or [1, C] over [N, C]; [1, C, 1, 1] or [C, 1, 1] over [N, C, H, W];
    /// [T, 1] over [B, T, D]; [1] or [] everywhere. In addition a plain [C] over a rank-4
    /// [N, C, H, W] is the channel axis when it does not fit the trailing rule (that is, W ≠ C);
    /// write [1, C, 1, 1] to say so whatever W is.
    public static func of(_ b: [Int], over a: [Int]) -> Broadcast? {
        var bs = Array(b.drop(while: { $0 == 1 }))
        if bs.count <= a.count {
            bs = [Int](repeating: 1, count: a.count - bs.count) + bs
            let wide = a.indices.filter { bs[$0] != 1 }
            guard let lo = wide.first, let hi = wide.last else { return Broadcast(inner: 1, bcount: 1) }
            // b must equal a on every axis of the block [lo, hi] (its 1s there only where a has 1s).
            if (lo...hi).allSatisfy({ bs[$0] == a[$0] }) {
                return Broadcast(inner: a[(hi + 1)...].reduce(1, *), bcount: a[lo...hi].reduce(1, *))
            }
        }
        if a.count == 4, b.count == 1, b[0] == a[1] {
            return Broadcast(inner: a[2] * a[3], bcount: a[1])
        }
        return nil
    }
}
