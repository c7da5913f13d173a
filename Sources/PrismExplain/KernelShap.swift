import Foundation
import Prism

/// Kernel SHAP (Lundberg & Lee 2017) with shap's `KernelExplainer` sampling scheme: Shapley values as
/// the weighted least-squares fit of a linear model to v over coalitions, weighted by the Shapley
/// kernel, with Σφ = v(all) − v(∅) enforced exactly.
///
/// Coalitions (besides ∅ and all, which are always evaluated):
/// - Coalition sizes are taken in pairs {s, M − s}, s = 1, 2, …, smallest/largest first. A pair is
///   enumerated completely while the remaining budget, shared out by the pairs' kernel weight,
///   covers all its coalitions (shap's rule); enumerated coalitions get their exact kernel weight.
/// - The rest of the budget is sampled: a size pair drawn with probability ∝ its kernel weight, a
///   uniform subset S of that size, and always its complement S̄ too (paired sampling). A coalition
///   drawn again is not evaluated again: its weight grows by one. The sampled weights are scaled to
///   sum to the kernel weight of the sizes not enumerated.
/// - The constraint Σφ = v(all) − v(∅) is imposed by eliminating the last feature, and the normal
///   equations are solved in Double by Cholesky (a tiny ridge only if they are singular, recorded in
///   `settings["ridge"]`). Every output is solved at once.
///
/// Standard errors (sampled part only; enumerated coalitions carry no sampling error), by default
/// from the delta method: the draws (S, S̄ pairs) are independent, each draw's influence on the
/// solution is A⁻¹·scale·Σ x(y − xᵀβ) over its two rows, and the variance of the estimate is the
/// number of draws × the sample variance of the influences. `.batchMeans` instead deals the draws
/// round-robin into `standardErrorBatches` sub-batches and uses the spread of their estimates /
/// √batches; it needs many draws per batch and is erratic at small budgets. Measured on seeded MLPs
/// (M = 8 and 12, 200 seeds, 1.96·SE intervals): the delta method covers 89–94% of the errors once
/// there are a few dozen draws; with only a handful of draws any standard error is unreliable. With
/// every coalition enumerated the standard errors are zero.
///
/// Feature selection (`numFeatures`, shap's `l1_reg="num_features(k)"`): for each output separately,
/// least-angle regression (LARS, k steps) on shap's augmented problem — each coalition row z once with
/// weight w·(M − |z|) against v(z) − v(∅) and once as z − 1 with weight w·|z| against v(z) − v(all) —
/// picks k features in the order they enter; the constrained least squares is then solved over those
/// alone (the last to enter eliminated) and every other feature gets 0. Values match shap's. No
/// standard errors are reported for a selected fit (the selection itself has no delta-method variance);
/// a stopping rule still judges the unselected estimate.
///
/// The budget counts coalitions other than ∅ and all (shap's `nsamples`): default 2M + 2048, capped
/// at 2^M − 2 (every coalition, which gives exact Shapley values), minimum M. M = 0 gives no values;
/// M = 1 gives φ = v(all) − v(∅).
public struct KernelShap: ShapleyEstimator {
    public let method = "kernel-shap"
    /// Coalitions to evaluate besides ∅ and all; nil: `defaultBudget`.
    public var budget: Int?
    public var seed: UInt64
    /// Independent sub-batches of the sampled pairs for the standard errors.
    public var standardErrorBatches: Int

    /// How the standard errors are estimated.
    public var standardErrorMethod: StandardErrorMethod
    /// Optional early stop (Covert & Lee 2021), checked after every `drawsPerRound` sampled pairs.
    public var stopping: StoppingRule?
    /// Sampled pairs (S, S̄) per call to the game when a stopping rule is set.
    public var drawsPerRound: Int
    /// Keep only this many features per output, chosen by LARS (shap's `num_features(k)`); nil: all.
    public var numFeatures: Int?

    /// Standard errors of the sampled part.
    public enum StandardErrorMethod: String, Sendable {
        /// The spread of the estimates of independent sub-batches of the draws (batch means).
        case batchMeans = "batch-means"
        /// The delta method (sandwich): each draw's influence A⁻¹·scale·Σ x(y − xᵀβ) on the solution,
        /// its sample variance × draws.
        case linearization
    }

    public init(budget: Int? = nil, seed: UInt64 = 0, standardErrorBatches: Int = 16,
                standardErrorMethod: StandardErrorMethod = .linearization, stopping: StoppingRule? = nil, drawsPerRound: Int = 64,
                numFeatures: Int? = nil) {
        self.numFeatures = numFeatures
        self.budget = budget
        self.seed = seed
        self.standardErrorBatches = standardErrorBatches
        self.standardErrorMethod = standardErrorMethod
        self.stopping = stopping
        self.drawsPerRound = drawsPerRound
    }

