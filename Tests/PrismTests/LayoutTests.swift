import Prism
import PrismReference
import PrismTestSupport
import Testing

struct PermuteCase: CustomStringConvertible, Sendable {
    var shape: [Int]
    var axes: [Int]
    var description: String { "\(shape) → \(axes)" }
}

struct ConcatCase: CustomStringConvertible, Sendable {
    var shapes: [[Int]]
    var axis: Int
    var description: String { "\(shapes) axis \(axis)" }
}

struct SliceCase: CustomStringConvertible, Sendable {
    var shape: [Int]
    var axis: Int
    var range: Range<Int>
    var description: String { "\(shape) axis \(axis) \(range)" }
}

@Suite struct LayoutTests {
    static let permuteCases: [PermuteCase] = TestSizes.pick([
        PermuteCase(shape: [1], axes: [0]),
        PermuteCase(shape: [257], axes: [0]),
        PermuteCase(shape: [7, 33], axes: [1, 0]),
        PermuteCase(shape: [31, 32], axes: [1, 0]),
        PermuteCase(shape: [2, 3, 4], axes: [2, 0, 1]),
        PermuteCase(shape: [1, 31, 32, 33], axes: [0, 2, 1, 3]),
        PermuteCase(shape: [2, 7, 3, 5, 1], axes: [4, 2, 0, 3, 1]),
        PermuteCase(shape: [2, 3, 1, 5, 7, 2], axes: [5, 4, 3, 2, 1, 0]),
        PermuteCase(shape: [3, 2, 2, 1, 4, 3], axes: [1, 0, 5, 2, 4, 3]),
    ], small: [
        PermuteCase(shape: [1], axes: [0]),
        PermuteCase(shape: [3, 7], axes: [1, 0]),
        PermuteCase(shape: [2, 3, 1, 5, 2, 2], axes: [5, 4, 3, 2, 1, 0]),
    ])

    @Test(arguments: permuteCases)
    func permuteMatchesReference(_ cs: PermuteCase) throws {
        let engine = try testEngine()
        let x = seededFloats(cs.shape.reduce(1, *), seed: 51)
        let xt = try Tensor(x, shape: cs.shape, engine: engine, requiresGrad: true)
        let y = try xt.permuted(cs.axes)
        #expect(y.shape == cs.axes.map { cs.shape[$0] })
        expectClose(try y.toArray(), Reference.permute(x: doubles(x), shape: cs.shape, axes: cs.axes), atol: 0, rtol: 0, "permute \(cs)")
        let dy = seededFloats(y.count, seed: 52)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        expectClose(try #require(xt.grad).toArray(), Reference.permuteBackward(dy: doubles(dy), shape: cs.shape, axes: cs.axes),
                    atol: 0, rtol: 0, "permute dx \(cs)")
    }

