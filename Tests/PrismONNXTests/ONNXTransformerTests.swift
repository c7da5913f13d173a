import Foundation
import Testing
import Prism
import PrismFormats
import PrismGraph
import PrismONNX
import PrismTestSupport

/// A transformer encoder classifier exported from PyTorch (`Tests/Fixtures/make_onnx_transformer.py`):
/// imported, its logits against onnxruntime's and its input gradients against PyTorch's.
@Suite struct ONNXTransformerTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/onnx").path

    @Test(arguments: ["dynamo", "torchscript"])
    func encoderMatchesOnnxruntimeAndPyTorch(export: String) throws {
        let engine = try testEngine()
        let file = "transformer_\(export).onnx"
        let (spec, tensors) = try ONNXModel.read(path: Self.folder + "/" + file)
        #expect(spec.inputShape == [8, 6] && spec.classCount == 5)
        let ops = Set(spec.nodes.map(\.op))
        for op in ["linear", "matmul", "softmax", "layernorm", "mean"] { #expect(ops.contains(op), "\(file): no \(op) node in \(ops.sorted())") }
        let model = try Model(spec: spec, seed: 0, engine: engine)
        try model.loadStateDict(tensors, source: file)
        let golden = try SafetensorsFile.read(path: Self.folder + "/onnx_transformer.safetensors")
        let x = try golden.tensor("x"), w = try golden.tensor("w")
        let logits = try golden.tensor("logits_\(export)"), grad = try golden.tensor("grad")

        let input = try Tensor(x.values, shape: x.shape, engine: engine, requiresGrad: true)
        let output = try model(input)
        let got = try output.toArray()
        #expect(got.count == logits.values.count)
        var worst: Float = 0
        for (a, b) in zip(got, logits.values) {
            let diff = abs(a - b)
            #expect(diff <= 1e-5 + 1e-4 * abs(b), "\(file): \(a) vs onnxruntime \(b)")
            worst = max(worst, diff.isNaN ? .infinity : diff)
        }
        #expect(worst.isFinite)

        // d sum(w · logits) / dx against PyTorch, relative to the largest |g|.
        try output.backward(try Tensor(w.values, shape: w.shape, engine: engine))
        let g = try #require(input.grad).toArray()
        let scale = grad.values.map(abs).max() ?? 0
        #expect(scale > 0 && g.count == grad.values.count)
        for (a, b) in zip(g, grad.values) {
            #expect(abs(a - b) <= 1e-4 * scale, "\(file): gradient \(a) vs PyTorch \(b) (max |g| \(scale))")
        }
    }
}
