import Prism
import PrismCL
import PrismReference
import PrismTestSupport
import Testing

/// One product: op(a) [m, k] × op(b) [k, n], `batch` times (b shared by the batch with `broadcastB`).
struct MatmulCase: CustomStringConvertible, Sendable {
    var batch = 1
    var m: Int, n: Int, k: Int
    var broadcastB = false
    var transposeA = false, transposeB = false

    var description: String {
        "\(batch)×[\(m),\(k)]×[\(k),\(n)]\(broadcastB ? " shared b" : "")\(transposeA ? " Aᵀ" : "")\(transposeB ? " Bᵀ" : "")"
    }
    var aShape: [Int] {
        let s = transposeA ? [k, m] : [m, k]
        return batch > 1 || broadcastB ? [batch] + s : s
    }
    var bShape: [Int] {
        let s = transposeB ? [n, k] : [k, n]
        return batch > 1 && !broadcastB ? [batch] + s : s
    }

    /// Every combination of transposes of each case.
    static func allTransposes(_ cases: [MatmulCase]) -> [MatmulCase] {
        cases.flatMap { c in
            [(false, false), (true, false), (false, true), (true, true)].map { ta, tb in
                var t = c
                (t.transposeA, t.transposeB) = (ta, tb)
                return t
            }
        }
    }
}

/// One fully connected layer: x [rows, in], weight [out, in].
struct LinearCase: CustomStringConvertible, Sendable {
    var rows, inFeatures, outFeatures: Int
    var bias = true, relu = false
    var description: String { "x[\(rows),\(inFeatures)] w[\(outFeatures),\(inFeatures)]\(bias ? " bias" : "")\(relu ? " relu" : "")" }
}

@Suite struct MatmulTests {
    /// Sizes straddling the CPU micro-tile (6 × 16 by default) and the GPU tile (64 × 64, K slices of 16).
    static let cases: [MatmulCase] = MatmulCase.allTransposes(TestSizes.pick([
        MatmulCase(m: 1, n: 1, k: 1),
        MatmulCase(m: 7, n: 7, k: 7),
        MatmulCase(m: 31, n: 32, k: 33),
        MatmulCase(m: 33, n: 31, k: 32),
        MatmulCase(m: 32, n: 33, k: 1),
        MatmulCase(m: 257, n: 17, k: 31),
        MatmulCase(m: 5, n: 257, k: 33),
        MatmulCase(m: 61, n: 67, k: 257),
        MatmulCase(batch: 3, m: 7, n: 33, k: 31),
        MatmulCase(batch: 2, m: 65, n: 1, k: 61),
        MatmulCase(batch: 3, m: 33, n: 7, k: 31, broadcastB: true),
        MatmulCase(batch: 1, m: 13, n: 19, k: 5, broadcastB: true),
    ], small: [
        MatmulCase(m: 1, n: 1, k: 1),
        MatmulCase(m: 7, n: 17, k: 33),
        MatmulCase(batch: 2, m: 13, n: 5, k: 9),
        MatmulCase(batch: 2, m: 7, n: 16, k: 3, broadcastB: true),
    ]))

    static func inputs(_ cs: MatmulCase, seed: UInt64) -> (a: [Float], b: [Float]) {
        (seededFloats(cs.aShape.reduce(1, *), seed: seed), seededFloats(cs.bShape.reduce(1, *), seed: seed + 1))
    }

    /// Float32 sums of `depth` products of values in [-1, 1].
    static func atol(_ depth: Int) -> Double { 2e-6 * Double(depth) + 1e-5 }

