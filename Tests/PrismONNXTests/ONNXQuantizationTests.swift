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

    /// fake_quantize against its definition (round half to even, saturation) and its backward, the
    /// straight-through estimator.
    @Test func fakeQuantizeMatchesItsDefinition() throws {
        let engine = try testEngine()
        let scale: Float = 0.05, zero = 3, range = -8...7
        var values = seededFloats(301, seed: 9, low: -1, high: 1)
        values += [0.025 * 1, 0.075, -0.125, 10, -10]  // halves of a step (ties to even) and saturation
        let x = try Tensor(values, shape: [values.count], engine: engine, requiresGrad: true)
        let y = try x.fakeQuantize(scale: scale, zeroPoint: zero, quantMin: range.lowerBound, quantMax: range.upperBound)
        let expected = values.map { v -> Double in
            let q = min(max((v / scale).rounded(.toNearestOrEven) + Float(zero), Float(range.lowerBound)), Float(range.upperBound))
            return Double((q - Float(zero)) * scale)
        }
        expectClose(try y.toArray(), expected, atol: 1e-7, rtol: 0, "fake_quantize")
        try y.backward(try Tensor.ones([values.count], engine: engine))
        let mask = values.map { v -> Double in
            let q = (v / scale).rounded(.toNearestOrEven) + Float(zero)
            return q >= Float(range.lowerBound) && q <= Float(range.upperBound) ? 1 : 0
        }
        expectClose(try #require(x.grad).toArray(), mask, atol: 0, rtol: 0, "straight-through gradient")
        #expect(throws: TensorError.self) { try x.fakeQuantize(scale: 0, zeroPoint: 0, quantMin: 0, quantMax: 255) }
    }
}
