import Foundation
import Prism

/// Monte-Carlo Shapley values feature by feature (Štrumbelj & Kononenko 2010/2014; shap's
/// `SamplingExplainer`, Captum's `ShapleyValueSampling` idea): for each feature i and each sample, a
/// uniform random permutation gives the set S of features before i, and v(S ∪ {i}) − v(S) is one
/// unbiased draw of φᵢ. Two coalitions per draw.
///
/// The budget (coalitions, ∅ and all included) buys ⌊(budget − 2) / (2M)⌋ draws per feature — at
/// least 2, so the budget is at least 2 + 4M. Default: 2 + 2M·100 (100 draws per feature).
/// The values are not forced to add up: Σφ + base − f(x) is a sampling error of the size of the
/// standard errors.
///
/// Standard errors: the standard deviation of a feature's draws / √draws. With a `stopping` rule the
/// draws run in rounds of `samplesPerRound` per feature and stop once the rule is met.
public struct SamplingShap: ShapleyEstimator {
    public let method = "sampling-shap"
    /// Coalitions to evaluate, ∅ and all included; nil: `defaultBudget`.
    public var budget: Int?
    public var seed: UInt64
    /// Optional early stop (Covert & Lee 2021).
    public var stopping: StoppingRule?
    /// Draws per feature per call to the game (and per stopping check).
    public var samplesPerRound: Int

    public init(budget: Int? = nil, seed: UInt64 = 0, stopping: StoppingRule? = nil, samplesPerRound: Int = 16) {
        self.budget = budget
        self.seed = seed
        self.stopping = stopping
        self.samplesPerRound = samplesPerRound
    }

    /// Two draws per feature plus ∅ and all.
    public static func minimumBudget(features m: Int) -> Int { 2 + 4 * m }
    /// 100 draws per feature plus ∅ and all.
    public static func defaultBudget(features m: Int) -> Int { 2 + 200 * m }

    public func explain(_ game: CoalitionGame) throws -> Explanation {
        var run = try ShapleyRun(method: method, game: game, seed: seed)
        let m = run.featureCount, o = run.outputCount
        if let trivial = try run.trivialExplanation() { return trivial }
        let budget = self.budget ?? Self.defaultBudget(features: m)
        guard budget >= Self.minimumBudget(features: m) else {
            throw ExplainError("sampling-shap: a budget of \(budget) coalitions is below the minimum of \(Self.minimumBudget(features: m)) for \(m) features (two draws each)")
        }
        guard samplesPerRound > 0 else { throw ExplainError("sampling-shap: samples per round must be positive") }
        let draws = (budget - 2) / (2 * m)
        let perRound = min(samplesPerRound, draws)
        try requireHostMemory(HostMemory.product([2, perRound, m, m + 8 * o]),
                              "sampling-shap: \(perRound) draws per round × 2 × \(m) features", for: "the coalition matrix of \(m) features")
        run.settings["budget"] = .int(budget)

        var rng = ShapleyRandom(seed: seed)
        var moments = (0..<m).map { _ in RunningMoments(size: o) }
        var done = 0
        var stoppedEarly = false
        while done < draws {
            let round = min(samplesPerRound, draws - done)
            var masks: [UInt8] = []
            masks.reserveCapacity(2 * round * m * m)
            for i in 0..<m {
                for _ in 0..<round {
                    let order = rng.permutation(m)
                    var mask = [UInt8](repeating: 0, count: m)
                    for j in order {
                        if j == i { break }
                        mask[j] = 1
                    }
                    masks += mask
                    mask[i] = 1
                    masks += mask
                }
            }
            let v = try run.values(masks, count: 2 * round * m)
            for i in 0..<m {
                for r in 0..<round {
                    let row = 2 * (i * round + r)
                    moments[i].add((0..<o).map { v[(row + 1) * o + $0] - v[row * o + $0] })
                }
            }
            done += round
            if let stopping, done < draws,
               stopping.isMet(values: moments.flatMap(\.mean), standardErrors: moments.flatMap(\.standardErrors), featureCount: m, outputCount: o) {
                stoppedEarly = true
                break
            }
        }
        run.settings["samples_per_feature"] = .int(done)
        run.recordStopping(stopping, stoppedEarly: stoppedEarly)
        return try run.explanation(values: moments.flatMap(\.mean), standardErrors: moments.flatMap(\.standardErrors))
    }
}