    /// Broadcast (`Tensor.broadcast(to:)`, the `broadcast_to` op): element by element against a plain
    /// Swift repeat, and the backward against finite differences of ⟨w, broadcast(x)⟩.
    @Test(arguments: [([3, 1, 1, 5], [3, 4, 1, 5]), ([1, 7], [6, 7]), ([2, 1, 3, 1, 1, 2], [2, 5, 3, 1, 4, 2]), ([5, 1], [5, 33])])
    func broadcastMatchesAPlainRepeat(_ shape: [Int], _ target: [Int]) throws {
        let engine = try testEngine()
        let x = seededFloats(shape.reduce(1, *), seed: 61)
        func repeated(_ v: [Double]) -> [Double] {
            (0..<target.reduce(1, *)).map { e in
                var rest = e, source = 0, stride = 1
                for k in target.indices.reversed() {
                    let c = rest % target[k]
                    rest /= target[k]
                    source += (shape[k] == 1 ? 0 : c) * stride
                    stride *= shape[k]
                }
                return v[source]
            }
        }
        let xt = try Tensor(x, shape: shape, engine: engine, requiresGrad: true)
        let y = try xt.broadcast(to: target)
        #expect(y.shape == target)
        expectClose(try y.toArray(), repeated(doubles(x)), atol: 0, rtol: 0, "broadcast \(shape) → \(target)")
        let w = seededFloats(y.count, seed: 62)
        try y.backward(try Tensor(w, shape: target, engine: engine))
        let fd = finiteDifferences(at: doubles(x), step: 1e-3) { dot(repeated($0), doubles(w)) }
        expectClose(try #require(xt.grad).toArray(), fd, atol: 1e-5, rtol: 1e-5, "broadcast dx \(shape) → \(target)")
        #expect(throws: TensorError.self) { try xt.broadcast(to: target.map { $0 + 1 }) }
    }

    @Test func transposeSwapsTheLastTwoAxes() throws {
        let engine = try testEngine()
        let x = try Tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], shape: [2, 2, 3], engine: engine)
        let y = try x.transposed()
        #expect(y.shape == [2, 3, 2])
        #expect(try y.toArray() == [1, 4, 2, 5, 3, 6, 7, 10, 8, 11, 9, 12])
    }

    static let concatCases: [ConcatCase] = TestSizes.pick([
        ConcatCase(shapes: [[1], [1]], axis: 0),
        ConcatCase(shapes: [[7, 3], [7, 5], [7, 1]], axis: 1),
        ConcatCase(shapes: [[1, 33], [32, 33], [7, 33]], axis: 0),
        ConcatCase(shapes: [[2, 3, 4], [2, 1, 4]], axis: 1),
        ConcatCase(shapes: [[2, 3, 31], [2, 3, 257]], axis: -1),
        ConcatCase(shapes: [[5, 7]], axis: 1),
    ], small: [
        ConcatCase(shapes: [[1], [1]], axis: 0),
        ConcatCase(shapes: [[2, 3, 4], [2, 1, 4], [2, 2, 4]], axis: 1),
    ])

    @Test(arguments: concatCases)
    func concatMatchesReference(_ cs: ConcatCase) throws {
        let engine = try testEngine()
        let axis = cs.axis < 0 ? cs.axis + cs.shapes[0].count : cs.axis
        let xs = cs.shapes.enumerated().map { seededFloats($1.reduce(1, *), seed: 53 + UInt64($0)) }
        // The second input needs no gradient (when there is one): it must get none.
        let ts = try zip(xs, cs.shapes).enumerated().map { k, pair in
            try Tensor(pair.0, shape: pair.1, engine: engine, requiresGrad: k != 1)
        }
        let y = try concat(ts, axis: cs.axis)
        #expect(y.shape == Reference.concatShape(cs.shapes, axis: axis))
        expectClose(try y.toArray(), Reference.concat(xs.map(doubles), shapes: cs.shapes, axis: axis), atol: 0, rtol: 0, "concat \(cs)")
        let dy = seededFloats(y.count, seed: 59)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        let dxs = Reference.concatBackward(dy: doubles(dy), shapes: cs.shapes, axis: axis)
        for (k, t) in ts.enumerated() {
            if k == 1 { #expect(t.grad == nil); continue }
            expectClose(try #require(t.grad).toArray(), dxs[k], atol: 0, rtol: 0, "concat dx[\(k)] \(cs)")
        }
    }

    static let sliceCases: [SliceCase] = TestSizes.pick([
        SliceCase(shape: [1], axis: 0, range: 0..<1),
        SliceCase(shape: [7, 33], axis: 1, range: 3..<20),
        SliceCase(shape: [257], axis: 0, range: 0..<257),
        SliceCase(shape: [32, 31], axis: 0, range: 31..<32),
        SliceCase(shape: [2, 3, 33, 5], axis: 2, range: 1..<32),
        SliceCase(shape: [2, 3, 4, 7], axis: -1, range: 2..<5),
    ], small: [
        SliceCase(shape: [1], axis: 0, range: 0..<1),
        SliceCase(shape: [2, 3, 7, 5], axis: 2, range: 1..<6),
    ])

    @Test(arguments: sliceCases)
    func sliceMatchesReference(_ cs: SliceCase) throws {
        let engine = try testEngine()
        let axis = cs.axis < 0 ? cs.axis + cs.shape.count : cs.axis
        let x = seededFloats(cs.shape.reduce(1, *), seed: 61)
        let xt = try Tensor(x, shape: cs.shape, engine: engine, requiresGrad: true)
        let y = try xt.sliced(axis: cs.axis, range: cs.range)
        var shape = cs.shape
        shape[axis] = cs.range.count
        #expect(y.shape == shape)
        expectClose(try y.toArray(), Reference.slice(x: doubles(x), shape: cs.shape, axis: axis, range: cs.range), atol: 0, rtol: 0, "slice \(cs)")
        let dy = seededFloats(y.count, seed: 62)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        expectClose(try #require(xt.grad).toArray(), Reference.sliceBackward(dy: doubles(dy), shape: cs.shape, axis: axis, range: cs.range),
                    atol: 0, rtol: 0, "slice dx \(cs)")
    }

    @Test func slicesConcatenateBackToTheInput() throws {
        let engine = try testEngine()
        let x = seededFloats(2 * 9 * 4, seed: 63)
        let xt = try Tensor(x, shape: [2, 9, 4], engine: engine, requiresGrad: true)
        // Attention-style: split heads along the middle axis, move them forward, and back.
        let parts = try [0..<3, 3..<4, 4..<9].map { try xt.sliced(axis: 1, range: $0).permuted([1, 0, 2]).permuted([1, 0, 2]) }
        let y = try concat(parts, axis: 1)
        #expect(try y.toArray() == x)
        try y.backward(try Tensor(x, shape: [2, 9, 4], engine: engine))
        #expect(try #require(xt.grad).toArray() == x)
    }

    @Test func errorsNameTheOpAndShapes() throws {
        let engine = try testEngine()
        let x = try Tensor.zeros([2, 3], engine: engine)
        let y = try Tensor.zeros([3, 3], engine: engine)
        #expect(errorMessage { try x.permuted([0, 0]) } == "permute: axes are not a permutation of 0..<2: [2, 3] × [0, 0]")
        #expect(errorMessage { try x.permuted([1, 0, 2]) } == "permute: axes are not a permutation of 0..<2: [2, 3] × [1, 0, 2]")
        #expect(errorMessage { try Tensor.zeros([1, 1, 1, 1, 1, 1, 1], engine: engine).permuted(Array(0..<7)) }
            == "permute: rank above 6 is not supported: [1, 1, 1, 1, 1, 1, 1] × [0, 1, 2, 3, 4, 5, 6]")
        #expect(errorMessage { try Tensor.zeros([3], engine: engine).transposed() } == "transpose: needs rank 2 or more: [3]")
        #expect(errorMessage { try concat([x, y], axis: 1) } == "concat: shapes differ outside axis 1: [2, 3] × [3, 3]")
        #expect(errorMessage { try concat([x, try Tensor.zeros([6], engine: engine)], axis: 0) } == "concat: ranks differ: [2, 3] × [6]")
        #expect(errorMessage { try concat([x], axis: 2) } == "concat: axis 2 is out of range for rank 2: [2, 3]")
        #expect(errorMessage { try concat([], axis: 0) } == "concat: no tensors to join")
        #expect(errorMessage { try x.sliced(axis: 1, range: 2..<4) } == "slice: range 2..<4 is outside 0..<3 on axis 1: [2, 3]")
        #expect(errorMessage { try x.sliced(axis: 2, range: 0..<1) } == "slice: axis 2 is out of range for rank 2: [2, 3]")
    }
}
