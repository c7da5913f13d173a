import Foundation
import Testing

/// `prism export`: a model file written as ONNX, which prism then predicts with as it did with the original.
@Suite struct ExportCLITests {
    static let format1 = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/format1").path

    @Test func exportedModelPredictsWhatTheOriginalDoes() throws {
        let dir = try scratchDirectory("export")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // An MLP with input normalization (Fashion-MNIST's mean and std): the export takes raw pixels.
        let original = Self.format1 + "/format1_mlp.safetensors", exported = dir + "/mlp.onnx"
        let written = try runPrism(["export", "--device", "cpu", "--model", original, "--onnx", exported])
        #expect(written.status == 0, "\(written.stderr)")
        #expect(written.stdout == "wrote \(exported): ONNX opset 17, input [batch, 1, 28, 28] (input normalization included), output 'logits' [batch, 10]\n",
                "\(written.stdout)")
        let input = Self.format1 + "/x_mnist.npy"
        let before = try runPrism(["predict", "--device", "cpu", "--model", original, "--input", input, "--top", "10"])
        let after = try runPrism(["predict", "--device", "cpu", "--model", exported, "--input", input, "--top", "10"])
        #expect(before.status == 0 && after.status == 0, "\(before.stderr) \(after.stderr)")
        #expect(!before.stdout.isEmpty && after.stdout == before.stdout, "original:\n\(before.stdout)\nexported:\n\(after.stdout)")
    }

    @Test func whatDoesNotExportIsOneLine() throws {
        let dir = try scratchDirectory("export-refused")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        expectOneLineError(try runPrism(["export", "--device", "cpu", "--model", Self.format1 + "/format1_vit.safetensors", "--onnx", dir + "/v.onnx"]),
                           "format1_vit.safetensors: node '0' (patch_embed): has no ONNX form in Prism's export")
        #expect(!FileManager.default.fileExists(atPath: dir + "/v.onnx"))
        expectOneLineError(try runPrism(["export", "--device", "cpu", "--model", Self.format1 + "/format1_mlp.safetensors", "--onnx", dir + "/missing/m.onnx"]),
                           "missing/m.onnx: the folder")
    }
}
