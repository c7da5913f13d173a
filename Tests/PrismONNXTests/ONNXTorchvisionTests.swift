import Foundation
import Testing
import Prism
import PrismFormats
import PrismGraph
import PrismONNX
import PrismTestSupport

/// Held-out imports (`Tests/Fixtures/make_onnx_torchvision.py`): torchvision's MobileNetV3-small and
/// SqueezeNet 1.1 exported by both of PyTorch's exporters, their logits against onnxruntime's and
/// their input gradients against PyTorch's; and a graph of every element-wise op the importer maps.
@Suite struct ONNXTorchvisionTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/onnx").path

    static func golden() throws -> SafetensorsFile { try SafetensorsFile.read(path: folder + "/onnx_torchvision.safetensors") }

    /// `file` imported, built and loaded.
    func load(_ file: String, engine: Engine) throws -> (ModelSpec, Model) {
        let (spec, tensors) = try ONNXModel.read(path: Self.folder + "/" + file)
        let model = try Model(spec: spec, seed: 0, engine: engine)
        try model.loadStateDict(tensors, source: file)
        return (spec, model)
    }

    /// Fails unless every output is within 1e-5 + 1e-4·|expected| of onnxruntime's.
    func expectLogits(_ output: [Float], _ expected: HostTensor, _ label: String) {
        #expect(output.count == expected.values.count, "\(label)")
        var worst: Float = 0
        for (a, b) in zip(output, expected.values) {
            let diff = abs(a - b)
            #expect(diff <= 1e-5 + 1e-4 * abs(b), "\(label): \(a) vs onnxruntime \(b)")
            worst = max(worst, diff.isNaN ? .infinity : diff)
        }
        #expect(worst.isFinite, "\(label)")
    }

    struct Case: CustomStringConvertible, Sendable {
        var model: String
        var exporter: String
        var ops: [String]
        var description: String { "\(model)_\(exporter)" }
    }

    static let mobileNetOps = ["conv2d", "hardswish", "relu", "adaptiveavgpool2d", "hardsigmoid", "mul", "add", "flatten", "linear"]
    static let squeezeNetOps = ["conv2d", "relu", "maxpool2d", "cat", "adaptiveavgpool2d", "flatten"]
    static let cases = ["torchscript", "dynamo"].flatMap { exporter in
        [Case(model: "mobilenet_v3_small", exporter: exporter, ops: mobileNetOps), Case(model: "squeezenet1_1", exporter: exporter, ops: squeezeNetOps)]
    }

    @Test(arguments: cases)
    func logitsAndInputGradientsMatch(_ cs: Case) throws {
        let engine = try testEngine()
        let (spec, model) = try load("\(cs)" + ".onnx", engine: engine)
        #expect(spec.inputShape == [3, 64, 64] && spec.classCount == 10)
        let ops = Set(spec.nodes.map(\.op))
        for op in cs.ops { #expect(ops.contains(op), "\(cs): no \(op) node in \(ops.sorted())") }
        let golden = try Self.golden()
        let x = try golden.tensor("\(cs.model)_x"), w = try golden.tensor("\(cs.model)_w"), grad = try golden.tensor("\(cs.model)_grad")
        let output = try engine.noGrad { try model(try Tensor(x.values, shape: x.shape, engine: engine)).toArray() }
        expectLogits(output, try golden.tensor("\(cs)_logits"), "\(cs)")

        // d Σ w·logits / dx through the tape, against PyTorch's, relative to the largest |g|.
        let xt = try Tensor(x.values, shape: x.shape, engine: engine, requiresGrad: true)
        let logits = try model(xt)
        try logits.backward(try Tensor(w.values, shape: w.shape, engine: engine))
        let g = try #require(xt.grad).toArray()
        let scale = grad.values.map(abs).max() ?? 0
        #expect(scale > 0 && g.count == grad.values.count, "\(cs)")
        var worst: Float = 0
        for (a, b) in zip(g, grad.values) { worst = max(worst, abs(a - b).isNaN ? .infinity : abs(a - b)) }
        #expect(worst <= 1e-4 * scale, "\(cs): input gradient off by \(worst) (largest |g| \(scale))")
    }

    /// Imported and written out again by Prism's export, the models still give onnxruntime's logits.
    @Test(arguments: ["mobilenet_v3_small", "squeezenet1_1"])
    func reexportedModelsRunInONNXRuntime(_ name: String) throws {
        let engine = try testEngine()
        let (spec, model) = try load("\(name)_torchscript.onnx", engine: engine)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("prism-reexport-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try ONNXExport.write(spec: spec, tensors: try model.stateDict(), source: name, to: folder + "/model.onnx")
        let x = try Self.golden().tensor("\(name)_x")
        let logits = try ONNXRuntime.run(model: folder + "/model.onnx", input: x.values, shape: x.shape, integers: false, folder: folder)
        expectLogits(logits, try Self.golden().tensor("\(name)_torchscript_logits"), "\(name) re-exported")
    }

    @Test func everyElementwiseOpMatchesOnnxruntime() throws {
        let engine = try testEngine()
        let (spec, model) = try load("elementwise_ops.onnx", engine: engine)
        let golden = try Self.golden()
        let x = try golden.tensor("elementwise_x")
        let output = try engine.noGrad { try model(try Tensor(x.values, shape: x.shape, engine: engine)).toArray() }
        expectLogits(output, try golden.tensor("elementwise_logits"), "elementwise_ops.onnx")
        func node(_ name: String) -> NodeSpec? { spec.nodes.first { $0.name == name } }
        // Constants become the node's `other` buffer, on their side; smaller first operands of Add and Mul swap.
        #expect(node("sub_const_first")?.attributes["other_first"] == .bool(true))
        #expect(node("mul_const_first")?.attributes["other_first"] == nil)
        #expect(node("mul_non_adjacent")?.attributes["other_shape"] == .array([.int(3), .int(4), .int(5)]))
        #expect(node("se_mul_smaller_first")?.inputs == ["input", "gap"])
        #expect(node("hardsigmoid_torch")?.attributes.isEmpty == true && node("hardsigmoid_onnx")?.attributes["alpha"] == .double(0.2))
        #expect(node("clip_min")?.op == "relu" && node("clip")?.op == "hardtanh" && node("prelu_channels")?.attributes["num_parameters"] == .int(3))
        for op in ["add", "sub", "mul", "div", "pow", "neg", "sqrt", "exp", "log", "erf", "reciprocal", "hardsigmoid", "hardtanh", "prelu"] {
            #expect(spec.nodes.contains { $0.op == op }, "no \(op) node")
        }
        #expect(node("div_scalar")?.attributes["other_shape"] == .array([]))
        // Constants computed from constants are folded into the operand.
        #expect(node("mul_folded")?.attributes["other_shape"] == .array([.int(3), .int(1), .int(1)]) && node("sub_folded")?.op == "sub")
        #expect(!spec.nodes.contains { ["sqrt3", "inv_sqrt3", "neg_cf", "exp_neg_cf", "folded_scale", "cube", "half_over_cube", "folded_shift"].contains($0.name) })
        // Saved as a Prism model file (scalar buffers of shape [] included) and loaded, it computes the same.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("elementwise-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try model.save(path: path)
        let reloaded = try Model.load(path: path, engine: engine).model
        let again = try engine.noGrad { try reloaded(try Tensor(x.values, shape: x.shape, engine: engine)).toArray() }
        #expect(again == output)
    }

    @Test func operandsThatDoNotBroadcastAreRefusedInOneLine() throws {
        let cases: [(String, [String])] = [
            // The Sub itself imports (the smaller first operand repeated first); the output is not a vector.
            ("sub_smaller_first.onnx", ["output 'out' has shape [batch] + [3, 4, 5]"]),
            ("constant_widens.onnx", ["node 'add' (Add, opset 17)", "a constant of shape [3, 1] would broadcast the value of shape [batch] + [1, 4] itself"]),
        ]
        for (file, parts) in cases {
            do {
                _ = try ONNXModel.read(path: Self.folder + "/" + file)
                Issue.record("\(file) imported")
            } catch let error as DataError {
                #expect(error.message.hasPrefix(Self.folder + "/" + file + ": ") && !error.message.contains("\n"), "\(error.message)")
                for part in parts { #expect(error.message.contains(part), "\(file): '\(part)' not in: \(error.message)") }
            }
        }
    }
}
