import Foundation
import Prism
import PrismFormats
import PrismTestSupport
import Testing

/// Magnitude pruning (`Model.prune`): exact sparsity per scope, the smallest |w| go first, masks
/// saved and read as torch.nn.utils.prune keeps them, training keeps pruned weights at zero, and
/// folding the masks away leaves the same model.
@Suite struct PruningTests {
    static let spec = ModelSpec(architecture: "custom", inputShape: [12], classCount: 3, layers: [
        .linear(inFeatures: 12, outFeatures: 16), .relu, .linear(inFeatures: 16, outFeatures: 3),
    ])

    /// Every pruned weight's |w| is at most every kept one's, among `tensors` taken together.
    func expectSmallestPruned(_ before: [[Float]], _ masks: [[Float]], _ label: String) {
        let pruned = zip(before, masks).flatMap { w, m in zip(w, m).filter { $1 == 0 }.map { abs($0.0) } }
        let kept = zip(before, masks).flatMap { w, m in zip(w, m).filter { $1 == 1 }.map { abs($0.0) } }
        #expect((pruned.max() ?? 0) <= (kept.min() ?? .infinity), "\(label): a pruned |w| \(pruned.max() ?? 0) above a kept \(kept.min() ?? 0)")
    }

    @Test(arguments: [PruningScope.layer, .global])
    func exactSparsityAndTheSmallestGoFirst(_ scope: PruningScope) throws {
        let engine = try testEngine()
        let model = try Model(spec: Self.spec, seed: 3, engine: engine)
        let before = try model.prunableWeights.map { try $0.tensor.toArray() }
        #expect(model.prunableWeights.map(\.name) == ["0.weight", "2.weight"])
        let report = try model.prune(amount: 0.3, scope: scope)
        let masks = try model.prunableWeights.map { try #require(model.masks[$0.name]).toArray() }
        let after = try model.prunableWeights.map { try $0.tensor.toArray() }
        let zeros = masks.map { $0.filter { $0 == 0 }.count }
        switch scope {
        case .layer:
            // round(0.3 · 192) = 58, round(0.3 · 48) = 14 (torch rounds the same way).
            #expect(zeros == [58, 14])
            for t in masks.indices { expectSmallestPruned([before[t]], [masks[t]], "tensor \(t)") }
        case .global:
            #expect(zeros.reduce(0, +) == 72)
            expectSmallestPruned(before, masks, "global")
        }
        #expect(report.map(\.zeros) == zeros && report.map(\.count) == [192, 48])
        for t in masks.indices {
            #expect(zip(after[t], masks[t]).allSatisfy { $1 == 1 || $0 == 0 })
            #expect(zip(zip(after[t], before[t]), masks[t]).allSatisfy { $1 == 0 || $0.0 == $0.1 })
        }
        // Pruning again at a higher amount keeps what was pruned and reaches the new sparsity.
        try model.prune(amount: 0.5, scope: scope)
        let again = try model.prunableWeights.map { try #require(model.masks[$0.name]).toArray() }
        for t in masks.indices { #expect(zip(masks[t], again[t]).allSatisfy { $0 == 1 || $1 == 0 }) }
        let zerosAgain: Int = again.map { $0.filter { $0 == 0 }.count }.reduce(0, +)
        #expect(zerosAgain == 120)
        #expect(errorMessage { _ = try model.prune(amount: 1.5, scope: scope) } == "prune: amount 1.5 is outside [0, 1]")
    }

    @Test func masksRoundTripTrainingKeepsThemAndFinalizing() throws {
        let engine = try testEngine()
        let model = try Model(spec: Self.spec, seed: 4, engine: engine)
        try model.prune(amount: 0.5, scope: .global)
        let x = try Tensor(seededFloats(5 * 12, seed: 71), shape: [5, 12], engine: engine)
        let logits = try engine.noGrad { try model(x).toArray() }
        let dir = NSTemporaryDirectory() + "prism-prune-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }

        // Saved as torch.nn.utils.prune keeps a pruned module: weight_orig and weight_mask, no weight.
        try model.save(path: dir + "/p.safetensors")
        let file = try SafetensorsFile.read(path: dir + "/p.safetensors")
        #expect(Set(file.tensors.keys) == ["0.weight_orig", "0.weight_mask", "0.bias", "2.weight_orig", "2.weight_mask", "2.bias"])
        let (loaded, _) = try Model.load(path: dir + "/p.safetensors", engine: engine)
        #expect(Set(loaded.masks.keys) == ["0.weight", "2.weight"])
        #expect(try engine.noGrad { try loaded(x).toArray() } == logits)

        // Training keeps the pruned weights at zero and moves the others.
        let masks = try loaded.prunableWeights.map { try #require(loaded.masks[$0.name]).toArray() }
        let before = try loaded.prunableWeights.map { try $0.tensor.toArray() }
        let data = try LabeledData(features: seededFloats(64 * 12, seed: 72), labels: (0..<64).map { Int32($0 % 3) }, exampleShape: [12], classCount: 3)
        try Trainer(model: loaded, config: TrainingConfig(epochs: 1, batchSize: 16, learningRate: 0.05, optimizer: .adam, seed: 1)).fit(train: data)
        let after = try loaded.prunableWeights.map { try $0.tensor.toArray() }
        for t in masks.indices {
            #expect(zip(after[t], masks[t]).allSatisfy { $1 == 1 || $0 == 0 }, "tensor \(t): a pruned weight moved")
            #expect(zip(zip(after[t], before[t]), masks[t]).contains { $1 == 1 && $0.0 != $0.1 }, "tensor \(t): no kept weight moved")
        }

        // Folded away: plain weights, zero where pruned, and the same logits.
        let trained = try engine.noGrad { try loaded(x).toArray() }
        loaded.finalizePruning()
        try loaded.save(path: dir + "/f.safetensors")
        #expect(Set(try SafetensorsFile.read(path: dir + "/f.safetensors").tensors.keys) == ["0.weight", "0.bias", "2.weight", "2.bias"])
        let (final, _) = try Model.load(path: dir + "/f.safetensors", engine: engine)
        let finalLogits = try engine.noGrad { try final(x).toArray() }
        #expect(final.masks.isEmpty && finalLogits == trained)
    }

    @Test func badMasksAreRefusedNamingTheTensor() throws {
        let engine = try testEngine()
        let model = try Model(spec: Self.spec, seed: 5, engine: engine)
        var state = try model.stateDict()
        let weight = try #require(state["0.weight"])
        state["0.weight_mask"] = HostTensor(shape: weight.shape, values: [Float](repeating: 0.5, count: weight.values.count))
        #expect(errorMessage { try model.loadStateDict(state, source: "m.safetensors") } == "m.safetensors: pruning mask '0.weight_mask' holds values other than 0 and 1")
        state["0.weight_mask"] = HostTensor(shape: [12, 16], values: [Float](repeating: 1, count: 192))
        #expect(errorMessage { try model.loadStateDict(state, source: "m.safetensors") } == "m.safetensors: pruning mask '0.weight_mask' has shape [12, 16], its weights [16, 12]")
        // A mask over weight (not weight_orig) is read as well: weight · mask.
        state["0.weight_mask"] = HostTensor(shape: weight.shape, values: (0..<192).map { Float($0 % 2) })
        try model.loadStateDict(state, source: "m.safetensors")
        #expect(try model.prunableWeights[0].tensor.toArray().enumerated().allSatisfy { $0.offset % 2 == 1 || $0.element == 0 })
        #expect(model.masks.count == 1)
    }
}
