import Testing
import PrismGraph

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
}
