import Testing
import Prism
import PrismFormats
import PrismGraph
import PrismTestSupport

/// InstanceNorm2d and GroupNorm exported from PyTorch (`Tests/Fixtures/make_onnx_norms.py`): both
/// exporters write InstanceNormalization, GroupNorm as Reshape → InstanceNormalization → Reshape →
/// Mul → Add; logits against onnxruntime's, input gradients against PyTorch's.
@Suite struct ONNXNormTests {
    @Test(arguments: ["torchscript", "dynamo"])
    func instanceAndGroupNormMatchOnnxruntimeAndPyTorch(export: String) throws {
        let spec = try ONNXTransformerTests().importAndCheck("norm_cnn_\(export).onnx", prefix: "", export: export, golden: "onnx_norms.safetensors")
        #expect(spec.inputShape == [3, 9, 11] && spec.classCount == 5)
        #expect(spec.nodes.filter { $0.op == GroupNormSchema.kind }.count == 2, "\(spec.nodes.map(\.op))")
    }

    /// ONNX's GroupNormalization op (opsets 18–20: scale and bias per group), written with
    /// onnx.helper, against onnxruntime.
    @Test func groupNormalizationOpMatchesOnnxruntime() throws {
        let folder = ONNXTransformerTests.folder
        let engine = try testEngine()
        let (model, _) = try Model.load(path: folder + "/groupnorm_op.onnx", engine: engine)
        #expect(model.spec.nodes.contains { $0.op == GroupNormSchema.kind })
        let golden = try SafetensorsFile.read(path: folder + "/onnx_norms.safetensors")
        let x = try golden.tensor("gn_x"), logits = try golden.tensor("gn_logits")
        let output = try engine.noGrad { try model(try Tensor(x.values, shape: x.shape, engine: engine)).toArray() }
        expectClose(output, logits.values, atol: 1e-5, rtol: 1e-4, "GroupNormalization vs onnxruntime")
    }
}
