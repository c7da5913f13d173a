import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

/// A sum of seeded unanimity games, v(S) = Σ_T c_T [T ⊆ S], over every feature alone and seeded sets T
/// of 2–5 features, with two outputs. Its Shapley values are the closed form φ_i = Σ_{T ∋ i} c_T / |T|
/// (Harsanyi dividends shared equally). Terms of three or more features matter: with paired sampling a
/// game of single features and pairs is fitted exactly by any sample, and no estimator error is left
/// to test.
struct UnanimityGame: CoalitionGame {
    let featureCount: Int
    let outputCount = 2
    /// The sets T and their dividends c_T [outputs].
    let terms: [(set: [Int], dividend: [Double])]

    init(features m: Int, seed: UInt64) {
        featureCount = m
        var rng = SeededRandom(seed: seed)
        var terms: [(set: [Int], dividend: [Double])] = (0..<m).map { ([$0], [rng.uniform(-2, 2), rng.uniform(-2, 2)]) }
        for size in 2...max(2, min(5, m)) where size <= m {
            for _ in 0..<(size == 5 ? 1 : m / (size - 1)) {
                var order = Array(0..<m)
                for i in 0..<size { order.swapAt(i, i + Int(rng.next() % UInt64(m - i))) }
                terms.append((Array(order[0..<size]), [rng.uniform(-3, 3), rng.uniform(-3, 3)]))
            }
        }
        self.terms = terms
    }

    func values(coalitions: [UInt8], count: Int) throws -> [Double] {
        var out = [Double](repeating: 0, count: count * outputCount)
        for r in 0..<count {
            for term in terms where term.set.allSatisfy({ coalitions[r * featureCount + $0] != 0 }) {
                for k in 0..<outputCount { out[r * outputCount + k] += term.dividend[k] }
            }
        }
        return out
    }

    /// φ [features, outputs] by the closed form.
    var shapleyValues: [Double] {
        var phi = [Double](repeating: 0, count: featureCount * outputCount)
        for term in terms {
            for i in term.set {
                for k in 0..<outputCount { phi[i * outputCount + k] += term.dividend[k] / Double(term.set.count) }
            }
        }
        return phi
    }
}

/// A game that passes another's values through and counts the coalitions asked for by size.
final class SizeCountingGame: CoalitionGame {
    let game: CoalitionGame
    var featureCount: Int { game.featureCount }
    var outputCount: Int { game.outputCount }
    /// Rows asked for, by coalition size 0…M.
    private(set) var sizes: [Int]

    init(_ game: CoalitionGame) {
        self.game = game
        sizes = [Int](repeating: 0, count: game.featureCount + 1)
    }

    func values(coalitions: [UInt8], count: Int) throws -> [Double] {
        let m = featureCount
        for r in 0..<count { sizes[(0..<m).reduce(0) { $0 + Int(coalitions[r * m + $1]) }] += 1 }
        return try game.values(coalitions: coalitions, count: count)
    }
}

/// Leverage SHAP (Musco & Witter 2025) against closed-form Shapley values of unanimity games.
@Suite struct LeverageShapTests {
    static let game = UnanimityGame(features: 10, seed: 41)

    /// (a) With a budget of every coalition (2^10 − 2) the values are exact: the closed form to 1e-6,
    /// Exact Shapley's to 1e-9, zero standard errors; a larger budget is capped there.
    @Test func everyCoalitionGivesExactValues() throws {
        let exact = Self.game.shapleyValues
        expectClose(try ExactShapley().explain(Self.game).values, exact, atol: 1e-9, rtol: 0, "exact-shap vs closed form")
        for budget in [1022, 5000] {
            let e = try LeverageShap(budget: budget, seed: 3).explain(Self.game)
            expectClose(e.values, exact, atol: 1e-6, rtol: 0, "leverage-shap budget \(budget)")
            #expect(e.settings["budget"] == 1022 && e.settings["enumerated"] == 1022 && e.settings["sampled"] == 0)
            #expect(e.modelEvaluations == 1024)
            #expect(e.standardErrors == [Double](repeating: 0, count: 20))
        }
    }

