import PrismReference
import PrismTestSupport
import Testing

@Suite struct ReduceReferenceTests {
    @Test func valuesByHand() {
        let x: [Double] = [1, 5, 2,
                           5, 0, 7]
        #expect(Reference.reduce(.sum, x: x, shape: [2, 3], axis: 0).y == [6, 5, 9])
        #expect(Reference.reduce(.mean, x: x, shape: [2, 3], axis: 1).y == [8.0 / 3, 4])
        let m = Reference.reduce(.max, x: [1, 5, 5, 2], shape: [4], axis: 0)
        #expect(m.y == [5] && m.argmax == [1])
        let n = Reference.reduce(.max, x: [1, .nan, 3, .nan], shape: [4], axis: 0)
        #expect(n.y[0].isNaN && n.argmax == [1])
    }

    @Test(arguments: [Reference.Reduction.sum, .mean, .max], [([3, 4, 5], 0), ([3, 4, 5], 1), ([3, 4, 5], 2), ([7], 0)] as [([Int], Int)])
    func backwardMatchesFiniteDifferences(_ kind: Reference.Reduction, _ cs: ([Int], Int)) {
        let (shape, axis) = cs
        // Distinct values: the maximum is unique, hence differentiable.
        let x = seededFloats(shape.reduce(1, *), seed: 8).map(Double.init)
        let forward = Reference.reduce(kind, x: x, shape: shape, axis: axis)
        let dy = seededFloats(forward.y.count, seed: 9).map(Double.init)
        let fd = finiteDifferences(at: x) { dot(dy, Reference.reduce(kind, x: $0, shape: shape, axis: axis).y) }
        expectClose(Reference.reduceBackward(kind, dy: dy, argmax: forward.argmax, shape: shape, axis: axis), fd,
                    atol: 1e-8, rtol: 1e-6, "\(kind) \(shape) axis \(axis)")
    }
}
