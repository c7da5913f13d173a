import Foundation
import Prism
import PrismCL

/// A game that is the weighted average of one game per background row: v(S) = Σ_b w_b v_b(S), where
/// v_b(S) is the model on the instance where S is present and on background row b elsewhere (shap's
/// interventional game with a background masker). `DeviceGame` and `HostGame` are such games.
public protocol BackgroundRowsGame: CoalitionGame {
    /// The rows' weights w_b, non-negative and summing to 1.
    var rowWeights: [Double] { get }
    /// Background rows N.
    var backgroundCount: Int { get }
    /// v_b(S) of many rows' coalitions in one batch: coalition r (of `coalitions` [count, features])
    /// on background row `rows[r]`, [count, outputCount].
    /// - Throws: `ExplainError` when the counts disagree or a row is outside the background; the model's errors.
    func rowValues(coalitions: [UInt8], rows: [Int32]) throws -> [Double]
}

extension BackgroundRowsGame {
    /// The game v_b of background row `row` alone, through `rowValues`: a coalition costs this game's
    /// rows per coalition divided by N (one model row per instance).
    /// - Throws: `ExplainError` for a row outside the background.
    public func rowGame(_ row: Int) throws -> CoalitionGame {
        guard row >= 0 && row < backgroundCount else { throw ExplainError("explain: background row \(row) is outside 0..<\(backgroundCount)") }
        return OneRowGame(self, row: Int32(row))
    }
}

/// v_b(S) of one background row b of a `BackgroundRowsGame`.
final class OneRowGame: CoalitionGame {
    let game: BackgroundRowsGame
    let row: Int32
    var featureCount: Int { game.featureCount }
    var outputCount: Int { game.outputCount }
    var rowsPerCoalition: Int { game.rowsPerCoalition / max(game.backgroundCount, 1) }

    init(_ game: BackgroundRowsGame, row: Int32) { (self.game, self.row) = (game, row) }

    func values(coalitions: [UInt8], count: Int) throws -> [Double] {
        try game.rowValues(coalitions: coalitions, rows: [Int32](repeating: row, count: count))
    }
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
/// background images; RESULTS.md) the error at equal evaluations falls about fourfold (Kernel SHAP at
/// 512 coalitions 11.4% → 3.1%, Leverage SHAP 10.4% → 2.4%).
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
/// for the average. Rows' coalitions are evaluated together, in batches of up to `coalitionsPerBatch`
/// across rows (each estimator runs once to record what it asks for and once on the values), so a
/// small model is not run once per row. The explanation records the base estimator's settings of the first row, with
/// `stratified` and `strata` (the rows run) added and the run's seed.
public struct StratifiedShap: ShapleyEstimator {
    /// The estimator run on every row's game.
    public var base: any SeededShapleyEstimator
    public var method: String { base.method }

    public init(_ base: any SeededShapleyEstimator) { self.base = base }

    /// Background rows' coalitions evaluated together in one batch, at most (they are recorded first).
    public var coalitionsPerBatch = 1 << 18