    /// shap's default: 2M + 2048.
    public static func defaultBudget(features m: Int) -> Int { 2 * m + 2048 }
    /// The smallest budget accepted: M coalitions (M − 1 unknowns after the efficiency constraint).
    public static func minimumBudget(features m: Int) -> Int { m }

    public func explain(_ game: CoalitionGame) throws -> Explanation {
        var counter = try CountingGame(game)
        let m = counter.featureCount, o = counter.outputCount
        let (v0, vAll) = try counter.endpoints()
        let delta = (0..<o).map { vAll[$0] - v0[$0] }
        var settings: [String: SettingValue] = ["seed": .unsigned(seed)]
        func finish(_ phi: [Double], _ se: [Double]?) throws -> Explanation {
            try Explanation(method: method, instanceCount: 1, featureCount: m, outputCount: o, values: phi, baseValues: v0,
                            outputs: vAll, standardErrors: se, modelEvaluations: counter.modelEvaluations,
                            seconds: counter.seconds, settings: settings)
        }
        if m <= 1 { return try finish(m == 1 ? delta : [], [Double](repeating: 0, count: m * o)) }

        var budget = self.budget ?? Self.defaultBudget(features: m)
        guard budget >= Self.minimumBudget(features: m) else {
            throw ExplainError("kernel-shap: a budget of \(budget) coalitions is below the minimum of \(Self.minimumBudget(features: m)) for \(m) features")
        }
        guard drawsPerRound > 0 else { throw ExplainError("kernel-shap: draws per round must be positive, got \(drawsPerRound)") }
        guard standardErrorBatches >= 2 else { throw ExplainError("kernel-shap: standard errors need at least 2 batches, got \(standardErrorBatches)") }
        if let numFeatures, numFeatures < 1 { throw ExplainError("kernel-shap: num-features must be at least 1, got \(numFeatures)") }
        if m <= 30 { budget = min(budget, (1 << m) - 2) }
        // Per coalition: its mask (and its copy as a dictionary key), its values, its design-matrix
        // and target rows and its weight, all held until the fit.
        try requireHostMemory(HostMemory.product([budget, 2 * m + 96 + 8 * (m + 2 * o + 1)]),
                              "kernel-shap: a budget of \(budget) coalitions × \(m) features", for: "the coalition matrix and its fit")
        settings["budget"] = .int(budget)

        // Size pairs k = 1…⌊M/2⌋ cover sizes {k, M − k}; kernel weight of size s in total: (M−1)/(s(M−s)).
        let pairCount = m / 2
        let paired = (0...pairCount).map { $0 != m - $0 }
        var pairWeight = (0...pairCount).map { k -> Double in
            guard k > 0 else { return 0 }
            let w = Double(m - 1) / Double(k * (m - k))
            return paired[k] ? 2 * w : w
        }
        let weightSum = pairWeight.reduce(0, +)
        pairWeight = pairWeight.map { $0 / weightSum }
        let pairCoalitions = (0...pairCount).map { binomial(m, $0) * (paired[$0] ? 2 : 1) }

        var masks: [UInt8] = []
        var fixedWeight: [Double] = []
        var left = Double(budget)
        var remaining = pairWeight
        var enumeratedPairs = 0
        for k in 1...pairCount {
            let n = pairCoalitions[k]
            guard left * remaining[k] / n >= 1 - 1e-8 else { break }
            enumeratedPairs = k
            left -= n
            if remaining[k] < 1 { remaining = remaining.map { $0 / (1 - remaining[k]) } }
            let w = pairWeight[k] / n
            forEachSubset(of: m, size: k) { mask in
                masks += mask
                fixedWeight.append(w)
                if paired[k] {
                    masks += mask.map { 1 - $0 }
                    fixedWeight.append(w)
                }
            }
        }
        let fixedRows = fixedWeight.count
        settings["enumerated"] = .int(fixedRows)

        // Paired sampling over the sizes left, in rounds when a stopping rule is set.
        var v = try counter.values(masks, count: fixedRows)
        var draws: [(Int, Int)] = []
        var rng = ShapleyRandom(seed: seed)
        let sizes = enumeratedPairs < pairCount ? Array((enumeratedPairs + 1)...pairCount) : []
        var cumulative: [Double] = []
        for k in sizes { cumulative.append((cumulative.last ?? 0) + pairWeight[k]) }
        var rowOf: [[UInt8]: Int] = [:]
        var slots = budget - fixedRows
        var attempts = 0
        let maxAttempts = 4 * slots + 64
        var result: (phi: [Double], standardErrors: [Double]?, ridge: Double)?
        var stoppedEarly = false
        while !sizes.isEmpty && slots >= 2 && attempts < maxAttempts {
            let before = masks.count / m
            var drawn = 0
            while slots >= 2 && attempts < maxAttempts && drawn < (stopping == nil ? Int.max : drawsPerRound) {
                attempts += 1
                drawn += 1
                let k = sizes[rng.pick(cumulative: cumulative)]
                var order = Array(0..<m)
                var mask = [UInt8](repeating: 0, count: m)
                for i in 0..<k {  // the first k places of a partial Fisher–Yates shuffle
                    order.swapAt(i, i + rng.below(m - i))
                    mask[order[i]] = 1
                }
                let complement = mask.map { 1 - $0 }
                let rows = [mask, complement].map { z -> Int in
                    if let r = rowOf[z] { return r }
                    let r = fixedRows + rowOf.count
                    rowOf[z] = r
                    masks += z
                    slots -= 1
                    return r
                }
                draws.append((rows[0], rows[1]))
            }
            let rowCount = masks.count / m
            v += try counter.values(Array(masks[(before * m)...]), count: rowCount - before)
            result = fit(v, rowCount: rowCount, draws: draws)
            if let stopping, slots >= 2, attempts < maxAttempts, let se = result?.standardErrors,
               stopping.isMet(values: result!.phi, standardErrors: se, featureCount: m, outputCount: o) {
                stoppedEarly = true
                break
            }
        }
        let final = result ?? fit(v, rowCount: fixedRows, draws: [])
        settings["sampled"] = .int(masks.count / m - fixedRows)
        settings["draws"] = .int(draws.count)
        if !draws.isEmpty { settings["standard_errors"] = .string(standardErrorMethod.rawValue) }
        if let stopping {
            settings["stopping_threshold"] = .double(stopping.threshold)
            settings["stopped_early"] = .bool(stoppedEarly)
        }
        if final.ridge > 0 { settings["ridge"] = .double(final.ridge) }
        if let k = numFeatures, k < m {
            settings["num_features"] = .int(k)
            return try finish(selectedFit(v, rowCount: masks.count / m, draws: draws, keep: k), nil)
        }
        return try finish(final.phi, final.standardErrors)

        /// φ [M, O] with `keep` features per output chosen by LARS on shap's augmented problem, the
        /// constrained weighted least squares solved over them, 0 elsewhere.
        func selectedFit(_ v: [Double], rowCount: Int, draws: [(Int, Int)], keep: Int) -> [Double] {
            // Row weights: exact kernel weights of enumerated rows, scale × multiplicity of sampled ones.
            var w = fixedWeight + [Double](repeating: 0, count: rowCount - fixedRows)
            if !draws.isEmpty {
                let scale = pairWeight[(enumeratedPairs + 1)...].reduce(0, +) / Double(2 * draws.count)
                for pair in draws { w[pair.0] += scale; w[pair.1] += scale }
            }
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

        /// The Kernel SHAP solution and its standard errors from the first `rowCount` rows' values
        /// and the draws so far.
        func fit(_ v: [Double], rowCount: Int, draws: [(Int, Int)]) -> (phi: [Double], standardErrors: [Double]?, ridge: Double) {
            // Rows of the reduced problem: x_j = z_j − z_{M−1} (j < M − 1), y = v(z) − v(∅) − z_{M−1}·Δ.
            let p = m - 1
            var xs = [Double](repeating: 0, count: rowCount * p)
            var ys = [Double](repeating: 0, count: rowCount * o)
            for r in 0..<rowCount {
                let last = Double(masks[r * m + p])
                for j in 0..<p { xs[r * p + j] = Double(masks[r * m + j]) - last }
                for k in 0..<o { ys[r * o + k] = v[r * o + k] - v0[k] - last * delta[k] }
            }
            func accumulate(row r: Int, weight w: Double, into a: inout [Double], _ b: inout [Double]) {
                for i in 0..<p {
                    let wx = w * xs[r * p + i]
                    if wx == 0 { continue }
                    for j in 0..<p { a[i * p + j] += wx * xs[r * p + j] }
                    for k in 0..<o { b[i * o + k] += wx * ys[r * o + k] }
                }
            }
            var fixedA = [Double](repeating: 0, count: p * p), fixedB = [Double](repeating: 0, count: p * o)
            for r in 0..<fixedRows { accumulate(row: r, weight: fixedWeight[r], into: &fixedA, &fixedB) }

            let sampledWeight = pairWeight[(enumeratedPairs + 1)...].reduce(0, +)
            let batches = draws.isEmpty ? 0 : min(standardErrorBatches, enumeratedPairs > 0 ? draws.count : max(2 * draws.count / m, 1))
            var batchA = [[Double]](repeating: [Double](repeating: 0, count: p * p), count: batches)
            var batchB = [[Double]](repeating: [Double](repeating: 0, count: p * o), count: batches)
            var batchDraws = [Int](repeating: 0, count: batches)
            for (d, pair) in draws.enumerated() {
                let b = d % batches
                batchDraws[b] += 1
                accumulate(row: pair.0, weight: 1, into: &batchA[b], &batchB[b])
                accumulate(row: pair.1, weight: 1, into: &batchA[b], &batchB[b])
            }
            var largestRidge = 0.0
            /// φ [M, O] and β [M − 1, O] from the enumerated part plus sampled sums scaled to carry
            /// `sampledWeight`, and the normal matrix used.
            func estimate(_ a: [Double], _ b: [Double], drawCount: Int) -> (phi: [Double], normal: [Double]) {
                var fullA = fixedA, fullB = fixedB
                if drawCount > 0 {
                    let scale = sampledWeight / Double(2 * drawCount)
                    for i in fullA.indices { fullA[i] += scale * a[i] }
                    for i in fullB.indices { fullB[i] += scale * b[i] }
                }
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
            var totalA = [Double](repeating: 0, count: p * p), totalB = [Double](repeating: 0, count: p * o)
            for b in 0..<batches {
                for i in totalA.indices { totalA[i] += batchA[b][i] }
                for i in totalB.indices { totalB[i] += batchB[b][i] }
            }
            let (phi, normal) = estimate(totalA, totalB, drawCount: draws.count)

            var standardErrors: [Double]? = [Double](repeating: 0, count: m * o)
            if !draws.isEmpty {
                switch standardErrorMethod {
                case .batchMeans:
                    if batches >= 2 {
                        var moments = RunningMoments(size: m * o)
                        for b in 0..<batches { moments.add(estimate(batchA[b], batchB[b], drawCount: batchDraws[b]).phi) }
                        standardErrors = moments.standardErrors
                    } else {
                        standardErrors = nil
                    }
                    case .linearization:
                    standardErrors = draws.count >= 2 ? linearizedErrors(phi: phi, normal: normal, draws: draws, xs: xs, ys: ys,
                                                                         scale: sampledWeight / Double(2 * draws.count), p: p, o: o) : nil
                }
                }
            return (phi, standardErrors, largestRidge)
        }
    }
}

/// Delta-method standard errors of Kernel SHAP's sampled part. With β solving A β = B, where the
/// sampled part adds scale·Σ_d Σ_{rows of draw d} x xᵀ to A and the same with y to B, a draw's
/// influence on β is ψ_d = A⁻¹ · scale · Σ_{rows of d} x (y − xᵀβ); the draws are independent, so
/// Var β ≈ draws · sample variance of ψ. The eliminated feature's influence is −Σ_j ψ_j.
func linearizedErrors(phi: [Double], normal: [Double], draws: [(Int, Int)], xs: [Double], ys: [Double], scale: Double,
                      p: Int, o: Int) -> [Double] {
    let n = draws.count
    // G [p, n·O]: column (d, k) holds scale · Σ_rows x (y_k − xᵀβ_k).
    var g = [Double](repeating: 0, count: p * n * o)
    for (d, pair) in draws.enumerated() {
        for r in [pair.0, pair.1] {
            for k in 0..<o {
                var fit = 0.0
                for j in 0..<p { fit += xs[r * p + j] * phi[j * o + k] }
                let residual = scale * (ys[r * o + k] - fit)
                if residual == 0 { continue }
                for j in 0..<p { g[j * n * o + d * o + k] += xs[r * p + j] * residual }
            }
        }
    }
    let (psi, _) = solveNormalEquations(normal, n: p, g, rhs: n * o)
    var moments = RunningMoments(size: (p + 1) * o)
    var influence = [Double](repeating: 0, count: (p + 1) * o)
    for d in 0..<n {
        for k in 0..<o {
            var sum = 0.0
            for j in 0..<p {
                let v = psi[j * n * o + d * o + k]
                influence[j * o + k] = v
                sum += v
            }
            influence[p * o + k] = -sum
        }
        moments.add(influence)
    }
    // moments.standardErrors = sd/√n; the sum of n influences has sd·√n = that × n.
    return moments.standardErrors.map { $0 * Double(n) }
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

/// Calls `body` with the 0/1 mask of every subset of 0..<n with `size` elements, in lexicographic order.
func forEachSubset(of n: Int, size: Int, _ body: ([UInt8]) -> Void) {
    guard size >= 0, size <= n else { return }
    var index = Array(0..<size)
    while true {
        var mask = [UInt8](repeating: 0, count: n)
        for i in index { mask[i] = 1 }
        body(mask)
        var i = size - 1
        while i >= 0 && index[i] == n - size + i { i -= 1 }
        if i < 0 { return }
        index[i] += 1
        for j in (i + 1)..<max(size, i + 1) { index[j] = index[j - 1] + 1 }
    }
}
