import Foundation
import Testing
import PrismExplain
import PrismFormats

/// `--model m.onnx`: a PyTorch export predicted and explained by the command-line tool.
@Suite struct ONNXCLITests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/onnx").path

    @Test func predictsAndExplainsAnONNXExportAsPyTorchDoes() throws {
        let dir = try scratchDirectory("onnx")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let golden = try SafetensorsFile.read(path: Self.folder + "/onnx_golden.safetensors")
        let x = try golden.tensor("cnn_x"), logits = try golden.tensor("cnn_logits")
        // Example 2 as a one-row .npy file; its class probabilities from PyTorch's logits (in Double).
        let row = Array(x.values[(2 * 360)..<(3 * 360)])
        try writeNpy(row.map(Double.init), shape: [1, 3, 12, 10], path: dir + "/x.npy")
        let z = logits.values[(2 * 7)..<(3 * 7)].map(Double.init)
        let e = z.map { exp($0 - z.max()!) }
        let p = e.map { $0 / e.reduce(0, +) }
        let best = p.indices.max { p[$0] < p[$1] }!
        let model = Self.folder + "/residual_cnn_dynamo.onnx"
        let predicted = try runPrism(["predict", "--device", "cpu", "--model", model, "--input", dir + "/x.npy", "--top", "1"])
        #expect(predicted.status == 0, "\(predicted.stderr)")
        #expect(predicted.stdout.contains(String(format: "1. class %d (%d)  %.4f", best, best, p[best])), "\(predicted.stdout) (expected class \(best), \(p[best]))")
        let explained = try runPrism(["explain", "--device", "cpu", "--model", model, "--input", dir + "/x.npy", "--method", "saliency",
                                      "--json", dir + "/e.json"])
        #expect(explained.status == 0, "\(explained.stderr)")
        let document = try ExplainDocumentReader(path: dir + "/e.json")
        let values = document.values("saliency")
        #expect(values.count == 360 && values.contains { $0 != 0 } && values.allSatisfy(\.isFinite))
        // The explained f(x) is PyTorch's: the document's outputs against the golden logits.
        let outputs = ((document.json["predictions"] as? [String: Any])?["outputs"] as? [String: Any])?["values"] as? [[Double]] ?? []
        #expect(outputs.count == 1 && outputs.first?.count == 7)
        for (a, b) in zip(outputs.first ?? [], z) { #expect(abs(a - b) <= 1e-5 + 1e-4 * abs(b), "output \(a), PyTorch \(b)") }
        // An op Prism does not import: one line, exit 1. (unsupported_op.onnx holds an Erf node, which
        // imports; its op type renamed to Sin, of the same length, keeps the protobuf well formed.)
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.folder + "/unsupported_op.onnx")))
        let at = try #require((0...(bytes.count - 3)).first { bytes[$0..<($0 + 3)].elementsEqual("Erf".utf8) })
        bytes.replaceSubrange(at..<(at + 3), with: Array("Sin".utf8))
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/sin.onnx"))
        expectOneLineError(try runPrism(["predict", "--device", "cpu", "--model", dir + "/sin.onnx", "--input", dir + "/x.npy"]),
                           "node 'erf1' (Sin, opset 17): op not supported")
    }

    /// An imported model has no training data: SHAP on --input images hides superpixels with the
    /// blurred image and says so; a tabular import asks for a background instead of guessing one.
    @Test func shapOnAnImportedModelTakesTheBlurredImageAndSaysSo() throws {
        let dir = try scratchDirectory("onnx-shap")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let golden = try SafetensorsFile.read(path: Self.folder + "/onnx_golden.safetensors")
        let x = try golden.tensor("cnn_x"), logits = try golden.tensor("cnn_logits")
        try writeNpy(x.values[0..<360].map(Double.init), shape: [1, 3, 12, 10], path: dir + "/x.npy")
        let explained = try runPrism(["explain", "--device", "cpu", "--model", Self.folder + "/residual_cnn_torchscript.onnx", "--input", dir + "/x.npy",
                                      "--method", "kernel-shap", "--json", dir + "/e.json"])
        #expect(explained.status == 0, "\(explained.stderr)")
        #expect(explained.stderr.contains("is an ONNX model without training data to draw a background from: the SHAP methods hide superpixels with the image blurred (--shap-baseline blur"),
                "\(explained.stderr)")
        let document = try ExplainDocumentReader(path: dir + "/e.json")
        #expect(document.background["shap_reference"] as? String == "blur")
        // Efficiency: the values of the explained output add up to f(x) − f(reference), f(x) being PyTorch's logit.
        let target = (document.method()["targets"] as? [Int])?.first ?? -1
        let (values, shape) = document.array("values") ?? ([], [])
        let base = document.array("base_values")?.values ?? []
        #expect(shape.count == 3 && shape[0] == 1 && shape[2] == 7 && (0..<7).contains(target) && base.count == 7, "shape \(shape), target \(target)")
        if shape.count == 3, (0..<7).contains(target), base.count == 7 {
            let sum = (0..<shape[1]).reduce(0.0) { $0 + values[$1 * 7 + target] }
            let fx = Double(logits.values[target])
            #expect(abs(sum + base[target] - fx) <= 1e-4 * max(1, abs(fx)), "Σφ \(sum) + base \(base[target]) against PyTorch's f(x) \(fx)")
        }
        try writeNpy((0..<20).map { Double($0) / 20 }, shape: [1, 20], path: dir + "/row.npy")
        expectOneLineError(try runPrism(["explain", "--device", "cpu", "--model", Self.folder + "/mlp_torchscript.onnx", "--input", dir + "/row.npy",
                                         "--method", "kernel-shap"]),
                           "mlp_torchscript.onnx is an ONNX model, which carries no training data to draw a SHAP background from: give --background-data FILE")
    }

    /// A text classifier of two inputs (token ids and an attention mask): the ids explained by exact
    /// SHAP over the positions, a hidden token taking --baseline-token's id, equal to PyTorch's
    /// enumeration (`make_onnx_text.py`); what cannot work is refused in one line.
    @Test func explainsTokenIdsWithTheirAttentionMask() throws {
        let dir = try scratchDirectory("onnx-text")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let golden = try SafetensorsFile.read(path: Self.folder + "/onnx_text.safetensors")
        let ids = try #require(golden.integerTensors["ids"]), mask = try #require(golden.integerTensors["mask"])
        let shapley = try golden.tensor("shapley").values   // example 0: [10 positions, 3 classes]
        try writeNpy(ids.values[0..<10].map(Double.init), shape: [1, 10], path: dir + "/ids.npy")
        try writeNpy(mask.values[0..<10].map(Double.init), shape: [1, 10], path: dir + "/mask.npy")
        let model = Self.folder + "/text_dynamo.onnx"
        let base = ["explain", "--device", "cpu", "--model", model, "--input", dir + "/ids.npy"]
        let explained = try runPrism(base + ["--extra-input", "attention_mask=" + dir + "/mask.npy", "--baseline-token", "0",
                                             "--method", "exact-shap", "--target", "2", "--json", dir + "/e.json"])
        #expect(explained.status == 0, "\(explained.stderr)")
        let document = try ExplainDocumentReader(path: dir + "/e.json")
        let (values, shape) = document.array("values") ?? ([], [])
        #expect(shape == [1, 10, 3], "shape \(shape)")
        for p in 0..<10 where values.count == 30 {
            #expect(abs(values[p * 3 + 2] - Double(shapley[p * 3 + 2])) <= 1e-5, "position \(p): \(values[p * 3 + 2]) vs PyTorch \(shapley[p * 3 + 2])")
        }
        // predict with both inputs: PyTorch's class probabilities of example 0.
        let z = try golden.tensor("logits").values[0..<3].map(Double.init)
        let e = z.map { exp($0 - z.max()!) }, p = e.map { $0 / e.reduce(0, +) }
        let best = p.indices.max { p[$0] < p[$1] }!
        let predicted = try runPrism(["predict", "--device", "cpu", "--model", model, "--input", dir + "/ids.npy",
                                      "--extra-input", "attention_mask=" + dir + "/mask.npy", "--top", "1"])
        #expect(predicted.status == 0, "\(predicted.stderr)")
        #expect(predicted.stdout.contains(String(format: "1. class %d (%d)  %.4f", best, best, p[best])), "\(predicted.stdout)")
        expectOneLineError(try runPrism(base + ["--baseline-token", "0"]),
                           "the model also takes 'attention_mask' ([batch] + [10], int64): give --extra-input attention_mask=FILE.npy")
        expectOneLineError(try runPrism(base + ["--extra-input", "attention_mask=" + dir + "/mask.npy"]),
                           "'input_ids' holds token ids: give --baseline-token ID")
        expectOneLineError(try runPrism(base + ["--extra-input", "attention_mask=" + dir + "/mask.npy", "--baseline-token", "0", "--method", "gradcam"]),
                           "--method gradcam: 'input_ids' holds int64 token ids; they are explained by the SHAP methods")
        // Integrated Gradients at the token embeddings: one value per position, complete against
        // f(x) − f(padding everywhere), the reference recorded.
        let ig = try runPrism(base + ["--extra-input", "attention_mask=" + dir + "/mask.npy", "--baseline-token", "0", "--method", "ig",
                                      "--target", "2", "--json", dir + "/ig.json"])
        #expect(ig.status == 0, "\(ig.stderr)")
        let igDocument = try ExplainDocumentReader(path: dir + "/ig.json")
        let (phi, igShape) = igDocument.array("values") ?? ([], [])
        let baseValues = igDocument.array("base_values")?.values ?? []
        #expect(igShape == [1, 10, 1] && baseValues.count == 1, "shape \(igShape)")
        let logits = try golden.tensor("logits").values
        if phi.count == 10, baseValues.count == 1 {
            #expect(abs(phi.reduce(0, +) + baseValues[0] - Double(logits[2])) <= 1e-4, "Σφ \(phi.reduce(0, +)) + f(x′) \(baseValues[0]) vs f(x) \(logits[2])")
            for p in 7..<10 { #expect(phi[p] == 0, "padding position \(p): \(phi[p])") }
        }
        #expect(igDocument.settings()["baseline"] as? String == "token 0" && igDocument.settings()["layer"] as? String == "tok")
        expectOneLineError(try runPrism(base + ["--extra-input", "mask=" + dir + "/mask.npy", "--baseline-token", "0"]),
                           "--extra-input mask: the model has no input of that name; its other inputs are attention_mask")
    }
}
