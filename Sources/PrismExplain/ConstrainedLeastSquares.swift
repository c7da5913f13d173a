import Foundation
import Prism

/// Kernel SHAP's weighted least squares with Σφ = v(all) − v(∅) imposed by eliminating the last
/// feature: rows x_j = z_j − z_{M−1} (j < M − 1), y = v(z) − v(∅) − z_{M−1}·Δ, every output solved at
/// once from normal equations in Double. The part of the normal equations from the rows that carry
/// their own weights (Kernel SHAP's enumerated rows; every row of Leverage SHAP) is fixed; Kernel
/// SHAP's sampled draws' sums are scaled to carry the kernel weight of the sizes not enumerated.
struct ConstrainedLeastSquares {
    /// Features M and outputs O; p = M − 1 unknowns per output.
    let m: Int, o: Int, p: Int
    /// Reduced design rows x [rows, p] and targets y [rows, O].
    let xs: [Double], ys: [Double]
    /// v(all) − v(∅) per output.
    let delta: [Double]
    /// Kernel weight the sampled rows carry together.
    let sampledWeight: Double
    /// The weighted rows' normal matrix [p, p] and right-hand sides [p, O].
    private let fixedA: [Double], fixedB: [Double]
    /// The largest ridge any solve so far needed (0: none).
    private(set) var largestRidge = 0.0

    /// Sums xxᵀ and x yᵀ of the draws, dealt round-robin into batches.
    struct BatchSums {
        var a: [[Double]], b: [[Double]]
        /// Draws in each batch.
        var draws: [Int]
    }

    /// The reduced problem of every row of Kernel SHAP's `coalitions` with values `v` [rows, O].
    /// - Parameters:
    ///   - v0: v(∅) [O].
    ///   - delta: v(all) − v(∅) [O].
    init(_ coalitions: KernelShapCoalitions, values v: [Double], baseValues v0: [Double], delta: [Double]) {
        self.init(features: coalitions.featureCount, masks: coalitions.masks, weights: coalitions.fixedWeight,
                  sampledWeight: coalitions.sampledWeight, values: v, baseValues: v0, delta: delta)
    }

    /// The reduced problem of the coalitions `masks` [rows, M] with values `v` [rows, O].
    /// - Parameters:
    ///   - weights: the regression weights of the first `weights.count` rows, which make up the fixed
    ///     part of the normal equations; the other rows enter only through `batchSums` and `estimate`.
    ///   - sampledWeight: the kernel weight those other rows carry together.
    ///   - v0: v(∅) [O].
    ///   - delta: v(all) − v(∅) [O].
    init(features m: Int, masks: [UInt8], weights: [Double], sampledWeight: Double, values v: [Double], baseValues v0: [Double],
         delta: [Double]) {
        let o = delta.count, p = m - 1, rowCount = masks.count / m
        self.m = m
        self.o = o
        self.p = p
        self.delta = delta
        self.sampledWeight = sampledWeight
        var xs = [Double](repeating: 0, count: rowCount * p)
        var ys = [Double](repeating: 0, count: rowCount * o)
        for r in 0..<rowCount {
            let last = Double(masks[r * m + p])
            for j in 0..<p { xs[r * p + j] = Double(masks[r * m + j]) - last }
            for k in 0..<o { ys[r * o + k] = v[r * o + k] - v0[k] - last * delta[k] }
        }
        self.xs = xs
        self.ys = ys
        var fixedA = [Double](repeating: 0, count: p * p), fixedB = [Double](repeating: 0, count: p * o)
        for (r, w) in weights.enumerated() {
            Self.accumulate(row: r, weight: w, xs: xs, ys: ys, p: p, o: o, into: &fixedA, &fixedB)
        }
        self.fixedA = fixedA
        self.fixedB = fixedB
    }

    /// Adds row r's w·x xᵀ to `a` [p, p] and w·x yᵀ to `b` [p, O].
    private static func accumulate(row r: Int, weight w: Double, xs: [Double], ys: [Double], p: Int, o: Int,
                                   into a: inout [Double], _ b: inout [Double]) {
        for i in 0..<p {
            let wx = w * xs[r * p + i]
            if wx == 0 { continue }
            for j in 0..<p { a[i * p + j] += wx * xs[r * p + j] }
            for k in 0..<o { b[i * o + k] += wx * ys[r * o + k] }
        }
    }

    /// The unweighted sums of the draws' rows, draw d going to batch d mod `batches`.
    func batchSums(_ draws: [(Int, Int)], batches: Int) -> BatchSums {
        var sums = BatchSums(a: [[Double]](repeating: [Double](repeating: 0, count: p * p), count: batches),
                             b: [[Double]](repeating: [Double](repeating: 0, count: p * o), count: batches),
                             draws: [Int](repeating: 0, count: batches))
        for (d, pair) in draws.enumerated() {
            let b = d % batches
            sums.draws[b] += 1
            Self.accumulate(row: pair.0, weight: 1, xs: xs, ys: ys, p: p, o: o, into: &sums.a[b], &sums.b[b])
            Self.accumulate(row: pair.1, weight: 1, xs: xs, ys: ys, p: p, o: o, into: &sums.a[b], &sums.b[b])
        }
        return sums
    }

    /// φ [M, O] from the enumerated part plus the sampled sums `a`, `b` of `drawCount` draws scaled to
    /// carry `sampledWeight`, and the normal matrix solved; records the ridge used.
    mutating func estimate(_ a: [Double], _ b: [Double], drawCount: Int) -> (phi: [Double], normal: [Double]) {
        var fullA = fixedA, fullB = fixedB
        if drawCount > 0 {
            let scale = sampledWeight / Double(2 * drawCount)
            for i in fullA.indices { fullA[i] += scale * a[i] }
            for i in fullB.indices { fullB[i] += scale * b[i] }
        }
        return solve(fullA, fullB)
    }

    /// φ [M, O] from the weighted rows alone, and the normal matrix solved; records the ridge used.
    mutating func estimate() -> (phi: [Double], normal: [Double]) {
        solve(fixedA, fixedB)
    }

    /// φ [M, O] from the normal equations A β = B of the reduced problem, the last feature's value
    /// restored from the constraint; records the ridge used.
    private mutating func solve(_ fullA: [Double], _ fullB: [Double]) -> (phi: [Double], normal: [Double]) {
        let (beta, ridge) = solveNormalEquations(fullA, n: p, fullB, rhs: o)
        largestRidge = max(largestRidge, ridge)
        var phi = [Double](repeating: 0, count: m * o)
        for k in 0..<o {
            var sum = 0.0
            for j in 0..<p {
                phi[j * o + k] = beta[j * o + k]
                sum += beta[j * o + k]
            }
            phi[p * o + k] = delta[k] - sum
        }
        return (phi, fullA)
    }
}