    @Test(arguments: cases, GEMMFamily.variants)
    func forwardAndBackwardMatchReference(_ cs: MatmulCase, _ variant: MatmulVariant) throws {
        let engine = try testEngine()
        let (a, b) = Self.inputs(cs, seed: 5)
        let at = try Tensor(a, shape: cs.aShape, engine: engine, requiresGrad: true)
        let bt = try Tensor(b, shape: cs.bShape, engine: engine, requiresGrad: true)
        let c = try matmul(at, bt, transposeA: cs.transposeA, transposeB: cs.transposeB, variant: variant)
        let expectedShape = cs.batch > 1 || cs.broadcastB ? [cs.batch, cs.m, cs.n] : [cs.m, cs.n]
        #expect(c.shape == expectedShape)
        let ref = Reference.matmul(a: doubles(a), b: doubles(b), batch: cs.batch, m: cs.m, n: cs.n, k: cs.k,
                                   transposeA: cs.transposeA, transposeB: cs.transposeB, broadcastB: cs.broadcastB)
        expectClose(try c.toArray(), ref, atol: Self.atol(cs.k), rtol: 1e-4, "C \(cs) \(variant)")

        let dc = seededFloats(c.count, seed: 9)
        try c.backward(try Tensor(dc, shape: c.shape, engine: engine))
        let g = Reference.matmulBackward(dc: doubles(dc), a: doubles(a), b: doubles(b), batch: cs.batch, m: cs.m, n: cs.n, k: cs.k,
                                         transposeA: cs.transposeA, transposeB: cs.transposeB, broadcastB: cs.broadcastB)
        expectClose(try #require(at.grad).toArray(), g.da, atol: Self.atol(cs.n), rtol: 1e-4, "dA \(cs) \(variant)")
        let bDepth = cs.m * (cs.broadcastB ? cs.batch : 1)
        expectClose(try #require(bt.grad).toArray(), g.db, atol: Self.atol(bDepth), rtol: 1e-4, "dB \(cs) \(variant)")
    }

    static let linearCases: [LinearCase] = TestSizes.pick([
        LinearCase(rows: 1, inFeatures: 1, outFeatures: 1),
        LinearCase(rows: 7, inFeatures: 33, outFeatures: 31, relu: true),
        LinearCase(rows: 32, inFeatures: 7, outFeatures: 33, bias: false),
        LinearCase(rows: 33, inFeatures: 32, outFeatures: 7, bias: false, relu: true),
        LinearCase(rows: 257, inFeatures: 61, outFeatures: 17, relu: true),
        LinearCase(rows: 5, inFeatures: 257, outFeatures: 32),
    ], small: [
        LinearCase(rows: 1, inFeatures: 1, outFeatures: 1),
        LinearCase(rows: 7, inFeatures: 33, outFeatures: 17, relu: true),
        LinearCase(rows: 9, inFeatures: 5, outFeatures: 3, bias: false),
    ])

    static func inputs(_ cs: LinearCase, seed: UInt64) -> (x: [Float], w: [Float], b: [Float]) {
        (seededFloats(cs.rows * cs.inFeatures, seed: seed), seededFloats(cs.outFeatures * cs.inFeatures, seed: seed + 1),
         seededFloats(cs.outFeatures, seed: seed + 2))
    }

    @Test(arguments: linearCases)
    func linearMatchesReference(_ cs: LinearCase) throws {
        let engine = try testEngine()
        let (x, w, b) = Self.inputs(cs, seed: 13)
        let xt = try Tensor(x, shape: [cs.rows, cs.inFeatures], engine: engine, requiresGrad: true)
        let wt = try Tensor(w, shape: [cs.outFeatures, cs.inFeatures], engine: engine, requiresGrad: true)
        let bt = cs.bias ? try Tensor(b, shape: [cs.outFeatures], engine: engine, requiresGrad: true) : nil
        let y = try linear(xt, weight: wt, bias: bt, relu: cs.relu)
        #expect(y.shape == [cs.rows, cs.outFeatures])
        let ref = Reference.linear(x: doubles(x), weight: doubles(w), bias: cs.bias ? doubles(b) : nil, rows: cs.rows,
                                   inFeatures: cs.inFeatures, outFeatures: cs.outFeatures, relu: cs.relu)
        expectClose(try y.toArray(), ref, atol: Self.atol(cs.inFeatures), rtol: 1e-4, "y \(cs)")

        let dy = seededFloats(y.count, seed: 17)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        let g = Reference.linearBackward(dy: doubles(dy), x: doubles(x), weight: doubles(w), bias: cs.bias ? doubles(b) : nil,
                                         rows: cs.rows, inFeatures: cs.inFeatures, outFeatures: cs.outFeatures, relu: cs.relu)
        expectClose(try #require(xt.grad).toArray(), g.dx, atol: Self.atol(cs.outFeatures), rtol: 1e-4, "dx \(cs)")
        expectClose(try #require(wt.grad).toArray(), g.dw, atol: Self.atol(cs.rows), rtol: 1e-4, "dw \(cs)")
        if let bt { expectClose(try #require(bt.grad).toArray(), g.db, atol: Self.atol(cs.rows), rtol: 1e-4, "db \(cs)") }
    }

    /// Leading dimensions of the input are rows: [2, 3, in] behaves as [6, in].
    @Test func linearFlattensLeadingDimensions() throws {
        let engine = try testEngine()
        let cs = LinearCase(rows: 6, inFeatures: 5, outFeatures: 4, relu: true)
        let (x, w, b) = Self.inputs(cs, seed: 19)
        let y = try linear(try Tensor(x, shape: [2, 3, 5], engine: engine), weight: try Tensor(w, shape: [4, 5], engine: engine),
                           bias: try Tensor(b, shape: [4], engine: engine), relu: true)
        #expect(y.shape == [2, 3, 4])
        let ref = Reference.linear(x: doubles(x), weight: doubles(w), bias: doubles(b), rows: 6, inFeatures: 5, outFeatures: 4, relu: true)
        expectClose(try y.toArray(), ref, atol: 1e-5, rtol: 1e-4)
    }

    /// The fused bias and ReLU epilogue of each kernel, called through the low-level launcher.
    @Test(arguments: GEMMFamily.variants)
    func fusedEpilogueMatchesReference(_ variant: MatmulVariant) throws {
        let engine = try testEngine()
        let cs = LinearCase(rows: TestSizes.small ? 7 : 67, inFeatures: TestSizes.small ? 9 : 70, outFeatures: TestSizes.small ? 17 : 33)
        let (x, w, b) = Self.inputs(cs, seed: 23)
        let c = try engine.buffer(count: cs.rows * cs.outFeatures)
        for relu in [false, true] {
            let events = try MatmulKernels.gemm(engine: engine, a: try engine.context.buffer(x), b: try engine.context.buffer(w), c: c,
                                                m: cs.rows, n: cs.outFeatures, k: cs.inFeatures, transposeB: true,
                                                bias: try engine.context.buffer(b), relu: relu, variant: variant)
            #expect(events.count == (variant == .cpu ? 3 : 1))  // CPU: pack B, pack A, GEMM
            let ref = Reference.linear(x: doubles(x), weight: doubles(w), bias: doubles(b), rows: cs.rows,
                                       inFeatures: cs.inFeatures, outFeatures: cs.outFeatures, relu: relu)
            expectClose(try c.read(), ref, atol: Self.atol(cs.inFeatures), rtol: 1e-4, "\(variant) relu \(relu)")
        }
    }

    /// Other block and tile sizes, set through `defineOverrides`, give the same answers; so does the CPU
    /// GEMM reading A in place (MM_PACKED_A = 0) or packing it, with a packing row count that does not
    /// divide K: one row per packing work-item, more work-items than the launch would have at the
    /// default 32 (the host sizes the packing launches from the define).
    @Test(arguments: ["0", "1"])
    func overriddenTilesMatchReference(_ packedA: String) throws {
        let engine = try testEngine()
        let saved = engine.defineOverrides["matmul.cl"]
        engine.defineOverrides["matmul.cl"] = ["MM_PACKED_A": packedA, "MM_PACK_ROWS": "1", "MM_MB": "3", "MM_TM": "16", "MM_TN": "32", "MM_TK": "4", "MM_WM": "2", "MM_WN": "4"]
        defer { engine.defineOverrides["matmul.cl"] = saved }
        let cs = TestSizes.small ? MatmulCase(batch: 2, m: 23, n: 37, k: 9, transposeA: true)
            : MatmulCase(batch: 2, m: 71, n: 37, k: 19, transposeA: true)
        let (a, b) = Self.inputs(cs, seed: 29)
        let ref = Reference.matmul(a: doubles(a), b: doubles(b), batch: cs.batch, m: cs.m, n: cs.n, k: cs.k, transposeA: true)
        for variant in [MatmulVariant.cpu, .gpu] {
            let c = try matmul(try Tensor(a, shape: cs.aShape, engine: engine), try Tensor(b, shape: cs.bShape, engine: engine),
                               transposeA: true, variant: variant)
            expectClose(try c.toArray(), ref, atol: Self.atol(cs.k), rtol: 1e-4, "\(variant)")
        }
    }

    /// The CPU micro-tile at vector widths 4, 8 and 16, one to three vectors per row and odd row
    /// counts, packing A or reading it in place: forward (bias and ReLU fused) and both gradients at
    /// sizes that straddle every tile (the widest is 16 rows × 48 columns).
    @Test(arguments: [("4", "1", "3", "0"), ("4", "2", "6", "1"), ("8", "3", "5", "1"), ("16", "2", "8", "0"), ("16", "3", "7", "1")])
    func cpuMicroTilesAtEveryWidthMatchReference(_ tile: (vw: String, nv: String, mr: String, packedA: String)) throws {
        let packedA = tile.packedA
        let engine = try testEngine()
        let saved = engine.defineOverrides["matmul.cl"]
        engine.defineOverrides["matmul.cl"] = ["MM_VW": tile.vw, "MM_NV": tile.nv, "MM_MR": tile.mr, "MM_PACKED_A": packedA]
        defer { engine.defineOverrides["matmul.cl"] = saved }
        let label = "VW \(tile.vw) NV \(tile.nv) MR \(tile.mr) packed A \(packedA)"
        let sizes = TestSizes.small ? [MatmulCase(batch: 2, m: 17, n: 49, k: 9, transposeB: true)]
            : [MatmulCase(batch: 2, m: 17, n: 49, k: 19, transposeB: true), MatmulCase(m: 29, n: 33, k: 5, transposeA: true),
               MatmulCase(batch: 3, m: 15, n: 97, k: 31, broadcastB: true)]
        for cs in sizes {
            let (a, b) = Self.inputs(cs, seed: 37)
            let at = try Tensor(a, shape: cs.aShape, engine: engine, requiresGrad: true)
            let bt = try Tensor(b, shape: cs.bShape, engine: engine, requiresGrad: true)
            let c = try matmul(at, bt, transposeA: cs.transposeA, transposeB: cs.transposeB, variant: .cpu)
            let ref = Reference.matmul(a: doubles(a), b: doubles(b), batch: cs.batch, m: cs.m, n: cs.n, k: cs.k,
                                       transposeA: cs.transposeA, transposeB: cs.transposeB, broadcastB: cs.broadcastB)
            expectClose(try c.toArray(), ref, atol: Self.atol(cs.k), rtol: 1e-4, "C \(cs) \(label)")
            let dc = seededFloats(c.count, seed: 41)
            try c.backward(try Tensor(dc, shape: c.shape, engine: engine))
            let g = Reference.matmulBackward(dc: doubles(dc), a: doubles(a), b: doubles(b), batch: cs.batch, m: cs.m, n: cs.n, k: cs.k,
                                             transposeA: cs.transposeA, transposeB: cs.transposeB, broadcastB: cs.broadcastB)
            expectClose(try #require(at.grad).toArray(), g.da, atol: Self.atol(cs.n), rtol: 1e-4, "dA \(cs) \(label)")
            expectClose(try #require(bt.grad).toArray(), g.db, atol: Self.atol(cs.m * cs.batch), rtol: 1e-4, "dB \(cs) \(label)")
        }
        let lc = LinearCase(rows: 19, inFeatures: 13, outFeatures: 35, relu: true)
        let (x, w, bias) = Self.inputs(lc, seed: 43)
        let y = try linear(try Tensor(x, shape: [lc.rows, lc.inFeatures], engine: engine), weight: try Tensor(w, shape: [lc.outFeatures, lc.inFeatures], engine: engine),
                           bias: try Tensor(bias, shape: [lc.outFeatures], engine: engine), relu: true)
        let ref = Reference.linear(x: doubles(x), weight: doubles(w), bias: doubles(bias), rows: lc.rows,
                                   inFeatures: lc.inFeatures, outFeatures: lc.outFeatures, relu: true)
        expectClose(try y.toArray(), ref, atol: Self.atol(lc.inFeatures), rtol: 1e-4, "linear \(label)")
    }

    @Test func onlyRequestedGradientsAreComputed() throws {
        let engine = try testEngine()
        let cs = MatmulCase(m: 5, n: 6, k: 7)
        let (a, b) = Self.inputs(cs, seed: 31)
        let at = try Tensor(a, shape: cs.aShape, engine: engine)
        let bt = try Tensor(b, shape: cs.bShape, engine: engine, requiresGrad: true)
        let c = try matmul(at, bt)
        let dc = seededFloats(c.count, seed: 37)
        try c.backward(try Tensor(dc, shape: c.shape, engine: engine))
        #expect(at.grad == nil)
        let g = Reference.matmulBackward(dc: doubles(dc), a: doubles(a), b: doubles(b), m: cs.m, n: cs.n, k: cs.k)
        expectClose(try #require(bt.grad).toArray(), g.db, atol: 1e-5, rtol: 1e-4, "dB")
        // Inside noGrad nothing is recorded.
        let d = try engine.noGrad { try matmul(at, bt) }
        #expect(d.isLeaf)
    }

    @Test func shapeErrorsNameTheOpAndBothShapes() throws {
        let engine = try testEngine()
        func tensor(_ shape: [Int]) throws -> Tensor { try Tensor(seededFloats(shape.reduce(1, *), seed: 41), shape: shape, engine: engine) }
        func message(_ body: () throws -> Tensor) -> String? {
            do {
                _ = try body()
                return nil
            } catch let error as TensorError {
                return error.description
            } catch {
                return "\(error)"
            }
        }
        #expect(message { try matmul(try tensor([2, 3]), try tensor([4, 5])) } == "matmul: inner dimensions differ: [2, 3] × [4, 5]")
        #expect(message { try matmul(try tensor([3, 2]), try tensor([4, 5]), transposeA: true) } == "matmul: inner dimensions differ: [3, 2] × [4, 5]")
        #expect(message { try matmul(try tensor([2, 3]), try tensor([5, 4]), transposeB: true) } == "matmul: inner dimensions differ: [2, 3] × [5, 4]")
        #expect(message { try matmul(try tensor([2, 3]), try tensor([4, 3]), transposeB: true) } == nil)
        #expect(message { try matmul(try tensor([2, 2, 3]), try tensor([3, 3, 4])) } == "matmul: batch sizes differ: [2, 2, 3] × [3, 3, 4]")
        #expect(message { try matmul(try tensor([2, 3]), try tensor([2, 3, 4])) }
            == "matmul: operands must be [M, K] × [K, N] or [B, M, K] × [B, K, N] (or × [K, N]): [2, 3] × [2, 3, 4]")
        #expect(message { try matmul(try tensor([6]), try tensor([6, 1])) }?.hasPrefix("matmul: operands must be") == true)
        #expect(message { try linear(try tensor([2, 3]), weight: try tensor([5, 4]), bias: nil) }
            == "linear: input has 3 features, weight expects 4: [2, 3] × [5, 4]")
        #expect(message { try linear(try tensor([2, 4]), weight: try tensor([5, 4]), bias: try tensor([4])) }
            == "linear: bias must have shape [5]: [4] × [5, 4]")
        #expect(message { try linear(try tensor([2, 4]), weight: try tensor([5, 4, 1]), bias: nil) }
            == "linear: input must be [..., in] and weight [out, in]: [2, 4] × [5, 4, 1]")
    }
}
