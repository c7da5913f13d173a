import Foundation
import Testing
import Prism
import PrismFormats
import PrismGraph
import PrismONNX
import PrismTestSupport

/// Models quantized by onnxruntime's static quantization in QDQ format (`Tests/Fixtures/make_onnx_qdq.py`):
/// int8 weights dequantized at import, each QuantizeLinear → DequantizeLinear pair on activations a
/// `fake_quantize` node; logits against onnxruntime running the pairs as written.
@Suite struct ONNXQuantizationTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/onnx").path

    @Test(arguments: [("mlp_qdq.onnx", "mlp"), ("residual_cnn_qdq.onnx", "cnn")])
    func quantizedModelsMatchOnnxruntime(_ file: String, _ prefix: String) throws {
        let engine = try testEngine()
        let (model, _) = try Model.load(path: Self.folder + "/" + file, engine: engine)
        #expect(model.spec.nodes.contains { $0.op == FakeQuantizeSchema.kind })
        let golden = try SafetensorsFile.read(path: Self.folder + "/onnx_qdq.safetensors")
        let x = try golden.tensor("\(prefix)_x"), logits = try golden.tensor("\(prefix)_logits")
        let output = try engine.noGrad { try model(try Tensor(x.values, shape: x.shape, engine: engine)).toArray() }
        // A value on a rounding boundary may land one step apart; the tolerance is a fraction of a step.
        expectClose(output, logits.values, atol: 1e-4, rtol: 1e-4, "\(file) vs onnxruntime")
    }
}
