import Prism
import PrismReference
import PrismTestSupport
import Testing

@Suite struct LayerNormTests {
    /// Rows × features straddling the GPU work-group (LN_GROUP = 128) and the CPU kernels' unrolled loops;
    /// the last axis is normalized, leading axes are rows.
    static let shapes: [[Int]] = TestSizes.pick(
        [[1, 1], [1, 257], [3, 1], [7, 7], [5, 31], [33, 32], [4, 33], [2, 64], [31, 257], [2, 3, 33], [300, 7]],
        small: [[1, 1], [1, 33], [3, 7], [2, 3, 5], [3, 130]])

    /// Seeded inputs away from zero mean, with row 1 (when there is one) constant: it must normalize to
    /// the bias, with rstd = 1/√eps, not to NaN.
    static func inputs(_ shape: [Int], seed: UInt64) -> (x: [Float], w: [Float], b: [Float], dy: [Float]) {
        let n = shape.last!, count = shape.reduce(1, *)
        var x = seededFloats(count, seed: seed, low: -3, high: 5)
        if count / n > 1 { for j in 0..<n { x[n + j] = 1.5 } }
        return (x, seededFloats(n, seed: seed + 1, low: -1.5, high: 1.5), seededFloats(n, seed: seed + 2),
                seededFloats(count, seed: seed + 3))
    }

    // Tolerances: a mean off by one float ulp in a constant row becomes ~4e-5 in x̂ (rstd = 1/√eps ≈ 316),
    // hence atol 1e-4 on y and dx; dγ and dβ add up one float product per row.
    static func paramAtol(_ rows: Int) -> Double { 1e-4 + 2e-6 * Double(rows) }

