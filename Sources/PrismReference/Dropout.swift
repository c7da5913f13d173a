extension Reference {
    /// Philox-4x32-10 (Salmon et al., SC 2011): four 32-bit words from a 128-bit counter and a
    /// 64-bit key.
    public static func philox4x32(counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32)) -> [UInt32] {
        var c = counter, k = key
        for round in 0..<10 {
            if round > 0 { k.0 &+= 0x9E37_79B9; k.1 &+= 0xBB67_AE85 }
            let p0 = UInt64(0xD251_1F53) * UInt64(c.0), p1 = UInt64(0xCD9E_8D57) * UInt64(c.2)
            let (hi0, lo0) = (UInt32(p0 >> 32), UInt32(truncatingIfNeeded: p0))
            let (hi1, lo1) = (UInt32(p1 >> 32), UInt32(truncatingIfNeeded: p1))
            c = (hi1 ^ c.1 ^ k.0, lo1, hi0 ^ c.3 ^ k.1, lo0)
        }
        return [c.0, c.1, c.2, c.3]
    }

    /// The dropout keep-mask of elements `offset ..< offset + count` of the stream: element g is kept
    /// when word g mod 4 of Philox at counter (g / 4 low, g / 4 high, 0, 0) with key (seed low, seed
    /// high) is at least ⌊p · 2³²⌋ (never for p = 1).
    ///
    /// count → mask: [count]
    public static func dropoutMask(count: Int, p: Double, seed: UInt64, offset: UInt64 = 0) -> [Bool] {
        if p >= 1 { return [Bool](repeating: false, count: count) }
        let threshold = UInt32(p * 4_294_967_296.0)
        let key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
        return (0..<count).map { e in
            let g = offset + UInt64(e), block = g / 4
            let words = philox4x32(counter: (UInt32(truncatingIfNeeded: block), UInt32(truncatingIfNeeded: block >> 32), 0, 0), key: key)
            return words[Int(g % 4)] >= threshold
        }
    }

    /// Inverted dropout: x / (1 − p) where kept, 0 elsewhere. The backward is the same map on dy.
    ///
    /// x: [n] → y: [n]
    public static func dropout(x: [Double], p: Double, seed: UInt64, offset: UInt64 = 0) -> [Double] {
        let mask = dropoutMask(count: x.count, p: p, seed: seed, offset: offset)
        return zip(x, mask).map { $1 ? $0 / (1 - p) : 0 }
    }
}
