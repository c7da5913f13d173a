import Prism
import PrismReference
import PrismTestSupport
import Testing

/// A gather: x's shape, the axis, and the indices' shape.
struct GatherCase: CustomStringConvertible, Sendable {
    var x: [Int]
    var axis: Int
    var indices: [Int]
    var description: String { "\(x) axis \(axis) indices \(indices)" }
}

/// `count` seeded indices in 0..<v.
func seededIndices(_ count: Int, below v: Int, seed: UInt64) -> [Int64] {
    var rng = SeededRandom(seed: seed)
    return (0..<count).map { _ in Int64(rng.next() % UInt64(v)) }
}

/// Gathers by index (`embedding`, `gather`) and selection (`Tensor.where`), forward and backward,
/// against the reference, and the reference's backward against finite differences.
@Suite struct IndexTests {
    static let embeddingCases: [GatherCase] = TestSizes.pick([
        GatherCase(x: [1, 1], axis: 0, indices: [1]),
        GatherCase(x: [7, 33], axis: 0, indices: [5]),
        GatherCase(x: [33, 31], axis: 0, indices: [3, 7]),
        GatherCase(x: [5, 32], axis: 0, indices: [2, 3, 11]),   // more positions than rows: repeats
        GatherCase(x: [257, 3], axis: 0, indices: [31]),
        GatherCase(x: [3, 257], axis: 0, indices: [2, 1]),
    ], small: [
        GatherCase(x: [7, 33], axis: 0, indices: [5]),
        GatherCase(x: [5, 3], axis: 0, indices: [2, 3, 11]),
    ])

