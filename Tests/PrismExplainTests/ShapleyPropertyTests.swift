import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

/// Properties every Shapley estimator shares: closed forms on linear models, additivity, agreement
/// with exact values, chunk-size invariance, seeding, host and device agreement.
@Suite struct ShapleyPropertyTests {
    /// A linear model on 5×6 images, 9 grid features, 3 outputs, 4 weighted background rows:
    /// φ(g, o) = Σ_{e ∈ g} W[o, e] (x_e − E_w[b_e]) exactly, for every estimator.
    @Test(arguments: ShapleyMethod.allCases)
    func linearModelClosedForm(method: ShapleyMethod) throws {
        let engine = try testEngine()
        let model = LinearImageModel(c: 1, h: 5, w: 6, outputs: 3, weight: seededFloats(3 * 30, seed: 21), bias: [0.5, -1, 2])
        let groups = try FeatureGroups.grid(channels: 1, height: 5, width: 6, cell: 2)
        let x = seededFloats(30, seed: 22), background = seededFloats(4 * 30, seed: 23)
        let weights: [Float] = [1, 2, 0.5, 3]
        let game = try DeviceGame(engine: engine, instance: x, inputShape: [1, 5, 6], background: background,
                                  backgroundWeights: weights, groups: groups, outputCount: 3, model: model.forward(engine))
        let total = weights.reduce(0, +)
        var expected = [Double](repeating: 0, count: 9 * 3)
        for e in 0..<30 {
            let meanB = (0..<4).reduce(0.0) { $0 + Double(weights[$1] / total) * Double(background[$1 * 30 + e]) }
            for o in 0..<3 { expected[Int(groups.elementFeature[e]) * 3 + o] += Double(model.weight[o * 30 + e]) * (Double(x[e]) - meanB) }
        }
        let budget: Int? = method == .kernel ? 100 : method == .exact ? nil : 200  // Kernel: sampled (2^9 − 2 = 510 coalitions)
        let e = try method.estimator(budget: budget, seed: 5).explain(game)
        #expect(e.method == method.rawValue)
        expectClose(e.values, expected, atol: 2e-5, rtol: 1e-4, method.rawValue)
        if method == .kernel { #expect((e.settings["sampled"]?.intValue ?? 0) > 0, "the Kernel SHAP run should sample") }
    }

    /// A linear game in which only 3 of 9 features matter: Kernel SHAP with numFeatures(3) (sampled and
    /// enumerated budgets) keeps exactly those, with their closed-form values, and 0 elsewhere;
    /// numFeatures(k ≥ M) is the unselected fit.
    @Test func numFeaturesKeepsTheFeaturesThatMatter() throws {
        let engine = try testEngine()
        var weight = [Float](repeating: 0, count: 2 * 30)
        let groups = try FeatureGroups.grid(channels: 1, height: 5, width: 6, cell: 2)
        let live: Set<Int32> = [1, 4, 8]
        let raw = seededFloats(2 * 30, seed: 31)
        for o in 0..<2 { for e in 0..<30 where live.contains(groups.elementFeature[e]) { weight[o * 30 + e] = raw[o * 30 + e] } }
        let model = LinearImageModel(c: 1, h: 5, w: 6, outputs: 2, weight: weight, bias: [0.5, -1])
        let x = seededFloats(30, seed: 32), background = seededFloats(3 * 30, seed: 33)
        let game = try DeviceGame(engine: engine, instance: x, inputShape: [1, 5, 6], background: background, groups: groups,
                                  outputCount: 2, model: model.forward(engine))
        var expected = [Double](repeating: 0, count: 9 * 2)
        for e in 0..<30 {
            let meanB = (0..<3).reduce(0.0) { $0 + Double(background[$1 * 30 + e]) / 3 }
            for o in 0..<2 { expected[Int(groups.elementFeature[e]) * 2 + o] += Double(weight[o * 30 + e]) * (Double(x[e]) - meanB) }
        }
        for budget in [60, 510] {
            let e = try KernelShap(budget: budget, seed: 3, numFeatures: 3).explain(game)
            expectClose(e.values, expected, atol: 2e-5, rtol: 1e-4, "numFeatures(3), budget \(budget)")
            for o in 0..<2 {
                let kept = Set((0..<9).filter { e.value(instance: 0, feature: $0, output: o) != 0 }.map(Int32.init))
                #expect(kept == live, "output \(o) kept \(kept.sorted())")
            }
        }
        let all = try KernelShap(budget: 60, seed: 3, numFeatures: 9).explain(game)
        #expect(all.values == (try KernelShap(budget: 60, seed: 3).explain(game)).values)
        #expect(throws: ExplainError.self) { try KernelShap(numFeatures: 0).explain(game) }
    }

    /// Σφ + base = f(x) to 1e-4 relative on the MLP (sampled budgets for Kernel and Permutation).
    @Test(arguments: [ShapleyMethod.exact, .kernel, .leverage, .permutation])
    func additivity(method: ShapleyMethod) throws {
        let mlp = try SmallMLP(engine: try testEngine())
        let e = try method.estimator(budget: 60, seed: 3).explain(try mlp.deviceGame())
        for k in 0..<SmallMLP.classes {
            let fx = e.outputs![k]
            let gap = e.additivityGap(instance: 0, output: k)!
            #expect(abs(gap) <= 1e-4 * max(abs(fx), abs(e.baseValues![k]), 1e-3), "\(method.rawValue) output \(k): gap \(gap), f(x) \(fx)")
        }
    }

    /// On the M = 8 MLP, Kernel SHAP with every coalition (budget 2^8 − 2) is exact Shapley.
    @Test func kernelShapWithEveryCoalitionIsExact() throws {
        let mlp = try SmallMLP(engine: try testEngine())
        let game = try mlp.deviceGame()
        let exact = try ExactShapley().explain(game)
        let kernel = try KernelShap(budget: 254, seed: 1).explain(game)
        #expect(kernel.settings["enumerated"] == 254)
        #expect(kernel.settings["sampled"] == 0)
        #expect(kernel.standardErrors == [Double](repeating: 0, count: 8 * 3))
        expectClose(kernel.values, exact.values, atol: 1e-9, rtol: 1e-9, "kernel vs exact")
        // A larger budget is capped at every coalition.
        let capped = try KernelShap(budget: 10_000, seed: 1).explain(game)
        #expect(capped.settings["budget"] == 254)
        #expect(capped.modelEvaluations == 256 * SmallMLP.backgroundRows)
    }

    /// Sampled estimates approach the exact values as the budget grows (mean RMS error over 16 seeds).
    @Test(arguments: [ShapleyMethod.kernel, .leverage, .permutation, .sampling])
    func errorFallsWithBudget(method: ShapleyMethod) throws {
        let mlp = try SmallMLP(engine: try testEngine())
        let game = try CachedGame(try mlp.deviceGame())
        let exact = try ExactShapley().explain(game).values
        let budgets: [Int] = switch method {
        case .kernel, .leverage: [16, 48, 160]
        case .permutation: [30, 114, 450]
        default: [34, 130, 514]
        }
        var errors: [Double] = []
        for budget in budgets {
            var sum = 0.0
            for seed in 0..<16 {
                let e = try method.estimator(budget: budget, seed: UInt64(seed)).explain(game)
                sum += rms(e.values, exact)
            }
            errors.append(sum / 16)
        }
        print("\(method.rawValue): budgets \(budgets) mean RMS error vs exact \(errors)")
        #expect(errors[1] < 0.8 * errors[0] && errors[2] < 0.8 * errors[1], "\(method.rawValue): errors \(errors)")
    }

    /// |φ̂ − φ| ≤ 1.96·SE for roughly 95% of the values over many seeds.
    @Test(arguments: [ShapleyMethod.kernel, .leverage, .permutation, .sampling])
    func standardErrorsCoverTheError(method: ShapleyMethod) throws {
        let mlp = try SmallMLP(engine: try testEngine())
        let game = try CachedGame(try mlp.deviceGame())
        let exact = try ExactShapley().explain(game).values
        let budget = method == .kernel || method == .leverage ? 120 : method == .permutation ? 226 : 322
        var covered = 0, total = 0
        for seed in 0..<100 {
            let e = try method.estimator(budget: budget, seed: UInt64(1000 + seed)).explain(game)
            let se = try #require(e.standardErrors)
            for i in exact.indices {
                total += 1
                if abs(e.values[i] - exact[i]) <= 1.96 * se[i] { covered += 1 }
            }
        }
        let rate = Double(covered) / Double(total)
        print("\(method.rawValue): budget \(budget) coverage of 1.96·SE \(rate)")
        #expect(rate >= 0.85 && rate <= 0.995, "\(method.rawValue): coverage \(rate)")
    }

    /// The same seed gives the same values at any chunk size; another seed gives other values.
    @Test(arguments: [ShapleyMethod.exact, .kernel, .leverage, .permutation, .sampling])
    func chunkSizeInvarianceAndSeeds(method: ShapleyMethod) throws {
        let mlp = try SmallMLP(engine: try testEngine())
        let estimator = method.estimator(budget: 60, seed: 9)
        let reference = try estimator.explain(try mlp.deviceGame(rowsPerChunk: 100_000))
        for rows in [1, 7] {
            let e = try estimator.explain(try mlp.deviceGame(rowsPerChunk: rows))
            expectClose(e.values, reference.values, atol: 1e-6, rtol: 1e-5, "\(method.rawValue) rows per chunk \(rows)")
            #expect(e.modelEvaluations == reference.modelEvaluations)
        }
        let game = try CachedGame(try mlp.deviceGame())
        #expect(try estimator.explain(game).values == estimator.explain(game).values)
        if method != .exact {
            #expect(try method.estimator(budget: 60, seed: 10).explain(game).values != estimator.explain(game).values)
        }
    }

    /// A plain-Swift copy of the MLP through `HostGame` gives the device path's values.
    @Test(arguments: [ShapleyMethod.exact, .kernel, .permutation])
    func hostClosureAgreesWithDevice(method: ShapleyMethod) throws {
        let mlp = try SmallMLP(engine: try testEngine())
        let host = try HostGame(instance: mlp.instance, background: mlp.background, groups: .elements(SmallMLP.features),
                                outputCount: SmallMLP.classes, rowsPerChunk: 37, model: try mlp.hostForward())
        let estimator = method.estimator(budget: 100, seed: 4)
        let h = try estimator.explain(host)
        let d = try estimator.explain(try mlp.deviceGame())
        expectClose(h.values, d.values, atol: 1e-4, rtol: 1e-4, "\(method.rawValue) host vs device")
        expectClose(h.baseValues!, d.baseValues!, atol: 1e-5, rtol: 1e-5, "base")
        expectClose(h.outputs!, d.outputs!, atol: 1e-5, rtol: 1e-5, "f(x)")
        #expect(h.modelEvaluations == d.modelEvaluations)
        #expect(host.modelEvaluations == h.modelEvaluations)
    }
}
