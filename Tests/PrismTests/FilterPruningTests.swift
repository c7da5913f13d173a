import Foundation
import Prism
import PrismFormats
import PrismTestSupport
import Testing

/// Channel groups and filter pruning (`ChannelGroups`, `Model.pruneFilters`, `ModelSpec.scaledWidth`)
/// on a graph with a residual add, a concatenation, BatchNorm, a depthwise convolution and a flatten
/// into Linear: tied channels go together, the smaller model computes what the full model computes
/// with the removed channels' readers zeroed, and what cannot be followed is fixed.
@Suite struct FilterPruningTests {
    /// input [3, 8, 8] → a (3→6) → bn → relu ─┬→ b (6→6) → add(b, r) → relu s ─┬→ c (6→4, 1×1) → cat(c, s) → d (depthwise 10)
    /// → maxpool 2 → flatten → e (160→12) → relu → f (12→3).
    static let json = #"""
    {"format": 2, "input_shape": [3, 8, 8], "outputs": 3, "architecture": "custom", "nodes": [
      {"name": "a", "op": "conv2d", "in_channels": 3, "out_channels": 6, "kernel_size": 3, "padding": 1},
      {"name": "bn", "op": "batchnorm2d", "num_features": 6},
      {"name": "r", "op": "relu"},
      {"name": "b", "op": "conv2d", "in_channels": 6, "out_channels": 6, "kernel_size": 3, "padding": 1},
      {"name": "sum", "op": "add", "inputs": ["b", "r"]},
      {"name": "s", "op": "relu"},
      {"name": "c", "op": "conv2d", "in_channels": 6, "out_channels": 4, "kernel_size": 1},
      {"name": "cat", "op": "cat", "inputs": ["c", "s"]},
      {"name": "d", "op": "conv2d", "in_channels": 10, "out_channels": 10, "kernel_size": 3, "padding": 1, "groups": 10},
      {"name": "pool", "op": "maxpool2d", "kernel_size": 2},
      {"name": "flat", "op": "flatten"},
      {"name": "e", "op": "linear", "in_features": 160, "out_features": 12},
      {"name": "re", "op": "relu"},
      {"name": "f", "op": "linear", "in_features": 12, "out_features": 3}
    ]}
    """#

    static func spec() throws -> ModelSpec { try ModelSpec.decode(json: json) }

    @Test func groupsFollowTheGraph() throws {
        let groups = try ChannelGroups(spec: try Self.spec())
        let changeable = groups.changeable.map { groups.groups[$0] }
        #expect(changeable.map(\.sources) == [["a", "b"], ["c"], ["e"]])
        #expect(changeable.map(\.size) == [6, 4, 12])
        let output = try #require(groups.groups.first { $0.sources == ["f"] })
        #expect(output.fixedBecause == "they are the model's outputs")
        // Half width: 3, 2 and 6 channels; the depthwise convolution and BatchNorm follow.
        let half = try Self.spec().scaledWidth(0.5)
        let model = try Model(spec: half, seed: 1, engine: try testEngine())
        let shapes = Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.name, $0.tensor.shape) })
        #expect(shapes["a.weight"] == [3, 3, 3, 3] && shapes["b.weight"] == [3, 3, 3, 3] && shapes["bn.weight"] == [3])
        #expect(shapes["c.weight"] == [2, 3, 1, 1] && shapes["d.weight"] == [5, 1, 3, 3] && shapes["e.weight"] == [6, 80] && shapes["f.weight"] == [3, 6])
    }

    @Test func opsThatAreNotFollowedFixTheirChannels() throws {
        // A LayerNorm over a Linear's features: those features cannot change; the first layer's can.
        let spec = try ModelSpec.decode(json: #"""
        {"format": 2, "input_shape": [5], "outputs": 2, "nodes": [
          {"name": "l1", "op": "linear", "in_features": 5, "out_features": 8}, {"name": "t", "op": "tanh"},
          {"name": "l2", "op": "linear", "in_features": 8, "out_features": 6}, {"name": "ln", "op": "layernorm", "normalized_shape": 6},
          {"name": "l3", "op": "linear", "in_features": 6, "out_features": 2}]}
        """#)
        let groups = try ChannelGroups(spec: spec)
        #expect(groups.changeable.map { groups.groups[$0].sources } == [["l1"]])
        #expect(groups.groups.first { $0.sources == ["l2"] }?.fixedBecause == "it reaches node 'ln' (layernorm), whose channels are not followed")
        let (smaller, report) = try Model(spec: spec, seed: 2, engine: try testEngine()).pruneFilters(amount: 0.25)
        #expect(report.map(\.kept) == [6] && smaller.spec.nodes[2].attributes["in_features"] == .int(6))
        // Nothing to remove at all.
        let head = try ModelSpec.decode(json: #"{"format": 2, "input_shape": [5], "outputs": 2, "nodes": [{"name": "l", "op": "linear", "in_features": 5, "out_features": 2}]}"#)
        #expect(errorMessage { _ = try Model(spec: head, seed: 0, engine: try testEngine()).pruneFilters(amount: 0.5) }
                == "prune filters: no channel of this model can be removed (they are the model's outputs)")
    }

    @Test func thePrunedModelEqualsTheMaskedOne() throws {
        let engine = try testEngine()
        let model = try Model(spec: try Self.spec(), seed: 7, engine: engine)
        // Running statistics that are not the defaults, so BatchNorm's slicing matters.
        var state = try model.stateDict()
        state["bn.running_mean"] = HostTensor(shape: [6], values: seededFloats(6, seed: 5))
        state["bn.running_var"] = HostTensor(shape: [6], values: seededFloats(6, seed: 6).map { 0.5 + abs($0) })
        try model.loadStateDict(state)
        let (smaller, report) = try model.pruneFilters(amount: 0.5)
        #expect(report.map(\.sources) == [["a", "b"], ["c"], ["e"]] && report.map(\.kept) == [3, 2, 6])
        #expect(smaller.parameterCount < model.parameterCount)
        // The tied group is scored over both layers' filters: the kept channels have the largest summed squares.
        func sumOfSquares(_ name: String, _ c: Int, _ per: Int) throws -> Float {
            let values = try #require(state[name]).values
            return values[(c * per)..<((c + 1) * per)].reduce(Float(0)) { $0 + $1 * $1 }
        }
        let squares: [Float] = try (0..<6).map { c in
            let weights = try sumOfSquares("a.weight", c, 27) + sumOfSquares("b.weight", c, 54)
            return try weights + sumOfSquares("a.bias", c, 1) + sumOfSquares("b.bias", c, 1)
        }
        #expect(Set(report[0].keptChannels) == Set((0..<6).sorted { squares[$0] > squares[$1] }.prefix(3)))
        // The full model with the removed channels' readers zeroed computes the same logits.
        let keep = Dictionary(uniqueKeysWithValues: report.map { ($0.group, $0.keptChannels) })
        var masked = state
        for (name, columns) in try ChannelGroups(spec: model.spec).readerColumns(removing: keep) {
            var t = try #require(masked[name])
            let (rows, width) = (t.shape[0], t.shape[1]), inner = t.shape.dropFirst(2).reduce(1, *)
            for r in 0..<rows { for c in columns { for k in 0..<inner { t.values[(r * width + c) * inner + k] = 0 } } }
            masked[name] = t
        }
        try model.loadStateDict(masked)
        let x = try Tensor(seededFloats(4 * 3 * 8 * 8, seed: 9), shape: [4, 3, 8, 8], engine: engine)
        let expected = try engine.noGrad { try model(x).toArray() }
        let got = try engine.noGrad { try smaller(x).toArray() }
        let close = closeness(got, expected, atol: 1e-5, rtol: 1e-5)
        #expect(close.passed, "\(close)")
        #expect(errorMessage { _ = try model.pruneFilters(amount: 1) } == "prune filters: amount 1.0 must lie in [0, 1)")
    }
}

/// Filter pruning of models imported from ONNX (left out of the Oclgrind run: MobileNetV3's forward
/// passes there take minutes; the kernels are the ordinary ones).
@Suite struct FilterPruningImportTests {
    /// Models exported from PyTorch and imported: MobileNetV3-small (depthwise convolutions, squeeze-and-
    /// excitation scales broadcast over the pixels, residual adds, BatchNorm folded at import) loses a
    /// quarter of each channel group and computes what the full model computes with those channels'
    /// readers zeroed; the residual CNN's grouped convolution keeps the channels it reads.
    @Test func importedModelsFromPyTorch() throws {
        let engine = try testEngine()
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/onnx").path
        let residual = try Model.load(path: folder + "/residual_cnn_torchscript.onnx", engine: engine).model
        let groups = try ChannelGroups(spec: residual.spec)
        #expect(groups.groups.first { $0.sources == ["stem.0", "block.conv2"] }?.fixedBecause
                == "it reaches node 'block.conv1' (conv2d), whose channels are not followed")
        #expect(groups.changeable.map { groups.groups[$0].sources } == [["down.0"], ["fc1"]])

        let model = try Model.load(path: folder + "/mobilenet_v3_small_torchscript.onnx", engine: engine).model
        let analysis = try ChannelGroups(spec: model.spec)
        // The squeeze-and-excitation scale is tied to the features it scales.
        #expect(analysis.groups.contains { $0.sources == ["features.0.0", "features.1.block.1.fc2"] && !$0.isFixed })
        let (smaller, report) = try model.pruneFilters(amount: 0.25)
        #expect(report.count == analysis.changeable.count && smaller.parameterCount < model.parameterCount * 9 / 10)
        var masked = try model.stateDict()
        let keep = Dictionary(uniqueKeysWithValues: report.map { ($0.group, $0.keptChannels) })
        for (name, columns) in try analysis.readerColumns(removing: keep) {
            var t = try #require(masked[name])
            let (rows, width) = (t.shape[0], t.shape[1]), inner = t.shape.dropFirst(2).reduce(1, *)
            for r in 0..<rows { for c in columns { for k in 0..<inner { t.values[(r * width + c) * inner + k] = 0 } } }
            masked[name] = t
        }
        try model.loadStateDict(masked)
        let shape = [2] + model.spec.inputShape
        let x = try Tensor(seededFloats(shape.reduce(1, *), seed: 17), shape: shape, engine: engine)
        let expected = try engine.noGrad { try model(x).toArray() }
        let got = try engine.noGrad { try smaller(x).toArray() }
        let close = closeness(got, expected, atol: 1e-4, rtol: 1e-4)
        #expect(close.passed, "\(close)")
    }
}
