import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

/// Sampling estimators stratified by background row (`StratifiedShap`) against exact Shapley values of
/// the averaged game.
@Suite struct StratifiedShapTests {
    /// The seeded MLP (8 features, 20 background rows) as a host game with unequal row weights, one 0.
    static func hostGame(_ mlp: SmallMLP, weights: [Float]? = nil) throws -> HostGame {
        try HostGame(instance: mlp.instance, background: mlp.background, backgroundWeights: weights, groups: .elements(SmallMLP.features),
                     outputCount: SmallMLP.classes, rowsPerChunk: 29, model: try mlp.hostForward())
    }
    static let weights: [Float] = (0..<SmallMLP.backgroundRows).map { $0 == 3 ? 0 : Float(1 + $0 % 4) }

    /// With every coalition in every row the average is exact: the weighted game's exact values, base
    /// values and outputs to 1e-9, zero standard errors, one stratum per row of non-zero weight, and
    /// the unstratified run's model evaluations for the rows run.
    @Test func everyCoalitionGivesTheExactValuesOfTheWeightedGame() throws {
        let mlp = try SmallMLP(engine: try testEngine())
        let exact = try ExactShapley().explain(try Self.hostGame(mlp, weights: Self.weights))
        for base in [KernelShap(budget: 254, seed: 1) as any SeededShapleyEstimator, LeverageShap(budget: 254, seed: 1)] {
            let game = try Self.hostGame(mlp, weights: Self.weights)
            let e = try StratifiedShap(base).explain(game)
            #expect(e.method == base.method)
            expectClose(e.values, exact.values, atol: 1e-9, rtol: 1e-9, "\(base.method) stratified vs exact")
            expectClose(e.baseValues!, exact.baseValues!, atol: 1e-9, rtol: 1e-9, "base values")
            expectClose(e.outputs!, exact.outputs!, atol: 1e-9, rtol: 1e-9, "f(x)")
            #expect(e.standardErrors == [Double](repeating: 0, count: SmallMLP.features * SmallMLP.classes))
            #expect(e.settings["strata"] == 19 && e.settings["stratified"] == .string("background rows") && e.settings["seed"] == 1)
            #expect(e.modelEvaluations == 256 * 19 && game.modelEvaluations == 256 * 19)
        }
    }

