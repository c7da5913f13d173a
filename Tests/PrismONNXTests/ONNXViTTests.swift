import Foundation
import Testing
import Prism
import PrismExplain
import PrismFormats
import PrismGraph
import PrismONNX
import PrismTestSupport

/// torchvision's VisionTransformer, a held-out import (`Tests/Fixtures/make_onnx_vit.py`): the class
/// token repeated for the batch (an `expand` node), the attention of nn.MultiheadAttention, LayerNorm,
/// GELU; logits against onnxruntime's, input gradients against PyTorch's, from both exporters; its
/// attention maps against PyTorch's probabilities and their gradients.
@Suite struct ONNXViTTests {
    @Test(arguments: ["torchscript", "dynamo"])
    func visionTransformerMatchesOnnxruntimeAndPyTorch(export: String) throws {
        let spec = try ONNXTransformerTests().importAndCheck("vit_\(export).onnx", prefix: "", export: export, golden: "onnx_vit.safetensors")
        #expect(spec.inputShape == [3, 32, 32] && spec.classCount == 5)
        let ops = Set(spec.nodes.map(\.op))
        for op in [ExpandSchema.kind, "cat", "conv2d", "matmul", "softmax", "layernorm"] { #expect(ops.contains(op), "\(export): no \(op) in \(ops.sorted())") }
    }

    /// The imported ViT's attention (its softmax nodes, found by their [heads, 17, 17] shape over the
    /// 4 × 4 patches of 8 pixels and the class token) equals PyTorch's probabilities, and their
    /// gradients of logit 3 equal PyTorch's: what attention rollout and attention × gradient read.
    @Test(arguments: ["torchscript", "dynamo"])
    func attentionMapsMatchPyTorch(export: String) throws {
        let engine = try testEngine()
        let folder = ONNXTransformerTests.folder
        let (spec, tensors) = try ONNXModel.read(path: folder + "/vit_\(export).onnx")
        let model = try Model(spec: spec, seed: 0, engine: engine)
        try model.loadStateDict(tensors, source: export)
        let golden = try SafetensorsFile.read(path: folder + "/onnx_vit.safetensors")
        let x = try golden.tensor("x"), attention = try golden.tensor("attention"), grads = try golden.tensor("attention_grad")
        #expect(attention.shape == [2, 2, 2, 17, 17])
        let maps = try AttentionMaps(model: model)
        #expect(maps.grid.rows == 4 && maps.grid.columns == 4 && maps.grid.patch == 8)
        let probabilities = try maps.probabilities(instances: x.values, targets: [3, 3])
        #expect(probabilities.count == 2 && probabilities.allSatisfy { $0.layers.count == 2 && $0.heads == 2 && $0.tokens == 17 })
        let per = 2 * 17 * 17
        let gradScale = Double(grads.values.map(abs).max() ?? 0)
        for (n, p) in probabilities.enumerated() {
            for layer in 0..<min(2, p.layers.count) {
                let offset = (layer * 2 + n) * per
                let want = attention.values[offset..<(offset + per)], wantGrad = grads.values[offset..<(offset + per)]
                for (a, b) in zip(p.layers[layer], want) { #expect(abs(a - Double(b)) <= 1e-5, "\(export) example \(n) layer \(layer): \(a) vs \(b)") }
                for (a, b) in zip(p.gradients?[layer] ?? [], wantGrad) {
                    #expect(abs(a - Double(b)) <= 1e-4 * gradScale, "\(export) gradient example \(n) layer \(layer): \(a) vs \(b)")
                }
            }
        }
        // Rollout through the attribution method: one value per patch, the class token's row.
        let rollout = try AttentionAttribution(model: model, kind: .rollout).explain(instances: x.values, targets: .classes([3]))
        #expect(rollout.featureCount == 16)
        let expected = AttentionMaps.classRow(AttentionMaps.rollout(probabilities[0]), tokens: 17)
        for (a, b) in zip(rollout.attributions(instance: 0, output: 0), expected) { #expect(abs(a - b) <= 1e-9) }
    }
}
