import Foundation
import Testing
import Prism
import PrismFormats

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
        // Adaptive pooling of 5 rows into 3 windows of sizes 2, 3, 2, which no ONNX AveragePool computes.
        let json = """
        {"format": 2, "input_shape": [2, 5, 4], "outputs": 2, "nodes": [{"name": "gap", "op": "adaptiveavgpool2d", "output_size": [3, 2]},
         {"name": "flat", "op": "flatten"}, {"name": "fc", "op": "linear", "in_features": 12, "out_features": 2}]}
        """
        try SafetensorsFile(tensors: ["fc.weight": HostTensor(shape: [2, 12], values: [Float](repeating: 0.1, count: 24)),
                                      "fc.bias": HostTensor(shape: [2], values: [0, 0])],
                            metadata: ["prism.model": json]).write(path: dir + "/uneven.safetensors")
        expectOneLineError(try runPrism(["export", "--device", "cpu", "--model", dir + "/uneven.safetensors", "--onnx", dir + "/u.onnx"]),
                           "uneven.safetensors: node 'gap' (adaptiveavgpool2d): output_size (3, 2) over a 5×4 input averages windows of different sizes")
        #expect(!FileManager.default.fileExists(atPath: dir + "/u.onnx"))
        expectOneLineError(try runPrism(["export", "--device", "cpu", "--model", Self.format1 + "/format1_mlp.safetensors", "--onnx", dir + "/missing/m.onnx"]),
                           "missing/m.onnx: the folder")
    }
}
