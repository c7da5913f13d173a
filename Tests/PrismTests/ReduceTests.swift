import Prism
import PrismReference
import PrismTestSupport
import Testing

/// A reduction along one axis of a shape.
struct AxisCase: CustomStringConvertible, Sendable {
    var shape: [Int]
    var axis: Int
    var description: String { "\(shape) axis \(axis)" }
}

@Suite struct ReduceTests {
    static let axisCases: [AxisCase] = TestSizes.pick([
        AxisCase(shape: [1], axis: 0),
        AxisCase(shape: [7, 33], axis: 0),
        AxisCase(shape: [7, 33], axis: 1),
        AxisCase(shape: [3, 32, 5], axis: 1),
        AxisCase(shape: [2, 257], axis: -1),
        AxisCase(shape: [1031], axis: 0),
        AxisCase(shape: [4, 5, 6, 31], axis: 2),
        AxisCase(shape: [1, 1, 7], axis: 0),
    ], small: [
        AxisCase(shape: [1], axis: 0),
        AxisCase(shape: [3, 7, 5], axis: 1),
        AxisCase(shape: [5, 33], axis: -1),
    ])

    static let kinds: [Reference.Reduction] = [.sum, .mean, .max]

    static func run(_ kind: Reference.Reduction, _ x: Tensor, axis: Int?, keepDims: Bool) throws -> Tensor {
        switch (kind, axis) {
        case (.sum, let a?): try x.sum(axis: a, keepDims: keepDims)
        case (.mean, let a?): try x.mean(axis: a, keepDims: keepDims)
        case (.max, let a?): try x.amax(axis: a, keepDims: keepDims)
        case (.sum, nil): try x.sum(keepDims: keepDims)
        case (.mean, nil): try x.mean(keepDims: keepDims)
        case (.max, nil): try x.amax(keepDims: keepDims)
        }
    }

    @Test(arguments: kinds, axisCases)
    func axisMatchesReference(_ kind: Reference.Reduction, _ cs: AxisCase) throws {
        let engine = try testEngine()
        let axis = cs.axis < 0 ? cs.axis + cs.shape.count : cs.axis
        for keepDims in [false, true] {
            let x = seededFloats(cs.shape.reduce(1, *), seed: 21)
            let xt = try Tensor(x, shape: cs.shape, engine: engine, requiresGrad: true)
            let y = try Self.run(kind, xt, axis: cs.axis, keepDims: keepDims)
            var expectedShape = cs.shape
            if keepDims { expectedShape[axis] = 1 } else { expectedShape.remove(at: axis) }
            #expect(y.shape == expectedShape)
            let ref = Reference.reduce(kind, x: doubles(x), shape: cs.shape, axis: axis)
            expectClose(try y.toArray(), ref.y, atol: 1e-5, rtol: 1e-5, "\(kind) \(cs)")
            let dy = seededFloats(y.count, seed: 22)
            try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
            expectClose(try #require(xt.grad).toArray(),
                        Reference.reduceBackward(kind, dy: doubles(dy), argmax: ref.argmax, shape: cs.shape, axis: axis),
                        atol: 1e-7, rtol: 1e-6, "\(kind) dx \(cs)")
        }
    }

    static let allSizes = TestSizes.pick([1, 7, 31, 32, 33, 257, 1031, 65_537, 1_048_583], small: [1, 7, 33, 100])

    @Test(arguments: kinds, allSizes)
    func allElementsMatchesReference(_ kind: Reference.Reduction, _ n: Int) throws {
        let engine = try testEngine()
        let x = seededFloats(n, seed: 23)
        let xt = try Tensor(x, shape: [n], engine: engine, requiresGrad: true)
        let y = try Self.run(kind, xt, axis: nil, keepDims: false)
        #expect(y.shape == [])
        let ref = Reference.reduce(kind, x: doubles(x), shape: [n], axis: 0)
        // float partial sums: the error grows like √n · ε.
        expectClose(try y.toArray(), ref.y, atol: 1e-6 * Double(n).squareRoot(), rtol: 1e-5, "\(kind) all n=\(n)")
        try (try y * 3).backward()
        expectClose(try #require(xt.grad).toArray(),
                    Reference.reduceBackward(kind, dy: [3], argmax: ref.argmax, shape: [n], axis: 0),
                    atol: 1e-7, rtol: 1e-6, "\(kind) all dx n=\(n)")
    }

    @Test func keepDimsOverAllElementsKeepsTheRank() throws {
        let engine = try testEngine()
        let x = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3], engine: engine)
        let s = try x.sum(keepDims: true)
        #expect(s.shape == [1, 1])
        #expect(try s.item() == 21)
        #expect(try x.mean().item() == 3.5)
        #expect(try x.amax().item() == 6)
    }

    @Test(arguments: TestSizes.pick([2, 33, 1031, 70_001], small: [2, 33, 90]))
    func maxRoutesToTheFirstArgmax(_ n: Int) throws {
        let engine = try testEngine()
        // The largest value twice, in different blocks of the first level: the first one wins.
        var x = seededFloats(n, seed: 24)
        let first = n / 3, second = n - 1
        x[first] = 5
        x[second] = 5
        let xt = try Tensor(x, shape: [n], engine: engine, requiresGrad: true)
        let y = try xt.amax()
        #expect(try y.item() == 5)
        try y.backward()
        let grad = try #require(xt.grad).toArray()
        #expect(grad[first] == 1)
        #expect(grad.reduce(0, +) == 1)
        // Along an axis: a constant row sends its gradient to position 0.
        let c = try Tensor([Float](repeating: 2, count: 12), shape: [3, 4], engine: engine, requiresGrad: true)
        try c.amax(axis: 1).backward(try Tensor.ones([3], engine: engine))
        #expect(try #require(c.grad).toArray() == [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0])
    }

    @Test func errorsNameTheOpAndShape() throws {
        let engine = try testEngine()
        let x = try Tensor.zeros([2, 3], engine: engine)
        #expect(errorMessage { try x.sum(axis: 2) } == "sum: axis 2 is out of range for rank 2: [2, 3]")
        #expect(errorMessage { try x.mean(axis: -3) } == "mean: axis -3 is out of range for rank 2: [2, 3]")
        let empty = try Tensor.zeros([2, 0], engine: engine)
        #expect(errorMessage { try empty.amax(axis: 1) } == "max: axis 1 is empty: [2, 0]")
        #expect(errorMessage { try empty.mean() } == "mean: tensor is empty: [2, 0]")
    }
}
