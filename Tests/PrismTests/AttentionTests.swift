import Prism
import PrismCL
import PrismReference
import PrismTestSupport
import Testing

/// The fused attention kernels against the Double reference at awkward sequence lengths and head
/// widths, causal and not, with and without key padding.
@Suite struct AttentionTests {
    static let lengths = TestSizes.pick([1, 7, 64, 65, 257], small: [1, 7, 33])
    static let widths = TestSizes.pick([16, 32, 64], small: [16, 8])

    /// (batch 2, heads 2); key lengths leave the second batch element with padding (and T = 1 with none).
    static func lengths(padded: Bool, t: Int) -> [Int]? { padded ? [t, max(0, (t * 2) / 3)] : nil }

    @Test(arguments: lengths, widths)
    func forwardAndBackwardMatchReference(_ t: Int, _ d: Int) throws {
        let engine = try testEngine()
        // Every variant of the family whose preconditions hold: the tiled ones (d a multiple of 16),
        // the row ones (d a multiple of 8) and the local-memory ones.
        let defines = engine.resolvedDefines(AttentionFamily.descriptor.file)
        for variant in AttentionFamily.variants where AttentionFamily.unmet(variant, d: d, traits: engine.traits, defines: defines) == nil {
        for causal in [false, true] {
            for padded in [false, true] {
                // Backward at every T for d = 16; forward only at the larger widths (keeps the suite quick).
                let withBackward = d == Self.widths[0] || t <= 65
                let (b, h) = (2, 2)
                let shape = [b, h, t, d], n = b * h * t * d
                let seed = UInt64(t * 1000 + d * 10 + (causal ? 1 : 0) + (padded ? 2 : 0))
                let q = seededFloats(n, seed: seed, low: -2, high: 2), k = seededFloats(n, seed: seed + 1, low: -2, high: 2)
                let v = seededFloats(n, seed: seed + 2)
                let lens = Self.lengths(padded: padded, t: t)
                let qt = try Tensor(q, shape: shape, engine: engine, requiresGrad: true)
                let kt = try Tensor(k, shape: shape, engine: engine, requiresGrad: true)
                let vt = try Tensor(v, shape: shape, engine: engine, requiresGrad: true)
                let o = try scaledDotProductAttention(q: qt, k: kt, v: vt, causal: causal, keyLengths: lens, variant: variant)
                let scale = 1 / Double(Float(d).squareRoot())
                let label = "\(variant) T \(t) d \(d) causal \(causal) padded \(padded)"
                let reference = Reference.attention(q: doubles(q), k: doubles(k), v: doubles(v), heads: h, t: t, d: d, scale: scale,
                                                    causal: causal, keyLengths: lens)
                expectClose(try o.toArray(), reference, atol: 2e-5, rtol: 1e-4, label)
                guard withBackward else { continue }
                let dout = seededFloats(n, seed: seed + 3)
                try o.backward(try Tensor(dout, shape: shape, engine: engine))
                let g = Reference.attentionBackward(q: doubles(q), k: doubles(k), v: doubles(v), dout: doubles(dout), heads: h, t: t, d: d,
                                                    scale: scale, causal: causal, keyLengths: lens)
                expectClose(try #require(qt.grad).toArray(), g.dq, atol: 5e-5, rtol: 1e-3, "dq " + label)
                expectClose(try #require(kt.grad).toArray(), g.dk, atol: 5e-5, rtol: 1e-3, "dk " + label)
                expectClose(try #require(vt.grad).toArray(), g.dv, atol: 5e-5, rtol: 1e-3, "dv " + label)
            }
        }
        }
    }

    /// The explicit probabilities equal the reference's and every row that sees a key sums to 1.
    @Test(arguments: TestSizes.pick([(7, 16, false), (65, 32, true), (33, 8, false)], small: [(7, 16, false), (9, 8, true)]))
    func probabilitiesMatchReferenceAndRowsSumToOne(_ t: Int, _ d: Int, _ causal: Bool) throws {
        let engine = try testEngine()
        let (b, h) = (2, 3), n = b * h * t * d
        let q = seededFloats(n, seed: 91, low: -3, high: 3), k = seededFloats(n, seed: 92, low: -3, high: 3)
        let lens = [t, t / 2]
        let p = try attentionProbabilities(q: try Tensor(q, shape: [b, h, t, d], engine: engine), k: try Tensor(k, shape: [b, h, t, d], engine: engine),
                                           causal: causal, keyLengths: lens)
        #expect(p.shape == [b, h, t, t])
        let values = try p.toArray()
        let reference = Reference.attentionProbabilities(q: doubles(q), k: doubles(k), heads: h, t: t, d: d, scale: 1 / Double(Float(d).squareRoot()),
                                                         causal: causal, keyLengths: lens)
        expectClose(values, reference, atol: 1e-6, rtol: 1e-4, "P T \(t)")
        for z in 0..<(b * h) {
            for i in 0..<t {
                let sum = (0..<t).reduce(0.0) { $0 + Double(values[(z * t + i) * t + $1]) }
                let sees = (causal ? min(i + 1, lens[z / h]) : lens[z / h]) > 0
                #expect(abs(sum - (sees ? 1 : 0)) <= 1e-5, "row \(i) of head \(z)")
            }
        }
    }

    /// A query that sees no key (key length 0) outputs zeros and passes finite, zero gradients, with
    /// every kernel family.
    @Test(arguments: AttentionFamily.variants)
    func fullyMaskedRowsGiveZeros(_ variant: AttentionVariant) throws {
        let engine = try testEngine()
        let shape = [2, 1, 5, 16], n = 160
        let qt = try Tensor(seededFloats(n, seed: 1), shape: shape, engine: engine, requiresGrad: true)
        let kt = try Tensor(seededFloats(n, seed: 2), shape: shape, engine: engine, requiresGrad: true)
        let vt = try Tensor(seededFloats(n, seed: 3), shape: shape, engine: engine, requiresGrad: true)
        let o = try scaledDotProductAttention(q: qt, k: kt, v: vt, keyLengths: [5, 0], variant: variant)
        let values = try o.toArray()
        #expect(values[80...].allSatisfy { $0 == 0 })
        try o.sum().backward()
        for grad in [qt.grad, kt.grad, vt.grad] {
            let g = try #require(grad).toArray()
            #expect(g.allSatisfy(\.isFinite) && g[80...].allSatisfy { $0 == 0 })
        }
        #expect(throws: TensorError.self) { try scaledDotProductAttention(q: qt, k: kt, v: vt, keyLengths: [5]) }
        #expect(throws: TensorError.self) { try scaledDotProductAttention(q: qt, k: kt, v: vt, keyLengths: [5, 6]) }
    }

    /// The tiled kernels at the widest head (d = 128: the largest private tiles) and at lengths around
    /// their 16-row tiles, causal with padding, forward and backward against the reference.
    @Test(arguments: [15, 16, 17, 48])
    func tiledKernelsAtTheWidestHead(_ t: Int) throws {
        let engine = try testEngine()
        let (b, h, d) = (2, 1, 128)
        let shape = [b, h, t, d], n = b * h * t * d
        let q = seededFloats(n, seed: 7, low: -1, high: 1), k = seededFloats(n, seed: 8, low: -1, high: 1)
        let v = seededFloats(n, seed: 9), dout = seededFloats(n, seed: 10)
        let lens = [t, t / 3]
        let qt = try Tensor(q, shape: shape, engine: engine, requiresGrad: true)
        let kt = try Tensor(k, shape: shape, engine: engine, requiresGrad: true)
        let vt = try Tensor(v, shape: shape, engine: engine, requiresGrad: true)
        let o = try scaledDotProductAttention(q: qt, k: kt, v: vt, causal: true, keyLengths: lens, variant: .tiled)
        let scale = 1 / Double(Float(d).squareRoot())
        expectClose(try o.toArray(), Reference.attention(q: doubles(q), k: doubles(k), v: doubles(v), heads: h, t: t, d: d, scale: scale,
                                                         causal: true, keyLengths: lens), atol: 2e-5, rtol: 1e-4, "O T \(t)")
        try o.backward(try Tensor(dout, shape: shape, engine: engine))
        let g = Reference.attentionBackward(q: doubles(q), k: doubles(k), v: doubles(v), dout: doubles(dout), heads: h, t: t, d: d,
                                            scale: scale, causal: true, keyLengths: lens)
        expectClose(try #require(qt.grad).toArray(), g.dq, atol: 5e-5, rtol: 1e-3, "dq T \(t)")
        expectClose(try #require(kt.grad).toArray(), g.dk, atol: 5e-5, rtol: 1e-3, "dk T \(t)")
        expectClose(try #require(vt.grad).toArray(), g.dv, atol: 5e-5, rtol: 1e-3, "dv T \(t)")
        let narrow = try Tensor(seededFloats(2 * 8 * 8, seed: 1), shape: [2, 1, 8, 8], engine: engine)
        #expect(throws: TensorError.self) { try scaledDotProductAttention(q: narrow, k: narrow, v: narrow, variant: .tiled) }
    }
}

extension AttentionTests {
    /// Straight from a packed [B, T, 3·H·d] projection: the same output (as [B, T, H·d]) and the same
    /// gradients (packed) as the [B, H, T, d] op on permuted copies.
    @Test(arguments: TestSizes.pick([(7, 8, false), (33, 16, true), (65, 32, false)], small: [(7, 8, false), (9, 8, true)]))
    func packedLayoutEqualsPermutedTensors(_ t: Int, _ d: Int, _ causal: Bool) throws {
        let engine = try testEngine()
        let (b, h) = (2, 3)
        let width = h * d
        let packed = seededFloats(b * t * 3 * width, seed: UInt64(t + d), low: -2, high: 2)
        let qkv = try Tensor(packed, shape: [b, t, 3 * width], engine: engine, requiresGrad: true)
        let lens = [t, max(1, t / 2)]
        let o = try packedSelfAttention(qkv, heads: h, causal: causal, keyLengths: lens)
        #expect(o.shape == [b, t, width])
        let dout = seededFloats(b * t * width, seed: 5)
        try o.backward(try Tensor(dout, shape: o.shape, engine: engine))
        // Reference: split and permute on the host.
        func part(_ s: Int) -> [Double] {
            var x = [Double](repeating: 0, count: b * h * t * d)
            for n in 0..<b { for i in 0..<t { for hh in 0..<h { for c in 0..<d {
                x[((n * h + hh) * t + i) * d + c] = Double(packed[(n * t + i) * 3 * width + s * width + hh * d + c])
            } } } }
            return x
        }
        var doutHeads = [Double](repeating: 0, count: b * h * t * d)
        for n in 0..<b { for i in 0..<t { for hh in 0..<h { for c in 0..<d {
            doutHeads[((n * h + hh) * t + i) * d + c] = Double(dout[(n * t + i) * width + hh * d + c])
        } } } }
        let scale = 1 / Double(Float(d).squareRoot())
        let reference = Reference.attention(q: part(0), k: part(1), v: part(2), heads: h, t: t, d: d, scale: scale, causal: causal, keyLengths: lens)
        let g = Reference.attentionBackward(q: part(0), k: part(1), v: part(2), dout: doutHeads, heads: h, t: t, d: d, scale: scale,
                                            causal: causal, keyLengths: lens)
        var expected = [Double](repeating: 0, count: b * t * width)
        var expectedGrad = [Double](repeating: 0, count: packed.count)
        for n in 0..<b { for i in 0..<t { for hh in 0..<h { for c in 0..<d {
            let z = ((n * h + hh) * t + i) * d + c
            expected[(n * t + i) * width + hh * d + c] = reference[z]
            for (s, grad) in [g.dq, g.dk, g.dv].enumerated() { expectedGrad[(n * t + i) * 3 * width + s * width + hh * d + c] = grad[z] }
        } } } }
        expectClose(try o.toArray(), expected, atol: 2e-5, rtol: 1e-4, "packed O")
        expectClose(try #require(qkv.grad).toArray(), expectedGrad, atol: 5e-5, rtol: 1e-3, "packed dqkv")
    }
}
