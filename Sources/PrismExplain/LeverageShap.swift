import Foundation
import Prism

/// Leverage SHAP (Musco & Witter, "Provably Accurate Shapley Value Estimation via Leverage Score
/// Sampling", ICLR 2025): Kernel SHAP's regression with its coalitions drawn by leverage score.
///
/// Shapley values solve the efficiency-constrained weighted least squares
///
///     φ = argmin_{Σφ = v(all) − v(∅)} Σ_z w(|z|) (v(z) − v(∅) − zᵀφ)²,  w(s) = (M − 1) / (C(M, s) s (M − s)),
///
/// over all coalitions z ≠ ∅, all. The leverage score of row z of that problem is ℓ_z = 1 / C(M, |z|)
/// (the paper's closed form): each size 1…M − 1 carries the same leverage mass, and coalitions of a
/// size are equally likely. Algorithm 1 of the paper, which this follows:
/// - c solves Σ_{s=1}^{M−1} min(C(M, s), c) = the budget (the expected number of coalitions);
/// - each pair (S, S̄), |S| = k ≤ M/2, is kept independently with probability p_k = min(1, c / C(M, k))
///   (paired Bernoulli sampling: no coalition twice; sizes with C(M, k) ≤ c are kept whole), as a
///   Binomial count per size and distinct uniform pairs (`LeverageShapCoalitions`);
/// - the kept rows are reweighted by 1 / p_k (weight w(|z|) / p_k), and the same constrained least
///   squares is solved (`ConstrainedLeastSquares`; the paper's projection onto Σφ = Δ gives the same
///   minimiser).
/// A budget of 2^M − 2 or more keeps every coalition with p = 1: exact Shapley values.
///
/// The budget is the *expected* number of coalitions besides ∅ and all; the number evaluated is
/// random around it (binomial per size, recorded in `settings["sampled"]` and `["enumerated"]`).
/// Default and minimum as Kernel SHAP's: 2M + 2048 and M.
///
/// Standard errors (sampled sizes only; whole sizes carry no sampling error), by the delta method for
/// Bernoulli sampling: a kept pair's influence on the solution is ψ = A⁻¹ (w/p) Σ x (y − xᵀβ) over its
/// two rows (`drawInfluences`), and Var φ ≈ Σ_kept (1 − p) ψ² / (1 − h)², the Horvitz–Thompson
/// estimate of Σ_all pairs (1 − p)/p · (p ψ)² with each pair's fitted residual scaled up by its
/// leverage h in the weighted fit (`pairLeverages`; the jackknife's HC3 correction). Measured on
/// unanimity games (M = 10, 12, 14; budgets 40–512; 200 seeds, 1.96·SE): without the correction
/// the intervals cover 57–73% at budget 40 and 90–91% at 128; with it 91–95% at 40 and 95–97% at
/// 64–512. Nil while the sampled pairs are no more than the M − 1 unknowns or the fit needed a
/// ridge (the residuals then say nothing of the error); zero with every coalition kept.
///
/// With a stopping rule (Covert & Lee 2021) the sample grows in nested rounds of 2 · `drawsPerRound`
/// expected coalitions, each round's sample being an exact Bernoulli sample at its own c, and stops
/// once the rule is met.
public struct LeverageShap: ShapleyEstimator {
    public let method = "leverage-shap"
    /// Expected coalitions besides ∅ and all; nil: `defaultBudget`.
    public var budget: Int?
    public var seed: UInt64
    /// Optional early stop (Covert & Lee 2021), checked after every round.
    public var stopping: StoppingRule?
    /// Pairs (S, S̄) added per round, in expectation, when a stopping rule is set.
    public var drawsPerRound: Int

    public init(budget: Int? = nil, seed: UInt64 = 0, stopping: StoppingRule? = nil, drawsPerRound: Int = 64) {
        self.budget = budget
        self.seed = seed
        self.stopping = stopping
        self.drawsPerRound = drawsPerRound
    }

    /// Kernel SHAP's default: 2M + 2048.
    public static func defaultBudget(features m: Int) -> Int { KernelShap.defaultBudget(features: m) }
    /// The smallest budget accepted: M coalitions (M − 1 unknowns after the efficiency constraint).
    public static func minimumBudget(features m: Int) -> Int { KernelShap.minimumBudget(features: m) }

