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
}
