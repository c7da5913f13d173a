import Prism
import PrismReference
import PrismTestSupport
import Testing

/// One pooling problem on an input [n, c, h, w].
struct PoolCase: CustomStringConvertible, Sendable {
    var n, c, h, w: Int
    var kernel: (Int, Int)
    var stride: (Int, Int)
    var padding = (0, 0)

    var shape: [Int] { [n, c, h, w] }
    var description: String { "x\(shape) kernel \(kernel) stride \(stride) pad \(padding)" }
}

@Suite struct PoolTests {
    static let cases: [PoolCase] = TestSizes.pick([
        PoolCase(n: 1, c: 1, h: 1, w: 1, kernel: (1, 1), stride: (1, 1)),
        PoolCase(n: 3, c: 32, h: 26, w: 26, kernel: (2, 2), stride: (2, 2)),
        // 17 outputs per row: two 8-wide vectors of the 2×2 kernel and one output past them; odd H.
        PoolCase(n: 2, c: 3, h: 9, w: 35, kernel: (2, 2), stride: (2, 2)),
        PoolCase(n: 1, c: 3, h: 33, w: 31, kernel: (3, 3), stride: (2, 2)),
        PoolCase(n: 3, c: 7, h: 32, w: 7, kernel: (3, 3), stride: (2, 2), padding: (1, 1)),
        PoolCase(n: 1, c: 33, h: 13, w: 11, kernel: (2, 3), stride: (1, 2), padding: (1, 1)),
        PoolCase(n: 1, c: 1, h: 257, w: 5, kernel: (5, 4), stride: (3, 1), padding: (2, 2)),
        // Disjoint windows with padding and a gap between windows (the scatter backward, checked bounds).
        PoolCase(n: 2, c: 3, h: 7, w: 9, kernel: (2, 2), stride: (3, 2), padding: (1, 1)),
        // Small planes (12 outputs) on the planes-first range: 150 planes, the last work-group part-filled.
        PoolCase(n: 5, c: 30, h: 7, w: 6, kernel: (3, 3), stride: (2, 2), padding: (1, 1)),
    ], small: [
        PoolCase(n: 1, c: 1, h: 1, w: 1, kernel: (1, 1), stride: (1, 1)),
        PoolCase(n: 2, c: 3, h: 9, w: 7, kernel: (3, 3), stride: (2, 2), padding: (1, 1)),
        PoolCase(n: 1, c: 2, h: 6, w: 8, kernel: (2, 2), stride: (2, 2)),
        PoolCase(n: 1, c: 2, h: 7, w: 9, kernel: (2, 2), stride: (3, 2), padding: (1, 1)),
        PoolCase(n: 1, c: 1, h: 5, w: 35, kernel: (2, 2), stride: (2, 2)),
        // 100 outputs per plane: the (Q, P, planes) range (the cases above have small planes).
        PoolCase(n: 1, c: 2, h: 10, w: 19, kernel: (3, 3), stride: (1, 2), padding: (1, 1)),
        // Small planes: 70 planes, two work-groups on the planes-first range.
        PoolCase(n: 2, c: 35, h: 3, w: 4, kernel: (2, 2), stride: (1, 1), padding: (1, 1)),
    ])

