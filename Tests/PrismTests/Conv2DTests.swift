import Prism
import PrismCL
import PrismReference
import PrismTestSupport
import Testing

/// One convolution problem: input [n, c, h, w], weight [k, c, r, s].
struct ConvCase: CustomStringConvertible, Sendable {
    var n, c, h, w, k, r, s: Int
    var stride = (1, 1), padding = (0, 0), dilation = (1, 1)
    var bias = true

    var description: String {
        "x[\(n),\(c),\(h),\(w)] w[\(k),\(c),\(r),\(s)] stride \(stride) pad \(padding) dil \(dilation)\(bias ? "" : " no bias")"
    }
    var xShape: [Int] { [n, c, h, w] }
    var wShape: [Int] { [k, c, r, s] }
}

@Suite struct Conv2DTests {
    /// Sizes straddling the CPU tiles (16 channels × 6 pixels) and the GPU tiles (32 × 32).
    static let forwardCases: [ConvCase] = TestSizes.pick([
        ConvCase(n: 1, c: 1, h: 1, w: 1, k: 1, r: 1, s: 1),
        ConvCase(n: 3, c: 3, h: 7, w: 7, k: 32, r: 3, s: 3),
        ConvCase(n: 1, c: 32, h: 13, w: 13, k: 33, r: 3, s: 3),
        ConvCase(n: 3, c: 1, h: 28, w: 28, k: 32, r: 3, s: 3),
        ConvCase(n: 1, c: 33, h: 7, w: 31, k: 3, r: 3, s: 3, bias: false),
        ConvCase(n: 1, c: 3, h: 31, w: 33, k: 7, r: 3, s: 3, stride: (2, 2), padding: (1, 1)),
        ConvCase(n: 3, c: 7, h: 32, w: 13, k: 17, r: 3, s: 3, padding: (2, 2), dilation: (2, 2)),
        ConvCase(n: 1, c: 1, h: 257, w: 5, k: 3, r: 5, s: 3, stride: (2, 1), padding: (2, 1)),
        ConvCase(n: 3, c: 2, h: 17, w: 11, k: 1, r: 1, s: 4, stride: (3, 2), padding: (0, 2), dilation: (1, 3)),
        ConvCase(n: 3, c: 32, h: 13, w: 13, k: 64, r: 3, s: 3),
        ConvCase(n: 3, c: 33, h: 33, w: 32, k: 32, r: 3, s: 3, stride: (2, 2), padding: (1, 1)),
        ConvCase(n: 1, c: 3, h: 32, w: 31, k: 33, r: 3, s: 3, stride: (2, 2), padding: (2, 2), dilation: (2, 2)),
    ], small: [
        ConvCase(n: 1, c: 1, h: 1, w: 1, k: 1, r: 1, s: 1),
        ConvCase(n: 3, c: 3, h: 7, w: 7, k: 17, r: 3, s: 3, stride: (2, 2), padding: (1, 1)),
        ConvCase(n: 1, c: 2, h: 9, w: 5, k: 3, r: 3, s: 3, padding: (2, 2), dilation: (2, 2)),
    ])

    static let backwardCases: [ConvCase] = TestSizes.pick([
        ConvCase(n: 1, c: 1, h: 1, w: 1, k: 1, r: 1, s: 1),
        ConvCase(n: 3, c: 3, h: 7, w: 7, k: 33, r: 3, s: 3),
        ConvCase(n: 2, c: 33, h: 13, w: 13, k: 17, r: 3, s: 3),
        ConvCase(n: 3, c: 1, h: 28, w: 28, k: 32, r: 3, s: 3),
        ConvCase(n: 1, c: 7, h: 31, w: 33, k: 5, r: 3, s: 3, stride: (2, 2), padding: (1, 1)),
        ConvCase(n: 3, c: 16, h: 32, w: 11, k: 3, r: 3, s: 3, padding: (2, 2), dilation: (2, 2), bias: false),
        ConvCase(n: 2, c: 3, h: 17, w: 12, k: 2, r: 2, s: 4, stride: (3, 2), padding: (1, 2), dilation: (2, 1)),
        ConvCase(n: 1, c: 2, h: 257, w: 3, k: 3, r: 5, s: 1, stride: (2, 1), padding: (2, 0)),
        ConvCase(n: 3, c: 32, h: 13, w: 13, k: 64, r: 3, s: 3),
        ConvCase(n: 3, c: 33, h: 33, w: 32, k: 32, r: 3, s: 3, stride: (2, 2), padding: (1, 1)),
    ], small: [
        ConvCase(n: 1, c: 1, h: 1, w: 1, k: 1, r: 1, s: 1),
        ConvCase(n: 2, c: 3, h: 7, w: 6, k: 17, r: 3, s: 3, stride: (2, 2), padding: (1, 1)),
        ConvCase(n: 1, c: 2, h: 9, w: 5, k: 3, r: 3, s: 2, padding: (2, 1), dilation: (2, 2)),
    ])

