import Foundation
import Prism
@testable import PrismExplain
import PrismTestSupport
import Testing

/// A game of any size whose values are all zero; it records the most coalitions asked for at once.
private final class ZeroGame: CoalitionGame {
    let featureCount: Int, outputCount: Int
    var largestCall = 0
    init(features: Int, outputs: Int) { featureCount = features; outputCount = outputs }
    func values(coalitions: [UInt8], count: Int) throws -> [Double] {
        largestCall = max(largestCall, count)
        return [Double](repeating: 0, count: count * outputCount)
    }
}

/// Budgets far past any host's memory are refused up front, with one line stating the need and
/// what is available, before the estimators allocate their coalition matrices.
@Suite struct MemoryBudgetTests {
    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    @Test func kernelShapRefusesACoalitionMatrixPastTheMemory() {
        let game = ZeroGame(features: 49, outputs: 10)
        let text = message { _ = try KernelShap(budget: 1_000_000_000_000).explain(game) }
        // 10^12 × (2·49 + 96 + 8·(49 + 2·10 + 1)) bytes.
        #expect(text.hasPrefix("kernel-shap: a budget of 1000000000000 coalitions × 49 features needs 754 TB for the coalition matrix and its fit; "), "\(text)")
        #expect(text.hasSuffix("of host memory is available") && !text.contains("\n"), "\(text)")
        #expect(game.largestCall <= 2, "coalitions other than ∅ and all were evaluated before the check")
    }

    @Test func permutationAndSamplingShapRefuseRoundsPastTheMemory() {
        // A 3×1024×1024 image explained pixel by pixel: one round of 16 permutations is
        // 16 × 2(M − 1) masks of M bytes and their 10 values each (317 TB).
        let m = 3 * 1024 * 1024
        let permutation = ZeroGame(features: m, outputs: 10)
        let p = message { _ = try PermutationShap(budget: 1_000_000_000).explain(permutation) }
        #expect(p.hasPrefix("permutation-shap: 16 permutations per round × 6291454 coalitions × 3145728 features needs 317 TB for the coalition matrix; "), "\(p)")
        #expect(permutation.largestCall <= 2)
        let sampling = ZeroGame(features: m, outputs: 10)
        let s = message { _ = try SamplingShap(budget: 100_000_000_000).explain(sampling) }
        #expect(s.hasPrefix("sampling-shap: 16 draws per round × 2 × 3145728 features needs 317 TB for the coalition matrix of 3145728 features; "), "\(s)")
        #expect(sampling.largestCall <= 2)
    }

    @Test func integratedGradientsRefusesStepsPastTheMemoryOrTheRule() {
        let left = message { _ = try IntegratedGradients.quadrature(.left, steps: 1_000_000_000_000) }
        #expect(left.hasPrefix("integrated gradients: 1000000000000 steps needs 16 TB for the quadrature points and weights; "), "\(left)")
        let gauss = message { _ = try IntegratedGradients.quadrature(.gaussLegendre, steps: 1_000_000_000) }
        #expect(gauss == "integrated gradients: 1000000000 steps are above the gauss-legendre rule's limit of 10000 (its nodes take O(steps²) to compute); use fewer steps or --rule middle")
        // The limit itself is accepted and its weights still sum to the interval's length.
        let (alphas, weights) = try! IntegratedGradients.quadrature(.middle, steps: 10_000)
        #expect(alphas.count == 10_000 && abs(weights.reduce(0, +) - 1) <= 1e-9)
    }

    @Test func limeRefusesSamplesPastTheMemory() throws {
        let engine = try testEngine()
        let linear = AttributionLinearModel(inputShape: [1, 4, 6], classes: 2, seed: 91)
        let groups = try FeatureGroups.grid(channels: 1, height: 4, width: 6, cell: 2)
        let x = seededFloats(24, seed: 92)
        let text = message {
            _ = try LIME(model: linear.model(engine), groups: groups, samples: 1_000_000_000_000_000).explain(instances: x, targets: .classes([0]))
        }
        // 10^15 × (6 + 8·(2 + 2)) bytes.
        #expect(text.hasPrefix("lime: 1000000000000000 samples × 6 features needs 38 PB for the perturbation matrix; "), "\(text)")
    }
}