    /// On a linear model every stratified estimator gives the closed form φ = W (x − E_w[b]) through the
    /// device's one-row games (weighted rows), and two instances sharing each batch get the values each
    /// gets alone.
    @Test(arguments: [ShapleyMethod.kernel, .leverage, .permutation, .sampling])
    func linearModelOnTheDevice(method: ShapleyMethod) throws {
        let engine = try testEngine()
        let model = LinearImageModel(c: 1, h: 5, w: 6, outputs: 3, weight: seededFloats(3 * 30, seed: 21), bias: [0.5, -1, 2])
        let groups = try FeatureGroups.grid(channels: 1, height: 5, width: 6, cell: 2)
        let x = seededFloats(2 * 30, seed: 22), background = seededFloats(4 * 30, seed: 23)
        let weights: [Float] = [1, 2, 0.5, 3], total = weights.reduce(0, +)
        func game(_ instances: ClosedRange<Int>) throws -> DeviceGame {
            try DeviceGame(engine: engine, instances: Array(x[(instances.lowerBound * 30)..<((instances.upperBound + 1) * 30)]), inputShape: [1, 5, 6],
                           background: background, backgroundWeights: weights, groups: groups, outputCount: 3, model: model.forward(engine))
        }
        let estimator = StratifiedShap(try #require(method.estimator(budget: method == .kernel ? 100 : 200, seed: 5) as? any SeededShapleyEstimator))
        var alone: [Double] = []
        for i in 0..<2 {
            var expected = [Double](repeating: 0, count: 9 * 3)
            for e in 0..<30 {
                let meanB = (0..<4).reduce(0.0) { $0 + Double(weights[$1] / total) * Double(background[$1 * 30 + e]) }
                for o in 0..<3 { expected[Int(groups.elementFeature[e]) * 3 + o] += Double(model.weight[o * 30 + e]) * (Double(x[i * 30 + e]) - meanB) }
            }
            let e = try estimator.explain(try game(i...i))
            expectClose(e.values, expected, atol: 2e-5, rtol: 1e-4, "\(method.rawValue) stratified, instance \(i)")
            alone += e.values
        }
        let joint = try estimator.explain(try game(0...1), instances: 2)
        expectClose(joint.values, alone, atol: 1e-6, rtol: 1e-5, "\(method.rawValue) two instances per batch vs one")
    }

    /// The device's one-row games give the host closure's values (the same network in plain Swift).
    @Test(arguments: [ShapleyMethod.kernel, .permutation])
    func hostAndDeviceAgree(method: ShapleyMethod) throws {
        let mlp = try SmallMLP(engine: try testEngine())
        let estimator = StratifiedShap(try #require(method.estimator(budget: 60, seed: 4) as? any SeededShapleyEstimator))
        let h = try estimator.explain(try Self.hostGame(mlp))
        let d = try estimator.explain(try mlp.deviceGame(rowsPerChunk: 7))
        expectClose(h.values, d.values, atol: 1e-4, rtol: 1e-4, "\(method.rawValue) stratified host vs device")
        expectClose(h.standardErrors!, d.standardErrors!, atol: 1e-4, rtol: 1e-3, "standard errors")
        #expect(h.modelEvaluations == d.modelEvaluations)
    }

    /// Over 50 seeds at small budgets per row (120 coalitions of 8 features for the regressions, 114 for
    /// permutation-shap, 66 for sampling-shap) the mean converges to the exact values (within 4
    /// standard errors of the mean) and |φ̂ − φ| ≤ 1.96·SE holds for 92–98% of the values. (Below that
    /// the rows' delta-method errors run low: kernel-shap at 60 coalitions covered 89%, permutation-shap
    /// at 34 covered 90.5%.)
    @Test(arguments: [(ShapleyMethod.kernel, 120), (.leverage, 120), (.permutation, 114), (.sampling, 66)])
    func meanConvergesAndStandardErrorsCover(method: ShapleyMethod, budget: Int) throws {
        let mlp = try SmallMLP(engine: try testEngine())
        let exact = try ExactShapley().explain(try Self.hostGame(mlp, weights: Self.weights)).values
        let runs = 50
        var covered = 0, mean = [Double](repeating: 0, count: exact.count), squares = mean, meanSE = mean
        for seed in 0..<runs {
            let base = try #require(method.estimator(budget: budget, seed: UInt64(700 + seed)) as? any SeededShapleyEstimator)
            let e = try StratifiedShap(base).explain(try Self.hostGame(mlp, weights: Self.weights))
            let se = try #require(e.standardErrors)
            for i in exact.indices {
                if abs(e.values[i] - exact[i]) <= 1.96 * se[i] { covered += 1 }
                mean[i] += e.values[i] / Double(runs)
                meanSE[i] += se[i] / Double(runs)
                squares[i] += e.values[i] * e.values[i] / Double(runs)
            }
        }
        let rate = Double(covered) / Double(runs * exact.count)
        print("stratified \(method.rawValue) budget \(budget): coverage of 1.96·SE \(rate) over \(runs * exact.count) values")
        #expect(rate >= 0.92 && rate <= 0.98, "\(method.rawValue) budget \(budget): coverage \(rate)")
        var ratio = 0.0, biasRatio = 0.0
        for i in exact.indices {
            let sd = (max(0, squares[i] - mean[i] * mean[i]) * Double(runs) / Double(runs - 1)).squareRoot()
            ratio += meanSE[i] / sd / Double(exact.count); biasRatio += abs(mean[i] - exact[i]) / sd / Double(exact.count)
        }
        print("stratified \(method.rawValue) budget \(budget): mean SE / sd of the runs \(ratio), |mean − exact| / sd \(biasRatio)")
        for i in exact.indices {
            let sd = (max(0, squares[i] - mean[i] * mean[i]) * Double(runs) / Double(runs - 1)).squareRoot()
            #expect(abs(mean[i] - exact[i]) <= 4 * sd / Double(runs).squareRoot() + 1e-9, "value \(i): mean \(mean[i]), exact \(exact[i]), sd \(sd)")
        }
    }

    /// The rows' coalitions reach the model in one batch (one call of the host model here, against one
    /// call per row with batches of a single row's coalitions), with the same values; an estimator with
    /// a stopping rule, which asks for more coalitions once it sees the values, still ends near the
    /// exact values with fewer evaluations than its budget.
    @Test func rowsShareBatches() throws {
        let mlp = try SmallMLP(engine: try testEngine())
        let forward = try mlp.hostForward()
        func game(_ calls: UnsafeMutablePointer<Int>) throws -> HostGame {
            try HostGame(instance: mlp.instance, background: mlp.background, backgroundWeights: Self.weights, groups: .elements(SmallMLP.features),
                         outputCount: SmallMLP.classes, rowsPerChunk: 1 << 20) { rows, count in calls.pointee += 1; return try forward(rows, count) }
        }
        let calls = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        defer { calls.deallocate() }
        calls.pointee = 0
        var estimator = StratifiedShap(LeverageShap(budget: 100, seed: 8))
        let batched = try estimator.explain(try game(calls))
        #expect(calls.pointee == 1, "\(calls.pointee) calls of the model")
        calls.pointee = 0
        estimator.coalitionsPerBatch = 1
        let single = try estimator.explain(try game(calls))
        #expect(calls.pointee == 19, "\(calls.pointee) calls of the model")
        #expect(batched.values == single.values && batched.standardErrors == single.standardErrors)
        #expect(batched.modelEvaluations == single.modelEvaluations)

        let exact = try ExactShapley().explain(try Self.hostGame(mlp, weights: Self.weights)).values
        let rule = StoppingRule(threshold: 0.05)
        let stopped = try StratifiedShap(KernelShap(budget: 250, seed: 3, stopping: rule, drawsPerRound: 8)).explain(try Self.hostGame(mlp, weights: Self.weights))
        #expect(stopped.modelEvaluations < 252 * 19, "\(stopped.modelEvaluations) evaluations")
        let scale = exact.map(abs).max()!
        #expect(zip(stopped.values, exact).allSatisfy { abs($0 - $1) <= 0.1 * scale }, "stopped early: \(stopped.values) vs \(exact)")
    }

    /// What cannot be stratified is refused: a game that is not over background rows, feature selection,
    /// all-zero weights, a row outside the background.
    @Test func refusals() throws {
        let mlp = try SmallMLP(engine: try testEngine())
        #expect(throws: ExplainError.self) { try StratifiedShap(KernelShap(budget: 40)).explain(UnanimityGame(features: 6, seed: 1)) }
        #expect(throws: ExplainError.self) { try StratifiedShap(KernelShap(budget: 40, numFeatures: 3)).explain(try Self.hostGame(mlp)) }
        #expect(throws: ExplainError.self) { try Self.hostGame(mlp).rowGame(SmallMLP.backgroundRows) }
        #expect(throws: ExplainError.self) { try mlp.deviceGame().rowGame(-1) }
    }
}
