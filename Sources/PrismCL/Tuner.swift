import Foundation
import PrismFormats

/// A search over a kernel file's tunables (`-D` defines): the defaults first, then a grid over the
/// parameters that matter most (the others at their defaults), then seeded random candidates from
/// the whole space around the grid's winner. Every candidate is built, verified and timed by the
/// caller's `evaluate`; one that fails to build or gives a wrong result is refused and never wins.
/// The defaults and the winner are timed once more at the end, and the winner replaces the defaults
/// only when it is faster by more than `minimumGain`, so timing noise does not churn the table.
public struct TuningSearch {
    /// One tunable and the values to try (the first is not special; `defaults` says which is the default).
    public struct Parameter: Sendable {
        public var name: String
        public var values: [String]
        public init(_ name: String, _ values: [String]) {
            self.name = name
            self.values = values
        }
    }

    /// What became of one candidate.
    public struct Trial: Sendable {
        public var defines: TuningTable.Defines
        /// Median milliseconds, or nil when refused.
        public var milliseconds: Double?
        /// Why it was refused.
        public var refusal: String?
    }

    /// The outcome of a search.
    public struct Outcome: Sendable {
        /// The defines to record (the defaults when nothing beat them).
        public var best: TuningTable.Defines
        public var bestMilliseconds: Double
        public var defaultMilliseconds: Double
        public var trials: [Trial]
        /// Whether `best` differs from the defaults.
        public var improved: Bool
    }

    /// A candidate the evaluator refuses (wrong output, failed build, invalid launch).
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    public var parameters: [Parameter]
    /// The kernel file's defaults for these parameters.
    public var defaults: TuningTable.Defines
    /// Names of the parameters searched on a full grid first.
    public var grid: [String]
    /// Random candidates after the grid.
    public var randomCandidates: Int
    public var seed: UInt64
    /// Relative gain below which the defaults are kept.
    public var minimumGain: Double
    /// Candidates that cannot work on the device (e.g. a work-group too large); skipped without running.
    public var isValid: (TuningTable.Defines) -> Bool

    public init(parameters: [Parameter], defaults: TuningTable.Defines, grid: [String], randomCandidates: Int = 12, seed: UInt64 = 1,
                minimumGain: Double = 0.02, isValid: @escaping (TuningTable.Defines) -> Bool = { _ in true }) {
        self.parameters = parameters
        self.defaults = defaults
        self.grid = grid
        self.randomCandidates = randomCandidates
        self.seed = seed
        self.minimumGain = minimumGain
        self.isValid = isValid
    }

    /// A search over the tunables of `family` read by `group`'s kernels: values and grid from the
    /// descriptor, starting from `current` (the values in force now: the table's winners or the
    /// defaults), with random candidates only when some tunable is off the grid.
    public init(family: KernelFamilyDescriptor, group: String, current: TuningTable.Defines, randomCandidates: Int, seed: UInt64 = 1,
                isValid: @escaping (TuningTable.Defines) -> Bool = { _ in true }) {
        let tunables = family.tunables(group: group).filter { !$0.values.isEmpty }
        self.init(parameters: tunables.map { Parameter($0.name, $0.values) },
                  defaults: Dictionary(uniqueKeysWithValues: tunables.map { ($0.name, current[$0.name] ?? $0.defaultValue) }),
                  grid: tunables.filter(\.grid).map(\.name),
                  randomCandidates: tunables.allSatisfy(\.grid) ? 0 : randomCandidates, seed: seed, isValid: isValid)
    }

    /// Runs the search.
    /// - Parameters:
    ///   - evaluate: builds the kernels with the defines, checks their output and returns the median
    ///     milliseconds; throws `Refusal` (or any error) to refuse the candidate.
    ///   - log: called after each trial.
    /// - Throws: `Refusal` when the defaults themselves are refused (nothing to compare with).
    public func run(evaluate: (TuningTable.Defines) throws -> Double, log: (Trial) -> Void = { _ in }) throws -> Outcome {
        var trials: [Trial] = []
        var seen = Set<String>()
        func key(_ d: TuningTable.Defines) -> String { d.keys.sorted().map { "\($0)=\(d[$0]!)" }.joined(separator: ",") }
        func attempt(_ candidate: TuningTable.Defines) -> Double? {
            guard seen.insert(key(candidate)).inserted, isValid(candidate) else { return nil }
            var trial = Trial(defines: candidate, milliseconds: nil, refusal: nil)
            do {
                let ms = try evaluate(candidate)
                if ms.isFinite && ms > 0 { trial.milliseconds = ms } else { trial.refusal = "time \(ms) is not a positive number" }
            } catch {
                trial.refusal = String(describing: error)
            }
            trials.append(trial)
            log(trial)
            return trial.milliseconds
        }
        guard let defaultTime = attempt(defaults) else {
            throw Refusal("the defaults \(key(defaults)) were refused: \(trials.last?.refusal ?? "invalid on this device")")
        }
        var best = defaults, bestTime = defaultTime
        // Grid over the chosen parameters, the others at their defaults.
        var combos: [TuningTable.Defines] = [defaults]
        for name in grid {
            guard let p = parameters.first(where: { $0.name == name }) else { continue }
            combos = combos.flatMap { c in p.values.map { v in c.merging([name: v]) { $1 } } }
        }
        for candidate in combos {
            if let t = attempt(candidate), t < bestTime { (best, bestTime) = (candidate, t) }
        }
        // Random candidates: each parameter drawn from its values.
        var generator = SplitMix64(seed: seed)
        func next() -> UInt64 { generator.next() }
        var drawn = 0, attempts = 0
        while drawn < randomCandidates && attempts < randomCandidates * 20 {
            attempts += 1
            var candidate = defaults
            for p in parameters where !p.values.isEmpty { candidate[p.name] = p.values[Int(next() % UInt64(p.values.count))] }
            guard !seen.contains(key(candidate)), isValid(candidate) else { continue }
            drawn += 1
            if let t = attempt(candidate), t < bestTime { (best, bestTime) = (candidate, t) }
        }
        // The defaults ran first, on a cold cache and queue: time them and the winner once more and
        // compare the better of each pair.
        var defaultBest = defaultTime
        if best != defaults {
            if let again = try? evaluate(defaults), again.isFinite, again > 0 { defaultBest = min(defaultBest, again) }
            if let again = try? evaluate(best), again.isFinite, again > 0 { bestTime = min(bestTime, again) }
        }
        let improved = bestTime < defaultBest * (1 - minimumGain)
        return Outcome(best: improved ? best : defaults, bestMilliseconds: improved ? bestTime : defaultBest,
                       defaultMilliseconds: defaultBest, trials: trials, improved: improved)
    }
}