    @Test(arguments: embeddingCases)
    func embeddingMatchesTheReference(_ cs: GatherCase) throws {
        let engine = try testEngine()
        let (v, d) = (cs.x[0], cs.x[1])
        let table = seededFloats(v * d, seed: UInt64(v * 100 + d))
        let idx = seededIndices(cs.indices.reduce(1, *), below: v, seed: UInt64(v + d) &+ 430)
        let tt = try Tensor(table, shape: cs.x, engine: engine, requiresGrad: true)
        let y = try embedding(tt, indices: try IntTensor(idx, shape: cs.indices, engine: engine))
        #expect(y.shape == cs.indices + [d])
        let indices = idx.map { Int($0) }
        expectClose(try y.toArray(), Reference.gather(x: doubles(table), outer: 1, v: v, inner: d, indices: indices), atol: 0, rtol: 0, "embedding \(cs)")
        let dy = seededFloats(y.count, seed: 431)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        let reference = Reference.gatherBackward(dy: doubles(dy), outer: 1, v: v, inner: d, indices: indices)
        expectClose(try #require(tt.grad).toArray(), reference, atol: 1e-6, rtol: 1e-6, "embedding dtable \(cs)")
    }

    static let gatherCases: [GatherCase] = TestSizes.pick([
        GatherCase(x: [1], axis: 0, indices: [1]),
        GatherCase(x: [7, 33], axis: 1, indices: [40]),
        GatherCase(x: [31, 5], axis: 0, indices: [7]),
        GatherCase(x: [2, 5, 3], axis: 1, indices: [2, 4]),
        GatherCase(x: [3, 4, 5, 2], axis: -1, indices: [3]),
        GatherCase(x: [2, 33, 32], axis: -2, indices: [257]),
    ], small: [
        GatherCase(x: [7, 33], axis: 1, indices: [40]),
        GatherCase(x: [2, 5, 3], axis: 1, indices: [2, 4]),
    ])

    @Test(arguments: gatherCases)
    func gatherMatchesTheReference(_ cs: GatherCase) throws {
        let engine = try testEngine()
        let ax = cs.axis < 0 ? cs.axis + cs.x.count : cs.axis
        let v = cs.x[ax], outer = cs.x[..<ax].reduce(1, *), inner = cs.x[(ax + 1)...].reduce(1, *)
        let x = seededFloats(cs.x.reduce(1, *), seed: UInt64(cs.x.reduce(1, *)) &+ 440)
        let idx = seededIndices(cs.indices.reduce(1, *), below: v, seed: UInt64(v) &+ 441)
        let xt = try Tensor(x, shape: cs.x, engine: engine, requiresGrad: true)
        let y = try gather(xt, axis: cs.axis, indices: try IntTensor(idx, shape: cs.indices, dtype: .int32, engine: engine))
        #expect(y.shape == Array(cs.x[..<ax]) + cs.indices + Array(cs.x[(ax + 1)...]))
        let indices = idx.map { Int($0) }
        expectClose(try y.toArray(), Reference.gather(x: doubles(x), outer: outer, v: v, inner: inner, indices: indices), atol: 0, rtol: 0, "gather \(cs)")
        let dy = seededFloats(y.count, seed: 442)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        let reference = Reference.gatherBackward(dy: doubles(dy), outer: outer, v: v, inner: inner, indices: indices)
        expectClose(try #require(xt.grad).toArray(), reference, atol: 1e-6, rtol: 1e-6, "gather dx \(cs)")
    }

    /// The reference backward of the gather against finite differences of ⟨w, gather(x)⟩, with
    /// repeated and unused indices.
    @Test func gatherReferenceBackwardMatchesFiniteDifferences() {
        let (outer, v, inner) = (2, 5, 3)
        let indices = [4, 0, 4, 4, 2, 0]
        let x = doubles(seededFloats(outer * v * inner, seed: 450))
        let w = doubles(seededFloats(outer * indices.count * inner, seed: 451))
        let analytic = Reference.gatherBackward(dy: w, outer: outer, v: v, inner: inner, indices: indices)
        let numeric = finiteDifferences(at: x) { dot(w, Reference.gather(x: $0, outer: outer, v: v, inner: inner, indices: indices)) }
        expectClose(analytic, numeric, atol: 1e-8, rtol: 1e-6, "gather dx")
        // Row 1 and 3 are never picked, row 4 three times per outer slice.
        #expect(analytic[3..<6].allSatisfy { $0 == 0 })
    }

    /// The device's table gradient against finite differences of the device's own forward:
    /// ⟨w, embedding(table)⟩ is linear in the table, so a central difference with a step of 1/2 is
    /// exact up to float rounding.
    @Test func embeddingTableGradientMatchesFiniteDifferencesOnTheDevice() throws {
        let engine = try testEngine()
        let (v, d) = (4, 3)
        let indices = try IntTensor([3, 0, 3, 3, 1, 0], shape: [2, 3], engine: engine)
        var table = seededFloats(v * d, seed: 455)
        let w = seededFloats(6 * d, seed: 456)
        let wt = try Tensor(w, shape: [2, 3, d], engine: engine)
        func objective(_ values: [Float]) throws -> Double {
            let y = try engine.noGrad { try embedding(try Tensor(values, shape: [v, d], engine: engine), indices: indices) }
            return dot(doubles(try y.toArray()), doubles(w))
        }
        let tt = try Tensor(table, shape: [v, d], engine: engine, requiresGrad: true)
        try embedding(tt, indices: indices).backward(wt)
        var numeric: [Double] = []
        for i in table.indices {
            let saved = table[i]
            table[i] = saved + 0.5
            let plus = try objective(table)
            table[i] = saved - 0.5
            let minus = try objective(table)
            table[i] = saved
            numeric.append(plus - minus)
        }
        expectClose(try #require(tt.grad).toArray(), numeric, atol: 1e-5, rtol: 1e-5, "embedding dtable vs finite differences")
        #expect(numeric[(2 * d)..<(3 * d)].allSatisfy { $0 == 0 })   // row 2 is never picked
    }

    /// A row picked many times gets the sum of its positions' gradients, the same on every run.
    @Test func repeatedIndicesSumTheirGradientsDeterministically() throws {
        let engine = try testEngine()
        let (v, d, k) = (3, 7, 257)
        let idx = (0..<k).map { Int64($0 % 5 == 0 ? 2 : 0) }   // row 1 never, row 2 every fifth position
        let table = try Tensor(seededFloats(v * d, seed: 460), shape: [v, d], engine: engine, requiresGrad: true)
        let indices = try IntTensor(idx, shape: [k], engine: engine)
        let dy = seededFloats(k * d, seed: 461)
        var grads: [[Float]] = []
        for _ in 0..<2 {
            table.zeroGrad()
            let y = try embedding(table, indices: indices)
            try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
            grads.append(try #require(table.grad).toArray())
        }
        #expect(grads[0] == grads[1])
        let reference = Reference.gatherBackward(dy: doubles(dy), outer: 1, v: v, inner: d, indices: idx.map { Int($0) })
        expectClose(grads[0], reference, atol: 1e-5, rtol: 1e-5, "repeated rows")
        #expect(grads[0][d..<(2 * d)].allSatisfy { $0 == 0 })
    }

    /// No indices: an empty result, and a zero gradient for every row.
    @Test func emptyIndicesGiveAnEmptyResultAndZeroGradients() throws {
        let engine = try testEngine()
        let table = try Tensor(seededFloats(12, seed: 457), shape: [4, 3], engine: engine, requiresGrad: true)
        let y = try embedding(table, indices: try IntTensor([Int64](), shape: [2, 0], engine: engine))
        #expect(y.shape == [2, 0, 3])
        #expect(try y.toArray().isEmpty)
        try y.backward(try Tensor([], shape: [2, 0, 3], engine: engine))
        #expect(try #require(table.grad).toArray() == [Float](repeating: 0, count: 12))
    }

    @Test func indicesOutsideTheAxisAreRefusedNamingThem() throws {
        let engine = try testEngine()
        let table = try Tensor.zeros([5, 3], engine: engine)
        #expect(throws: TensorError("embedding: index 5 at position 2 is out of range for a table of 5 rows")) {
            try embedding(table, indices: try IntTensor([0, 4, 5, 9], shape: [2, 2], engine: engine))
        }
        #expect(throws: TensorError("embedding: index -1 at position 0 is out of range for a table of 5 rows")) {
            try embedding(table, indices: try IntTensor([-1], shape: [1], engine: engine))
        }
        let x = try Tensor.zeros([2, 3, 4], engine: engine)
        #expect(throws: TensorError("gather: index 3 at position 1 is out of range for axis 1 of size 3 (shape [2, 3, 4])")) {
            try gather(x, axis: 1, indices: try IntTensor([2, 3], shape: [2], dtype: .int32, engine: engine))
        }
        #expect(throws: TensorError("gather: axis 3 is out of range for rank 3: [2, 3, 4] × [1]")) {
            try gather(x, axis: 3, indices: try IntTensor([0], shape: [1], engine: engine))
        }
        #expect(throws: TensorError("embedding: indices must be int64 or int32, not bool")) {
            try embedding(table, indices: try IntTensor([true], shape: [1], engine: engine))
        }
        #expect(throws: TensorError("embedding: the table must be [rows, features]: [2, 3, 4] × [1]")) {
            try embedding(x, indices: try IntTensor([0], shape: [1], engine: engine))
        }
        // The first offender by position among many.
        let many = (0..<257).map { Int64($0 % 7 == 6 ? 5 + $0 : 0) }
        #expect(throws: TensorError("embedding: index 11 at position 6 is out of range for a table of 5 rows")) {
            try embedding(table, indices: try IntTensor(many, shape: [257], engine: engine))
        }
    }

    static let whereSizes = TestSizes.pick([[1], [7], [31, 33], [2, 3, 257]], small: [[7], [3, 33]])

    @Test(arguments: whereSizes)
    func whereMatchesTheReference(_ shape: [Int]) throws {
        let engine = try testEngine()
        let n = shape.reduce(1, *)
        let a = seededFloats(n, seed: UInt64(n) &+ 470), b = seededFloats(n, seed: UInt64(n) &+ 471)
        let condition = seededIndices(n, below: 2, seed: UInt64(n) &+ 472)
        let at = try Tensor(a, shape: shape, engine: engine, requiresGrad: true)
        let bt = try Tensor(b, shape: shape, engine: engine, requiresGrad: true)
        let y = try Tensor.where(try IntTensor(condition, shape: shape, dtype: .bool, engine: engine), at, bt)
        #expect(y.shape == shape)
        expectClose(try y.toArray(), Reference.select(condition: condition, a: doubles(a), b: doubles(b)), atol: 0, rtol: 0, "where \(shape)")
        let dy = seededFloats(n, seed: 473)
        try y.backward(try Tensor(dy, shape: shape, engine: engine))
        let reference = Reference.selectBackward(condition: condition, dy: doubles(dy))
        expectClose(try #require(at.grad).toArray(), reference.da, atol: 0, rtol: 0, "where da \(shape)")
        expectClose(try #require(bt.grad).toArray(), reference.db, atol: 0, rtol: 0, "where db \(shape)")
    }

    @Test func whereReferenceBackwardMatchesFiniteDifferences() {
        let n = 33
        let condition = seededIndices(n, below: 2, seed: 480)
        let a = doubles(seededFloats(n, seed: 481)), b = doubles(seededFloats(n, seed: 482)), w = doubles(seededFloats(n, seed: 483))
        let analytic = Reference.selectBackward(condition: condition, dy: w)
        expectClose(analytic.da, finiteDifferences(at: a) { dot(w, Reference.select(condition: condition, a: $0, b: b)) }, atol: 1e-8, rtol: 1e-6, "da")
        expectClose(analytic.db, finiteDifferences(at: b) { dot(w, Reference.select(condition: condition, a: a, b: $0)) }, atol: 1e-8, rtol: 1e-6, "db")
    }

    /// A comparison's mask feeding `where`: max(x, y) element by element, with the gradient going to
    /// the larger operand (ties to y).
    @Test func whereOfAComparisonIsAnElementwiseMaximum() throws {
        let engine = try testEngine()
        let x = try Tensor([1, 5, -2, 3], shape: [2, 2], engine: engine, requiresGrad: true)
        let y = try Tensor([2, 4, -2, 0], shape: [2, 2], engine: engine, requiresGrad: true)
        let m = try Tensor.where(try x.greater(y), x, y)
        #expect(try m.toArray() == [2, 5, -2, 3])
        try m.backward(try Tensor.ones([2, 2], engine: engine))
        #expect(try #require(x.grad).toArray() == [0, 1, 0, 1])
        #expect(try #require(y.grad).toArray() == [1, 0, 1, 0])
    }

    @Test func whereRefusesANonBoolConditionAndOtherShapes() throws {
        let engine = try testEngine()
        let a = try Tensor.zeros([2, 3], engine: engine), b = try Tensor.zeros([2, 3], engine: engine)
        #expect(throws: TensorError("where: the condition must be bool, not int64 (compare with a value to make one)")) {
            try Tensor.where(try IntTensor([0, 1, 0, 1, 0, 1], shape: [2, 3], engine: engine), a, b)
        }
        #expect(throws: TensorError("where: condition, a and b must have one shape: [3, 2] × [2, 3] × [2, 3]")) {
            try Tensor.where(try IntTensor([Bool](repeating: true, count: 6), shape: [3, 2], engine: engine), a, b)
        }
    }
}
