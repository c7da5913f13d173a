import Foundation
import Prism

/// shap's `l1_reg="num_features(k)"` for Kernel SHAP: φ [M, O] with `keep` features per output chosen
/// by LARS on shap's augmented problem — each coalition row z once with weight w·(M − |z|) against
/// v(z) − v(∅) and once as z − 1 with weight w·|z| against v(z) − v(all) — then the constrained
/// weighted least squares solved over the chosen features alone (the last to enter eliminated), 0
/// elsewhere. An output with a non-finite value gets NaN throughout.
/// - Parameters:
///   - coalitions: every row so far and its weight (`rowWeights`).
///   - v: values [rows, O]; v0: v(∅) [O]; delta: v(all) − v(∅) [O].
func selectedKernelShapValues(_ coalitions: KernelShapCoalitions, values v: [Double], baseValues v0: [Double],
                              delta: [Double], keep: Int) -> [Double] {
    let m = coalitions.featureCount, o = delta.count, rowCount = coalitions.rowCount
    let masks = coalitions.masks
    // Row weights: exact kernel weights of enumerated rows, scale × multiplicity of sampled ones.
    let w = coalitions.rowWeights()
    // Gram matrix of the augmented rows, shared by every output; |z| per row.
    let sizes = (0..<rowCount).map { r in Double((0..<m).reduce(0) { $0 + Int(masks[r * m + $1]) }) }
    var gram = [Double](repeating: 0, count: m * m)
    for r in 0..<rowCount {
        let z = (0..<m).map { Double(masks[r * m + $0]) }
        let present = w[r] * (Double(m) - sizes[r]), absent = w[r] * sizes[r]
        for i in 0..<m {
            for j in 0..<m { gram[i * m + j] += present * z[i] * z[j] + absent * (z[i] - 1) * (z[j] - 1) }
        }
    }
    var phi = [Double](repeating: 0, count: m * o)
    for k in 0..<o {
        var b = [Double](repeating: 0, count: m)
        for r in 0..<rowCount {
            let ey = v[r * o + k] - v0[k]
            let present = w[r] * (Double(m) - sizes[r]) * ey, absent = w[r] * sizes[r] * (ey - delta[k])
            for j in 0..<m { b[j] += present * Double(masks[r * m + j]) + absent * (Double(masks[r * m + j]) - 1) }
        }
        guard delta[k].isFinite, b.allSatisfy(\.isFinite) else {
            // A non-finite model output: no selection, the values are NaN as the unselected fit's would be.
            for j in 0..<m { phi[j * o + k] = .nan }
            continue
        }
        let chosen = larsOrder(gram: gram, correlations: b, n: m, steps: keep)
        guard let last = chosen.last else { continue }
        let kept = Array(chosen.dropLast())
        // Rows x_j = z_j − z_last (j kept), y = v(z) − v(∅) − z_last·Δ, weights w.
        let p = kept.count
        var a = [Double](repeating: 0, count: p * p), rhs = [Double](repeating: 0, count: p)
        for r in 0..<rowCount where w[r] != 0 {
            let zl = Double(masks[r * m + last])
            let x = kept.map { Double(masks[r * m + $0]) - zl }
            let y = v[r * o + k] - v0[k] - zl * delta[k]
            for i in 0..<p where x[i] != 0 {
                for j in 0..<p { a[i * p + j] += w[r] * x[i] * x[j] }
                rhs[i] += w[r] * x[i] * y
            }
        }
        let beta = p > 0 ? solveNormalEquations(a, n: p, rhs, rhs: 1).x : []
        for (i, j) in kept.enumerated() { phi[j * o + k] = beta[i] }
        phi[last * o + k] = delta[k] - beta.reduce(0, +)
    }
    return phi
}

/// The features least-angle regression (Efron et al. 2004, the `lar` method of scikit-learn's
/// `lars_path`) adds in its first `steps` steps, in order, from the Gram matrix XᵀX [n, n] and the
/// correlations Xᵀy [n]: each step adds the inactive feature most correlated with the residual and
/// moves along the equiangular direction of the active ones until another feature is as correlated.
/// A feature that would make the active Gram matrix singular (collinear with the active ones) is
/// dropped from the candidates and the next one is tried, as scikit-learn does. Stops early when the
/// residual is uncorrelated with every remaining feature.
func larsOrder(gram: [Double], correlations xty: [Double], n: Int, steps: Int) -> [Int] {
    var active: [Int] = []
    var excluded = Set<Int>()
    var beta = [Double](repeating: 0, count: n)
    let scale = max(xty.map(abs).max() ?? 0, 1e-300)
    while active.count < min(steps, n) {
        // c = Xᵀ(y − Xβ)
        let c = (0..<n).map { i in xty[i] - (0..<n).reduce(0.0) { $0 + gram[i * n + $1] * beta[$1] } }
        var next = -1, best = -1.0
        for j in 0..<n where !active.contains(j) && !excluded.contains(j) && abs(c[j]) > best { best = abs(c[j]); next = j }
        let top = active.isEmpty ? best : active.map { abs(c[$0]) }.reduce(best, max)
        guard next >= 0, top > 1e-12 * scale else { break }
        active.append(next)
        let signs = active.map { c[$0] < 0 ? -1.0 : 1.0 }
        let q = active.count
        var ga = [Double](repeating: 0, count: q * q)
        for (i, a) in active.enumerated() { for (j, b) in active.enumerated() { ga[i * q + j] = gram[a * n + b] } }
        guard let g = choleskySolve(ga, n: q, signs, rhs: 1), case let norm = zip(signs, g).reduce(0, { $0 + $1.0 * $1.1 }), norm > 0 else {
            excluded.insert(active.removeLast())
            continue
        }
        let equiangular = 1 / norm.squareRoot()
        let direction = g.map { $0 * equiangular }
        if active.count == min(steps, n) { break }
        // a_j = correlation of the direction with feature j; step to the next feature joining.
        var gamma = top / equiangular
        for j in 0..<n where !active.contains(j) && !excluded.contains(j) {
            let aj = zip(active, direction).reduce(0) { $0 + gram[j * n + $1.0] * $1.1 }
            for candidate in [(top - c[j]) / (equiangular - aj), (top + c[j]) / (equiangular + aj)] where candidate > 1e-15 {
                gamma = min(gamma, candidate)
            }
        }
        for (i, a) in active.enumerated() { beta[a] += gamma * direction[i] }
    }
    return active
}
