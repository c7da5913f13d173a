import Prism
import PrismReference
import PrismTestSupport
import Testing

/// The message of the `TensorError` that `body` throws, or nil when it throws none.
func errorMessage(_ body: () throws -> Tensor) -> String? {
    do { _ = try body(); return nil } catch let error as TensorError { return error.description } catch { return "\(error)" }
}

/// A binary op's operands: a's shape, b's shape, and b's shape as NumPy would broadcast it
/// (differs from `b` only for a plain [C] over the channel axis of [N, C, H, W]).
struct BroadcastCase: CustomStringConvertible, Sendable {
    var a: [Int]
    var b: [Int]
    var numpyB: [Int]? = nil
    var description: String { "\(a) op \(b)" }
}

@Suite struct ElementwiseTests {
    static let sizes = TestSizes.pick([1, 7, 31, 32, 33, 257, 1031, 4099], small: [1, 7, 33])

    /// Inputs where each op is smooth and finite: log and sqrt need positive values, reciprocal
    /// values away from 0 (of both signs).
    static func inputs(_ op: UnaryOp, count: Int, seed: UInt64) -> [Float] {
        switch op {
        case .log, .sqrt: return seededFloats(count, seed: seed, low: 0.05, high: 3)
        case .reciprocal: return seededFloats(count, seed: seed, low: 0.25, high: 3).enumerated().map { $0.offset % 2 == 0 ? $0.element : -$0.element }
        default: return seededFloats(count, seed: seed, low: -3, high: 3)
        }
    }

