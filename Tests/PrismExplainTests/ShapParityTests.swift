import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

/// Kernel SHAP against shap.KernelExplainer on the tiny MLP of `Tests/Fixtures/make_shap_fixture.py`
/// (every coalition enumerated, l1_reg off).
@Suite struct ShapParityTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/shap_kernel_mlp.safetensors").path

    @Test func kernelShapMatchesShapKernelExplainer() throws {
        let engine = try testEngine()
        let file = try SafetensorsFile.read(path: Self.fixture)
        let model = try Model(spec: try .mlp(inputShape: [6], hidden: [8], classes: 3), seed: 0, engine: engine)
        try model.loadStateDict(file.tensors, source: Self.fixture, strict: false)
        let instances = try #require(file.tensors["instances"]).values
        let background = try #require(file.tensors["background"]).values
        let games = try (0..<2).map { i in
            try DeviceGame(model: model, instance: Array(instances[(i * 6)..<((i + 1) * 6)]), background: background)
        }
        let e = try KernelShap(budget: 62, seed: 0).explain(games)
        #expect(e.settings["sampled"] == 0)
        let expected = try #require(file.tensors["shap_values"]).values.map(Double.init)
        expectClose(e.values, expected, atol: 2e-5, rtol: 1e-4, "kernel-shap vs shap")
        let base = try #require(file.tensors["expected_value"]).values.map(Double.init)
        expectClose(e.baseValues ?? [], base + base, atol: 2e-5, rtol: 1e-5, "base value vs shap's expected_value")

        // l1_reg="num_features(3)": LARS picks 3 features per output, as shap does.
        let selected = try KernelShap(budget: 62, seed: 0, numFeatures: 3).explain(games)
        #expect(selected.standardErrors == nil && selected.settings["num_features"] == 3)
        let shapSelected = try #require(file.tensors["shap_values_num_features_3"]).values.map(Double.init)
        expectClose(selected.values, shapSelected, atol: 2e-5, rtol: 1e-4, "kernel-shap numFeatures(3) vs shap num_features(3)")
        for i in 0..<2 {
            for o in 0..<3 {
                #expect((0..<6).filter { selected.value(instance: i, feature: $0, output: o) != 0 }.count == 3)
                #expect(abs(try #require(selected.additivityGap(instance: i, output: o))) < 1e-4)
            }
        }
    }

    /// The same parity through an imported ONNX model (`Tests/Fixtures/make_onnx_shap.py`): a PyTorch
    /// MLP with Tanh and Sigmoid exported by torch.onnx, explained over 12 features with every
    /// coalition enumerated, against shap.KernelExplainer on the PyTorch network.
    @Test func kernelShapOnAnImportedONNXModelMatchesShap() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/onnx").path
        let engine = try testEngine()
        let (model, _) = try Model.load(path: folder + "/shap_mlp.onnx", engine: engine)
        let file = try SafetensorsFile.read(path: folder + "/onnx_shap.safetensors")
        let instances = try file.tensor("instances").values, background = try file.tensor("background").values
        // The imported network computes onnxruntime's logits.
        let logits = try engine.noGrad { try model(try Tensor(instances, shape: [2, 12], engine: engine)).toArray() }
        expectClose(logits.map(Double.init), try file.tensor("logits").values.map(Double.init), atol: 1e-5, rtol: 1e-4, "logits vs onnxruntime")
        let games = try (0..<2).map { i in
            try DeviceGame(model: model, instance: Array(instances[(i * 12)..<((i + 1) * 12)]), background: background)
        }
        let e = try KernelShap(budget: 4094, seed: 0).explain(games)
        #expect(e.settings["sampled"] == 0)
        expectClose(e.values, try file.tensor("shap_values").values.map(Double.init), atol: 2e-5, rtol: 1e-4, "kernel-shap on the ONNX MLP vs shap")
        let base = try file.tensor("expected_value").values.map(Double.init)
        expectClose(e.baseValues ?? [], base + base, atol: 2e-5, rtol: 1e-5, "base value vs shap's expected_value")
    }
}
