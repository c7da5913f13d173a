import Foundation
import PrismCL
import Prism

/// A Shapley-value estimator: turns the game of one instance into an `Explanation`, values
/// [1 × features × outputs], base value v(∅), output v(all features).
public protocol ShapleyEstimator {
    /// The method name recorded in the explanation (`kernel-shap`).
    var method: String { get }
    /// Explains one instance.
    /// - Throws: `ExplainError` for invalid settings, or the game's errors.
    func explain(_ game: CoalitionGame) throws -> Explanation
}

extension ShapleyEstimator {
    /// Explains several instances, one game each, stacked in order.
    public func explain(_ games: [CoalitionGame]) throws -> Explanation {
        try Explanation(stacking: games.map { try explain($0) })
    }
}

extension ShapleyEstimator {
    /// Explains `instances` instances in one run of a joint game whose outputs are theirs side by side
    /// ([instance][output], as a `DeviceGame` over several instances gives): every coalition is
    /// evaluated for all of them in the same device batches. Shapley values are linear in the value
    /// function, so each instance gets the values a game of its own would give with the same seed.
    /// With a stopping rule the rule is checked over all instances' values together.
    /// - Throws: `ExplainError` when the game's outputs are not a multiple of `instances`, or the
    ///   estimator's errors.
    public func explain(_ game: CoalitionGame, instances: Int) throws -> Explanation {
        guard instances > 0, game.outputCount % instances == 0 else {
            throw ExplainError("explain: a game with \(game.outputCount) outputs cannot be split into \(instances) instances")
        }
        guard instances > 1 else { return try explain(game) }
        var joint = try explain(game).splittingOutputs(intoInstances: instances)
        joint.settings["instances_per_batch"] = .int(instances)
        return joint
    }
}

extension Explanation {
    /// This explanation with each instance's outputs split into `count` instances of `outputCount / count`
    /// outputs (instance-major): the explanation of a joint game, per instance. Evaluations and seconds
    /// stay the totals.
    /// - Throws: `ExplainError` when `outputCount` is not a multiple of `count`.
    public func splittingOutputs(intoInstances count: Int) throws -> Explanation {
        guard count > 0, outputCount % count == 0 else {
            throw ExplainError("explanation: \(outputCount) outputs cannot be split into \(count) instances")
        }
        let m = featureCount, o = outputCount / count, joint = outputCount
        func split(_ a: [Double]) -> [Double] {
            var out = [Double](repeating: 0, count: a.count)
            for i in 0..<instanceCount {
                for c in 0..<count {
                    for j in 0..<m {
                        for k in 0..<o { out[((i * count + c) * m + j) * o + k] = a[(i * m + j) * joint + c * o + k] }
                    }
                }
            }
            return out
        }
        // Base values and outputs [instance][joint] already read as [instance · count][o].
        return try Explanation(method: method, instanceCount: instanceCount * count, featureCount: m, outputCount: o,
                               values: split(values), baseValues: baseValues, outputs: outputs, standardErrors: standardErrors.map(split),
                               featureNames: featureNames, modelEvaluations: modelEvaluations, seconds: seconds, settings: settings)
    }
}

/// The Shapley estimators by name, as the CLI spells them.
public enum ShapleyMethod: String, CaseIterable, Sendable {
    case exact = "exact-shap"
    case kernel = "kernel-shap"
    case leverage = "leverage-shap"
    case permutation = "permutation-shap"
    case sampling = "sampling-shap"

    /// The estimator with its defaults, a coalition budget (nil: the method's default; ignored by
    /// `exact`) and a seed.
    public func estimator(budget: Int? = nil, seed: UInt64 = 0) -> ShapleyEstimator {
        switch self {
        case .exact: return ExactShapley()
        case .kernel: return KernelShap(budget: budget, seed: seed)
        case .leverage: return LeverageShap(budget: budget, seed: seed)
        case .permutation: return PermutationShap(budget: budget, seed: seed)
        case .sampling: return SamplingShap(budget: budget, seed: seed)
        }
    }
}

/// Covert & Lee's (2021) convergence test for sampled Shapley estimates: stop once, for every
/// output, the largest standard error is below `threshold` × (max φ − min φ).
public struct StoppingRule: Equatable, Sendable {
    public var threshold: Double
    public init(threshold: Double = 0.01) { self.threshold = threshold }

