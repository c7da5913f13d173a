import Testing
import PrismGraph

/// torchvision's VisionTransformer, a held-out import (`Tests/Fixtures/make_onnx_vit.py`): the class
/// token repeated for the batch (an `expand` node), the attention of nn.MultiheadAttention, LayerNorm,
/// GELU; logits against onnxruntime's, input gradients against PyTorch's, from both exporters.
@Suite struct ONNXViTTests {
    @Test(arguments: ["torchscript", "dynamo"])
    func visionTransformerMatchesOnnxruntimeAndPyTorch(export: String) throws {
        let spec = try ONNXTransformerTests().importAndCheck("vit_\(export).onnx", prefix: "", export: export, golden: "onnx_vit.safetensors")
        #expect(spec.inputShape == [3, 32, 32] && spec.classCount == 5)
        let ops = Set(spec.nodes.map(\.op))
        for op in [ExpandSchema.kind, "cat", "conv2d", "matmul", "softmax", "layernorm"] { #expect(ops.contains(op), "\(export): no \(op) in \(ops.sorted())") }
    }
}
