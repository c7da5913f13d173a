import PrismReference
import PrismTestSupport
import Testing

@Suite struct LayoutReferenceTests {
    @Test func valuesByHand() {
        #expect(Reference.permute(x: [1, 2, 3, 4, 5, 6], shape: [2, 3], axes: [1, 0]) == [1, 4, 2, 5, 3, 6])
        #expect(Reference.concat([[1, 2, 3, 4], [5, 6]], shapes: [[2, 2], [2, 1]], axis: 1) == [1, 2, 5, 3, 4, 6])
        #expect(Reference.slice(x: [1, 2, 3, 4, 5, 6], shape: [2, 3], axis: 1, range: 1..<3) == [2, 3, 5, 6])
        #expect(Reference.sliceBackward(dy: [2, 3, 5, 6], shape: [2, 3], axis: 1, range: 1..<3) == [0, 2, 3, 0, 5, 6])
    }

    @Test func backwardsMatchFiniteDifferences() {
        let shape = [2, 3, 4, 2], axes = [2, 0, 3, 1]
        let x = seededFloats(48, seed: 16).map(Double.init), dy = seededFloats(48, seed: 17).map(Double.init)
        let pfd = finiteDifferences(at: x) { dot(dy, Reference.permute(x: $0, shape: shape, axes: axes)) }
        expectClose(Reference.permuteBackward(dy: dy, shape: shape, axes: axes), pfd, atol: 1e-8, rtol: 1e-6, "permute")

        let range = 1..<3
        let sy = seededFloats(32, seed: 18).map(Double.init)
        let sfd = finiteDifferences(at: x) { dot(sy, Reference.slice(x: $0, shape: shape, axis: 1, range: range)) }
        expectClose(Reference.sliceBackward(dy: sy, shape: shape, axis: 1, range: range), sfd, atol: 1e-8, rtol: 1e-6, "slice")

        let shapes = [[2, 3, 2], [2, 1, 2]]
        let a = seededFloats(12, seed: 19).map(Double.init), b = seededFloats(4, seed: 20).map(Double.init)
        let cy = seededFloats(16, seed: 21).map(Double.init)
        let grads = Reference.concatBackward(dy: cy, shapes: shapes, axis: 1)
        let afd = finiteDifferences(at: a) { dot(cy, Reference.concat([$0, b], shapes: shapes, axis: 1)) }
        let bfd = finiteDifferences(at: b) { dot(cy, Reference.concat([a, $0], shapes: shapes, axis: 1)) }
        expectClose(grads[0], afd, atol: 1e-8, rtol: 1e-6, "concat a")
        expectClose(grads[1], bfd, atol: 1e-8, rtol: 1e-6, "concat b")
    }
}
