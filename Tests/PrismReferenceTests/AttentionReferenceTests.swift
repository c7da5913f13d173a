import Foundation
import PrismReference
import PrismTestSupport
import Testing

/// The attention reference: its backward against finite differences of Σ dO ⊙ O, and rows of P that
/// sum to one.
@Suite struct AttentionReferenceTests {
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func backwardMatchesFiniteDifferences(_ causal: Bool, _ padded: Bool) {
        let (heads, t, d) = (2, 5, 3)
        let n = 2 * heads * t * d
        let q = seededFloats(n, seed: 1).map(Double.init), k = seededFloats(n, seed: 2).map(Double.init)
        let v = seededFloats(n, seed: 3).map(Double.init), dout = seededFloats(n, seed: 4).map(Double.init)
        let lens: [Int]? = padded ? [5, 3] : nil
        let scale = 0.7
        let g = Reference.attentionBackward(q: q, k: k, v: v, dout: dout, heads: heads, t: t, d: d, scale: scale, causal: causal, keyLengths: lens)
        func loss(_ q: [Double], _ k: [Double], _ v: [Double]) -> Double {
            dot(Reference.attention(q: q, k: k, v: v, heads: heads, t: t, d: d, scale: scale, causal: causal, keyLengths: lens), dout)
        }
        expectClose(g.dq, finiteDifferences(at: q) { loss($0, k, v) }, atol: 1e-6, rtol: 1e-5, "dq")
        expectClose(g.dk, finiteDifferences(at: k) { loss(q, $0, v) }, atol: 1e-6, rtol: 1e-5, "dk")
        expectClose(g.dv, finiteDifferences(at: v) { loss(q, k, $0) }, atol: 1e-6, rtol: 1e-5, "dv")
    }

    @Test func probabilitiesFollowTheMasks() {
        let (t, d) = (4, 2)
        let q = seededFloats(t * d, seed: 5).map(Double.init), k = seededFloats(t * d, seed: 6).map(Double.init)
        let p = Reference.attentionProbabilities(q: q, k: k, heads: 1, t: t, d: d, scale: 1, causal: true, keyLengths: [3])
        for i in 0..<t {
            let row = Array(p[(i * t)..<((i + 1) * t)])
            #expect(abs(row.reduce(0, +) - 1) <= 1e-12)
            for j in 0..<t where j > i || j >= 3 { #expect(row[j] == 0) }
        }
        // One key visible: its probability is 1 and O is its value row.
        let o = Reference.attention(q: q, k: k, v: [1, 2, 3, 4, 5, 6, 7, 8], heads: 1, t: t, d: d, scale: 1, causal: true)
        #expect(o[0] == 1 && o[1] == 2)
    }
}
