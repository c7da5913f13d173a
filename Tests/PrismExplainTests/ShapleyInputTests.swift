import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

/// Bad settings, small games, the stopping rule and stacking.
@Suite struct ShapleyInputTests {
    @Test func budgetsBelowTheMinimumSayTheMinimum() throws {
        let game = ExactShapleyTests.threePlayers
        #expect(throws: ExplainError("kernel-shap: a budget of 2 coalitions is below the minimum of 3 for 3 features")) {
            try KernelShap(budget: 2).explain(game)
        }
        #expect(throws: ExplainError("permutation-shap: a budget of 9 coalitions is below the minimum of 10 for 3 features (two permutations)")) {
            try PermutationShap(budget: 9).explain(game)
        }
        #expect(throws: ExplainError("sampling-shap: a budget of 13 coalitions is below the minimum of 14 for 3 features (two draws each)")) {
            try SamplingShap(budget: 13).explain(game)
        }
    }

    /// M = 0 and M = 1 as shap: nothing to attribute, or the whole difference to the one feature.
    @Test(arguments: ShapleyMethod.allCases)
    func zeroAndOneFeature(method: ShapleyMethod) throws {
        let one = try method.estimator(budget: 1, seed: 0).explain(TableGame(featureCount: 1, table: [0: 2, 1: 5]))
        #expect(one.values == [3])
        #expect(one.baseValues == [2] && one.outputs == [5])
        let none = try method.estimator(budget: 1, seed: 0).explain(TableGame(featureCount: 0, table: [0: 4]))
        #expect(none.values.isEmpty && none.baseValues == [4] && none.outputs == [4])
    }

    /// With every coalition Kernel SHAP is exact on the three-player game too (budget 2^3 − 2 = 6).
    @Test func kernelShapOnThreePlayers() throws {
        let e = try KernelShap(budget: 6).explain(ExactShapleyTests.threePlayers)
        expectClose(e.values, [20, 30, 40], atol: 1e-10, "kernel")
        #expect(e.modelEvaluations == 8)
    }

    /// The stopping rule ends sampling early once max SE < threshold × range, and says so.
    @Test(arguments: [ShapleyMethod.kernel, .leverage, .permutation, .sampling])
    func stoppingRule(method: ShapleyMethod) throws {
        let mlp = try SmallMLP(engine: try testEngine())
        let game = try CachedGame(try mlp.deviceGame())
        let rule = StoppingRule(threshold: 0.05)
        let budget = method == .kernel || method == .leverage ? 250 : 100_000
        let e: Explanation = switch method {
        case .kernel: try KernelShap(budget: budget, seed: 2, stopping: rule, drawsPerRound: 4).explain(game)
        case .leverage: try LeverageShap(budget: budget, seed: 2, stopping: rule, drawsPerRound: 4).explain(game)
        case .permutation: try PermutationShap(budget: budget, seed: 2, stopping: rule, permutationsPerRound: 4).explain(game)
        default: try SamplingShap(budget: budget, seed: 2, stopping: rule, samplesPerRound: 4).explain(game)
        }
        #expect(e.settings["stopped_early"] == true)
        #expect(game.coalitionsAsked < (method == .kernel || method == .leverage ? budget : budget / 4))
        #expect(e.modelEvaluations == game.coalitionsAsked)
        let se = try #require(e.standardErrors)
        #expect(rule.isMet(values: e.values, standardErrors: se, featureCount: 8, outputCount: 3))
        let exact = try ExactShapley().explain(game).values
        for k in 0..<3 {
            let phi = (0..<8).map { exact[$0 * 3 + k] }
            let range = phi.max()! - phi.min()!
            let worst = (0..<8).map { abs(e.values[$0 * 3 + k] - exact[$0 * 3 + k]) }.max()!
            #expect(worst <= 4 * 0.05 * range, "output \(k): error \(worst), range \(range)")
        }
    }

    @Test func stackingInstances() throws {
        let a = ExactShapleyTests.threePlayers
        let b = TableGame(featureCount: 3, table: [7: 3])
        let e = try ExactShapley().explain([a, b])
        #expect(e.instanceCount == 2)
        #expect(e.attributions(instance: 0, output: 0) == [20, 30, 40])
        #expect(e.attributions(instance: 1, output: 0) == [1, 1, 1])
        #expect(e.outputs == [90, 3] && e.baseValues == [0, 0])
        #expect(e.modelEvaluations == 16)
    }
}