    public func explain(_ game: CoalitionGame) throws -> Explanation {
        var run = try ShapleyRun(method: method, game: game, seed: seed)
        let m = run.featureCount, o = run.outputCount
        if let trivial = try run.trivialExplanation() { return trivial }
        let v0 = run.baseValues, delta = run.delta

        let budget = try run.regressionBudget(self.budget, standard: Self.defaultBudget(features: m), minimum: Self.minimumBudget(features: m))
        guard drawsPerRound > 0 else { throw ExplainError("leverage-shap: draws per round must be positive, got \(drawsPerRound)") }
        // The count kept is binomial around the budget: room for a few standard deviations more.
        var room = budget > Int.max / 2 ? budget : budget + 4 * Int(Double(budget).squareRoot()) + 16
        if m <= 30 { room = min(room, (1 << m) - 2) }
        // Per coalition: its mask (and its copy in the set of kept pairs), its values, its design-matrix
        // and target rows and its weight, all held until the fit.
        try requireHostMemory(HostMemory.product([room, 2 * m + 96 + 8 * (m + 2 * o + 1)]),
                              "leverage-shap: a budget of \(budget) coalitions × \(m) features", for: "the coalition matrix and its fit")
        run.settings["budget"] = .int(budget)

        var coalitions = LeverageShapCoalitions(features: m)
        var rng = ShapleyRandom(seed: seed)
        var v: [Double] = []
        // Rounds: the first holds at least 4M expected coalitions (2M pairs), so that the rule is not
        // judged on standard errors from barely more pairs than unknowns.
        var target = stopping == nil ? budget : min(budget, max(2 * drawsPerRound, 4 * m))
        var result: (phi: [Double], standardErrors: [Double]?, ridge: Double)
        var stoppedEarly = false
        while true {
            let before = coalitions.rowCount
            coalitions.grow(toExpectedRows: Double(target), using: &rng)
            v += try run.values(Array(coalitions.masks[(before * m)...]), count: coalitions.rowCount - before)
            result = fit(coalitions, values: v, baseValues: v0, delta: delta)
            if target >= budget { break }
            if let stopping, let se = result.standardErrors,
               stopping.isMet(values: result.phi, standardErrors: se, featureCount: m, outputCount: o) {
                stoppedEarly = true
                break
            }
            target = min(budget, target + 2 * drawsPerRound)
        }
        let sampled = coalitions.sampledPairs.count
        run.settings["enumerated"] = .int(coalitions.rowCount - 2 * sampled)
        run.settings["sampled"] = .int(2 * sampled)
        run.settings["draws"] = .int(sampled)
        if sampled > 0 { run.settings["standard_errors"] = .string("linearization") }
        run.recordStopping(stopping, stoppedEarly: stoppedEarly)
        if result.ridge > 0 { run.settings["ridge"] = .double(result.ridge) }
        return try run.explanation(values: result.phi, standardErrors: result.standardErrors)
    }

    /// The Leverage SHAP solution from every row of `coalitions` and its values `v` [rows, O], its
    /// standard errors, and the ridge its solve needed.
    func fit(_ coalitions: LeverageShapCoalitions, values v: [Double], baseValues v0: [Double],
             delta: [Double]) -> (phi: [Double], standardErrors: [Double]?, ridge: Double) {
        let m = coalitions.featureCount, o = delta.count
        var leastSquares = ConstrainedLeastSquares(features: m, masks: coalitions.masks, weights: coalitions.rowWeights(),
                                                   sampledWeight: 0, values: v, baseValues: v0, delta: delta)
        let (phi, normal) = leastSquares.estimate()
        let sampled = coalitions.sampledPairs
        var errors: [Double]?
        if sampled.isEmpty {
            errors = [Double](repeating: 0, count: m * o)
        } else if sampled.count > m - 1 && leastSquares.largestRidge == 0 {
            let p = coalitions.probability, w = coalitions.kernelWeight
            let rows = sampled.map(\.rows), scales = sampled.map { w[$0.size] / p[$0.size] }
            let influences = drawInfluences(phi: phi, normal: normal, draws: rows, xs: leastSquares.xs, ys: leastSquares.ys,
                                            scales: scales, p: m - 1, o: o)
            let hat = pairLeverages(normal: normal, pairs: rows, xs: leastSquares.xs, scales: scales, p: m - 1)
            var variance = [Double](repeating: 0, count: m * o)
            for ((pair, influence), h) in zip(zip(sampled, influences), hat) {
                // Jackknife (HC3) scaling: the fitted residual of a pair of leverage h is (1 − h) × its
                // residual against the estimate without it.
                let shrink = max(1 - h, 1e-6), keep = (1 - p[pair.size]) / (shrink * shrink)
                for i in variance.indices { variance[i] += keep * influence[i] * influence[i] }
            }
            errors = variance.map { $0.squareRoot() }
        }
        return (phi, errors, leastSquares.largestRidge)
    }
}

/// Each pair's leverage in the weighted fit, h = scale · Σ_{its rows} xᵀ A⁻¹ x (for a pair (S, S̄) the
/// rows are x and −x, so this is the pair's exact rank-one hat value).
func pairLeverages(normal: [Double], pairs: [(Int, Int)], xs: [Double], scales: [Double], p: Int) -> [Double] {
    let n = pairs.count
    var columns = [Double](repeating: 0, count: p * n)
    for (d, pair) in pairs.enumerated() {
        for j in 0..<p { columns[j * n + d] = xs[pair.0 * p + j] }
    }
    let (solved, _) = solveNormalEquations(normal, n: p, columns, rhs: n)
    return (0..<n).map { d in
        var quadratic = 0.0
        for j in 0..<p { quadratic += columns[j * n + d] * solved[j * n + d] }
        // The complement's row is −x: the same quadratic form.
        return 2 * scales[d] * quadratic
    }
}
