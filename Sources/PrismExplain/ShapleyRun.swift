import Foundation
import Prism

/// The set-up every sampling Shapley estimator shares around its own scheme: the counted game, v(∅)
/// and v(all features) evaluated first, the settings recorded so far, and the explanation built at
/// the end. An estimator creates one per game, asks `trivialExplanation` for M ≤ 1, evaluates its
/// coalitions through `values`, and returns `explanation(values:standardErrors:)`.
struct ShapleyRun {
    /// The method name recorded in the explanation.
    let method: String
    /// Counts coalitions and checks what the game returns.
    private(set) var counter: CountingGame
    /// v(∅) [outputs]: the base values.
    let baseValues: [Double]
    /// v(all features) [outputs]: the explained outputs f(x).
    let outputs: [Double]
    /// Settings recorded in the explanation; starts with the seed.
    var settings: [String: SettingValue]

    /// Wraps `game` and evaluates ∅ and all features.
    /// - Throws: `ExplainError` for a game without outputs, or the game's errors.
    init(method: String, game: CoalitionGame, seed: UInt64) throws {
        self.method = method
        counter = try CountingGame(game)
        (baseValues, outputs) = try counter.endpoints()
        settings = ["seed": .unsigned(seed)]
    }

    var featureCount: Int { counter.featureCount }
    var outputCount: Int { counter.outputCount }

    /// v(all) − v(∅) per output: what the values of each output add up to.
    var delta: [Double] { (0..<outputCount).map { outputs[$0] - baseValues[$0] } }

    /// v(S) [count, outputs] for the coalitions `masks` [count, features].
    /// - Throws: the game's errors, or `ExplainError` when it returns the wrong number of values.
    mutating func values(_ masks: [UInt8], count: Int) throws -> [Double] {
        try counter.values(masks, count: count)
    }

    /// The explanation of a game with at most one feature (no values, or φ = v(all) − v(∅), with zero
    /// standard errors); nil when there are more features.
    func trivialExplanation() throws -> Explanation? {
        let m = featureCount
        guard m <= 1 else { return nil }
        return try explanation(values: m == 1 ? delta : [], standardErrors: [Double](repeating: 0, count: m * outputCount))
    }

    /// The coalitions a regression estimator (Kernel or Leverage SHAP) may use besides ∅ and all:
    /// `requested`, else `standard`, capped at every coalition (2^M − 2) for M ≤ 30.
    /// - Throws: `ExplainError` naming the method when it is below `minimum`.
    func regressionBudget(_ requested: Int?, standard: Int, minimum: Int) throws -> Int {
        let budget = requested ?? standard, m = featureCount
        guard budget >= minimum else {
            throw ExplainError("\(method): a budget of \(budget) coalitions is below the minimum of \(minimum) for \(m) features")
        }
        return m <= 30 ? min(budget, (1 << m) - 2) : budget
    }

    /// Records the stopping rule's threshold and whether it stopped the sampling early (nothing without a rule).
    mutating func recordStopping(_ stopping: StoppingRule?, stoppedEarly: Bool) {
        guard let stopping else { return }
        settings["stopping_threshold"] = .double(stopping.threshold)
        settings["stopped_early"] = .bool(stoppedEarly)
    }

    /// The explanation of this one instance: `values` and `standardErrors` [features, outputs], the
    /// evaluations and seconds so far, and the settings.
    func explanation(values: [Double], standardErrors: [Double]?) throws -> Explanation {
        try Explanation(method: method, instanceCount: 1, featureCount: featureCount, outputCount: outputCount, values: values,
                        baseValues: baseValues, outputs: outputs, standardErrors: standardErrors,
                        modelEvaluations: counter.modelEvaluations, seconds: counter.seconds, settings: settings)
    }
}
