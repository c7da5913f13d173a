import PrismReference
import PrismTestSupport
import Testing

@Suite struct PoolReferenceTests {
    @Test func maxPoolByHandPicksTheFirstOfTies() {
        // 1 × 1 × 2 × 4 image, 2 × 2 windows, stride 2.
        let x: [Double] = [1, 5, 2, 2,
                           5, 0, 2, 1]
        let r = Reference.maxPool2d(x: x, shape: [1, 1, 2, 4], kernel: (2, 2), stride: (2, 2))
        #expect(r.shape == [1, 1, 1, 2])
        #expect(r.y == [5, 2])
        #expect(r.argmax == [1, 2])
        #expect(Reference.maxPool2dBackward(dy: [10, 20], argmax: r.argmax, inputShape: [1, 1, 2, 4]) == [0, 10, 20, 0, 0, 0, 0, 0])
        // Padding counts as −∞: an all-negative image keeps its own values.
        let n = Reference.maxPool2d(x: [-3, -1, -2, -4], shape: [1, 1, 2, 2], kernel: (2, 2), stride: (1, 1), padding: (1, 1))
        #expect(n.y == [-3, -1, -1, -2, -1, -1, -2, -2, -4])
    }

    @Test func avgPoolByHandCountsPadding() {
        let x: [Double] = [1, 2, 3, 4]
        let r = Reference.avgPool2d(x: x, shape: [1, 1, 2, 2], kernel: (2, 2), stride: (2, 2), padding: (1, 1))
        #expect(r.shape == [1, 1, 2, 2])
        #expect(r.y == [0.25, 0.5, 0.75, 1])
        #expect(Reference.globalAvgPool2d(x: [1, 2, 3, 4, 10, 20, 30, 40], shape: [1, 2, 2, 2]) == [2.5, 25])
    }

    struct Case: Sendable {
        var shape: [Int]
        var kernel, stride, padding: (Int, Int)
    }

    static let cases = [
        Case(shape: [2, 2, 7, 6], kernel: (3, 3), stride: (2, 2), padding: (1, 1)),
        Case(shape: [1, 3, 5, 8], kernel: (2, 3), stride: (1, 2), padding: (0, 1)),
        Case(shape: [1, 1, 4, 4], kernel: (2, 2), stride: (2, 2), padding: (0, 0)),
    ]

    @Test(arguments: cases)
    func maxPoolBackwardMatchesFiniteDifferences(_ cs: Case) {
        // Distinct values (a shuffled ramp) so no window has a tie and the maximum is differentiable.
        var rng = SeededRandom(seed: 5)
        let count = cs.shape.reduce(1, *)
        var x = (0..<count).map { Double($0) * 0.1 }
        for i in stride(from: count - 1, to: 0, by: -1) { x.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        let forward = Reference.maxPool2d(x: x, shape: cs.shape, kernel: cs.kernel, stride: cs.stride, padding: cs.padding)
        let dy = seededFloats(forward.y.count, seed: 6).map(Double.init)
        let dx = Reference.maxPool2dBackward(dy: dy, argmax: forward.argmax, inputShape: cs.shape)
        let fd = finiteDifferences(at: x, step: 1e-4) {
            dot(dy, Reference.maxPool2d(x: $0, shape: cs.shape, kernel: cs.kernel, stride: cs.stride, padding: cs.padding).y)
        }
        expectClose(dx, fd, atol: 1e-8, rtol: 1e-6, "max pool dx")
    }

    @Test(arguments: cases)
    func avgPoolBackwardMatchesFiniteDifferences(_ cs: Case) {
        let x = seededFloats(cs.shape.reduce(1, *), seed: 7).map(Double.init)
        let forward = Reference.avgPool2d(x: x, shape: cs.shape, kernel: cs.kernel, stride: cs.stride, padding: cs.padding)
        let dy = seededFloats(forward.y.count, seed: 8).map(Double.init)
        let dx = Reference.avgPool2dBackward(dy: dy, inputShape: cs.shape, kernel: cs.kernel, stride: cs.stride, padding: cs.padding)
        let fd = finiteDifferences(at: x) {
            dot(dy, Reference.avgPool2d(x: $0, shape: cs.shape, kernel: cs.kernel, stride: cs.stride, padding: cs.padding).y)
        }
        expectClose(dx, fd, atol: 1e-7, rtol: 1e-6, "avg pool dx")
    }

    @Test func globalAvgPoolBackwardMatchesFiniteDifferences() {
        let shape = [2, 3, 4, 5]
        let x = seededFloats(shape.reduce(1, *), seed: 9).map(Double.init)
        let dy = seededFloats(6, seed: 10).map(Double.init)
        let dx = Reference.globalAvgPool2dBackward(dy: dy, inputShape: shape)
        let fd = finiteDifferences(at: x) { dot(dy, Reference.globalAvgPool2d(x: $0, shape: shape)) }
        expectClose(dx, fd, atol: 1e-7, rtol: 1e-6, "global avg pool dx")
    }
}
