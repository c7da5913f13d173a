import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

/// Activation maximization on the reference CNN: with L2 decay alone the ascent raises each target
/// logit at every step; with jitter, blur and clipping it still ends well above the start; a
/// channel's mean rises too; targets outside the model are refused.
@Suite struct ActivationMaximizationTests {
    /// The reference cnn (Fashion-MNIST shape) trained for 2 epochs on the fixture subset.
    static func trainedCNN(_ engine: Engine) throws -> Model {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/fashion-mnist-subset").path
        let train = try LabeledData(try ImageDataset.loadMNISTFormat(directory: folder, split: .train))
        let net = try Model(spec: try ModelSpec.cnn(), seed: 3, engine: engine)
        _ = try Trainer(model: net, config: TrainingConfig(epochs: 2, batchSize: 32)).fit(train: train)
        return net
    }

    @Test func l2DecayAloneRaisesEveryLogitMonotonically() throws {
        let engine = try testEngine()
        let net = try Self.trainedCNN(engine)
        var method = ActivationMaximization(model: net)
        (method.steps, method.l2, method.range) = (25, 1e-3, 0...1)
        let result = try method.run((0..<10).map { .output($0) })
        #expect(result.images.count == 10 * 784 && result.images.allSatisfy { (0...1).contains($0) })
        for (k, history) in result.history.enumerated() {
            #expect(history.count == 26)
            for s in 1..<history.count {
                #expect(history[s] >= history[s - 1] - 1e-6 * max(1, abs(history[s - 1])), "class \(k) step \(s): \(history[s - 1]) → \(history[s])")
            }
            #expect(history.last! > history.first! + 2, "class \(k): \(history.first!) → \(history.last!)")
        }
    }

    @Test func allRegularizersStillRaiseTheTargets() throws {
        let engine = try testEngine()
        let net = try Self.trainedCNN(engine)
        var method = ActivationMaximization(model: net)
        (method.steps, method.l2, method.jitter, method.blurSigma, method.blurEvery, method.range, method.seed) = (40, 1e-3, 1, 0.5, 4, 0...1, 5)
        let result = try method.run([.output(0), .output(5), .output(9)])
        for (k, history) in result.history.enumerated() {
            #expect(history.last! > history.first! + 2, "target \(k): \(history.first!) → \(history.last!)")
        }
        // Channels of the first convolution: their mean activation rises.
        var channel = ActivationMaximization(model: net)
        (channel.steps, channel.range) = (15, 0...1)
        let layer = net.activationName(0)
        let c = try channel.run([.channel(layer: layer, channel: 0), .channel(layer: layer, channel: 3)])
        for history in c.history { #expect(history.last! > history.first!, "\(history.first!) → \(history.last!)") }
    }

    @Test func targetsOutsideTheModelAreRefused() throws {
        let engine = try testEngine()
        let net = try AttributionNetworks.cnn(engine)
        let method = ActivationMaximization(model: net)
        #expect(throws: ExplainError.self) { try method.run([.output(3)]) }
        #expect(throws: ExplainError.self) { try method.run([.channel(layer: net.activationName(1), channel: 999)]) }
        #expect(throws: ExplainError.self) { try method.run([]) }
    }
}
