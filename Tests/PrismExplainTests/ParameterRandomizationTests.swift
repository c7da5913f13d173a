import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

/// The cascading parameter-randomization check against closed forms and on a trained CNN.
@Suite(.serialized) struct ParameterRandomizationTests {
    @Test func spearmanMatchesHandComputedValues() throws {
        #expect(try ParameterRandomization.spearman([1, 2, 3, 4], [10, 20, 30, 45]) == 1)
        #expect(try ParameterRandomization.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1)
        // Ties take their mean rank: ranks [1, 2.5, 2.5, 4] against [1, 2, 3, 4] give 4.5 / √(4.5 · 5).
        #expect(abs(try ParameterRandomization.spearman([1, 2, 2, 3], [1, 2, 3, 4]) - 4.5 / (4.5 * 5).squareRoot()) <= 1e-12)
        #expect(try ParameterRandomization.spearman([1, 1, 1], [1, 2, 3]) == 0)
        #expect(throws: ExplainError.self) { try ParameterRandomization.spearman([1, 2], [1]) }
    }

    /// Saliency of a single Linear layer is |W_c|, so after randomizing it the correlation is that of
    /// |W_c| with |W′_c| — computed here from the weights alone.
    @Test func linearModelCorrelationIsThatOfTheWeights() throws {
        let engine = try testEngine()
        let spec = try ModelSpec.mlp(inputShape: [12], hidden: [], classes: 3)
        let model = try Model(spec: spec, seed: 7, engine: engine)
        let check = ParameterRandomization(model: model, seed: 5) { Saliency(model: DifferentiableModel($0)) }
        let x = seededFloats(2 * 12, seed: 3)
        let stages = try check.run(instances: x, targets: .classes([0, 2]))
        #expect(stages.map(\.layer) == ["1.linear"])
        let before = try model.stateDict()["1.weight"]!.values
        let after = try Model(spec: spec, seed: 5 ^ 0x5A17_C4EC_0000_0001, engine: engine).stateDict()["1.weight"]!.values
        var expected = 0.0
        for c in [0, 2] {
            let a: [Double] = (0..<12).map { Double(abs(before[c * 12 + $0])) }
            let b: [Double] = (0..<12).map { Double(abs(after[c * 12 + $0])) }
            expected += try ParameterRandomization.spearman(a, b) / 2
        }
        #expect(abs(stages[0].spearmanAbsolute - expected) <= 1e-9)
        // The original model is untouched.
        #expect(try model.stateDict()["1.weight"]!.values == before)
    }

    /// On a CNN trained on the Fashion-MNIST fixture, gradient maps (signed saliency) decorrelate as
    /// the layers are randomized from the top down; stages are listed top first.
    @Test func gradientsOfATrainedCNNDecorrelate() throws {
        let engine = try testEngine()
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/fashion-mnist-subset").path
        let train = try LabeledData(try ImageDataset.loadMNISTFormat(directory: directory, split: .train))
        let test = try LabeledData(try ImageDataset.loadMNISTFormat(directory: directory, split: .test))
        let model = try Model(spec: try ModelSpec.cnn(), seed: 1, engine: engine)
        try Trainer(model: model, config: TrainingConfig(epochs: 2, batchSize: 32, learningRate: 2e-3, seed: 1)).fit(train: train, test: nil)
        let x = Array(test.features[0..<(8 * 784)])
        let stages = try ParameterRandomization(model: model) { Saliency(model: DifferentiableModel($0), absolute: false) }
            .run(instances: x, targets: .classes([0]))
        #expect(stages.map(\.layer) == ["9.linear", "7.linear", "3.conv2d", "0.conv2d"])
        // Measured: signed correlations −0.27, 0.04, 0.00, −0.03; of magnitudes 0.74, 0.63, 0.59, 0.59
        // (magnitudes keep some of the input's support, as Adebayo et al. report for gradients).
        for stage in stages { #expect(abs(stage.spearman) < 0.5 && stage.spearmanAbsolute < 0.85, "\(stage)") }
        #expect(stages.last!.spearmanAbsolute < stages.first!.spearmanAbsolute, "\(stages)")
    }
}