    static func inputs(_ cs: ConvCase, seed: UInt64) -> (x: [Float], w: [Float], b: [Float]) {
        (seededFloats(cs.xShape.reduce(1, *), seed: seed),
         seededFloats(cs.wShape.reduce(1, *), seed: seed + 1, low: -0.5, high: 0.5),
         seededFloats(cs.k, seed: seed + 2))
    }

    /// Every variant of the family: those whose preconditions hold match the reference, the others refuse.
    @Test(arguments: forwardCases, Conv2DFamily.variants)
    func forwardMatchesReference(_ cs: ConvCase, _ variant: Conv2DVariant) throws {
        let engine = try testEngine()
        let (x, w, b) = Self.inputs(cs, seed: 11)
        let g = try Conv2DGeometry(input: cs.xShape, weight: cs.wShape, bias: nil, stride: cs.stride, padding: cs.padding, dilation: cs.dilation)
        if Conv2DFamily.unmet(variant, g, traits: engine.traits, defines: engine.resolvedDefines(Conv2DFamily.descriptor.file)) != nil {
            #expect(throws: TensorError.self) {
                try conv2d(try Tensor(x, shape: cs.xShape, engine: engine), weight: try Tensor(w, shape: cs.wShape, engine: engine), bias: nil,
                           stride: cs.stride, padding: cs.padding, dilation: cs.dilation, variant: variant)
            }
            return
        }
        let y = try conv2d(try Tensor(x, shape: cs.xShape, engine: engine), weight: try Tensor(w, shape: cs.wShape, engine: engine),
                           bias: cs.bias ? try Tensor(b, shape: [cs.k], engine: engine) : nil,
                           stride: cs.stride, padding: cs.padding, dilation: cs.dilation, variant: variant)
        let ref = Reference.conv2d(x: doubles(x), xShape: cs.xShape, w: doubles(w), wShape: cs.wShape,
                                   bias: cs.bias ? doubles(b) : nil, stride: cs.stride, padding: cs.padding, dilation: cs.dilation)
        #expect(y.shape == ref.shape)
        expectClose(try y.toArray(), ref.y, atol: 1e-4, rtol: 1e-4, "\(cs) \(variant)")
    }

    @Test(arguments: backwardCases)
    func backwardMatchesReference(_ cs: ConvCase) throws {
        let engine = try testEngine()
        let (x, w, b) = Self.inputs(cs, seed: 23)
        let xt = try Tensor(x, shape: cs.xShape, engine: engine, requiresGrad: true)
        let wt = try Tensor(w, shape: cs.wShape, engine: engine, requiresGrad: true)
        let bt = cs.bias ? try Tensor(b, shape: [cs.k], engine: engine, requiresGrad: true) : nil
        let y = try conv2d(xt, weight: wt, bias: bt, stride: cs.stride, padding: cs.padding, dilation: cs.dilation)
        let dy = seededFloats(y.count, seed: 29)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        let ref = Reference.conv2dBackward(dy: doubles(dy), x: doubles(x), xShape: cs.xShape, w: doubles(w), wShape: cs.wShape,
                                           stride: cs.stride, padding: cs.padding, dilation: cs.dilation)
        let depth = Double(cs.n * y.shape[2] * y.shape[3])
        expectClose(try #require(xt.grad).toArray(), ref.dx, atol: 1e-4, rtol: 1e-4, "dx \(cs)")
        expectClose(try #require(wt.grad).toArray(), ref.dw, atol: 2e-6 * depth + 1e-5, rtol: 1e-4, "dw \(cs)")
        if let bt { expectClose(try #require(bt.grad).toArray(), ref.db, atol: 2e-6 * depth + 1e-5, rtol: 1e-4, "db \(cs)") }
    }

    /// Other micro-tile and tile sizes, set through `defineOverrides`, give the same answers.
    @Test func overriddenTilesMatchReference() throws {
        let engine = try testEngine()
        let saved = engine.defineOverrides["conv2d.cl"]
        engine.defineOverrides["conv2d.cl"] = [
            "CONV_FWD_KV": "1", "CONV_FWD_NP": "3", "CONV_DX_KV": "3", "CONV_DX_NP": "5", "CONV_DW_KV": "1", "CONV_DW_NP": "7",
            "CONV_TM": "16", "CONV_TN": "64", "CONV_TD": "4", "CONV_WM": "1", "CONV_WN": "4",
        ]
        defer { engine.defineOverrides["conv2d.cl"] = saved }
        let cs = ConvCase(n: 2, c: 9, h: 11, w: 10, k: 19, r: 3, s: 2, stride: (2, 1), padding: (1, 1), dilation: (1, 2))
        let (x, w, b) = Self.inputs(cs, seed: 43)
        let ref = Reference.conv2d(x: doubles(x), xShape: cs.xShape, w: doubles(w), wShape: cs.wShape, bias: doubles(b),
                                   stride: cs.stride, padding: cs.padding, dilation: cs.dilation)
        for variant in [Conv2DVariant.cpu, .gpu] {
            let xt = try Tensor(x, shape: cs.xShape, engine: engine, requiresGrad: true)
            let wt = try Tensor(w, shape: cs.wShape, engine: engine, requiresGrad: true)
            let bt = try Tensor(b, shape: [cs.k], engine: engine, requiresGrad: true)
            let y = try conv2d(xt, weight: wt, bias: bt, stride: cs.stride, padding: cs.padding, dilation: cs.dilation, variant: variant)
            expectClose(try y.toArray(), ref.y, atol: 1e-4, rtol: 1e-4, "forward \(variant)")
            let dy = seededFloats(y.count, seed: 47)
            try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
            let g = Reference.conv2dBackward(dy: doubles(dy), x: doubles(x), xShape: cs.xShape, w: doubles(w), wShape: cs.wShape,
                                             stride: cs.stride, padding: cs.padding, dilation: cs.dilation)
            expectClose(try #require(xt.grad).toArray(), g.dx, atol: 1e-4, rtol: 1e-4, "dx")
            expectClose(try #require(wt.grad).toArray(), g.dw, atol: 1e-3, rtol: 1e-4, "dw")
            expectClose(try #require(bt.grad).toArray(), g.db, atol: 1e-3, rtol: 1e-4, "db")
        }
    }

    /// The CPU micro-tile kernels at vector widths 4, 8 and 16 (forward plain and padded, the pooled
    /// forward through the micro-tile and the rows kernel, backward input with few and many channels,
    /// backward weight), with channel counts off every tile (16 × 2 = 32 channels at width 16).
    @Test(arguments: [("4", "3", "5"), ("8", "1", "4"), ("16", "2", "6")])
    func microTilesAtEveryWidthMatchReference(_ tile: (vw: String, kv: String, np: String)) throws {
        let engine = try testEngine()
        let saved = engine.defineOverrides["conv2d.cl"]
        engine.defineOverrides["conv2d.cl"] = ["CONV_VW": tile.vw, "CONV_FWD_KV": tile.kv, "CONV_FWD_NP": tile.np,
                                               "CONV_DX_KV": tile.kv, "CONV_DX_NP": tile.np, "CONV_DW_KV": tile.kv, "CONV_DW_NP": tile.np]
        defer { engine.defineOverrides["conv2d.cl"] = saved }
        let label = "VW \(tile.vw) KV \(tile.kv) NP \(tile.np)"
        let cases = TestSizes.small
            ? [ConvCase(n: 2, c: 5, h: 9, w: 8, k: 35, r: 3, s: 3, padding: (1, 1)), ConvCase(n: 1, c: 17, h: 6, w: 7, k: 3, r: 2, s: 3)]
            : [ConvCase(n: 2, c: 5, h: 9, w: 8, k: 35, r: 3, s: 3, padding: (1, 1)), ConvCase(n: 1, c: 17, h: 6, w: 7, k: 3, r: 2, s: 3),
               ConvCase(n: 3, c: 33, h: 11, w: 10, k: 49, r: 3, s: 3, stride: (2, 1), padding: (1, 2), dilation: (1, 2))]
        for cs in cases {
            let (x, w, b) = Self.inputs(cs, seed: 53)
            let xt = try Tensor(x, shape: cs.xShape, engine: engine, requiresGrad: true)
            let wt = try Tensor(w, shape: cs.wShape, engine: engine, requiresGrad: true)
            let y = try conv2d(xt, weight: wt, bias: try Tensor(b, shape: [cs.k], engine: engine), stride: cs.stride, padding: cs.padding,
                               dilation: cs.dilation, variant: .cpu)
            let ref = Reference.conv2d(x: doubles(x), xShape: cs.xShape, w: doubles(w), wShape: cs.wShape, bias: doubles(b),
                                       stride: cs.stride, padding: cs.padding, dilation: cs.dilation)
            expectClose(try y.toArray(), ref.y, atol: 1e-4, rtol: 1e-4, "forward \(cs) \(label)")
            let dy = seededFloats(y.count, seed: 59)
            try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
            let g = Reference.conv2dBackward(dy: doubles(dy), x: doubles(x), xShape: cs.xShape, w: doubles(w), wShape: cs.wShape,
                                             stride: cs.stride, padding: cs.padding, dilation: cs.dilation)
            let depth = Double(cs.n * y.shape[2] * y.shape[3])
            expectClose(try #require(xt.grad).toArray(), g.dx, atol: 1e-4, rtol: 1e-4, "dx \(cs) \(label)")
            expectClose(try #require(wt.grad).toArray(), g.dw, atol: 2e-6 * depth + 1e-5, rtol: 1e-4, "dw \(cs) \(label)")
        }
        let pooled = ConvCase(n: 2, c: 1, h: 11, w: 12, k: 35, r: 3, s: 3)
        let (x, w, b) = Self.inputs(pooled, seed: 61)
        // A pooled work-item holds whole 2×2 windows.
        if let np = Int(tile.np), np % 4 != 0 { engine.defineOverrides["conv2d.cl"]?["CONV_FWD_NP"] = "4" }
        for variant in [Conv2DVariant.cpu, .rows] {
            let y = try engine.noGrad {
                try conv2dMaxPool2x2(try Tensor(x, shape: pooled.xShape, engine: engine), weight: try Tensor(w, shape: pooled.wShape, engine: engine),
                                     bias: try Tensor(b, shape: [pooled.k], engine: engine), stride: pooled.stride, padding: pooled.padding,
                                     relu: true, variant: variant)
            }
            let ref = Self.pooledReference(pooled, x: x, w: w, b: b, relu: true)
            expectClose(try y.toArray(), ref.y, atol: 1e-4, rtol: 1e-4, "pooled \(variant) \(label)")
        }
    }

    /// dx through the pixel-vectorized row kernel (stride 1, any padding and dilation), chosen
    /// automatically for at most 4 input channels and forced above (one or two channel blocks, the
    /// last partial), against the reference and the micro-tile kernel; stride 2 refuses it.
    @Test func backwardInputRowsMatchReference() throws {
        let engine = try testEngine()
        let cases = [ConvCase(n: 2, c: 1, h: 9, w: 19, k: 5, r: 3, s: 3), ConvCase(n: 1, c: 3, h: 7, w: 8, k: 6, r: 3, s: 2, padding: (1, 2), dilation: (2, 1)),
                     ConvCase(n: 2, c: 5, h: 6, w: 17, k: 3, r: 2, s: 3, padding: (1, 1)), ConvCase(n: 1, c: 11, h: 5, w: 9, k: 4, r: 3, s: 3, padding: (2, 0))]
        for cs in cases {
            let (x, w, _) = Self.inputs(cs, seed: 67)
            let g = try Conv2DGeometry(input: cs.xShape, weight: cs.wShape, bias: nil, stride: cs.stride, padding: cs.padding, dilation: cs.dilation)
            #expect(try Conv2DFamily.backwardInputVariant(.automatic, g) == (cs.c <= 4 ? .rows : .tiles), "\(cs)")
            let dy = seededFloats(g.outputShape.reduce(1, *), seed: 71)
            let ref = Reference.conv2dBackward(dy: doubles(dy), x: doubles(x), xShape: cs.xShape, w: doubles(w), wShape: cs.wShape,
                                               stride: cs.stride, padding: cs.padding, dilation: cs.dilation)
            for variant in [Conv2DBackwardInputVariant.rows, .tiles] {
                let (dx, _) = try Conv2DKernels.backwardInput(engine, g, dy: try engine.context.buffer(dy), w: try engine.context.buffer(w), variant: variant)
                expectClose(try dx.read(), ref.dx, atol: 1e-4, rtol: 1e-4, "dx \(cs) \(variant)")
            }
        }
        let strided = try Conv2DGeometry(input: [1, 1, 8, 8], weight: [2, 1, 3, 3], bias: nil, stride: (2, 2), padding: (0, 0), dilation: (1, 1))
        #expect(try Conv2DFamily.backwardInputVariant(.automatic, strided) == .tiles)
        #expect(throws: TensorError("conv2d backward input: the rows variant needs stride 1, got (2, 2)")) {
            try Conv2DFamily.backwardInputVariant(.rows, strided)
        }
    }

    @Test func onlyRequestedGradientsAreComputed() throws {
        let engine = try testEngine()
        let cs = ConvCase(n: 2, c: 3, h: 6, w: 5, k: 4, r: 3, s: 3)
        let (x, w, b) = Self.inputs(cs, seed: 31)
        let xt = try Tensor(x, shape: cs.xShape, engine: engine)
        let wt = try Tensor(w, shape: cs.wShape, engine: engine, requiresGrad: true)
        let bt = try Tensor(b, shape: [cs.k], engine: engine)
        let y = try conv2d(xt, weight: wt, bias: bt)
        let dy = seededFloats(y.count, seed: 37)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        #expect(xt.grad == nil)
        #expect(bt.grad == nil)
        let ref = Reference.conv2dBackward(dy: doubles(dy), x: doubles(x), xShape: cs.xShape, w: doubles(w), wShape: cs.wShape)
        expectClose(try #require(wt.grad).toArray(), ref.dw, atol: 1e-4, rtol: 1e-4, "dw")
        // Inside noGrad nothing is recorded.
        let z = try engine.noGrad { try conv2d(xt, weight: wt, bias: bt) }
        #expect(z.isLeaf)
    }

    @Test func shapeErrorsNameTheOpAndBothShapes() throws {
        let engine = try testEngine()
        func message(_ x: [Int], _ w: [Int], bias: [Int]? = nil, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0)) throws -> String? {
            // Host-written values (not `Tensor.zeros`), so the one launch that succeeds reads initialized memory.
            func tensor(_ shape: [Int]) throws -> Tensor { try Tensor(seededFloats(shape.reduce(1, *), seed: 41), shape: shape, engine: engine) }
            let xt = try tensor(x), wt = try tensor(w)
            do {
                _ = try conv2d(xt, weight: wt, bias: try bias.map { try tensor($0) }, stride: stride, padding: padding)
                return nil
            } catch let error as TensorError { return error.description }
        }
        #expect(try message([2, 3, 8, 8], [4, 1, 3, 3]) == "conv2d: input has 3 channels, weight expects 1: [2, 3, 8, 8] × [4, 1, 3, 3]")
        #expect(try message([3, 8, 8], [4, 3, 3, 3]) == "conv2d: input must have rank 4 [N, C, H, W]: [3, 8, 8] × [4, 3, 3, 3]")
        #expect(try message([1, 3, 8, 8], [4, 3, 3]) == "conv2d: weight must have rank 4 [K, C, R, S]: [1, 3, 8, 8] × [4, 3, 3]")
        #expect(try message([1, 1, 2, 2], [1, 1, 3, 3])
            == "conv2d: output size 0×0 is empty (kernel larger than padded input): [1, 1, 2, 2] × [1, 1, 3, 3]")
        #expect(try message([1, 1, 2, 2], [1, 1, 3, 3], padding: (1, 1)) == nil)
        #expect(try message([1, 2, 5, 5], [4, 2, 3, 3], bias: [3]) == "conv2d: bias must have shape [4]: [3] × [4, 2, 3, 3]")
        #expect(try message([1, 2, 5, 5], [4, 2, 3, 3], stride: (0, 1))?.hasPrefix("conv2d: stride (0, 1)") == true)
    }
}

extension Conv2DTests {
    /// Shallow, unpadded, stride-1 layers through the row kernel: full and partial 8-pixel blocks,
    /// channel counts that straddle its 8-channel block, one pixel, batch 1 and more.
    static let rowCases: [ConvCase] = TestSizes.pick([
        ConvCase(n: 1, c: 1, h: 1, w: 1, k: 1, r: 1, s: 1),
        ConvCase(n: 3, c: 1, h: 28, w: 28, k: 32, r: 3, s: 3),
        ConvCase(n: 2, c: 3, h: 7, w: 7, k: 17, r: 3, s: 3, bias: false),
        ConvCase(n: 1, c: 2, h: 9, w: 41, k: 9, r: 2, s: 3),
        ConvCase(n: 2, c: 1, h: 5, w: 33, k: 7, r: 5, s: 5),
        ConvCase(n: 1, c: 32, h: 3, w: 10, k: 3, r: 1, s: 1),
    ], small: [
        ConvCase(n: 1, c: 1, h: 1, w: 1, k: 1, r: 1, s: 1),
        ConvCase(n: 2, c: 2, h: 5, w: 19, k: 9, r: 2, s: 3),
    ])

    @Test(arguments: rowCases)
    func rowKernelMatchesReference(_ cs: ConvCase) throws {
        let engine = try testEngine()
        let (x, w, b) = Self.inputs(cs, seed: 53)
        let y = try conv2d(try Tensor(x, shape: cs.xShape, engine: engine), weight: try Tensor(w, shape: cs.wShape, engine: engine),
                           bias: cs.bias ? try Tensor(b, shape: [cs.k], engine: engine) : nil, variant: .rows)
        let ref = Reference.conv2d(x: doubles(x), xShape: cs.xShape, w: doubles(w), wShape: cs.wShape, bias: cs.bias ? doubles(b) : nil)
        #expect(y.shape == ref.shape)
        expectClose(try y.toArray(), ref.y, atol: 1e-5, rtol: 1e-4, "rows \(cs)")
    }

    @Test func rowKernelRefusesOtherGeometries() throws {
        let engine = try testEngine()
        let x = try Tensor.zeros([1, 1, 8, 8], engine: engine), w = try Tensor.zeros([2, 1, 3, 3], engine: engine)
        #expect(throws: TensorError.self) { try conv2d(x, weight: w, bias: nil, padding: (1, 1), variant: .rows) }
        #expect(throws: TensorError.self) { try conv2d(x, weight: w, bias: nil, stride: (2, 1), variant: .rows) }
    }
}

extension Conv2DTests {
    /// The fused ReLU epilogue of every forward kernel, and its backward (gradient only where y > 0).
    @Test(arguments: Conv2DFamily.variants)
    func fusedReLUMatchesReference(_ variant: Conv2DVariant) throws {
        let engine = try testEngine()
        let cs = TestSizes.small ? ConvCase(n: 2, c: 2, h: 6, w: 13, k: 9, r: 3, s: 3) : ConvCase(n: 3, c: 3, h: 12, w: 21, k: 17, r: 3, s: 3)
        let (x, w, b) = Self.inputs(cs, seed: 61)
        let xt = try Tensor(x, shape: cs.xShape, engine: engine, requiresGrad: true)
        let wt = try Tensor(w, shape: cs.wShape, engine: engine, requiresGrad: true)
        let bt = try Tensor(b, shape: [cs.k], engine: engine, requiresGrad: true)
        let y = try conv2d(xt, weight: wt, bias: bt, relu: true, variant: variant)
        let ref = Reference.conv2d(x: doubles(x), xShape: cs.xShape, w: doubles(w), wShape: cs.wShape, bias: doubles(b))
        expectClose(try y.toArray(), Reference.unary(0, x: ref.y), atol: 1e-5, rtol: 1e-4, "relu forward \(variant)")
        let dy = seededFloats(y.count, seed: 67)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        let masked = Reference.unaryBackward(0, x: ref.y, dy: doubles(dy))
        let g = Reference.conv2dBackward(dy: masked, x: doubles(x), xShape: cs.xShape, w: doubles(w), wShape: cs.wShape)
        expectClose(try #require(xt.grad).toArray(), g.dx, atol: 1e-4, rtol: 1e-4, "dx \(variant)")
        expectClose(try #require(wt.grad).toArray(), g.dw, atol: 1e-3, rtol: 1e-4, "dw \(variant)")
        expectClose(try #require(bt.grad).toArray(), g.db, atol: 1e-3, rtol: 1e-4, "db \(variant)")
    }
}

extension Conv2DTests {
    /// Pooled-convolution cases: odd and even outputs (a dropped last row or column), channel counts
    /// off the 8- and 16-channel tiles, one row per batch of pooled pixels and the rows kernel's
    /// partial 8-pixel blocks; the micro-tile kernel also with padding and stride.
    static let pooledCases: [ConvCase] = TestSizes.pick([
        ConvCase(n: 1, c: 1, h: 4, w: 4, k: 1, r: 3, s: 3),
        ConvCase(n: 3, c: 1, h: 28, w: 28, k: 32, r: 3, s: 3),
        ConvCase(n: 2, c: 1, h: 9, w: 27, k: 7, r: 3, s: 3),
        ConvCase(n: 2, c: 2, h: 12, w: 19, k: 9, r: 2, s: 3, bias: false),
        ConvCase(n: 3, c: 32, h: 13, w: 13, k: 64, r: 3, s: 3),
        ConvCase(n: 1, c: 3, h: 10, w: 35, k: 17, r: 3, s: 3),
    ], small: [
        ConvCase(n: 1, c: 1, h: 4, w: 4, k: 1, r: 3, s: 3),
        ConvCase(n: 2, c: 1, h: 7, w: 12, k: 9, r: 3, s: 3),
    ])
    static let pooledPaddedCases: [ConvCase] = TestSizes.pick([
        ConvCase(n: 2, c: 3, h: 11, w: 14, k: 17, r: 3, s: 3, padding: (1, 1)),
        ConvCase(n: 1, c: 5, h: 17, w: 13, k: 33, r: 3, s: 3, stride: (2, 2), padding: (1, 1)),
    ], small: [
        ConvCase(n: 1, c: 2, h: 7, w: 6, k: 9, r: 3, s: 3, padding: (1, 1)),
    ])

    /// Reference: conv2d (+ bias), ReLU when asked, then 2×2 / stride 2 max pooling.
    static func pooledReference(_ cs: ConvCase, x: [Float], w: [Float], b: [Float], relu: Bool) -> (y: [Double], shape: [Int]) {
        let conv = Reference.conv2d(x: doubles(x), xShape: cs.xShape, w: doubles(w), wShape: cs.wShape, bias: cs.bias ? doubles(b) : nil,
                                    stride: cs.stride, padding: cs.padding)
        let activated = relu ? Reference.unary(0, x: conv.y) : conv.y
        let pooled = Reference.maxPool2d(x: activated, shape: conv.shape, kernel: (2, 2), stride: (2, 2))
        return (pooled.y, pooled.shape)
    }

    /// Every case through the micro-tile kernel; the unpadded shallow ones through the rows kernel too.
    static let pooledRuns: [(ConvCase, Conv2DVariant)] = (pooledCases + pooledPaddedCases).map { ($0, .cpu) }
        + pooledCases.filter { $0.c * $0.r * $0.s <= 32 }.map { ($0, .rows) }

    @Test(arguments: pooledRuns)
    func pooledConvolutionMatchesReference(_ cs: ConvCase, _ variant: Conv2DVariant) throws {
        let engine = try testEngine()
        let (x, w, b) = Self.inputs(cs, seed: 71)
        for relu in [false, true] {
        let y = try engine.noGrad {
            try conv2dMaxPool2x2(try Tensor(x, shape: cs.xShape, engine: engine), weight: try Tensor(w, shape: cs.wShape, engine: engine),
                                 bias: cs.bias ? try Tensor(b, shape: [cs.k], engine: engine) : nil, stride: cs.stride, padding: cs.padding,
                                 relu: relu, variant: variant)
        }
        let ref = Self.pooledReference(cs, x: x, w: w, b: b, relu: relu)
        #expect(y.shape == ref.shape)
        expectClose(try y.toArray(), ref.y, atol: 1e-4, rtol: 1e-4, "pooled \(cs) \(variant) relu \(relu)")
        }
    }

    /// A NaN anywhere in a window wins the window, as in maxPool2d (and passes the ReLU).
    @Test(arguments: Conv2DFamily.pooledVariants)
    func pooledConvolutionKeepsNaN(_ variant: Conv2DVariant) throws {
        let engine = try testEngine()
        let cs = ConvCase(n: 1, c: 1, h: 10, w: 10, k: 3, r: 1, s: 1)
        var (x, w, b) = Self.inputs(cs, seed: 73)
        x[3 * 10 + 5] = .nan   // pixel (3, 5): pooled (1, 2) of every channel
        let y = try engine.noGrad {
            try conv2dMaxPool2x2(try Tensor(x, shape: cs.xShape, engine: engine), weight: try Tensor(w, shape: cs.wShape, engine: engine),
                                 bias: try Tensor(b, shape: [cs.k], engine: engine), relu: true, variant: variant).toArray()
        }
        for k in 0..<3 {
            for i in 0..<25 {
                let value = y[k * 25 + i]
                #expect(value.isNaN == (i == 1 * 5 + 2), "channel \(k) pooled pixel \(i): \(value)")
            }
        }
    }

    @Test func pooledConvolutionRefusesGradientsAndTinyOutputs() throws {
        let engine = try testEngine()
        let x = try Tensor.zeros([1, 1, 8, 8], engine: engine)
        let w = try Tensor(seededFloats(18, seed: 3), shape: [2, 1, 3, 3], engine: engine, requiresGrad: true)
        #expect(throws: TensorError.self) { try conv2dMaxPool2x2(x, weight: w, bias: nil) }
        #expect(throws: TensorError.self) {
            try engine.noGrad { try conv2dMaxPool2x2(try Tensor.zeros([1, 1, 3, 4], engine: engine), weight: w, bias: nil) }
        }
        #expect(throws: TensorError.self) { try engine.noGrad { try conv2dMaxPool2x2(x, weight: w, bias: nil, variant: .gpu) } }
    }
}

extension Conv2DTests {
    /// An override of CONV_FWD_NP that would split a 2×2 window between work-items: the pooled
    /// convolution refuses it, and inference falls back to the separate kernels with the same logits.
    @Test func pooledConvolutionRefusesASplitWindowOverride() throws {
        let engine = try testEngine()
        let saved = engine.defineOverrides["conv2d.cl"]
        engine.defineOverrides["conv2d.cl"] = ["CONV_FWD_NP": "6"]
        defer { engine.defineOverrides["conv2d.cl"] = saved }
        #expect(!Conv2DKernels.supportsPooling(engine))
        let cs = ConvCase(n: 2, c: 3, h: 9, w: 9, k: 17, r: 3, s: 3)
        let (x, w, b) = Self.inputs(cs, seed: 79)
        #expect(throws: TensorError.self) {
            try engine.noGrad {
                try conv2dMaxPool2x2(try Tensor(x, shape: cs.xShape, engine: engine), weight: try Tensor(w, shape: cs.wShape, engine: engine),
                                     bias: try Tensor(b, shape: [cs.k], engine: engine), variant: .cpu)
            }
        }
        let (model, golden, input) = try goldenModel(engine)
        let inference = try engine.noGrad { try model(try Tensor(input.values, shape: input.shape, engine: engine)).toArray() }
        expectClose(inference, try golden.tensor("logits", shape: [3, 10]).values, atol: 1e-5, rtol: 1e-4, "golden logits with the override")
    }
}