    @Test(arguments: shapes, LayerNormFamily.variants)
    func forwardAndBackwardMatchReference(_ shape: [Int], _ variant: LayerNormVariant) throws {
        let engine = try testEngine()
        let n = shape.last!, rows = shape.reduce(1, *) / n
        let (x, w, b, dy) = Self.inputs(shape, seed: 50)
        let xt = try Tensor(x, shape: shape, engine: engine, requiresGrad: true)
        let wt = try Tensor(w, shape: [n], engine: engine, requiresGrad: true)
        let bt = try Tensor(b, shape: [n], engine: engine, requiresGrad: true)
        let y = try layerNorm(xt, weight: wt, bias: bt, variant: variant)
        #expect(y.shape == shape)
        let ref = Reference.layerNorm(x: doubles(x), weight: doubles(w), bias: doubles(b), features: n)
        expectClose(try y.toArray(), ref.y, atol: 1e-4, rtol: 1e-4, "y \(shape) \(variant)")

        try y.backward(try Tensor(dy, shape: shape, engine: engine))
        let g = Reference.layerNormBackward(dy: doubles(dy), x: doubles(x), weight: doubles(w), features: n)
        expectClose(try #require(xt.grad).toArray(), g.dx, atol: 1e-4, rtol: 1e-4, "dx \(shape) \(variant)")
        expectClose(try #require(wt.grad).toArray(), g.dweight, atol: Self.paramAtol(rows), rtol: 1e-4, "dweight \(shape) \(variant)")
        expectClose(try #require(bt.grad).toArray(), g.dbias, atol: Self.paramAtol(rows), rtol: 1e-4, "dbias \(shape) \(variant)")
    }

    /// Without weight, without bias, or without both, as PyTorch's `elementwise_affine` and `bias` options.
    @Test(arguments: [(true, false), (false, true), (false, false)], LayerNormFamily.variants)
    func absentParametersMatchReference(_ present: (weight: Bool, bias: Bool), _ variant: LayerNormVariant) throws {
        let engine = try testEngine()
        let shape = [5, 33], n = 33
        let (x, w, b, dy) = Self.inputs(shape, seed: 60)
        let xt = try Tensor(x, shape: shape, engine: engine, requiresGrad: true)
        let wt = present.weight ? try Tensor(w, shape: [n], engine: engine, requiresGrad: true) : nil
        let bt = present.bias ? try Tensor(b, shape: [n], engine: engine, requiresGrad: true) : nil
        let y = try layerNorm(xt, weight: wt, bias: bt, eps: 1e-3, variant: variant)
        let (rw, rb) = (present.weight ? doubles(w) : nil, present.bias ? doubles(b) : nil)
        let label = "weight \(present.weight) bias \(present.bias) \(variant)"
        expectClose(try y.toArray(), Reference.layerNorm(x: doubles(x), weight: rw, bias: rb, features: n, eps: 1e-3).y,
                    atol: 1e-4, rtol: 1e-4, "y \(label)")
        try y.backward(try Tensor(dy, shape: shape, engine: engine))
        let g = Reference.layerNormBackward(dy: doubles(dy), x: doubles(x), weight: rw, features: n, eps: 1e-3)
        expectClose(try #require(xt.grad).toArray(), g.dx, atol: 1e-4, rtol: 1e-4, "dx \(label)")
        if let wt { expectClose(try #require(wt.grad).toArray(), g.dweight, atol: Self.paramAtol(5), rtol: 1e-4, "dweight \(label)") }
        if let bt { expectClose(try #require(bt.grad).toArray(), g.dbias, atol: Self.paramAtol(5), rtol: 1e-4, "dbias \(label)") }
    }

    /// The GPU-shaped kernels with other work-group sizes (set through `defineOverrides`), including one
    /// work-item per group and groups wider than the row.
    @Test(arguments: [1, 32, 64])
    func otherGroupSizesMatchReference(_ group: Int) throws {
        let engine = try testEngine()
        let saved = engine.defineOverrides["layernorm.cl"]
        engine.defineOverrides["layernorm.cl"] = ["LN_GROUP": "\(group)"]
        defer { engine.defineOverrides["layernorm.cl"] = saved }
        for shape in TestSizes.pick([[3, 31], [2, 32], [4, 33], [2, 257]], small: [[3, 31], [2, 33]]) {
            let n = shape[1]
            let (x, w, b, dy) = Self.inputs(shape, seed: 70)
            let xt = try Tensor(x, shape: shape, engine: engine, requiresGrad: true)
            let y = try layerNorm(xt, weight: try Tensor(w, shape: [n], engine: engine), bias: try Tensor(b, shape: [n], engine: engine),
                                  variant: .gpu)
            expectClose(try y.toArray(), Reference.layerNorm(x: doubles(x), weight: doubles(w), bias: doubles(b), features: n).y,
                        atol: 1e-4, rtol: 1e-4, "y \(shape) group \(group)")
            try y.backward(try Tensor(dy, shape: shape, engine: engine))
            expectClose(try #require(xt.grad).toArray(),
                        Reference.layerNormBackward(dy: doubles(dy), x: doubles(x), weight: doubles(w), features: n).dx,
                        atol: 1e-4, rtol: 1e-4, "dx \(shape) group \(group)")
        }
    }

    /// Through the tape: a layer norm between a linear layer and a mean-squared error, gradients reaching
    /// the linear weight, the norm's weight and bias, and the input; x's own gradient is checked against
    /// the reference chain.
    @Test func gradientsFlowThroughTheTape() throws {
        let engine = try testEngine()
        let (rows, inFeatures, n) = (4, 5, 6)
        let x = seededFloats(rows * inFeatures, seed: 80, low: -2, high: 2)
        let lw = seededFloats(n * inFeatures, seed: 81), gamma = seededFloats(n, seed: 82, low: 0.5, high: 1.5)
        let beta = seededFloats(n, seed: 83), target = seededFloats(rows * n, seed: 84)
        let xt = try Tensor(x, shape: [2, 2, inFeatures], engine: engine, requiresGrad: true)
        let lwt = try Tensor(lw, shape: [n, inFeatures], engine: engine, requiresGrad: true)
        let gt = try Tensor(gamma, shape: [n], engine: engine, requiresGrad: true)
        let bt = try Tensor(beta, shape: [n], engine: engine, requiresGrad: true)
        let h = try linear(xt, weight: lwt, bias: nil)
        let y = try layerNorm(h, weight: gt, bias: bt)
        #expect(!y.isLeaf)
        let loss = try mseLoss(y, try Tensor(target, shape: [2, 2, n], engine: engine))
        try loss.backward()

        let hRef = Reference.linear(x: doubles(x), weight: doubles(lw), bias: nil, rows: rows, inFeatures: inFeatures, outFeatures: n)
        let yRef = Reference.layerNorm(x: hRef, weight: doubles(gamma), bias: doubles(beta), features: n).y
        expectClose([try loss.item()], [Reference.mse(x: yRef, target: doubles(target))], atol: 1e-6, rtol: 1e-5, "loss")
        let dy = Reference.mseBackward(x: yRef, target: doubles(target))
        let g = Reference.layerNormBackward(dy: dy, x: hRef, weight: doubles(gamma), features: n)
        let l = Reference.linearBackward(dy: g.dx, x: doubles(x), weight: doubles(lw), bias: nil, rows: rows, inFeatures: inFeatures,
                                         outFeatures: n)
        expectClose(try #require(gt.grad).toArray(), g.dweight, atol: 1e-6, rtol: 1e-4, "dγ")
        expectClose(try #require(bt.grad).toArray(), g.dbias, atol: 1e-6, rtol: 1e-4, "dβ")
        expectClose(try #require(lwt.grad).toArray(), l.dw, atol: 1e-6, rtol: 1e-4, "linear dW")
        expectClose(try #require(xt.grad).toArray(), l.dx, atol: 1e-6, rtol: 1e-4, "dx")

        // Only what requires gradients gets one; inside noGrad nothing is recorded.
        let frozen = try Tensor(x, shape: [rows, inFeatures], engine: engine)
        let bias = try Tensor(beta.prefix(inFeatures).map { $0 }, shape: [inFeatures], engine: engine, requiresGrad: true)
        let z = try layerNorm(frozen, weight: nil, bias: bias)
        try z.backward(try Tensor.ones([rows, inFeatures], engine: engine))
        #expect(frozen.grad == nil)
        expectClose(try #require(bias.grad).toArray(), [Double](repeating: Double(rows), count: inFeatures), atol: 0, rtol: 0, "dβ of ones")
        #expect(try engine.noGrad { try layerNorm(frozen, weight: nil, bias: bias) }.isLeaf)
    }

    @Test func errorsNameTheOpAndShapes() throws {
        let engine = try testEngine()
        let x = try Tensor.zeros([2, 3], engine: engine)
        #expect(errorMessage { try layerNorm(x, weight: try Tensor.ones([2], engine: engine), bias: nil) }
            == "layerNorm: weight must have shape [3]: [2, 3] × [2]")
        #expect(errorMessage { try layerNorm(x, weight: nil, bias: try Tensor.zeros([3, 1], engine: engine)) }
            == "layerNorm: bias must have shape [3]: [2, 3] × [3, 1]")
        #expect(errorMessage { try layerNorm(try Tensor.zeros([2, 0], engine: engine), weight: nil, bias: nil) }
            == "layerNorm: needs a non-empty last axis: [2, 0]")
        #expect(errorMessage { try layerNorm(x, weight: nil, bias: nil, eps: -1) } == "layerNorm: eps must be finite and not negative, got -1.0")
    }
}
