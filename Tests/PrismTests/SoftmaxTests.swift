import Prism
import PrismReference
import PrismTestSupport
import Testing

@Suite struct SoftmaxTests {
    static let shapes: [[Int]] = TestSizes.pick([[1, 1], [7, 10], [32, 33], [33, 257], [3, 1031], [2, 3, 7], [5]],
                                                small: [[1, 1], [3, 7], [2, 3, 5]])

    @Test(arguments: [false, true], shapes)
    func softmaxMatchesReference(_ log: Bool, _ shape: [Int]) throws {
        let engine = try testEngine()
        let c = shape.last!
        // Large logits too: the kernels subtract the row maximum.
        let x = seededFloats(shape.reduce(1, *), seed: 31, low: -20, high: 60)
        let xt = try Tensor(x, shape: shape, engine: engine, requiresGrad: true)
        let y = log ? try xt.logSoftmax() : try xt.softmax()
        #expect(y.shape == shape)
        let ref = log ? Reference.logSoftmax(x: doubles(x), classes: c) : Reference.softmax(x: doubles(x), classes: c)
        // log-softmax is x − logΣexp with both near 60: float rounding alone is ~4e-6 there.
        let atol = log ? 2e-5 : 1e-6
        expectClose(try y.toArray(), ref, atol: atol, rtol: 1e-5, "\(log ? "log-" : "")softmax \(shape)")
        let dy = seededFloats(y.count, seed: 32)
        try y.backward(try Tensor(dy, shape: shape, engine: engine))
        let dx = log ? Reference.logSoftmaxBackward(y: ref, dy: doubles(dy), classes: c)
                     : Reference.softmaxBackward(y: ref, dy: doubles(dy), classes: c)
        expectClose(try #require(xt.grad).toArray(), dx, atol: atol, rtol: 1e-5, "\(log ? "log-" : "")softmax dx \(shape)")
    }

    @Test(arguments: TestSizes.pick([[1, 1], [1, 10], [7, 10], [32, 33], [33, 257], [257, 3], [3, 1031]], small: [[1, 1], [7, 10]]))
    func crossEntropyMatchesReference(_ shape: [Int]) throws {
        let engine = try testEngine()
        let (rows, c) = (shape[0], shape[1])
        let x = seededFloats(rows * c, seed: 33, low: -10, high: 30)
        var rng = SeededRandom(seed: 34)
        let labels = (0..<rows).map { _ in Int(rng.next() % UInt64(c)) }
        let xt = try Tensor(x, shape: shape, engine: engine, requiresGrad: true)
        let loss = try crossEntropy(xt, labels: labels.map(Int32.init))
        #expect(loss.shape == [1])
        let ref = Reference.crossEntropy(x: doubles(x), labels: labels, classes: c)
        expectClose(try loss.toArray(), [ref], atol: 1e-5, rtol: 1e-5, "cross-entropy \(shape)")
        // An upstream gradient other than 1 scales dx.
        try (try loss * 2.5).backward()
        expectClose(try #require(xt.grad).toArray(), Reference.crossEntropyBackward(x: doubles(x), labels: labels, classes: c, dloss: 2.5),
                    atol: 1e-7, rtol: 1e-5, "cross-entropy dx \(shape)")
    }

    @Test(arguments: TestSizes.pick([[1], [7], [31, 33], [257, 5], [1031, 3], [3, 1024]], small: [[1], [7], [3, 700]]))
    func mseMatchesReference(_ shape: [Int]) throws {
        let engine = try testEngine()
        let n = shape.reduce(1, *)
        let x = seededFloats(n, seed: 35), t = seededFloats(n, seed: 36)
        let xt = try Tensor(x, shape: shape, engine: engine, requiresGrad: true)
        let tt = try Tensor(t, shape: shape, engine: engine, requiresGrad: true)
        let loss = try mseLoss(xt, tt)
        expectClose(try loss.toArray(), [Reference.mse(x: doubles(x), target: doubles(t))], atol: 1e-6, rtol: 1e-5, "mse \(shape)")
        try (try loss * 0.5).backward()
        let dx = Reference.mseBackward(x: doubles(x), target: doubles(t), dloss: 0.5)
        expectClose(try #require(xt.grad).toArray(), dx, atol: 1e-8, rtol: 1e-5, "mse dx \(shape)")
        expectClose(try #require(tt.grad).toArray(), dx.map { -$0 }, atol: 1e-8, rtol: 1e-5, "mse dt \(shape)")
    }

    @Test func errorsNameTheOpAndShapes() throws {
        let engine = try testEngine()
        let logits = try Tensor.zeros([2, 3], engine: engine)
        #expect(errorMessage { try crossEntropy(logits, labels: [0, 3]) } == "crossEntropy: label 3 at row 1 outside 0..<3")
        #expect(errorMessage { try crossEntropy(logits, labels: [0]) } == "crossEntropy: 1 labels for 2 rows: [2, 3] × [1]")
        #expect(errorMessage { try crossEntropy(try Tensor.zeros([6], engine: engine), labels: [0]) }
            == "crossEntropy: logits must be [batch, classes]: [6] × [1]")
        #expect(errorMessage { try mseLoss(logits, try Tensor.zeros([3, 2], engine: engine)) } == "mseLoss: shapes differ: [2, 3] × [3, 2]")
        #expect(errorMessage { try Tensor.zeros([2, 0], engine: engine).softmax() } == "softmax: needs a non-empty last axis, got shape [2, 0]")
    }
}
