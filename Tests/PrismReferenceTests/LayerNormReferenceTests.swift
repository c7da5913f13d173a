import Foundation
import PrismReference
import PrismTestSupport
import Testing

@Suite struct LayerNormReferenceTests {
    @Test func valuesByHand() {
        // [1, 2, 3]: mean 2, biased variance 2/3, so x̂ = [−√1.5, 0, √1.5] with eps 0.
        let s = 1.5.squareRoot()
        let plain = Reference.layerNorm(x: [1, 2, 3], weight: nil, bias: nil, features: 3, eps: 0)
        expectClose(plain.y, [-s, 0, s], atol: 1e-15, rtol: 1e-14, "x̂")
        expectClose(plain.mean, [2], atol: 0, rtol: 1e-15, "mean")
        expectClose(plain.rstd, [s], atol: 0, rtol: 1e-14, "rstd")
        let affine = Reference.layerNorm(x: [1, 2, 3], weight: [2, 3, -1], bias: [0.5, -1, 4], features: 3, eps: 0)
        expectClose(affine.y, [0.5 - 2 * s, -1, 4 - s], atol: 1e-15, rtol: 1e-14, "affine")
        // eps enters under the root: a row [−1, 1] has variance 1, so rstd = 1 / √(1 + eps).
        expectClose(Reference.layerNorm(x: [-1, 1], weight: nil, bias: nil, features: 2, eps: 0.25).rstd, [1 / 1.25.squareRoot()],
                    atol: 0, rtol: 1e-15, "eps")
        // A constant row normalizes to 0 (then the bias), not NaN.
        expectClose(Reference.layerNorm(x: [7, 7, 7], weight: [2, 2, 2], bias: [1, 2, 3], features: 3).y, [1, 2, 3],
                    atol: 0, rtol: 0, "constant row")
    }

    /// Before the affine, every row has mean 0 and variance σ² / (σ² + eps): 1 with eps = 0.
    @Test(arguments: [1, 7, 33])
    func forwardHasMeanZeroAndVarianceOne(_ n: Int) {
        let rows = 4
        let x = seededFloats(rows * n, seed: 40, low: -3, high: 9).map(Double.init)
        // One feature with eps = 0 would divide 0 by 0 (as in PyTorch).
        for eps in n == 1 ? [1e-5] : [0.0, 1e-5] {
            let out = Reference.layerNorm(x: x, weight: nil, bias: nil, features: n, eps: eps)
            for r in 0..<rows {
                let row = Array(out.y[(r * n)..<((r + 1) * n)])
                let mean = row.reduce(0, +) / Double(n)
                let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)
                let sigma2 = 1 / (out.rstd[r] * out.rstd[r]) - eps
                let expected = n == 1 ? 0 : sigma2 / (sigma2 + eps)
                #expect(abs(mean) <= 1e-14, "row \(r) mean \(mean)")
                #expect(abs(variance - expected) <= 1e-12, "row \(r) eps \(eps) variance \(variance), expected \(expected)")
            }
        }
    }

    /// Gradients to x, weight and bias against central differences of ⟨dy, y⟩, with and without the affine.
    @Test(arguments: [1, 2, 5, 8], [true, false])
    func backwardMatchesFiniteDifferences(_ n: Int, _ affine: Bool) {
        let rows = 3
        let x = seededFloats(rows * n, seed: 41, low: -2, high: 4).map(Double.init)
        let w = affine ? seededFloats(n, seed: 42, low: -1.5, high: 1.5).map(Double.init) : nil
        let b = affine ? seededFloats(n, seed: 43).map(Double.init) : nil
        let dy = seededFloats(rows * n, seed: 44).map(Double.init)
        func f(_ x: [Double], _ w: [Double]?, _ b: [Double]?) -> Double {
            dot(dy, Reference.layerNorm(x: x, weight: w, bias: b, features: n).y)
        }
        let g = Reference.layerNormBackward(dy: dy, x: x, weight: w, features: n)
        expectClose(g.dx, finiteDifferences(at: x) { f($0, w, b) }, atol: 1e-7, rtol: 1e-6, "dx n \(n)")
        let ones = [Double](repeating: 1, count: n), zeros = [Double](repeating: 0, count: n)
        expectClose(g.dweight, finiteDifferences(at: w ?? ones) { f(x, $0, b) }, atol: 1e-7, rtol: 1e-6, "dweight n \(n)")
        expectClose(g.dbias, finiteDifferences(at: b ?? zeros) { f(x, w, $0) }, atol: 1e-7, rtol: 1e-6, "dbias n \(n)")
    }
}
