import Foundation
import Testing
import Prism
import PrismFormats
import PrismGraph
@testable import PrismONNX
import PrismTestSupport

/// The element-wise ops written as ONNX: run by onnxruntime against Prism's logits, and imported
/// again as the same ops with the same logits.
@Suite struct ONNXExportElementwiseTests {
    static let json = """
    {"format": 2, "input_shape": [3, 4, 5], "outputs": 4, "nodes": [
     {"name": "a", "op": "sub", "other_shape": [3], "other_first": true},
     {"name": "b", "op": "mul", "other_shape": [5]},
     {"name": "c", "op": "div", "other_shape": []},
     {"name": "d", "op": "hardtanh", "min_val": -1.5, "max_val": 2},
     {"name": "e", "op": "prelu", "num_parameters": 3},
     {"name": "g", "op": "adaptiveavgpool2d", "output_size": 1},
     {"name": "h", "op": "hardsigmoid"},
     {"name": "m", "op": "mul", "inputs": ["e", "h"]},
     {"name": "sq", "op": "mul", "inputs": ["m", "m"]},
     {"name": "one", "op": "add", "other_shape": [1]},
     {"name": "r", "op": "sqrt"},
     {"name": "l", "op": "log"},
     {"name": "p", "op": "pow", "other_shape": [1, 1, 5], "other_first": true},
     {"name": "n", "op": "neg"},
     {"name": "ex", "op": "exp"},
     {"name": "rc", "op": "reciprocal"},
     {"name": "er", "op": "erf", "inputs": ["m"]},
     {"name": "hs", "op": "hardsigmoid", "alpha": 0.2, "beta": 0.4},
     {"name": "pw", "op": "pow", "inputs": ["one", "h"]},
     {"name": "s", "op": "add", "inputs": ["rc", "pw"]},
     {"name": "t", "op": "sub", "inputs": ["s", "hs"]},
     {"name": "dv", "op": "div", "inputs": ["t", "one"]},
     {"name": "q", "op": "prelu", "inputs": ["dv"]},
     {"name": "flat", "op": "flatten"},
     {"name": "fc", "op": "linear", "in_features": 60, "out_features": 4}
    ]}
    """

    @Test func everyElementwiseOpRunsInONNXRuntimeAndReimports() throws {
        let engine = try testEngine()
        let export = ONNXExportTests()
        let model = try Model(spec: try ModelSpec.decode(json: Self.json), seed: 41, engine: engine)
        var state = try model.stateDict()
        var random = SeededRandom(seed: 42)
        state["a.other"] = HostTensor(shape: [3], values: random.floats(3, -1, 1))
        state["b.other"] = HostTensor(shape: [5], values: random.floats(5, 0.5, 1.5))
        state["c.other"] = HostTensor(shape: [], values: [1.3])
        state["e.weight"] = HostTensor(shape: [3], values: random.floats(3, -0.5, 0.5))
        state["one.other"] = HostTensor(shape: [1], values: [1])
        state["p.other"] = HostTensor(shape: [1, 1, 5], values: random.floats(5, 0.5, 2))
        state["q.weight"] = HostTensor(shape: [1], values: [0.1])
        try model.loadStateDict(state)
        let shape = [3, 3, 4, 5], x = random.floats(shape.reduce(1, *), -2, 2)
        let expected = try export.prismLogits(model, x, shape: shape)
        let bytes = try export.exportAndCompare(model, input: x, shape: shape, expected: expected, label: "elementwise")
        let (imported, tensors) = try ONNXModel.read(bytes: bytes, source: "elementwise")
        #expect(imported.nodes.map(\.op) == model.spec.nodes.map(\.op))
        let again = try Model(spec: imported, seed: 0, engine: engine)
        try again.loadStateDict(tensors, source: "elementwise")
        expectClose(try export.prismLogits(again, x, shape: shape), expected, "elementwise: re-imported vs original")
    }
}