    /// Whether estimates `values` [features, outputs] with `standardErrors` (same layout) have converged.
    public func isMet(values: [Double], standardErrors: [Double], featureCount m: Int, outputCount o: Int) -> Bool {
        guard m > 1 else { return true }
        for k in 0..<o {
            var low = Double.infinity, high = -Double.infinity, worst = 0.0
            for j in 0..<m {
                low = min(low, values[j * o + k])
                high = max(high, values[j * o + k])
                worst = max(worst, standardErrors[j * o + k])
            }
            if !(worst <= threshold * (high - low)) && worst > 0 { return false }
        }
        return true
    }
}

extension Explanation {
    /// Several explanations of the same method and features as one, instances in order: values, base
    /// values, outputs and standard errors concatenated (standard errors kept only when every part has
    /// them), evaluations and seconds summed, settings of the first.
    /// - Throws: `ExplainError` when the parts disagree in features or outputs, or none is given.
    public init(stacking parts: [Explanation]) throws {
        guard let first = parts.first else { throw ExplainError("explanation: nothing to stack") }
        for p in parts where p.featureCount != first.featureCount || p.outputCount != first.outputCount {
            throw ExplainError("explanation: cannot stack \(p.featureCount) features × \(p.outputCount) outputs with \(first.featureCount) × \(first.outputCount)")
        }
        func joined(_ key: (Explanation) -> [Double]?) -> [Double]? {
            let arrays = parts.compactMap(key)
            return arrays.count == parts.count ? arrays.flatMap { $0 } : nil
        }
        try self.init(method: first.method, instanceCount: parts.reduce(0) { $0 + $1.instanceCount },
                      featureCount: first.featureCount, outputCount: first.outputCount, values: parts.flatMap(\.values),
                      baseValues: joined(\.baseValues), outputs: joined(\.outputs), standardErrors: joined(\.standardErrors),
                      featureNames: first.featureNames, modelEvaluations: parts.reduce(0) { $0 + $1.modelEvaluations },
                      seconds: parts.reduce(0) { $0 + $1.seconds }, settings: first.settings)
    }
}

// MARK: internals shared by the estimators

/// Calls a game, checking the size of what it returns and counting coalitions.
struct CountingGame {
    let game: CoalitionGame
    let featureCount: Int
    let outputCount: Int
    private(set) var coalitions = 0
    private let start = ContinuousClock.now

    init(_ game: CoalitionGame) throws {
        guard game.featureCount >= 0, game.outputCount > 0 else {
            throw ExplainError("explain: a game needs at least one output (it has \(game.outputCount)) and no negative feature count")
        }
        self.game = game
        featureCount = game.featureCount
        outputCount = game.outputCount
    }

    mutating func values(_ masks: [UInt8], count: Int) throws -> [Double] {
        guard count > 0 else { return [] }
        let v = try game.values(coalitions: masks, count: count)
        guard v.count == count * outputCount else {
            throw ExplainError("explain: the game returned \(v.count) values for \(count) coalitions × \(outputCount) outputs")
        }
        coalitions += count
        return v
    }

    /// v(∅) and v(all features), each [outputs].
    mutating func endpoints() throws -> (empty: [Double], full: [Double]) {
        let m = featureCount, o = outputCount
        let v = try values([UInt8](repeating: 0, count: m) + [UInt8](repeating: 1, count: m), count: 2)
        return (Array(v[0..<o]), Array(v[o..<(2 * o)]))
    }

    var modelEvaluations: Int { coalitions * game.rowsPerCoalition }
    var seconds: Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}

/// Seeded draws on top of Prism's SplitMix64.
struct ShapleyRandom {
    private var rng: SplitMix64
    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    /// Uniform in [0, 1) with 53 bits.
    mutating func unit() -> Double { Double(rng.next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }

    /// Uniform in 0..<n (Lemire's multiply-shift with rejection: unbiased).
    mutating func below(_ n: Int) -> Int {
        precondition(n > 0)
        let bound = UInt64(n)
        let threshold = (0 &- bound) % bound
        while true {
            let r = rng.next().multipliedFullWidth(by: bound)
            if r.low >= threshold { return Int(r.high) }
        }
    }

    /// A uniform random permutation of 0..<n (Fisher–Yates).
    mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, below(i + 1)) }
        }
        return p
    }

    /// An index drawn with probability proportional to `cumulative` increments (the last entry is the total).
    mutating func pick(cumulative: [Double]) -> Int {
        let u = unit() * cumulative[cumulative.count - 1]
        return cumulative.firstIndex(where: { u < $0 }) ?? (cumulative.count - 1)
    }
}

