import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

/// Attention rollout and gradient-weighted rollout against hand-computed two-layer examples.
@Suite struct AttentionMapsTests {
    /// Two layers, two heads whose mean is A₁ = [[.6, .4], [.2, .8]] and A₂ = [[.5, .5], [1, 0]]:
    /// Â = ½A + ½I gives [[.8, .2], [.1, .9]] and [[.75, .25], [.5, .5]], and R = Â₂Â₁ =
    /// [[.625, .375], [.45, .55]].
    @Test func rolloutOfTwoLayersEqualsTheClosedForm() {
        let layer1: [Double] = [0.7, 0.3, 0.1, 0.9, /* head 2 */ 0.5, 0.5, 0.3, 0.7]
        let layer2: [Double] = [0.5, 0.5, 1, 0, /* head 2 */ 0.5, 0.5, 1, 0]
        let p = AttentionMaps.Probabilities(layers: [layer1, layer2], heads: 2, tokens: 2, gradients: nil)
        let r = AttentionMaps.rollout(p)
        for (a, b) in zip(r, [0.625, 0.375, 0.45, 0.55]) { #expect(abs(a - b) <= 1e-12, "\(r)") }
        // Without the residual: A₂A₁ = [[.4, .6], [.6, .4]].
        let plain = AttentionMaps.rollout(p, residual: false)
        for (a, b) in zip(plain, [0.4, 0.6, 0.6, 0.4]) { #expect(abs(a - b) <= 1e-12, "\(plain)") }
        #expect(AttentionMaps.classRow(r, tokens: 2) == [0.375])
    }

    /// One head, two layers: Ā_l = (∇A ⊙ A)⁺, R₁ = I + Ā₁, R₂ = R₁ + Ā₂R₁.
    @Test func gradientRolloutEqualsTheClosedForm() throws {
        let a1: [Double] = [0.6, 0.4, 0.2, 0.8], g1: [Double] = [1, -1, 2, 0.5]
        let a2: [Double] = [0.5, 0.5, 1, 0], g2: [Double] = [-2, 4, 1, 3]
        let p = AttentionMaps.Probabilities(layers: [a1, a2], heads: 1, tokens: 2, gradients: [g1, g2])
        // Ā₁ = [[.6, 0], [.4, .4]], R₁ = [[1.6, 0], [.4, 1.4]]; Ā₂ = [[0, 2], [1, 0]], Ā₂R₁ = [[.8, 2.8], [1.6, 0]].
        let expected: [Double] = [2.4, 2.8, 2.0, 1.4]
        let r = try AttentionMaps.gradientRollout(p)
        for (a, b) in zip(r, expected) { #expect(abs(a - b) <= 1e-12, "\(r)") }
        #expect(throws: ExplainError.self) { try AttentionMaps.gradientRollout(AttentionMaps.Probabilities(layers: [a1], heads: 1, tokens: 2, gradients: nil)) }
    }
}

/// Attention maps of a real (small, random) vision transformer.
@Suite struct VisionTransformerAttentionTests {
    static func model() throws -> Model {
        try Model(spec: try ModelSpec.vit(height: 8, width: 8, channels: 1, classes: 3, patch: 4, dim: 8, depth: 2, heads: 2, mlpDim: 8),
                       seed: 3, engine: try testEngine())
    }

    /// The materialized mode (matmul + softmax, probabilities kept) gives the fused kernels' logits;
    /// its probabilities are [heads, T, T] per layer with rows summing to 1; rollout's class row
    /// has one value per patch.
    @Test func probabilitiesRolloutAndTheFusedPathAgree() throws {
        let model = try Self.model()
        let engine = model.engine
        let x = seededFloatsForImages(3 * 64)
        let fused = try engine.noGrad { try model(try Tensor(x, shape: [3, 1, 8, 8], engine: engine)).toArray() }
        let maps = try AttentionMaps(model: model, rowsPerChunk: 2)
        let all = try maps.probabilities(instances: x)
        #expect(all.count == 3 && maps.grid.rows == 2 && maps.grid.columns == 2)
        for p in all {
            #expect(p.layers.count == 2 && p.heads == 2 && p.tokens == 5)
            for layer in p.layers {
                for row in 0..<(2 * 5) {
                    let sum = layer[(row * 5)..<((row + 1) * 5)].reduce(0, +)
                    #expect(abs(sum - 1) <= 1e-5)
                }
            }
        }
        for block in model.ops.compactMap({ $0 as? TransformerBlock }) { block.attention.keepsProbabilities = true }
        let materialized = try engine.noGrad { try model(try Tensor(x, shape: [3, 1, 8, 8], engine: engine)).toArray() }
        for block in model.ops.compactMap({ $0 as? TransformerBlock }) { block.attention.keepsProbabilities = false }
        for (a, b) in zip(fused, materialized) { #expect(abs(a - b) <= 1e-5 + 1e-4 * abs(b)) }
        let rollout = try AttentionAttribution(model: model).explain(instances: x, targets: .classes([0, 2]))
        #expect(rollout.featureCount == 4 && rollout.outputCount == 2)
        for i in 0..<3 {
            let expected = AttentionMaps.classRow(AttentionMaps.rollout(all[i]), tokens: 5)
            for o in 0..<2 { for (a, b) in zip(rollout.attributions(instance: i, output: o), expected) { #expect(abs(a - b) <= 1e-9) } }
        }
    }

    /// Attention × gradient reads the gradients of the target's logit: another target gives another
    /// map, and the chunking changes nothing.
    @Test func gradientRolloutDependsOnTheTargetAndNotOnChunks() throws {
        let model = try Self.model()
        let x = seededFloatsForImages(2 * 64)
        let one = try AttentionAttribution(model: model, kind: .gradient, rowsPerChunk: 1).explain(instances: x, targets: .perInstance([0, 1]))
        let all = try AttentionAttribution(model: model, kind: .gradient, rowsPerChunk: 8).explain(instances: x, targets: .perInstance([0, 1]))
        for (a, b) in zip(one.values, all.values) { #expect(abs(a - b) <= 1e-6 + 1e-5 * abs(b)) }
        let other = try AttentionAttribution(model: model, kind: .gradient).explain(instances: x, targets: .perInstance([2, 2]))
        #expect(zip(one.values, other.values).contains { abs($0 - $1) > 1e-6 })
        #expect(throws: ExplainError.self) {
            try AttentionAttribution(model: try Model(spec: try ModelSpec.cnn(), seed: 1, engine: model.engine))
        }
    }
}

/// Seeded pixel values in [0, 1).
func seededFloatsForImages(_ count: Int) -> [Float] {
    var state: UInt64 = 12345
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(state >> 40) / Float(1 << 24)
    }
}