    public func explain(_ game: CoalitionGame) throws -> Explanation {
        guard let rows = game as? BackgroundRowsGame else {
            throw ExplainError("\(method): stratifying by background row needs a game over background rows (a device or host game), not a \(type(of: game))")
        }
        if let kernel = base as? KernelShap, kernel.numFeatures != nil {
            throw ExplainError("\(method): feature selection (num features) cannot be stratified by background row: selecting per row is not selecting for the average")
        }
        let start = ContinuousClock.now
        let weights = rows.rowWeights, m = game.featureCount, o = game.outputCount
        guard weights.contains(where: { $0 > 0 }) else { throw ExplainError("\(method): the background rows' weights are all zero") }
        var values = [Double](repeating: 0, count: m * o), variance: [Double]? = values
        var baseValues = [Double](repeating: 0, count: o), outputs = baseValues
        var evaluations = 0, strata = 0
        var settings: [String: SettingValue] = [:]
        func add(_ part: Explanation, weight w: Double, row: Int) throws {
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
            strata += 1
        }

        // Rows are run in groups: each row's estimator first runs on a game that records the coalitions
        // it asks for (answering 0), the group's coalitions are evaluated in one batch, and each
        // estimator runs again on a game that replays the values. Its draws come from its seed, not
        // from the values, so it asks for the same coalitions; one that decides on the values (a
        // stopping rule) and asks for others is answered by its row's game from there on.
        var seeds = SplitMix64(seed: base.seed ^ 0x57A7_1F1E_D5EE_D000)
        var pending: [(row: Int, weight: Double, estimator: any SeededShapleyEstimator)] = []
        for (row, w) in weights.enumerated() {
            // Every row's seed is drawn, so a row's draws do not depend on which rows have weight 0.
            let seed = seeds.next()
            guard w > 0 else { continue }
            var estimator = base
            estimator.seed = seed
            if m == 0 {
                // No coalitions to batch: only v_b(∅) and v_b(all), asked of the row directly.
                try add(try estimator.explain(try rows.rowGame(row)), weight: w, row: row)
            } else {
                pending.append((row, w, estimator))
            }
        }
        // The estimators' own work (drawing, fitting) runs for several rows at once on the host's
        // threads; a replayed estimator that asks its row's game for more takes turns on the device.
        let device = NSLock()
        var next = 0
        while next < pending.count {
            let chunk = Array(pending[next..<min(next + 64, pending.count)])
            let recorded = try onEveryDevice(chunk.count) { i -> RecordingGame in
                let recorder = RecordingGame(like: try rows.rowGame(chunk[i].row))
                _ = try chunk[i].estimator.explain(recorder)
                return recorder
            }
            var first = 0
            while first < chunk.count {
                var last = first + 1, total = recorded[first].count
                while last < chunk.count && total + recorded[last].count <= coalitionsPerBatch {
                    total += recorded[last].count
                    last += 1
                }
                var masks: [UInt8] = [], which: [Int32] = []
                masks.reserveCapacity(total * m)
                which.reserveCapacity(total)
                for i in first..<last {
                    masks += recorded[i].masks
                    which += [Int32](repeating: Int32(chunk[i].row), count: recorded[i].count)
                }
                let v = which.isEmpty ? [] : try rows.rowValues(coalitions: masks, rows: which)
                let offsets = (first..<last).reduce(into: [0]) { $0.append($0.last! + recorded[$1].count) }
                let parts = try onEveryDevice(last - first) { j -> Explanation in
                    let i = first + j
                    let replay = ReplayGame(recorded: recorded[i].masks, values: Array(v[(offsets[j] * o)..<(offsets[j + 1] * o)]),
                                            row: LockedGame(try rows.rowGame(chunk[i].row), lock: device))
                    return try chunk[i].estimator.explain(replay)
                }
                for (j, part) in parts.enumerated() { try add(part, weight: chunk[first + j].weight, row: chunk[first + j].row) }
                first = last
            }
            next += chunk.count
        }
        let elapsed = ContinuousClock.now - start
        settings["seed"] = .unsigned(base.seed)
        settings["stratified"] = .string("background rows")
        settings["strata"] = .int(strata)
        return try Explanation(method: method, instanceCount: 1, featureCount: m, outputCount: o, values: values, baseValues: baseValues,
                               outputs: outputs, standardErrors: variance.map { $0.map { $0.squareRoot() } }, modelEvaluations: evaluations,
                               seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18, settings: settings)
    }
}

/// Answers every coalition with 0 and keeps what was asked for, in order.
final class RecordingGame: CoalitionGame {
    let featureCount: Int, outputCount: Int, rowsPerCoalition: Int
    private(set) var masks: [UInt8] = []
    /// Coalitions recorded.
    var count: Int { masks.count / max(featureCount, 1) }

    init(like game: CoalitionGame) {
        (featureCount, outputCount, rowsPerCoalition) = (game.featureCount, game.outputCount, game.rowsPerCoalition)
    }

    func values(coalitions: [UInt8], count: Int) throws -> [Double] {
        masks += coalitions
        return [Double](repeating: 0, count: count * outputCount)
    }
}

/// Replays the values of recorded coalitions while the same coalitions are asked for, in order; from
/// the first other request on, asks `row` (the row's own game).
final class ReplayGame: CoalitionGame {
    let recorded: [UInt8], recordedValues: [Double], row: CoalitionGame
    private var next = 0, diverged = false
    var featureCount: Int { row.featureCount }
    var outputCount: Int { row.outputCount }
    var rowsPerCoalition: Int { row.rowsPerCoalition }

    init(recorded: [UInt8], values: [Double], row: CoalitionGame) { (self.recorded, recordedValues, self.row) = (recorded, values, row) }

    func values(coalitions: [UInt8], count: Int) throws -> [Double] {
        let m = featureCount, o = outputCount
        if !diverged, (next + count) * m <= recorded.count, recorded[(next * m)..<((next + count) * m)].elementsEqual(coalitions) {
            defer { next += count }
            return Array(recordedValues[(next * o)..<((next + count) * o)])
        }
        diverged = true
        return try row.values(coalitions: coalitions, count: count)
    }
}

/// Another game's values, one caller at a time.
final class LockedGame: CoalitionGame {
    let game: CoalitionGame, lock: NSLock
    var featureCount: Int { game.featureCount }
    var outputCount: Int { game.outputCount }
    var rowsPerCoalition: Int { game.rowsPerCoalition }

    init(_ game: CoalitionGame, lock: NSLock) { (self.game, self.lock) = (game, lock) }

    func values(coalitions: [UInt8], count: Int) throws -> [Double] {
        lock.lock()
        defer { lock.unlock() }
        return try game.values(coalitions: coalitions, count: count)
    }
}
