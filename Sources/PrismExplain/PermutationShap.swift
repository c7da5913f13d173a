import Foundation
import Prism

/// Antithetic permutation sampling, shap's `PermutationExplainer` scheme: each random permutation π
/// is walked forward (features switched on in π's order, starting from ∅) and backward (switched off
/// in π's order, starting from all features), which is the same as walking the reversed permutation.
/// Each walk gives every feature one marginal contribution; the permutation's estimate is the mean
/// of its two walks. Each walk telescopes to v(all) − v(∅), so the estimate is exactly additive.
///
/// Cost: shap evaluates 2M + 1 coalitions per permutation; here ∅ and all are evaluated once and
/// shared, so a permutation costs 2(M − 1) coalitions and the budget (coalitions, ∅ and all
/// included) buys ⌊(budget − 2) / (2(M − 1))⌋ permutations — at least 2, so the budget is at least
/// 2 + 4(M − 1). Default budget: shap's 500 (`max_evals`) or two permutations, whichever is more.
///
/// Standard errors: the permutations are independent, so the standard error of each value is the
/// standard deviation of the per-permutation estimates / √permutations. With a `stopping` rule the
/// permutations run in rounds of `permutationsPerRound` and stop early once the rule is met; the
/// budget stays the upper bound.
public struct PermutationShap: ShapleyEstimator {
    public let method = "permutation-shap"
    /// Coalitions to evaluate, ∅ and all included; nil: `defaultBudget`.
    public var budget: Int?
    public var seed: UInt64
    /// Optional early stop (Covert & Lee 2021).
    public var stopping: StoppingRule?
    /// Permutations per call to the game (and per stopping check).
    public var permutationsPerRound: Int

    public init(budget: Int? = nil, seed: UInt64 = 0, stopping: StoppingRule? = nil, permutationsPerRound: Int = 16) {
        self.budget = budget
        self.seed = seed
        self.stopping = stopping
        self.permutationsPerRound = permutationsPerRound
    }

    /// Coalitions one permutation costs beyond ∅ and all.
    public static func coalitionsPerPermutation(features m: Int) -> Int { 2 * max(m - 1, 0) }
    /// Two permutations (the fewest that give a standard error) plus ∅ and all.
    public static func minimumBudget(features m: Int) -> Int { 2 + 2 * coalitionsPerPermutation(features: m) }
    /// shap's default of 500 evaluations, or the minimum if that is more.
    public static func defaultBudget(features m: Int) -> Int { max(500, minimumBudget(features: m)) }

    public func explain(_ game: CoalitionGame) throws -> Explanation {
        var run = try ShapleyRun(method: method, game: game, seed: seed)
        let m = run.featureCount, o = run.outputCount
        let (v0, vAll) = (run.baseValues, run.outputs)
        if let trivial = try run.trivialExplanation() { return trivial }
        let budget = self.budget ?? Self.defaultBudget(features: m)
        guard budget >= Self.minimumBudget(features: m) else {
            throw ExplainError("permutation-shap: a budget of \(budget) coalitions is below the minimum of \(Self.minimumBudget(features: m)) for \(m) features (two permutations)")
        }
        guard permutationsPerRound > 0 else { throw ExplainError("permutation-shap: permutations per round must be positive") }
        let perPermutation = Self.coalitionsPerPermutation(features: m)
        let permutations = (budget - 2) / perPermutation
        let perRound = min(permutationsPerRound, permutations)
        try requireHostMemory(HostMemory.product([perRound, perPermutation, m + 8 * o]),
                              "permutation-shap: \(perRound) permutations per round × \(perPermutation) coalitions × \(m) features",
                              for: "the coalition matrix")
        run.settings["budget"] = .int(budget)

        var rng = ShapleyRandom(seed: seed)
        var moments = RunningMoments(size: m * o)
        var stoppedEarly = false
        while moments.count < permutations {
            let round = min(permutationsPerRound, permutations - moments.count)
            var orders: [[Int]] = []
            var masks: [UInt8] = []
            masks.reserveCapacity(round * perPermutation * m)
            for _ in 0..<round {
                let order = rng.permutation(m)
                orders.append(order)
                var mask = [UInt8](repeating: 0, count: m)
                for t in 0..<(m - 1) {  // forward: prefixes of length 1…M−1
                    mask[order[t]] = 1
                    masks += mask
                }
                mask = [UInt8](repeating: 1, count: m)
                for t in 0..<(m - 1) {  // backward: all but the first 1…M−1 of the order
                    mask[order[t]] = 0
                    masks += mask
                }
            }
            let v = try run.values(masks, count: round * perPermutation)
            for (q, order) in orders.enumerated() {
                let base = q * perPermutation
                // value of forward step t (prefix length t), t = 0…M: ∅, rows base+0…, all.
                func forward(_ t: Int, _ k: Int) -> Double {
                    t == 0 ? v0[k] : t == m ? vAll[k] : v[(base + t - 1) * o + k]
                }
                // value of backward step t (first t of the order removed), t = 0…M: all, rows, ∅.
                func backward(_ t: Int, _ k: Int) -> Double {
                    t == 0 ? vAll[k] : t == m ? v0[k] : v[(base + m - 1 + t - 1) * o + k]
                }
                var estimate = [Double](repeating: 0, count: m * o)
                for t in 0..<m {
                    let j = order[t]
                    for k in 0..<o {
                        let on = forward(t + 1, k) - forward(t, k)
                        let off = backward(t, k) - backward(t + 1, k)
                        estimate[j * o + k] = 0.5 * (on + off)
                    }
                }
                moments.add(estimate)
            }
            if let stopping, moments.count < permutations, moments.count >= 2,
               stopping.isMet(values: moments.mean, standardErrors: moments.standardErrors, featureCount: m, outputCount: o) {
                stoppedEarly = true
                break
            }
        }
        run.settings["permutations"] = .int(moments.count)
        run.recordStopping(stopping, stoppedEarly: stoppedEarly)
        return try run.explanation(values: moments.mean, standardErrors: moments.standardErrors)
    }
}
