import PrismReference
import PrismTestSupport
import Testing

@Suite struct MatmulReferenceTests {
    @Test func productByHand() {
        // [[1, 2, 3], [4, 5, 6]] · [[7, 8], [9, 10], [11, 12]] = [[58, 64], [139, 154]].
        let a: [Double] = [1, 2, 3, 4, 5, 6], b: [Double] = [7, 8, 9, 10, 11, 12]
        #expect(Reference.matmul(a: a, b: b, m: 2, n: 2, k: 3) == [58, 64, 139, 154])
        // The same product with each operand stored transposed.
        let at: [Double] = [1, 4, 2, 5, 3, 6], bt: [Double] = [7, 9, 11, 8, 10, 12]
        #expect(Reference.matmul(a: at, b: bt, m: 2, n: 2, k: 3, transposeA: true, transposeB: true) == [58, 64, 139, 154])
        // A batch of two with b shared: the second product uses a scaled by 2.
        #expect(Reference.matmul(a: a + a.map { 2 * $0 }, b: b, batch: 2, m: 2, n: 2, k: 3, broadcastB: true)
            == [58, 64, 139, 154, 116, 128, 278, 308])
        // linear: x·wᵀ + bias, then ReLU.
        #expect(Reference.linear(x: [1, -2], weight: [1, 1, -1, 0, 3, 1], bias: [0, 0.5, 2], rows: 1, inFeatures: 2, outFeatures: 3)
            == [-1, -0.5, 3])
        #expect(Reference.linear(x: [1, -2], weight: [1, 1, -1, 0, 3, 1], bias: [0, 0.5, 2], rows: 1, inFeatures: 2, outFeatures: 3,
                                 relu: true) == [0, 0, 3])
    }

    struct Case: Sendable {
        var batch, m, n, k: Int
        var transposeA, transposeB, broadcastB: Bool
    }

    @Test(arguments: [
        Case(batch: 1, m: 3, n: 4, k: 5, transposeA: false, transposeB: false, broadcastB: false),
        Case(batch: 2, m: 2, n: 3, k: 4, transposeA: true, transposeB: false, broadcastB: false),
        Case(batch: 2, m: 3, n: 2, k: 3, transposeA: false, transposeB: true, broadcastB: false),
        Case(batch: 1, m: 4, n: 3, k: 2, transposeA: true, transposeB: true, broadcastB: false),
        Case(batch: 3, m: 2, n: 3, k: 4, transposeA: false, transposeB: false, broadcastB: true),
        Case(batch: 2, m: 3, n: 2, k: 3, transposeA: true, transposeB: true, broadcastB: true),
    ])
    func matmulBackwardMatchesFiniteDifferences(_ cs: Case) {
        let a = seededFloats(cs.batch * cs.m * cs.k, seed: 1).map(Double.init)
        let b = seededFloats((cs.broadcastB ? 1 : cs.batch) * cs.k * cs.n, seed: 2).map(Double.init)
        func f(_ a: [Double], _ b: [Double]) -> [Double] {
            Reference.matmul(a: a, b: b, batch: cs.batch, m: cs.m, n: cs.n, k: cs.k,
                             transposeA: cs.transposeA, transposeB: cs.transposeB, broadcastB: cs.broadcastB)
        }
        let dc = seededFloats(cs.batch * cs.m * cs.n, seed: 3).map(Double.init)
        let g = Reference.matmulBackward(dc: dc, a: a, b: b, batch: cs.batch, m: cs.m, n: cs.n, k: cs.k,
                                         transposeA: cs.transposeA, transposeB: cs.transposeB, broadcastB: cs.broadcastB)
        expectClose(g.da, finiteDifferences(at: a) { dot(dc, f($0, b)) }, atol: 1e-6, rtol: 1e-5, "da")
        expectClose(g.db, finiteDifferences(at: b) { dot(dc, f(a, $0)) }, atol: 1e-6, rtol: 1e-5, "db")
    }

    @Test(arguments: [false, true])
    func linearBackwardMatchesFiniteDifferences(_ relu: Bool) {
        let (rows, inFeatures, outFeatures) = (4, 3, 5)
        let x = seededFloats(rows * inFeatures, seed: 4).map(Double.init)
        let w = seededFloats(outFeatures * inFeatures, seed: 5).map(Double.init)
        let b = seededFloats(outFeatures, seed: 6).map(Double.init)
        func f(_ x: [Double], _ w: [Double], _ b: [Double]) -> [Double] {
            Reference.linear(x: x, weight: w, bias: b, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, relu: relu)
        }
        let dy = seededFloats(rows * outFeatures, seed: 7).map(Double.init)
        let g = Reference.linearBackward(dy: dy, x: x, weight: w, bias: b, rows: rows, inFeatures: inFeatures,
                                         outFeatures: outFeatures, relu: relu)
        if relu {
            // The seeds must put some pre-activations on each side of zero for the mask to be tested.
            let z = Reference.linear(x: x, weight: w, bias: b, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
            #expect(z.contains { $0 > 0 } && z.contains { $0 < 0 })
        }
        expectClose(g.dx, finiteDifferences(at: x) { dot(dy, f($0, w, b)) }, atol: 1e-6, rtol: 1e-5, "dx")
        expectClose(g.dw, finiteDifferences(at: w) { dot(dy, f(x, $0, b)) }, atol: 1e-6, rtol: 1e-5, "dw")
        expectClose(g.db, finiteDifferences(at: b) { dot(dy, f(x, w, $0)) }, atol: 1e-6, rtol: 1e-5, "db")
    }
}