/// C(n, k) in Double (exact up to 2^53).
func binomial(_ n: Int, _ k: Int) -> Double {
    guard k >= 0, k <= n else { return 0 }
    let k = min(k, n - k)
    var r = 1.0
    if k > 0 {
        for i in 1...k { r = r * Double(n - k + i) / Double(i) }
    }
    return r.rounded()
}

/// Solves A X = B for a symmetric positive definite A [n, n] and B [n, rhs] by Cholesky, in Double.
/// Returns nil when A is not numerically positive definite.
func choleskySolve(_ a: [Double], n: Int, _ b: [Double], rhs: Int) -> [Double]? {
    var l = [Double](repeating: 0, count: n * n)
    var largest = 0.0
    for i in 0..<n { largest = max(largest, abs(a[i * n + i])) }
    let floor = largest * 1e-13
    for j in 0..<n {
        var d = a[j * n + j]
        for k in 0..<j { d -= l[j * n + k] * l[j * n + k] }
        guard d > floor, d.isFinite else { return nil }
        let root = d.squareRoot()
        l[j * n + j] = root
        for i in (j + 1)..<max(n, j + 1) {
            var s = a[i * n + j]
            for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
            l[i * n + j] = s / root
        }
    }
    var x = b
    for r in 0..<rhs {
        for i in 0..<n {  // L y = b
            var s = x[i * rhs + r]
            for k in 0..<i { s -= l[i * n + k] * x[k * rhs + r] }
            x[i * rhs + r] = s / l[i * n + i]
        }
        for i in stride(from: n - 1, through: 0, by: -1) {  // Lᵀ x = y
            var s = x[i * rhs + r]
            for k in (i + 1)..<max(n, i + 1) { s -= l[k * n + i] * x[k * rhs + r] }
            x[i * rhs + r] = s / l[i * n + i]
        }
    }
    return x
}

/// Solves the normal equations A X = B of a weighted least squares by Cholesky; when A is singular
/// (too few distinct coalitions), adds the smallest ridge λ·I, λ = 10^k · 1e-12 · max diag A, that makes
/// it positive definite — the minimum-norm-like answer shap gets from its pseudo-inverse fallback.
/// - Returns: X [n, rhs] and the ridge used (0 when none).
func solveNormalEquations(_ a: [Double], n: Int, _ b: [Double], rhs: Int) -> (x: [Double], ridge: Double) {
    if let x = choleskySolve(a, n: n, b, rhs: rhs) { return (x, 0) }
    var largest = 0.0
    for i in 0..<n { largest = max(largest, abs(a[i * n + i])) }
    var ridge = (largest > 0 && largest.isFinite ? largest : 1) * 1e-12
    for _ in 0..<30 {
        var regular = a
        for i in 0..<n { regular[i * n + i] += ridge }
        if let x = choleskySolve(regular, n: n, b, rhs: rhs) { return (x, ridge) }
        ridge *= 10
    }
    return ([Double](repeating: .nan, count: n * rhs), .infinity)  // NaN or infinite entries in A
}

/// Running means and variances of many quantities at once (Welford's update, stable in Double).
struct RunningMoments {
    private(set) var count = 0
    private(set) var mean: [Double]
    private var m2: [Double]

    init(size: Int) {
        mean = [Double](repeating: 0, count: size)
        m2 = [Double](repeating: 0, count: size)
    }

    mutating func add(_ x: [Double]) {
        count += 1
        let n = Double(count)
        for i in x.indices {
            let delta = x[i] - mean[i]
            mean[i] += delta / n
            m2[i] += delta * (x[i] - mean[i])
        }
    }

    /// Standard errors of the means (sample standard deviation / √count); infinite below two samples.
    var standardErrors: [Double] {
        guard count > 1 else { return [Double](repeating: .infinity, count: mean.count) }
        let n = Double(count)
        return m2.map { (max(0, $0) / (n - 1) / n).squareRoot() }
    }
}