    /// (b) At a small budget single runs are off, but the mean of 30 seeded runs is much closer to the
    /// exact values and within a few standard errors of the mean of each; every run adds up exactly.
    @Test func meanOfSeededRunsConverges() throws {
        let exact = Self.game.shapleyValues, runs = 30
        var moments = [Double](repeating: 0, count: exact.count), squares = moments
        var singleError = 0.0
        for seed in 0..<runs {
            let e = try LeverageShap(budget: 96, seed: UInt64(100 + seed)).explain(Self.game)
            #expect((e.settings["sampled"]?.intValue ?? 0) > 0)
            for k in 0..<2 {
                let gap = try #require(e.additivityGap(instance: 0, output: k))
                #expect(abs(gap) <= 1e-9, "seed \(seed) output \(k): Σφ + base − f(x) = \(gap)")
            }
            singleError += norm(e.values, exact) / Double(runs)
            for i in exact.indices {
                moments[i] += e.values[i] / Double(runs)
                squares[i] += e.values[i] * e.values[i] / Double(runs)
            }
        }
        let meanError = norm(moments, exact)
        print("leverage-shap budget 96: mean single-run error \(singleError), error of the mean of \(runs) runs \(meanError)")
        #expect(meanError <= 0.4 * singleError, "error of the mean \(meanError), single runs \(singleError)")
        for i in exact.indices {
            let sd = (max(0, squares[i] - moments[i] * moments[i]) * Double(runs) / Double(runs - 1)).squareRoot()
            let errorOfMean = sd / Double(runs).squareRoot()
            #expect(abs(moments[i] - exact[i]) <= 4 * errorOfMean, "value \(i): mean \(moments[i]), exact \(exact[i]), SE of the mean \(errorOfMean)")
        }
    }

