import PrismReference
import PrismTestSupport
import Testing

@Suite struct ElementwiseReferenceTests {
    @Test func valuesByHand() {
        #expect(Reference.unary(0, x: [-1, 0, 2]) == [0, 0, 2])
        expectClose(Reference.unary(1, x: [0, 1, -1]), [0, 0.8413447460685429, -0.15865525393145707], atol: 1e-15, rtol: 1e-12, "gelu")
        expectClose(Reference.unary(4, x: [0]), [0.5], atol: 0, rtol: 0, "sigmoid")
        #expect(Reference.broadcastIndices(aShape: [2, 3], bShape: [3]) == [0, 1, 2, 0, 1, 2])
        #expect(Reference.broadcastIndices(aShape: [2, 3], bShape: [2, 1]) == [0, 0, 0, 1, 1, 1])
        #expect(Reference.broadcastIndices(aShape: [2, 2, 2], bShape: []) == [0, 0, 0, 0, 0, 0, 0, 0])
        #expect(Reference.binary(3, a: [1, 2, 3, 4], aShape: [2, 2], b: [2, 4], bShape: [1, 2]) == [0.5, 0.5, 1.5, 1])
    }

    @Test(arguments: 0..<7)
    func unaryBackwardMatchesFiniteDifferences(_ op: Int) {
        // Away from relu's kink at 0 and inside log's domain.
        let x = seededFloats(40, seed: 1, low: op == 6 ? 0.1 : -3, high: 3).map(Double.init).map { abs($0) < 1e-3 ? 0.5 : $0 }
        let dy = seededFloats(40, seed: 2).map(Double.init)
        let fd = finiteDifferences(at: x) { dot(dy, Reference.unary(op, x: $0)) }
        expectClose(Reference.unaryBackward(op, x: x, dy: dy), fd, atol: 1e-8, rtol: 1e-6, "unary \(op)")
    }

    @Test(arguments: 0..<4, [([2, 3, 4], [3, 1]), ([2, 3, 2, 2], [1, 3, 1, 1]), ([3, 5], [5]), ([4, 2], [4, 2]), ([3, 2], [])] as [([Int], [Int])])
    func binaryBackwardMatchesFiniteDifferences(_ op: Int, _ shapes: ([Int], [Int])) {
        let (aShape, bShape) = shapes
        let a = seededFloats(aShape.reduce(1, *), seed: 3).map(Double.init)
        let b = seededFloats(bShape.reduce(1, *), seed: 4, low: 0.5, high: 2).map(Double.init)
        let dy = seededFloats(a.count, seed: 5).map(Double.init)
        let (da, db) = Reference.binaryBackward(op, a: a, aShape: aShape, b: b, bShape: bShape, dy: dy)
        let fa = finiteDifferences(at: a) { dot(dy, Reference.binary(op, a: $0, aShape: aShape, b: b, bShape: bShape)) }
        let fb = finiteDifferences(at: b) { dot(dy, Reference.binary(op, a: a, aShape: aShape, b: $0, bShape: bShape)) }
        expectClose(da, fa, atol: 1e-8, rtol: 1e-6, "binary \(op) da")
        expectClose(db, fb, atol: 1e-8, rtol: 1e-6, "binary \(op) db")
    }

    @Test func affineBackwardMatchesFiniteDifferences() {
        let x = seededFloats(10, seed: 6).map(Double.init), dy = seededFloats(10, seed: 7).map(Double.init)
        let fd = finiteDifferences(at: x) { dot(dy, Reference.affine(x: $0, scale: -1.5, shift: 2)) }
        expectClose(Reference.affine(x: dy, scale: -1.5, shift: 0), fd, atol: 1e-8, rtol: 1e-6, "affine")
    }
}
