import Foundation
import Testing
@testable import Prism
import PrismTestSupport
import PrismCL

/// The graph model: the README's description builds and runs, descriptions round-trip through
/// JSON, every refusal names the node, a residual graph computes what its ops composed by hand do
/// (fused or not), a copy on another engine computes the same, and BatchNorm's running statistics
/// move as PyTorch's.
@Suite struct GraphTests {
    /// The JSON block after the README's `model-example` marker.
    static func readmeExample() throws -> String {
        let readme = try String(contentsOfFile: fixturesDirectory + "/../../README.md", encoding: .utf8)
        let marker = try #require(readme.range(of: "<!-- model-example"))
        let open = try #require(readme.range(of: "```json\n", range: marker.upperBound..<readme.endIndex))
        let close = try #require(readme.range(of: "\n```", range: open.upperBound..<readme.endIndex))
        return String(readme[open.upperBound..<close.lowerBound])
    }

    @Test func theReadmeDescriptionBuildsRunsAndRoundTrips() throws {
        let engine = try testEngine()
        let spec = try ModelSpec.decode(json: try Self.readmeExample(), source: "README")
        #expect(spec.nodes.count == 13 && spec.output == "fc" && spec.inputNormalization?.mean == [0.286])
        let model = try Model(spec: spec, seed: 3, engine: engine)
        #expect(model.namedParameters.map(\.name).contains("stem.0.weight") && !model.namedParameters.map(\.name).contains("stem.0.bias"))
        #expect(model.namedBuffers.map(\.name) == ["stem.1.running_mean", "stem.1.running_var", "bn1.running_mean", "bn1.running_var",
                                                  "bn2.running_mean", "bn2.running_var"])
        let y = try model(try Tensor.uniform([2, 1, 28, 28], seed: 1, engine: engine))
        #expect(y.shape == [2, 10])
        // Written and read back: the same description, equal as values.
        let again = try ModelSpec.decode(json: try spec.json())
        #expect(again == spec)
        #expect(try spec.json().contains("\"format\":2"))
    }

    /// One message per refusal, naming the node and what would be accepted.
    @Test func badDescriptionsNameTheNode() throws {
        func message(_ nodes: String, output: String? = nil) -> String {
            let json = #"{"format": 2, "input_shape": [2, 5, 5], "outputs": 3, "nodes": ["# + nodes + "]" + (output.map { #", "output": "\#($0)""# } ?? "") + "}"
            do {
                let spec = try ModelSpec.decode(json: json, source: "m.json")
                try spec.validate()
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        let flat = #"{"name": "f", "op": "flatten"}, {"name": "fc", "op": "linear", "in_features": 50, "out_features": 3}"#
        #expect(message(flat) == "no error")
        #expect(message(#"{"name": "c", "op": "conv3d"}, "# + flat).hasPrefix(
            "model: node 0 'c' (conv3d): unknown op 'conv3d'; supported ops: adaptiveavgpool2d, add, amax, avgpool2d, batchnorm1d, batchnorm2d, block, broadcast_to, cast, cat, "))
        #expect(message(#"{"name": "c", "op": "conv2d", "in_channels": 2, "out_channels": 2, "kernel_size": 1, "padding_mode": "zeros"}, "# + flat)
            == "model: node 0 'c' (conv2d): unknown attribute 'padding_mode'; conv2d takes in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias")
        #expect(message(#"{"name": "c", "op": "conv2d", "in_channels": 2, "kernel_size": 1}, "# + flat)
            == "model: node 0 'c' (conv2d): attribute 'out_channels' is missing")
        #expect(message(#"{"name": "c", "op": "conv2d", "in_channels": 2, "out_channels": "two", "kernel_size": 1}, "# + flat)
            == "model: node 0 'c' (conv2d): attribute 'out_channels' is not an integer")
        #expect(message(#"{"name": "a", "op": "add", "inputs": ["input", "later"]}, "# + flat)
            == "model: node 0 'a' (add): input 'later' is not the model's input or an earlier node")
        #expect(message(#"{"name": "a", "op": "add"}, "# + flat)
            == "model: node 0 'a' (add): takes 2 inputs, or 1 input and other_shape (the shape of the constant buffer 'other'), input shape [2, 5, 5]")
        #expect(message(#"{"name": "f", "op": "relu"}, "# + flat) == "model: node 1 'f' (flatten): the name 'f' is used twice")
        #expect(message(#"{"name": "input", "op": "relu"}, "# + flat) == "model: node 0 'input' (relu): the name 'input' is reserved for the model's input")
        #expect(message(#"{"name": "c", "op": "conv2d", "in_channels": 3, "out_channels": 2, "kernel_size": 1}, "# + flat)
            == "model: node 0 'c' (conv2d): expects [3, H, W], input shape [2, 5, 5]")
        #expect(message(#"{"name": "c", "op": "conv2d", "in_channels": 2, "out_channels": 3, "kernel_size": 1, "groups": 2}, "# + flat)
            == "model: node 0 'c' (conv2d): 2 input and 3 output channels do not split into 2 groups, input shape [2, 5, 5]")
        #expect(message(flat, output: "nowhere") == "model: output 'nowhere' is not a node")
        let future = #"{"format": 3, "input_shape": [2], "outputs": 2, "nodes": []}"#
        #expect(throws: DataError.self) { try ModelSpec.decode(json: future) }
        #expect((try? ModelSpec.decode(json: future)) == nil)
        do { _ = try ModelSpec.decode(json: future, source: "m.json") } catch { #expect("\(error)".contains("format 3 is not one this Prism reads")) }
    }

    /// input → conv a → relu r → conv b → add(r, b) → relu → avgpool → flatten → linear, and the
    /// same ops called one by one; `r` has two readers, so the conv–ReLU pair must still be right.
    @Test func aResidualGraphComputesItsOpsComposed() throws {
        let engine = try testEngine()
        let json = #"""
        {"format": 2, "input_shape": [3, 7, 6], "outputs": 4, "nodes": [
          {"name": "a", "op": "conv2d", "in_channels": 3, "out_channels": 5, "kernel_size": [3, 2], "padding": [1, 0], "stride": [1, 1]},
          {"name": "r", "op": "relu"},
          {"name": "b", "op": "conv2d", "in_channels": 5, "out_channels": 5, "kernel_size": 3, "padding": 1, "groups": 5},
          {"name": "sum", "op": "add", "inputs": ["r", "b"]},
          {"name": "r2", "op": "relu"},
          {"name": "pool", "op": "maxpool2d", "kernel_size": 2},
          {"name": "flat", "op": "flatten"},
          {"name": "fc", "op": "linear", "in_features": 30, "out_features": 4}]}
        """#
        let model = try Model(spec: try ModelSpec.decode(json: json), seed: 9, engine: engine)
        let x = try Tensor.uniform([3, 3, 7, 6], low: -1, high: 1, seed: 2, engine: engine)
        let ops = model.ops
        func composed() throws -> [Float] {
            let a = ops[0] as! Conv2DLayer, b = ops[2] as! Conv2DLayer, fc = ops[7] as! Linear
            let r = try conv2d(x, weight: a.weight, bias: a.bias, stride: (1, 1), padding: (1, 0)).relu()
            let s = try r.add(try conv2d(r, weight: b.weight, bias: b.bias, padding: (1, 1), groups: 5)).relu()
            let p = try maxPool2d(s, kernel: (2, 2)).flattened()
            return try linear(p, weight: fc.weight, bias: fc.bias).toArray()
        }
        let expected = try engine.noGrad { try composed() }
        let fused = try engine.noGrad { try model(x).toArray() }
        let taped = try model(x).toArray()
        let (_, captured) = try model.forward(x, capture: ["r", "sum", "pool"])
        #expect(captured["r"]?.shape == [3, 5, 7, 5] && captured["sum"]?.shape == [3, 5, 7, 5] && captured["pool"]?.shape == [3, 5, 3, 2])
        for (name, values) in [("fused", fused), ("taped", taped)] {
            for (u, v) in zip(values, expected) { #expect(abs(u - v) <= 1e-5 * max(1, abs(v)), "\(name)") }
        }
        #expect(model.activationName(1) == "r" && model.node(activation: "r") == 1)
        // A chain's activations keep their positional names; the node name alone also works.
        let chain = try Model(spec: try ModelSpec.cnn(height: 12, width: 12, classes: 3), seed: 1, engine: engine)
        let (_, acts) = try chain.forward(try Tensor.uniform([1, 1, 12, 12], seed: 3, engine: engine), capture: ["4.relu", "4"])
        #expect(acts["4.relu"] != nil && acts["4.relu"] === acts["4"])
        #expect(throws: TensorError.self) { try chain.forward(x, capture: ["nothing"]) }
    }

    @Test func aCopyOnAnotherEngineComputesTheSame() throws {
        let engine = try testEngine()
        var settings = Settings.current
        settings.device = settings.device ?? "cpu"
        let other = try Engine(settings: settings)
        let model = try Model(spec: try ModelSpec.decode(json: try Self.readmeExample()), seed: 5, engine: engine)
        let copy = try model.copy(to: other)
        #expect(copy.engine !== model.engine)
        let values = (0..<784).map { Float(($0 * 37) % 101) / 101 }
        let a = try model(try Tensor(values, shape: [1, 1, 28, 28], engine: engine)).toArray()
        let b = try copy(try Tensor(values, shape: [1, 1, 28, 28], engine: other)).toArray()
        #expect(a == b)
    }

    /// Training-mode BatchNorm normalizes by the batch and moves the running statistics by momentum
    /// (unbiased variance), as `nn.BatchNorm2d` does; evaluation uses the running ones.
    @Test func batchNormRunningStatisticsFollowPyTorch() throws {
        let engine = try testEngine()
        let json = #"{"format": 2, "input_shape": [2, 3, 2], "outputs": 12, "nodes": [{"name": "bn", "op": "batchnorm2d", "num_features": 2, "momentum": 0.25}, {"name": "f", "op": "flatten"}]}"#
        let model = try Model(spec: try ModelSpec.decode(json: json), seed: 0, engine: engine)
        var rng = SeededRandom(seed: 4)
        let x = (0..<(4 * 12)).map { _ in Float(rng.uniform(-2, 3)) }
        _ = try model(try Tensor(x, shape: [4, 2, 3, 2], engine: engine), training: true)
        let bn = try #require(model.ops[0] as? BatchNorm2D)
        for c in 0..<2 {
            let values = (0..<4).flatMap { n in (0..<6).map { Double(x[n * 12 + c * 6 + $0]) } }
            let mean = values.reduce(0, +) / 24
            let unbiased = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 23
            expectClose([try bn.runningMean.toArray()[c]], [0.25 * mean], "running mean \(c)")
            expectClose([try bn.runningVar.toArray()[c]], [0.75 + 0.25 * unbiased], "running variance \(c)")
        }
    }
}
