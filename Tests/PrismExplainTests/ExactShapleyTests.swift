import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

@Suite struct ExactShapleyTests {
    /// v: ∅ 0, {A} 10, {B} 20, {C} 30, {A,B} 40, {A,C} 50, {B,C} 60, {A,B,C} 90. By hand:
    /// φ_A = 10/3 + 20/6 + 20/6 + 30/3 = 20, φ_B = 20/3 + 30/6 + 30/6 + 40/3 = 30, φ_C = 30/3 + 40/6 + 40/6 + 50/3 = 40.
    static let threePlayers = TableGame(featureCount: 3, table: [0: 0, 1: 10, 2: 20, 4: 30, 3: 40, 5: 50, 6: 60, 7: 90])

    @Test func handComputedThreePlayerGame() throws {
        let e = try ExactShapley().explain(Self.threePlayers)
        expectClose(e.values, [20, 30, 40], atol: 1e-12, "exact")
        #expect(e.baseValues == [0])
        #expect(e.outputs == [90])
        #expect(e.standardErrors == nil)
        #expect(e.modelEvaluations == 8)
        #expect(e.method == "exact-shap")
        // Any chunking of the coalitions gives the same answer.
        expectClose(try ExactShapley(coalitionsPerCall: 3).explain(Self.threePlayers).values, [20, 30, 40], atol: 1e-12, "chunks of 3")
    }

    @Test func zeroAndOneFeature() throws {
        let one = try ExactShapley().explain(TableGame(featureCount: 1, table: [0: 2, 1: 5]))
        #expect(one.values == [3])
        #expect(one.baseValues == [2] && one.outputs == [5])
        let none = try ExactShapley().explain(TableGame(featureCount: 0, table: [0: 4]))
        #expect(none.values.isEmpty)
        #expect(none.baseValues == [4] && none.outputs == [4])
    }

    @Test func refusesTooManyFeaturesAndSuggestsKernelShap() throws {
        let game = TableGame(featureCount: ExactShapley.featureLimit + 1, table: [:])
        do {
            _ = try ExactShapley().explain(game)
            Issue.record("21 features should be refused")
        } catch let e as ExplainError {
            #expect(e.description.contains("kernel-shap"))
            #expect(e.description.contains("21 features"))
        }
    }

    /// The MLP's exact values add up, and base value and output are the model's own answers.
    @Test func mlpBaseValueAndOutputAreTheModels() throws {
        let engine = try testEngine()
        let mlp = try SmallMLP(engine: engine)
        let e = try ExactShapley().explain(try mlp.deviceGame())
        #expect(e.modelEvaluations == 256 * SmallMLP.backgroundRows)
        let c = SmallMLP.classes
        let fx = try mlp.model(try Tensor(mlp.instance, shape: [1, SmallMLP.features], engine: engine)).toArray().map(Double.init)
        let fb = try mlp.model(try Tensor(mlp.background, shape: [SmallMLP.backgroundRows, SmallMLP.features], engine: engine)).toArray()
        let mean = (0..<c).map { k in (0..<SmallMLP.backgroundRows).reduce(0.0) { $0 + Double(fb[$1 * c + k]) } / Double(SmallMLP.backgroundRows) }
        expectClose(e.outputs ?? [], fx, atol: 1e-5, rtol: 1e-5, "f(x)")
        expectClose(e.baseValues ?? [], mean, atol: 1e-5, rtol: 1e-5, "E f(background)")
        for k in 0..<c {
            let gap = e.additivityGap(instance: 0, output: k) ?? .nan
            #expect(abs(gap) <= 1e-4 * max(1, abs(fx[k])), "additivity output \(k): gap \(gap)")
        }
    }
}
