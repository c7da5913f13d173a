import Foundation
import Testing
import Prism
import PrismFormats
import PrismGraph
@testable import PrismONNX
import PrismTestSupport

/// ONNX files exported from PyTorch by both exporters (`Tests/Fixtures/make_onnx_golden.py`),
/// imported and run against PyTorch's logits; malformed and unsupported files refused in one line.
@Suite struct ONNXImportTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/onnx").path

    /// Imports `file`, builds the model, loads the parameters and compares its outputs on `x` with `expected`.
    func importAndRun(_ file: String, x: String, expected: String) throws -> ModelSpec {
        let engine = try testEngine()
        let (spec, tensors) = try ONNXModel.read(path: Self.folder + "/" + file)
        let model = try Model(spec: spec, seed: 0, engine: engine)
        try model.loadStateDict(tensors, source: file)
        let golden = try SafetensorsFile.read(path: Self.folder + "/onnx_golden.safetensors")
        let input = try golden.tensor(x), logits = try golden.tensor(expected)
        let output = try engine.noGrad { try model(try Tensor(input.values, shape: input.shape, engine: engine)).toArray() }
        #expect(output.count == logits.values.count, "\(file)")
        var worst: Float = 0
        for (a, b) in zip(output, logits.values) {
            let diff = abs(a - b)
            #expect(diff <= 1e-5 + 1e-4 * abs(b), "\(file): \(a) vs PyTorch \(b)")
            worst = max(worst, diff.isNaN ? .infinity : diff)
        }
        #expect(worst.isFinite)
        return spec
    }

    @Test(arguments: ["residual_cnn_torchscript.onnx", "residual_cnn_dynamo.onnx"])
    func residualCNNMatchesPyTorch(file: String) throws {
        let spec = try importAndRun(file, x: "cnn_x", expected: "cnn_logits")
        #expect(spec.inputShape == [3, 12, 10] && spec.classCount == 7)
        let ops = spec.nodes.map(\.op)
        for op in ["conv2d", "add", "maxpool2d", "batchnorm2d", "elu", "avgpool2d", "hardswish", "cat", "adaptiveavgpool2d", "flatten", "linear", "sigmoid"] {
            #expect(ops.contains(op), "\(file): no \(op) node in \(ops)")
        }
        // Parameters keep PyTorch's names where the exporter kept them.
        #expect(spec.nodes.contains { $0.name == "fc1" && $0.op == "linear" } && spec.nodes.contains { $0.name == "pool_bn" })
        if file.contains("torchscript") {
            // A convolution whose weight the exporter renamed (BatchNorm folded in) takes its module
            // path from the node name: /block/conv1/Conv → block.conv1.
            #expect(spec.nodes.contains { $0.name == "block.conv1" && $0.op == "conv2d" }, "\(spec.nodes.map(\.name))")
        }
    }

    @Test func nodeNamesAreModulePaths() {
        #expect(ONNXImporter.modulePath("/layer4/layer4.1/conv2/Conv", opType: "Conv") == "layer4.1.conv2")
        #expect(ONNXImporter.modulePath("/features/features.3/block/block.2/fc1/Conv_1", opType: "Conv") == "features.3.block.2.fc1")
        #expect(ONNXImporter.modulePath("/Add", opType: "Add") == "Add")
        #expect(ONNXImporter.modulePath("node_Conv_0", opType: "Conv") == "node_Conv_0")
        #expect(ONNXImporter.modulePath("/relu/Relu", opType: "Relu") == "relu")
    }

    @Test(arguments: ["mlp_torchscript.onnx", "mlp_dynamo.onnx"])
    func mlpMatchesPyTorch(file: String) throws {
        let spec = try importAndRun(file, x: "mlp_x", expected: "mlp_logits")
        #expect(spec.inputShape == [20] && spec.classCount == 5)
        // The MatMul by `w` and the Add of `b` become one linear layer with a bias.
        #expect(spec.nodes.map(\.op) == ["linear", "tanh", "linear", "elu", "linear", "softmax"])
        #expect(spec.nodes[2].attributes["bias"] == nil)
    }

    /// The error of importing `file`, or of `bytes` when given.
    func refusal(_ file: String, bytes: [UInt8]? = nil) -> String? {
        do {
            if let bytes { _ = try ONNXModel.read(bytes: bytes, source: file) } else { _ = try ONNXModel.read(path: Self.folder + "/" + file) }
            return nil
        } catch let error as DataError {
            return error.message
        } catch {
            return "not a DataError: \(error)"
        }
    }

    @Test func unsupportedFilesAreRefusedInOneLine() throws {
        let cases: [(String, [String])] = [
            // Its data file is absent on purpose (external data is read from beside the model).
            ("external_data.onnx", ["tensor 'fc.weight'", "its external data file 'weights.bin' does not exist beside the model"]),
            ("float64_initializer.onnx", ["tensor 'fc.weight'", "dtype DOUBLE"]),
            ("asymmetric_pads.onnx", ["node 'conv' (Conv, opset 17)", "asymmetric pads [0, 0, 1, 1]"]),
        ]
        for (file, parts) in cases {
            let message = try #require(refusal(file), "\(file) imported")
            #expect(message.hasPrefix(Self.folder + "/" + file + ": "), "\(message)")
            #expect(!message.contains("\n"), "\(message)")
            for part in parts { #expect(message.contains(part), "\(file): '\(part)' not in: \(message)") }
        }
        // unsupported_op.onnx holds one Erf node, which imports; with its op type renamed to Sin
        // (same length, so the protobuf stays well formed) it is refused.
        let erf = try readFile(Self.folder + "/unsupported_op.onnx")
        let sin = try #require(renamed(erf, from: "Erf", to: "Sin"))
        let message = try #require(refusal("sin.onnx", bytes: sin), "Sin imported")
        #expect(message.hasPrefix("sin.onnx: node 'erf1' (Sin, opset 17): op not supported; Prism imports Add, "), "\(message)")
        #expect(!message.contains("\n") && message.contains("PRelu"), "\(message)")
    }

    /// `bytes` with the one occurrence of `from` replaced by `to` (of the same length), or nil.
    func renamed(_ bytes: [UInt8], from: String, to: String) -> [UInt8]? {
        let (a, b) = (Array(from.utf8), Array(to.utf8))
        let hits = (0...(bytes.count - a.count)).filter { Array(bytes[$0..<($0 + a.count)]) == a }
        guard a.count == b.count, hits.count == 1, let at = hits.first else { return nil }
        var out = bytes
        out.replaceSubrange(at..<(at + b.count), with: b)
        return out
    }

    /// The Erf node of unsupported_op.onnx (input [1, 4]) imports as an `erf` node and runs.
    @Test func erfImportsAndRuns() throws {
        let engine = try testEngine()
        let (spec, tensors) = try ONNXModel.read(path: Self.folder + "/unsupported_op.onnx")
        #expect(spec.nodes.map(\.op) == ["erf"] && spec.inputShape == [4])
        let model = try Model(spec: spec, seed: 0, engine: engine)
        try model.loadStateDict(tensors)
        let x: [Float] = [-2, -0.3, 0.5, 1.7]
        let y = try engine.noGrad { try model(try Tensor(x, shape: [1, 4], engine: engine)).toArray() }
        expectClose(y, x.map { Foundation.erf(Double($0)) }, atol: 3e-7, rtol: 0, "erf")
    }

    @Test func truncatedAndGarbageBytesAreRefusedInOneLine() throws {
        let bytes = try readFile(Self.folder + "/residual_cnn_torchscript.onnx")
        var generator = SeededRandom(seed: 7)
        let garbage = (0..<4096).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        for (name, data) in [("truncated.onnx", Array(bytes.prefix(bytes.count / 2))), ("garbage.onnx", garbage), ("empty.onnx", [])] {
            let message = try #require(refusal(name, bytes: data), "\(name) imported")
            #expect(message.hasPrefix(name + ": "), "\(message)")
            #expect(!message.contains("\n"), "\(message)")
        }
        // Every prefix of a real file is refused (or, where the cut falls between fields, imported
        // only if it still makes a whole model), never a crash.
        for cut in stride(from: 0, to: bytes.count, by: 97) { _ = refusal("cut.onnx", bytes: Array(bytes.prefix(cut))) }
    }
}