    /// A shuffled ramp: every value distinct, so the maximum of each window is unique.
    static func distinctValues(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SeededRandom(seed: seed)
        var x = (0..<count).map { Float($0) / Float(count) - 0.5 }
        for i in stride(from: count - 1, to: 0, by: -1) { x.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return x
    }

    /// Every variant of the family: those whose preconditions hold match the reference, the others refuse.
    @Test(arguments: cases, PoolFamily.variants)
    func maxPoolMatchesReference(_ cs: PoolCase, _ variant: PoolVariant) throws {
        let engine = try testEngine()
        let x = Self.distinctValues(cs.shape.reduce(1, *), seed: 3)
        let xt = try Tensor(x, shape: cs.shape, engine: engine, requiresGrad: true)
        let applies = cs.kernel == (2, 2) && cs.stride == (2, 2) && cs.padding == (0, 0)
        if variant == .window2x2 && !applies {
            #expect(throws: TensorError.self) { try maxPool2d(xt, kernel: cs.kernel, stride: cs.stride, padding: cs.padding, variant: variant) }
            return
        }
        // On a CPU, planes of fewer than 64 outputs go to the general kernel's planes-first range.
        let smallPlanes = engine.traits.type == .cpu
            && ((cs.h - cs.kernel.0 + 2 * cs.padding.0) / cs.stride.0 + 1) * ((cs.w - cs.kernel.1 + 2 * cs.padding.1) / cs.stride.1 + 1) < 64
        #expect(try PoolFamily.choose(input: cs.shape, kernel: cs.kernel, stride: cs.stride, padding: cs.padding, engine: engine)
                == (applies && !smallPlanes ? .window2x2 : .general))
        let y = try maxPool2d(xt, kernel: cs.kernel, stride: cs.stride, padding: cs.padding, variant: variant)
        let ref = Reference.maxPool2d(x: doubles(x), shape: cs.shape, kernel: cs.kernel, stride: cs.stride, padding: cs.padding)
        #expect(y.shape == ref.shape)
        expectClose(try y.toArray(), ref.y, atol: 0, rtol: 0, "max pool \(cs) \(variant)")
        let dy = seededFloats(y.count, seed: 4)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        let dx = Reference.maxPool2dBackward(dy: doubles(dy), argmax: ref.argmax, inputShape: cs.shape)
        expectClose(try #require(xt.grad).toArray(), dx, atol: 1e-6, rtol: 1e-6, "max pool dx \(cs)")
    }

    @Test func maxPoolTiesPickTheFirstPixel() throws {
        let engine = try testEngine()
        // Overlapping 3×3 windows, stride 2, over constant rows: every tie goes to the first pixel.
        let x: [Float] = (0..<35).map { Float($0 / 7) }
        let xt = try Tensor(x, shape: [1, 1, 5, 7], engine: engine, requiresGrad: true)
        let y = try maxPool2d(xt, kernel: (3, 3), stride: (2, 2))
        let ref = Reference.maxPool2d(x: doubles(x), shape: [1, 1, 5, 7], kernel: (3, 3), stride: (2, 2))
        expectClose(try y.toArray(), ref.y, atol: 0, rtol: 0, "ties forward")
        try y.backward(try Tensor([Float](repeating: 1, count: y.count), shape: y.shape, engine: engine))
        let dx = Reference.maxPool2dBackward(dy: [Double](repeating: 1, count: y.count), argmax: ref.argmax, inputShape: [1, 1, 5, 7])
        expectClose(try #require(xt.grad).toArray(), dx, atol: 0, rtol: 0, "ties backward")
    }

    @Test(arguments: cases)
    func avgPoolMatchesReference(_ cs: PoolCase) throws {
        let engine = try testEngine()
        let x = seededFloats(cs.shape.reduce(1, *), seed: 5)
        let xt = try Tensor(x, shape: cs.shape, engine: engine, requiresGrad: true)
        let y = try avgPool2d(xt, kernel: cs.kernel, stride: cs.stride, padding: cs.padding)
        let ref = Reference.avgPool2d(x: doubles(x), shape: cs.shape, kernel: cs.kernel, stride: cs.stride, padding: cs.padding)
        #expect(y.shape == ref.shape)
        expectClose(try y.toArray(), ref.y, atol: 1e-6, rtol: 1e-5, "avg pool \(cs)")
        let dy = seededFloats(y.count, seed: 6)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        let dx = Reference.avgPool2dBackward(dy: doubles(dy), inputShape: cs.shape, kernel: cs.kernel, stride: cs.stride, padding: cs.padding)
        expectClose(try #require(xt.grad).toArray(), dx, atol: 1e-6, rtol: 1e-5, "avg pool dx \(cs)")
    }

    /// More planes than a launch's third axis holds on some GPU drivers (65,535 work-groups): the
    /// forward kernels take the planes past it in strides on the (Q, P, planes) range (8×8 outputs per
    /// plane), and along the first axis on the planes-first range (7×7). (At the small sizes of the
    /// simulator's run, a few planes.)
    @Test(arguments: [9, 8])
    func planesBeyondTheThirdAxisOfTheRange(_ side: Int) throws {
        let engine = try testEngine()
        let shape = TestSizes.pick([2, 32_800, side, side], small: [1, 3, side, side])
        let x = seededFloats(shape.reduce(1, *), seed: 9)
        let xt = try Tensor(x, shape: shape, engine: engine)
        let maxRef = Reference.maxPool2d(x: doubles(x), shape: shape, kernel: (2, 2), stride: (1, 1), padding: (0, 0))
        expectClose(try maxPool2d(xt, kernel: (2, 2), stride: (1, 1)).toArray(), maxRef.y, atol: 0, rtol: 0, "max \(shape)")
        let avgRef = Reference.avgPool2d(x: doubles(x), shape: shape, kernel: (2, 2), stride: (1, 1), padding: (0, 0))
        expectClose(try avgPool2d(xt, kernel: (2, 2), stride: (1, 1)).toArray(), avgRef.y, atol: 1e-6, rtol: 1e-5, "avg \(shape)")
    }

    @Test(arguments: TestSizes.pick([[1, 1, 1, 1], [3, 33, 7, 7], [1, 7, 31, 33], [2, 3, 257, 1]], small: [[1, 1, 1, 1], [2, 3, 5, 7]]))
    func globalAvgPoolMatchesReference(_ shape: [Int]) throws {
        let engine = try testEngine()
        let x = seededFloats(shape.reduce(1, *), seed: 7)
        let xt = try Tensor(x, shape: shape, engine: engine, requiresGrad: true)
        let y = try globalAvgPool2d(xt)
        #expect(y.shape == [shape[0], shape[1]])
        expectClose(try y.toArray(), Reference.globalAvgPool2d(x: doubles(x), shape: shape), atol: 1e-6, rtol: 1e-5, "global \(shape)")
        let dy = seededFloats(y.count, seed: 8)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        expectClose(try #require(xt.grad).toArray(), Reference.globalAvgPool2dBackward(dy: doubles(dy), inputShape: shape),
                    atol: 1e-7, rtol: 1e-5, "global dx \(shape)")
    }

    @Test func errorsNameTheOpAndShapes() throws {
        let engine = try testEngine()
        func message(_ body: () throws -> Tensor) -> String? {
            do { _ = try body(); return nil } catch let error as TensorError { return error.description } catch { return "\(error)" }
        }
        let x3 = try Tensor.zeros([1, 4, 4], engine: engine)
        let x = try Tensor.zeros([1, 1, 2, 2], engine: engine)
        #expect(message { try maxPool2d(x3, kernel: (2, 2)) } == "maxPool2d: input must have rank 4 [N, C, H, W]: [1, 4, 4] × [2, 2]")
        #expect(message { try maxPool2d(x, kernel: (3, 3)) } == "maxPool2d: output size 0×0 is empty: [1, 1, 2, 2] × [3, 3]")
        #expect(message { try avgPool2d(x, kernel: (2, 2), padding: (2, 0)) }
            == "avgPool2d: padding (2, 0) must be between 0 and half the kernel: [1, 1, 2, 2] × [2, 2]")
        #expect(message { try avgPool2d(x, kernel: (0, 2)) }?.hasPrefix("avgPool2d: kernel (0, 2) and stride (0, 2) must be ≥ 1") == true)
        #expect(message { try globalAvgPool2d(x3) } == "globalAvgPool2d: input must have rank 4 [N, C, H, W] with positive sizes: [1, 4, 4]")
    }
}

extension PoolTests {
    /// The vectorized 2×2 kernel keeps the rules of the general one: ties go to the first pixel in
    /// row-major window order, NaN wins over numbers; full 8-output blocks and the tail alike.
    @Test func twoByTwoTiesAndNaN() throws {
        let engine = try testEngine()
        var x = [Float](repeating: 1, count: 2 * 20)  // one plane of 2 × 20: Q = 10 (a block of 8 and a tail of 2)
        x[2 * 3 + 1] = .nan          // window 3, top right
        x[20 + 2 * 9 + 1] = .nan     // window 9 (in the tail), bottom right
        let xt = try Tensor(x, shape: [1, 1, 2, 20], engine: engine, requiresGrad: true)
        let y = try maxPool2d(xt, kernel: (2, 2))
        let values = try y.toArray()
        #expect(values.enumerated().allSatisfy { ($0.offset == 3 || $0.offset == 9) ? $0.element.isNaN : $0.element == 1 })
        try y.backward(try Tensor.ones(y.shape, engine: engine))
        let grad = try #require(xt.grad).toArray()
        for q in 0..<10 {
            let expected = q == 3 ? 2 * q + 1 : q == 9 ? 20 + 2 * q + 1 : 2 * q
            #expect(grad[expected] == 1, "window \(q)")
        }
        #expect(grad.reduce(0, +) == 10)
    }
}
