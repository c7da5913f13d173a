import Foundation
import Prism
import PrismCL

/// A game that is the weighted average of one game per background row: v(S) = Σ_b w_b v_b(S), where
/// v_b(S) is the model on the instance where S is present and on background row b elsewhere (shap's
/// interventional game with a background masker). `DeviceGame` and `HostGame` are such games.
public protocol BackgroundRowsGame: CoalitionGame {
    /// The rows' weights w_b, non-negative and summing to 1.
    var rowWeights: [Double] { get }
    /// The game v_b of background row `row` alone: one model row per coalition (per instance).
    /// - Throws: `ExplainError` for a row outside the background.
    func rowGame(_ row: Int) throws -> CoalitionGame
}

/// A sampling estimator whose draws all come from its seed, so that a stratified run can give each
/// stratum draws of its own.
public protocol SeededShapleyEstimator: ShapleyEstimator {
    var seed: UInt64 { get set }
}

extension KernelShap: SeededShapleyEstimator {}
extension LeverageShap: SeededShapleyEstimator {}
extension PermutationShap: SeededShapleyEstimator {}
extension SamplingShap: SeededShapleyEstimator {}

/// Any sampling estimator stratified by background row: the estimator runs on each row's game v_b with
/// its whole budget and draws of its own, and the estimates are averaged with the rows' weights,
///
///     φ̂ = Σ_b w_b φ̂(v_b),    SE(φ̂) = (Σ_b w_b² SE(φ̂(v_b))²)^½,
///
/// which estimates the same Shapley values: φ is linear in the game (Shapley 1953's additivity axiom),
/// so φ(Σ_b w_b v_b) = Σ_b w_b φ(v_b) — the average of the baseline Shapley values of the background
/// rows ("random baseline Shapley", Sundararajan & Najmi, "The Many Shapley Values for Model
/// Explanation", ICML 2020, §4.1). It is stratified sampling (Cochran, *Sampling Techniques*, 3rd ed.,
/// 1977, ch. 5) with the rows as strata and an equal budget per stratum.
///
/// The model evaluations are the unstratified estimator's at the same budget: B coalitions of the
/// averaged game cost B·N model rows; here each of the N rows gets B coalitions of one model row each.
/// What changes is the error. A regression estimator's error comes from the part of the game that is
/// not additive; averaged over 50 rows that part shrinks far less than 50-fold, because the rows' games
/// share the instance's interactions, so B coalitions of each one-row game say more than B coalitions
/// of the averaged game. Measured on the cnn of `prism-bench shap --curves` (49 superpixels, 50
/// background images; RESULTS.md) the error at equal evaluations falls about 3.5-fold.
///
/// The standard errors are the rows' own, combined as above, so they hold once each row's budget is
/// large enough for its estimator's: on a seeded 8-feature MLP with 19 rows (50 seeds) 1.96·SE covered
/// 95% of the errors for kernel-shap at 120 coalitions per row, but 89% at 60, where the rows'
/// delta-method errors run low; a row without standard errors (leverage-shap with no more sampled
/// pairs than unknowns) leaves the average without them.
///
/// Rows of weight 0 are skipped. The base estimator's budget applies to every row, so it must be at
/// least its minimum there (M for the regression estimators). A stopping rule of the base estimator
/// judges each row's estimate on its own (the average is then more precise than the rule asks);
/// Kernel SHAP's feature selection (`numFeatures`) is refused, since selecting per row is not selecting
/// for the average. The explanation records the base estimator's settings of the first row, with
/// `stratified` and `strata` (the rows run) added and the run's seed.
public struct StratifiedShap: ShapleyEstimator {
    /// The estimator run on every row's game.
    public var base: any SeededShapleyEstimator
    public var method: String { base.method }

    public init(_ base: any SeededShapleyEstimator) { self.base = base }

    public func explain(_ game: CoalitionGame) throws -> Explanation {
        guard let rows = game as? BackgroundRowsGame else {
            throw ExplainError("\(method): stratifying by background row needs a game over background rows (a device or host game), not a \(type(of: game))")
        }
        if let kernel = base as? KernelShap, kernel.numFeatures != nil {
            throw ExplainError("\(method): feature selection (num features) cannot be stratified by background row: selecting per row is not selecting for the average")
        }
        let weights = rows.rowWeights, m = game.featureCount, o = game.outputCount
        guard weights.contains(where: { $0 > 0 }) else { throw ExplainError("\(method): the background rows' weights are all zero") }
        var values = [Double](repeating: 0, count: m * o), variance: [Double]? = values
        var baseValues = [Double](repeating: 0, count: o), outputs = baseValues
        var evaluations = 0, seconds = 0.0, strata = 0
        var settings: [String: SettingValue] = [:]
        var seeds = SplitMix64(seed: base.seed ^ 0x57A7_1F1E_D5EE_D000)
        for (row, w) in weights.enumerated() {
            // Every row's seed is drawn, so a row's draws do not depend on which rows have weight 0.
            let seed = seeds.next()
            guard w > 0 else { continue }
            var estimator = base
            estimator.seed = seed
            let part = try estimator.explain(try rows.rowGame(row))
            guard part.values.count == m * o else {
                throw ExplainError("\(method): row \(row) gave \(part.values.count) values for \(m) features × \(o) outputs")
            }
            for i in values.indices { values[i] += w * part.values[i] }
            if let se = part.standardErrors, variance != nil {
                for i in se.indices { variance![i] += w * w * se[i] * se[i] }
            } else {
                variance = nil
            }
            for k in 0..<o {
                baseValues[k] += w * (part.baseValues?[k] ?? 0)
                outputs[k] += w * (part.outputs?[k] ?? 0)
            }
            if strata == 0 { settings = part.settings }
            evaluations += part.modelEvaluations
            seconds += part.seconds
            strata += 1
        }
        settings["seed"] = .unsigned(base.seed)
        settings["stratified"] = .string("background rows")
        settings["strata"] = .int(strata)
        return try Explanation(method: method, instanceCount: 1, featureCount: m, outputCount: o, values: values, baseValues: baseValues,
                               outputs: outputs, standardErrors: variance.map { $0.map { $0.squareRoot() } },
                               modelEvaluations: evaluations, seconds: seconds, settings: settings)
    }
}