    @Test(arguments: UnaryOp.allCases, sizes)
    func unaryMatchesReference(_ op: UnaryOp, _ n: Int) throws {
        let engine = try testEngine()
        let x = Self.inputs(op, count: n, seed: 11)
        let xt = try Tensor(x, shape: [n], engine: engine, requiresGrad: true)
        let y: Tensor
        switch op {
        case .relu: y = try xt.relu()
        case .gelu: y = try xt.gelu()
        case .geluTanh: y = try xt.gelu(approximate: true)
        case .tanh: y = try xt.tanh()
        case .sigmoid: y = try xt.sigmoid()
        case .exp: y = try xt.exp()
        case .log: y = try xt.log()
        case .sqrt: y = try xt.sqrt()
        case .erf: y = try xt.erf()
        case .reciprocal: y = try xt.reciprocal()
        }
        #expect(y.shape == [n])
        let code = Int(op.rawValue)
        expectClose(try y.toArray(), Reference.unary(code, x: doubles(x)), atol: 1e-6, rtol: 2e-6, "\(op) n=\(n)")
        let dy = seededFloats(n, seed: 12)
        try y.backward(try Tensor(dy, shape: [n], engine: engine))
        let reference = Reference.unaryBackward(code, x: doubles(x), dy: doubles(dy))
        expectClose(try #require(xt.grad).toArray(), reference, atol: 1e-6, rtol: 1e-5, "\(op) dx n=\(n)")
        // The reference's backward against central differences of its forward (element-wise, so one
        // shifted pass per side).
        let h = 1e-6, xs = doubles(x)
        let plus = Reference.unary(code, x: xs.map { $0 + h }), minus = Reference.unary(code, x: xs.map { $0 - h })
        let fd = xs.indices.map { Double(dy[$0]) * (plus[$0] - minus[$0]) / (2 * h) }
        expectClose(reference.map(Float.init), fd, atol: 1e-5, rtol: 1e-5, "\(op) reference dx vs finite differences n=\(n)")
    }

    @Test func unaryKeepsShapeAndReluGradientIsZeroAtZero() throws {
        let engine = try testEngine()
        let xt = try Tensor([-1, 0, 2, -0.5, 3, 0], shape: [2, 3], engine: engine, requiresGrad: true)
        let y = try xt.relu()
        #expect(y.shape == [2, 3])
        #expect(try y.toArray() == [0, 0, 2, 0, 3, 0])
        try y.backward(try Tensor.ones([2, 3], engine: engine))
        #expect(try #require(xt.grad).toArray() == [0, 0, 1, 0, 1, 0])
    }

    @Test(arguments: sizes)
    func affineMatchesReference(_ n: Int) throws {
        let engine = try testEngine()
        let x = seededFloats(n, seed: 13)
        let xt = try Tensor(x, shape: [n], engine: engine, requiresGrad: true)
        let y = try xt.affine(scale: -1.5, shift: 0.25)
        expectClose(try y.toArray(), Reference.affine(x: doubles(x), scale: -1.5, shift: 0.25), atol: 1e-6, rtol: 1e-6, "affine")
        let dy = seededFloats(n, seed: 14)
        try y.backward(try Tensor(dy, shape: [n], engine: engine))
        expectClose(try #require(xt.grad).toArray(), Reference.affine(x: doubles(dy), scale: -1.5, shift: 0), atol: 1e-6, rtol: 1e-6, "affine dx")
    }

    static let broadcastCases: [BroadcastCase] = TestSizes.pick([
        BroadcastCase(a: [1], b: [1]),
        BroadcastCase(a: [7], b: [7]),
        BroadcastCase(a: [1031], b: [1031]),
        BroadcastCase(a: [32, 33], b: [33]),
        BroadcastCase(a: [3, 257], b: [1, 257]),
        BroadcastCase(a: [31, 7], b: [31, 7]),
        BroadcastCase(a: [2, 7, 31], b: [7, 1]),
        BroadcastCase(a: [2, 33, 5, 7], b: [1, 33, 1, 1]),
        BroadcastCase(a: [2, 33, 5, 7], b: [33], numpyB: [33, 1, 1]),
        BroadcastCase(a: [1, 32, 1, 1], b: [32], numpyB: [32, 1, 1]),
        BroadcastCase(a: [2, 3, 4, 3], b: [3]),
        // Per-channel operands over planes shorter and longer than a work-group of 64 (several
        // channels to a group, the last group partly past the channels; groups along a row).
        BroadcastCase(a: [3, 16, 3, 3], b: [1, 16, 1, 1]),
        BroadcastCase(a: [3, 5, 9, 10], b: [1, 5, 1, 1]),
        BroadcastCase(a: [4, 31], b: [1]),
        BroadcastCase(a: [5, 32], b: []),
    ], small: [
        BroadcastCase(a: [1], b: [1]),
        BroadcastCase(a: [3, 7], b: [7]),
        BroadcastCase(a: [2, 3, 2, 5], b: [3], numpyB: [3, 1, 1]),
        BroadcastCase(a: [2, 3, 4], b: [3, 1]),
        BroadcastCase(a: [2, 16, 3, 3], b: [1, 16, 1, 1]),
    ])

    @Test(arguments: BinaryOp.allCases, broadcastCases)
    func binaryMatchesReference(_ op: BinaryOp, _ cs: BroadcastCase) throws {
        let engine = try testEngine()
        // a positive where it is a base or a divisor; b away from 0 so division is well conditioned.
        let a = [.pow, .rdiv].contains(op) ? seededFloats(cs.a.reduce(1, *), seed: 15, low: 0.5, high: 2) : seededFloats(cs.a.reduce(1, *), seed: 15)
        let b = seededFloats(cs.b.reduce(1, *), seed: 16, low: 0.5, high: 2)
        let at = try Tensor(a, shape: cs.a, engine: engine, requiresGrad: true)
        let bt = try Tensor(b, shape: cs.b, engine: engine, requiresGrad: true)
        let y = try at.binary(op, bt)
        #expect(y.shape == cs.a)
        let code = Int(op.rawValue), bShape = cs.numpyB ?? cs.b
        expectClose(try y.toArray(), Reference.binary(code, a: doubles(a), aShape: cs.a, b: doubles(b), bShape: bShape),
                    atol: 1e-6, rtol: 1e-6, "\(op) \(cs)")
        let dy = seededFloats(y.count, seed: 17)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        let ref = Reference.binaryBackward(code, a: doubles(a), aShape: cs.a, b: doubles(b), bShape: bShape, dy: doubles(dy))
        expectClose(try #require(at.grad).toArray(), ref.da, atol: 1e-6, rtol: 1e-5, "\(op) da \(cs)")
        expectClose(try #require(bt.grad).toArray(), ref.db, atol: 1e-5, rtol: 1e-5, "\(op) db \(cs)")
    }

    /// relu(a op b) in one kernel (the fused residual Add + ReLU): the op's reference then max(·, 0),
    /// and gradients through the positive outputs only.
    @Test(arguments: [BinaryOp.add, .mul, .sub], TestSizes.pick([
        BroadcastCase(a: [2, 33, 5, 7], b: [2, 33, 5, 7]), BroadcastCase(a: [3, 16, 3, 3], b: [1, 16, 1, 1]), BroadcastCase(a: [5, 32], b: [32]),
    ], small: [BroadcastCase(a: [2, 3, 2, 5], b: [2, 3, 2, 5]), BroadcastCase(a: [2, 16, 3, 3], b: [1, 16, 1, 1])]))
    func binaryWithReLUIsReLUOfTheOp(_ op: BinaryOp, _ cs: BroadcastCase) throws {
        let engine = try testEngine()
        let a = seededFloats(cs.a.reduce(1, *), seed: 25), b = seededFloats(cs.b.reduce(1, *), seed: 26)
        let at = try Tensor(a, shape: cs.a, engine: engine, requiresGrad: true)
        let bt = try Tensor(b, shape: cs.b, engine: engine, requiresGrad: true)
        let y = try at.binary(op, bt, relu: true)
        let code = Int(op.rawValue), bShape = cs.numpyB ?? cs.b
        let pre = Reference.binary(code, a: doubles(a), aShape: cs.a, b: doubles(b), bShape: bShape)
        #expect(pre.contains { $0 < 0 } && pre.contains { $0 > 0 })
        expectClose(try y.toArray(), pre.map { max($0, 0) }, atol: 1e-6, rtol: 1e-6, "relu(\(op)) \(cs)")
        let dy = seededFloats(y.count, seed: 27)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        let masked = zip(doubles(dy), try y.toArray()).map { $1 > 0 ? $0 : 0 }
        let ref = Reference.binaryBackward(code, a: doubles(a), aShape: cs.a, b: doubles(b), bShape: bShape, dy: masked)
        expectClose(try #require(at.grad).toArray(), ref.da, atol: 1e-6, rtol: 1e-5, "relu(\(op)) da \(cs)")
        expectClose(try #require(bt.grad).toArray(), ref.db, atol: 1e-5, rtol: 1e-5, "relu(\(op)) db \(cs)")
    }

    @Test func onlyTheOperandThatNeedsAGradientGetsOne() throws {
        let engine = try testEngine()
        let a = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3], engine: engine)
        let b = try Tensor([2, 4, 8], shape: [3], engine: engine, requiresGrad: true)
        let y = try a / b
        try y.backward(try Tensor.ones([2, 3], engine: engine))
        #expect(a.grad == nil)
        // db = −Σ_rows a / b² = −(1 + 4, 2 + 5, 3 + 6) / (4, 16, 64).
        expectClose(try #require(b.grad).toArray(), [-5.0 / 4, -7.0 / 16, -9.0 / 64], atol: 1e-7, rtol: 1e-6, "db")
    }

    @Test func operatorsComposeAndSharedInputsAccumulate() throws {
        let engine = try testEngine()
        let x = seededFloats(33, seed: 18)
        let xt = try Tensor(x, shape: [3, 11], engine: engine, requiresGrad: true)
        // y = (x·x − x) · 2 + 1 − (−x): dy/dx = 4x − 2 + 1 = 4x − 1.
        let y = try (xt * xt - xt) * 2 + 1 - (-xt)
        expectClose(try y.toArray(), doubles(x).map { ($0 * $0 - $0) * 2 + 1 + $0 }, atol: 1e-6, rtol: 1e-6, "y")
        try y.backward(try Tensor.ones([3, 11], engine: engine))
        expectClose(try #require(xt.grad).toArray(), doubles(x).map { 4 * $0 - 1 }, atol: 1e-6, rtol: 1e-6, "dx")
    }

    @Test func broadcastRules() {
        #expect(Broadcast.of([33], over: [32, 33]) == Broadcast(inner: 1, bcount: 33))
        #expect(Broadcast.of([1, 33], over: [32, 33]) == Broadcast(inner: 1, bcount: 33))
        #expect(Broadcast.of([1, 8, 1, 1], over: [2, 8, 5, 7]) == Broadcast(inner: 35, bcount: 8))
        #expect(Broadcast.of([8, 1, 1], over: [2, 8, 5, 7]) == Broadcast(inner: 35, bcount: 8))
        #expect(Broadcast.of([8], over: [2, 8, 5, 7]) == Broadcast(inner: 35, bcount: 8))
        // [C] over [N, C, H, W] with W = C follows the trailing (NumPy) rule.
        #expect(Broadcast.of([7], over: [2, 7, 5, 7]) == Broadcast(inner: 1, bcount: 7))
        #expect(Broadcast.of([], over: [2, 3]) == Broadcast(inner: 1, bcount: 1))
        #expect(Broadcast.of([2, 3], over: [2, 3]) == Broadcast(inner: 1, bcount: 6))
        #expect(Broadcast.of([2, 1], over: [2, 3]) == Broadcast(inner: 3, bcount: 2))
        #expect(Broadcast.of([2, 1, 4], over: [2, 3, 4]) == nil)
        #expect(Broadcast.of([3], over: [3, 2]) == nil)
        #expect(Broadcast.of([2, 3, 4], over: [3, 4]) == nil)
    }

    @Test func errorsNameTheOpAndBothShapes() throws {
        let engine = try testEngine()
        let a = try Tensor.zeros([2, 3], engine: engine)
        #expect(errorMessage { try a + (try Tensor.zeros([2], engine: engine)) }
            == "add: second operand does not broadcast over the first: [2, 3] × [2]")
        #expect(errorMessage { try a.mul(try Tensor.zeros([2, 3, 1], engine: engine)) }
            == "mul: second operand does not broadcast over the first: [2, 3] × [2, 3, 1]")
        #expect(errorMessage { try a / (try Tensor.zeros([4], engine: engine)) }
            == "div: second operand does not broadcast over the first: [2, 3] × [4]")
    }
}

extension ElementwiseTests {
    /// ReLU lets NaN through (PyTorch does), so a diverging run shows a NaN loss instead of hiding it;
    /// both the element-wise kernel and the matmul epilogue (`linear(relu: true)`).
    @Test func reluPropagatesNaN() throws {
        let engine = try testEngine()
        let x = try Tensor([-1, .nan, 2, -.infinity], shape: [1, 4], engine: engine)
        let y = try x.relu().toArray()
        #expect(y[0] == 0 && y[1].isNaN && y[2] == 2 && y[3] == 0)
        for variant in GEMMFamily.variants {
            let a = try Tensor([1, .nan, 3, 4, -5, 6], shape: [2, 3], engine: engine)
            let identity = try Tensor([1, 0, 0, 0, 1, 0, 0, 0, 1], shape: [3, 3], engine: engine)
            let c = try engine.buffer(count: 6)
            try MatmulKernels.gemm(engine: engine, a: a.storage, b: identity.storage, c: c, m: 2, n: 3, k: 3, relu: true, variant: variant)
            let out = try c.read()
            #expect(out[1].isNaN, "\(variant)")
            #expect(out[4] == 0 && out[5] == 6, "\(variant)")
        }
    }
}