    /// (c) The sizes of the coalitions asked for follow the leverage scores ℓ_z = 1 / C(M, |z|): at
    /// budget 40 for M = 10, c = 40/9 < 10, so a pair of size pair k (sizes k and 10 − k) is kept with
    /// probability c / C(10, k): c pairs expected for k = 1…4 and c/2 for k = 5 (its C(10, 5)/2 pairs),
    /// the same coalitions per size. The counts over 400 seeds pass a chi-square test (5 degrees of
    /// freedom, Binomial variances) at the 0.999 quantile, 20.515, and fail it against Kernel SHAP's
    /// size distribution.
    @Test func coalitionSizesFollowTheLeverageScores() throws {
        let m = 10, runs = 400, c = 40.0 / 9
        var pairs = [Double](repeating: 0, count: 6)
        for seed in 0..<runs {
            let game = SizeCountingGame(Self.game)
            _ = try LeverageShap(budget: 40, seed: UInt64(seed)).explain(game)
            #expect(game.sizes[0] == 1 && game.sizes[m] == 1)
            for k in 1...5 {
                if k < 5 { #expect(game.sizes[k] == game.sizes[m - k], "size \(k) and its complement \(m - k)") }
                pairs[k] += Double(k == 5 ? game.sizes[k] / 2 : game.sizes[k])
            }
        }
        var chiSquare = 0.0, kernelChiSquare = 0.0
        let total = pairs.reduce(0, +)
        // Kernel SHAP's share of pairs per size pair: ∝ (M − 1) / (k (M − k)), doubled for k ≠ M/2.
        let kernelShare = (1...5).map { k in Double(k == 5 ? 1 : 2) / Double(k * (m - k)) }
        for k in 1...5 {
            let n = k == 5 ? 126.0 : binomial(m, k), p = c / binomial(m, k)
            let expected = Double(runs) * n * p, variance = Double(runs) * n * p * (1 - p)
            chiSquare += (pairs[k] - expected) * (pairs[k] - expected) / variance
            let kernelExpected = total * kernelShare[k - 1] / kernelShare.reduce(0, +)
            kernelChiSquare += (pairs[k] - kernelExpected) * (pairs[k] - kernelExpected) / kernelExpected
        }
        print("leverage-shap size pairs over \(runs) runs: \(pairs[1...]), chi-square \(chiSquare) (Kernel SHAP's distribution: \(kernelChiSquare))")
        #expect(chiSquare <= 20.515, "chi-square \(chiSquare), counts \(pairs)")
        #expect(kernelChiSquare > 20.515, "Kernel SHAP's distribution should be rejected: \(kernelChiSquare)")

        // Budget 200: c = 180/7 ≥ C(10, 1), so sizes 1 and 9 are kept whole in every run.
        for seed in 0..<20 {
            let game = SizeCountingGame(Self.game)
            let e = try LeverageShap(budget: 200, seed: UInt64(seed)).explain(game)
            #expect(game.sizes[1] == 10 && game.sizes[9] == 10)
            #expect((e.settings["enumerated"]?.intValue ?? 0) == 20)
        }
    }

    /// (d) |φ̂ − φ| ≤ 1.96·SE for roughly 95% of the values (10 features × 2 outputs × 100 seeds).
    @Test func standardErrorsCoverTheExactValues() throws {
        let exact = Self.game.shapleyValues
        var covered = 0, total = 0
        for seed in 0..<100 {
            let e = try LeverageShap(budget: 128, seed: UInt64(500 + seed)).explain(Self.game)
            let se = try #require(e.standardErrors)
            for i in exact.indices {
                total += 1
                if abs(e.values[i] - exact[i]) <= 1.96 * se[i] { covered += 1 }
            }
        }
        let rate = Double(covered) / Double(total)
        print("leverage-shap budget 128: coverage of 1.96·SE \(rate) over \(total) values")
        #expect(rate >= 0.90 && rate <= 0.98, "coverage \(rate)")
    }

    /// The stopping rule ends the rounds early once max SE < threshold × range, says so, and the
    /// estimate is within a few thresholds of the exact values.
    @Test func stoppingRule() throws {
        let game = SizeCountingGame(Self.game), rule = StoppingRule(threshold: 0.05)
        let e = try LeverageShap(budget: 1000, seed: 2, stopping: rule, drawsPerRound: 8).explain(game)
        #expect(e.settings["stopped_early"] == true)
        let asked = game.sizes.reduce(0, +)
        #expect(asked < 1000 && e.modelEvaluations == asked)
        let se = try #require(e.standardErrors)
        #expect(rule.isMet(values: e.values, standardErrors: se, featureCount: 10, outputCount: 2))
        let exact = Self.game.shapleyValues
        for k in 0..<2 {
            let phi = (0..<10).map { exact[$0 * 2 + k] }
            let worst = (0..<10).map { abs(e.values[$0 * 2 + k] - exact[$0 * 2 + k]) }.max()!
            #expect(worst <= 4 * 0.05 * (phi.max()! - phi.min()!), "output \(k): error \(worst)")
        }
    }

    /// M = 40 (about 10^12 coalitions): sizes 1 and 39 are kept whole at budget 2000 (c = 1920/37 > 40)
    /// and the rest drawn by rejection among their C(40, k) pairs; the values add up, and the error
    /// against the closed form falls from budget 200 to 2000 (mean of 3 seeds).
    @Test func manyFeatures() throws {
        let game = UnanimityGame(features: 40, seed: 9), exact = game.shapleyValues
        var errors: [Double] = []
        for budget in [200, 2000] {
            var sum = 0.0
            for seed in 0..<3 {
                let counting = SizeCountingGame(game)
                let e = try LeverageShap(budget: budget, seed: UInt64(seed)).explain(counting)
                for k in 0..<2 { #expect(abs(try #require(e.additivityGap(instance: 0, output: k))) <= 1e-9) }
                if budget == 2000 { #expect(counting.sizes[1] == 40 && counting.sizes[39] == 40 && e.settings["enumerated"] == 80) }
                sum += norm(e.values, exact) / 3
            }
            errors.append(sum)
        }
        #expect(errors[1] < 0.6 * errors[0], "errors \(errors)")
    }

    @Test func settingsAreChecked() throws {
        #expect(throws: ExplainError("leverage-shap: a budget of 9 coalitions is below the minimum of 10 for 10 features")) {
            try LeverageShap(budget: 9).explain(Self.game)
        }
        #expect(throws: ExplainError("leverage-shap: draws per round must be positive, got 0")) {
            try LeverageShap(drawsPerRound: 0).explain(Self.game)
        }
        // Two features: one pair ({0}, {1}); a budget of 2 keeps it, exact values.
        let two = UnanimityGame(features: 2, seed: 5)
        expectClose(try LeverageShap(budget: 2).explain(two).values, two.shapleyValues, atol: 1e-12, rtol: 0, "two features")
    }

    /// Relative error ‖φ̂ − φ‖ / ‖φ‖ of Leverage SHAP and Kernel SHAP at equal budgets on a 14-feature
    /// game, mean over 10 seeds, printed; each method's error falls from the smallest budget to the largest.
    @Test func errorAgainstKernelShapAtEqualBudgets() throws {
        let game = UnanimityGame(features: 14, seed: 77), exact = game.shapleyValues
        let budgets = [128, 256, 512]
        var errors: [String: [Double]] = [:]
        for budget in budgets {
            for name in ["leverage-shap", "kernel-shap"] {
                var sum = 0.0
                for seed in 0..<10 {
                    let estimator: ShapleyEstimator = name == "kernel-shap" ? KernelShap(budget: budget, seed: UInt64(seed))
                                                                            : LeverageShap(budget: budget, seed: UInt64(seed))
                    sum += norm(try estimator.explain(game).values, exact) / norm(exact, [Double](repeating: 0, count: exact.count))
                }
                errors[name, default: []].append(sum / 10)
            }
        }
        for (name, e) in errors.sorted(by: { $0.key < $1.key }) {
            print("M = 14, budgets \(budgets): \(name) mean relative error \(e.map { String(format: "%.4f", $0) })")
            #expect(e[2] < e[0], "\(name): \(e)")
        }
    }
}

/// ‖a − b‖₂.
func norm(_ a: [Double], _ b: [Double]) -> Double {
    zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
}

/// C(n, k) in Double.
func binomial(_ n: Int, _ k: Int) -> Double {
    guard k >= 0, k <= n else { return 0 }
    return (0..<k).reduce(1.0) { $0 * Double(n - $1) / Double($1 + 1) }.rounded()
}
