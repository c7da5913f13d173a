import Foundation
import Testing
@testable import Prism
import PrismTestSupport

/// Graph models against PyTorch (`Tests/Fixtures/make_graph_golden.py`): a residual CNN with
/// BatchNorm in evaluation, grouped, dilated, depthwise and rectangular convolutions, ceil-mode and
/// count_include_pad pooling, concatenation and adaptive pooling, loaded from a state dict that holds
/// `num_batches_tracked` counters; and 20 SGD steps of a graph with a residual Add.
@Suite struct GraphGoldenTests {
    static let folder = fixturesDirectory + "/graph"

    @Test func residualCNNMatchesPyTorch() throws {
        let engine = try testEngine()
        let (model, _) = try Model.load(path: Self.folder + "/residual_cnn.safetensors", engine: engine)
        #expect(model.ops.contains { $0 is Add } && model.ops.contains { $0 is Cat } && model.ops.contains { $0 is BatchNorm2D })
        let golden = try SafetensorsFile.read(path: Self.folder + "/residual_cnn_golden.safetensors")
        let x = try golden.tensor("x"), logits = try golden.tensor("logits").values
        let targets = try golden.tensor("targets").values.map { Int($0) }
        let expectedGrad = try golden.tensor("input_grad").values
        // Inference: fused and folded (BatchNorm into the convolutions, pooled kernels where they apply).
        let inference = try engine.noGrad { try model(try Tensor(x.values, shape: x.shape, engine: engine)).toArray() }
        // On the tape: every node on its own, then the input gradient of Σ logits[i, target i].
        let input = try Tensor(x.values, shape: x.shape, engine: engine, requiresGrad: true)
        let output = try model(input)
        let taped = try output.toArray()
        let classes = model.spec.classCount
        var seed = [Float](repeating: 0, count: taped.count)
        for (i, t) in targets.enumerated() { seed[i * classes + t] = 1 }
        try output.backward(try Tensor(seed, shape: output.shape, engine: engine))
        let grad = try #require(input.grad).toArray()
        for (name, values) in [("inference", inference), ("taped", taped)] {
            #expect(values.count == logits.count)
            for (a, b) in zip(values, logits) { #expect(abs(a - b) <= 1e-5 + 1e-4 * abs(b), "\(name): \(a) vs PyTorch \(b)") }
        }
        let scale = expectedGrad.map(abs).max() ?? 0
        #expect(scale > 0)
        for (a, b) in zip(grad, expectedGrad) { #expect(abs(a - b) <= 1e-4 * scale, "input gradient \(a) vs PyTorch \(b)") }
    }

    @Test func residualTrainingFollowsPyTorchForTwentySGDSteps() throws {
        let engine = try testEngine()
        let file = try SafetensorsFile.read(path: Self.folder + "/residual_train.safetensors")
        let spec = try ModelSpec.decode(json: try #require(file.metadata[Model.specMetadataKey]))
        let model = try Model(spec: spec, seed: 0, engine: engine)
        #expect(model.ops.contains { $0 is Add })
        try model.loadStateDict(file.tensors.filter { !["x", "y", "losses"].contains($0.key) })
        let x = try file.tensor("x"), labels = try file.tensor("y").values.map { Int32($0) }
        let expected = try file.tensor("losses").values
        let input = try Tensor(x.values, shape: x.shape, engine: engine)
        let optimizer = try SGD(model.parameters, lr: 0.1)
        var losses: [Float] = []
        for step in 0...20 {
            let loss = try crossEntropy(try model(input, training: true), labels: labels)
            losses.append(try loss.item())
            guard step < 20 else { break }
            optimizer.zeroGrad()
            try loss.backward()
            try optimizer.step()
        }
        #expect(losses.count == expected.count)
        for (i, (a, b)) in zip(losses, expected).enumerated() { #expect(abs(a - b) <= 1e-4, "step \(i): loss \(a) vs PyTorch \(b)") }
    }
}
