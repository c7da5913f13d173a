import Foundation
import Prism

extension KernelShap {
    /// Standard errors [M, O] of the sampled part of the fit `phi` (solved with the normal matrix
    /// `normal` from the sums `sums` of `draws`): zero without draws; by batch means, the spread of the
    /// batches' own estimates (nil below two batches); by the delta method (nil below two draws).
    func standardErrors(_ fit: inout ConstrainedLeastSquares, sums: ConstrainedLeastSquares.BatchSums, phi: [Double],
                        normal: [Double], draws: [(Int, Int)]) -> [Double]? {
        guard !draws.isEmpty else { return [Double](repeating: 0, count: fit.m * fit.o) }
        switch standardErrorMethod {
        case .batchMeans:
            let batches = sums.draws.count
            guard batches >= 2 else { return nil }
            var moments = RunningMoments(size: fit.m * fit.o)
            for b in 0..<batches { moments.add(fit.estimate(sums.a[b], sums.b[b], drawCount: sums.draws[b]).phi) }
            return moments.standardErrors
        case .linearization:
            guard draws.count >= 2 else { return nil }
            return linearizedErrors(phi: phi, normal: normal, draws: draws, xs: fit.xs, ys: fit.ys,
                                    scale: fit.sampledWeight / Double(2 * draws.count), p: fit.p, o: fit.o)
        }
    }
}

/// Delta-method standard errors of Kernel SHAP's sampled part. With β solving A β = B, where the
/// sampled part adds scale·Σ_d Σ_{rows of draw d} x xᵀ to A and the same with y to B, a draw's
/// influence on β is ψ_d = A⁻¹ · scale · Σ_{rows of d} x (y − xᵀβ) (`drawInfluences`); the draws are
/// independent, so Var β ≈ draws · sample variance of ψ.
/// - Parameters:
///   - phi: the solution [p + 1, O] (its first p rows are β).
///   - normal: A [p, p].
///   - xs: reduced design rows [rows, p]; ys: targets [rows, O].
/// - Returns: standard errors [p + 1, O].
func linearizedErrors(phi: [Double], normal: [Double], draws: [(Int, Int)], xs: [Double], ys: [Double], scale: Double,
                      p: Int, o: Int) -> [Double] {
    let n = draws.count
    let influences = drawInfluences(phi: phi, normal: normal, draws: draws, xs: xs, ys: ys,
                                    scales: [Double](repeating: scale, count: n), p: p, o: o)
    var moments = RunningMoments(size: (p + 1) * o)
    for influence in influences { moments.add(influence) }
    // moments.standardErrors = sd/√n; the sum of n influences has sd·√n = that × n.
    return moments.standardErrors.map { $0 * Double(n) }
}

/// Each draw's influence on the constrained least-squares solution: with β solving A β = B and draw d
/// adding scales[d]·Σ_{rows of d} x xᵀ to A (and the same with y to B), ψ_d = A⁻¹ · scales[d] ·
/// Σ_{rows of d} x (y − xᵀβ); the eliminated feature's influence is −Σ_j ψ_j.
/// - Parameters:
///   - phi: the solution [p + 1, O] (its first p rows are β).
///   - normal: A [p, p].
///   - draws: the two rows of each draw.
///   - xs: reduced design rows [rows, p]; ys: targets [rows, O].
///   - scales: each draw's row weight.
/// - Returns: ψ per draw, each [p + 1, O].
func drawInfluences(phi: [Double], normal: [Double], draws: [(Int, Int)], xs: [Double], ys: [Double], scales: [Double],
                    p: Int, o: Int) -> [[Double]] {
    let n = draws.count
    guard n > 0 else { return [] }
    // G [p, n·O]: column (d, k) holds scales[d] · Σ_rows x (y_k − xᵀβ_k).
    var g = [Double](repeating: 0, count: p * n * o)
    for (d, pair) in draws.enumerated() {
        for r in [pair.0, pair.1] {
            for k in 0..<o {
                var fit = 0.0
                for j in 0..<p { fit += xs[r * p + j] * phi[j * o + k] }
                let residual = scales[d] * (ys[r * o + k] - fit)
                if residual == 0 { continue }
                for j in 0..<p { g[j * n * o + d * o + k] += xs[r * p + j] * residual }
            }
        }
    }
    let (psi, _) = solveNormalEquations(normal, n: p, g, rhs: n * o)
    return (0..<n).map { d in
        var influence = [Double](repeating: 0, count: (p + 1) * o)
        for k in 0..<o {
            var sum = 0.0
            for j in 0..<p {
                let v = psi[j * n * o + d * o + k]
                influence[j * o + k] = v
                sum += v
            }
            influence[p * o + k] = -sum
        }
        return influence
    }
}
