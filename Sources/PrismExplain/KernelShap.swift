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
///
/// The pieces: `KernelShapCoalitions` (enumeration, paired sampling, weights), `ConstrainedLeastSquares`
/// (the constrained fit), `standardErrors` and `linearizedErrors` (KernelShapErrors.swift), and
/// `selectedKernelShapValues` with `larsOrder` (LARSSelection.swift); `ShapleyRun` is the set-up
/// shared with the other sampling estimators.
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
        var run = try ShapleyRun(method: method, game: game, seed: seed)
        let m = run.featureCount, o = run.outputCount
        if let trivial = try run.trivialExplanation() { return trivial }
        let v0 = run.baseValues, delta = run.delta

        let budget = try run.regressionBudget(self.budget, standard: Self.defaultBudget(features: m), minimum: Self.minimumBudget(features: m))
        guard drawsPerRound > 0 else { throw ExplainError("kernel-shap: draws per round must be positive, got \(drawsPerRound)") }
        guard standardErrorBatches >= 2 else { throw ExplainError("kernel-shap: standard errors need at least 2 batches, got \(standardErrorBatches)") }
        if let numFeatures, numFeatures < 1 { throw ExplainError("kernel-shap: num-features must be at least 1, got \(numFeatures)") }
        // Per coalition: its mask (and its copy as a dictionary key), its values, its design-matrix
        // and target rows and its weight, all held until the fit.
        try requireHostMemory(HostMemory.product([budget, 2 * m + 96 + 8 * (m + 2 * o + 1)]),
                              "kernel-shap: a budget of \(budget) coalitions × \(m) features", for: "the coalition matrix and its fit")
        run.settings["budget"] = .int(budget)

        var coalitions = KernelShapCoalitions(features: m, budget: budget)
        let fixedRows = coalitions.fixedRows
        run.settings["enumerated"] = .int(fixedRows)

        // Paired sampling over the sizes left, in rounds when a stopping rule is set.
        var v = try run.values(coalitions.masks, count: fixedRows)
        var rng = ShapleyRandom(seed: seed)
        var result: (phi: [Double], standardErrors: [Double]?, ridge: Double)?
        var stoppedEarly = false
        while coalitions.canDraw {
            let before = coalitions.rowCount
            coalitions.draw(upTo: stopping == nil ? Int.max : drawsPerRound, using: &rng)
            let rowCount = coalitions.rowCount
            v += try run.values(Array(coalitions.masks[(before * m)...]), count: rowCount - before)
            result = fit(coalitions, values: v, baseValues: v0, delta: delta)
            if let stopping, coalitions.canDraw, let se = result?.standardErrors,
               stopping.isMet(values: result!.phi, standardErrors: se, featureCount: m, outputCount: o) {
                stoppedEarly = true
                break
            }
        }
        let final = result ?? fit(coalitions, values: v, baseValues: v0, delta: delta)
        let draws = coalitions.draws.count
        run.settings["sampled"] = .int(coalitions.rowCount - fixedRows)
        run.settings["draws"] = .int(draws)
        if draws > 0 { run.settings["standard_errors"] = .string(standardErrorMethod.rawValue) }
        run.recordStopping(stopping, stoppedEarly: stoppedEarly)
        if final.ridge > 0 { run.settings["ridge"] = .double(final.ridge) }
        if let k = numFeatures, k < m {
            run.settings["num_features"] = .int(k)
            let selected = selectedKernelShapValues(coalitions, values: v, baseValues: v0, delta: delta, keep: k)
            return try run.explanation(values: selected, standardErrors: nil)
        }
        return try run.explanation(values: final.phi, standardErrors: final.standardErrors)
    }

    /// The Kernel SHAP solution from every row of `coalitions` and its values `v` [rows, O], its
    /// standard errors, and the largest ridge any of its solves needed.
    func fit(_ coalitions: KernelShapCoalitions, values v: [Double], baseValues v0: [Double],
             delta: [Double]) -> (phi: [Double], standardErrors: [Double]?, ridge: Double) {
        var leastSquares = ConstrainedLeastSquares(coalitions, values: v, baseValues: v0, delta: delta)
        let draws = coalitions.draws, m = coalitions.featureCount
        let batches = draws.isEmpty ? 0 : min(standardErrorBatches, coalitions.enumeratedPairs > 0 ? draws.count : max(2 * draws.count / m, 1))
        let sums = leastSquares.batchSums(draws, batches: batches)
        let p = leastSquares.p, o = leastSquares.o
        var totalA = [Double](repeating: 0, count: p * p), totalB = [Double](repeating: 0, count: p * o)
        for b in 0..<batches {
            for i in totalA.indices { totalA[i] += sums.a[b][i] }
            for i in totalB.indices { totalB[i] += sums.b[b][i] }
        }
        let (phi, normal) = leastSquares.estimate(totalA, totalB, drawCount: draws.count)
        let errors = standardErrors(&leastSquares, sums: sums, phi: phi, normal: normal, draws: draws)
        return (phi, errors, leastSquares.largestRidge)
    }
}
