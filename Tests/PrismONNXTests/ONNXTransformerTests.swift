import Foundation
import Testing
import Prism
import PrismFormats
import PrismGraph
import PrismONNX
import PrismTestSupport

/// A transformer encoder classifier, a network of layout ops and torchvision's ShuffleNetV2 x0.5
/// exported from PyTorch (`Tests/Fixtures/make_onnx_transformer.py`): imported, their logits against
/// onnxruntime's and their input gradients against PyTorch's.
@Suite struct ONNXTransformerTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/onnx").path

    /// Imports `file`, runs it on the fixture's `<prefix>x` and checks its logits against
    /// onnxruntime's (`<prefix>logits_<export>`) and its input gradient of sum(w · logits) against
    /// PyTorch's (`<prefix>grad`).
    func importAndCheck(_ file: String, prefix: String, export: String, golden name: String = "onnx_transformer.safetensors") throws -> ModelSpec {
        let engine = try testEngine()
        let (spec, tensors) = try ONNXModel.read(path: Self.folder + "/" + file)
        let model = try Model(spec: spec, seed: 0, engine: engine)
        try model.loadStateDict(tensors, source: file)
        let golden = try SafetensorsFile.read(path: Self.folder + "/" + name)
        let x = try golden.tensor(prefix + "x"), w = try golden.tensor(prefix + "w")
        let logits = try golden.tensor("\(prefix)logits_\(export)"), grad = try golden.tensor(prefix + "grad")

        let input = try Tensor(x.values, shape: x.shape, engine: engine, requiresGrad: true)
        let output = try model(input)
        let got = try output.toArray()
        #expect(got.count == logits.values.count, "\(file)")
        var worst: Float = 0
        for (a, b) in zip(got, logits.values) {
            let diff = abs(a - b)
            #expect(diff <= 1e-5 + 1e-4 * abs(b), "\(file): \(a) vs onnxruntime \(b)")
            worst = max(worst, diff.isNaN ? .infinity : diff)
        }
        #expect(worst.isFinite, "\(file)")

        // d sum(w · logits) / dx against PyTorch, relative to the largest |g|.
        try output.backward(try Tensor(w.values, shape: w.shape, engine: engine))
        let g = try #require(input.grad).toArray()
        let scale = grad.values.map(abs).max() ?? 0
        #expect(scale > 0 && g.count == grad.values.count, "\(file)")
        for (a, b) in zip(g, grad.values) {
            #expect(abs(a - b) <= 1e-4 * scale, "\(file): gradient \(a) vs PyTorch \(b) (max |g| \(scale))")
        }
        return spec
    }

    /// Opset 14 writes LayerNorm as ReduceMean, Sub, Pow, Add, Sqrt, Div, Mul, Add and GELU with Erf.
    @Test(arguments: ["dynamo", "torchscript", "opset14"])
    func encoderMatchesOnnxruntimeAndPyTorch(export: String) throws {
        let spec = try importAndCheck("transformer_\(export).onnx", prefix: "", export: export)
        #expect(spec.inputShape == [8, 6] && spec.classCount == 5)
        let ops = Set(spec.nodes.map(\.op))
        let expected = export == "opset14" ? ["linear", "matmul", "softmax", "mean", "sub", "pow", "sqrt", "div", "erf"]
                                           : ["linear", "matmul", "softmax", "layernorm", "mean", export == "dynamo" ? "gelu" : "erf"]
        for op in expected { #expect(ops.contains(op), "\(export): no \(op) node in \(ops.sorted())") }
    }

    @Test(arguments: ["dynamo", "torchscript"])
    func shuffleNetMatchesOnnxruntimeAndPyTorch(export: String) throws {
        let spec = try importAndCheck("shufflenet_\(export).onnx", prefix: "", export: export, golden: "onnx_shufflenet.safetensors")
        #expect(spec.inputShape == [3, 32, 32] && spec.classCount == 10)
        let ops = Set(spec.nodes.map(\.op))
        for op in ["conv2d", "permute", "reshape", "narrow", "cat"] { #expect(ops.contains(op), "\(export): no \(op) node in \(ops.sorted())") }
    }

    /// Split, Slice, a transpose that moves the batch, reshapes that merge and split it, MatMul of two
    /// values, Softmax and LogSoftmax over middle axes, ReduceSum/ReduceMax/ReduceMean.
    @Test(arguments: ["dynamo", "torchscript"])
    func layoutOpsMatchOnnxruntimeAndPyTorch(export: String) throws {
        let spec = try importAndCheck("layout_\(export).onnx", prefix: "layout_", export: export)
        #expect(spec.inputShape == [4, 6] && spec.classCount == 3)
        let ops = Set(spec.nodes.map(\.op))
        for op in ["narrow", "permute", "matmul", "softmax", "log_softmax", "sum", "amax", "mean", "cat"] {
            #expect(ops.contains(op), "\(export): no \(op) node in \(ops.sorted())")
        }
    }

    @Test func layoutsPrismCannotHoldAreRefusedInOneLine() throws {
        let cases: [(String, [String])] = [
            ("batch_moved.onnx", ["node 'reduce' (ReduceSum, opset 17)", "shape [4, batch, 6]", "batch is not alone on the first axis"]),
            // The strided Slice imports (see ONNXStridedSliceTests); the output is not a vector.
            ("strided_slice.onnx", ["output 'out' has shape [batch] + [4, 3]"]),
        ]
        for (file, parts) in cases {
            var message = "imported"
            do { _ = try ONNXModel.read(path: Self.folder + "/" + file) } catch let error as DataError { message = error.message }
            #expect(message.hasPrefix(Self.folder + "/" + file + ": "), "\(message)")
            #expect(!message.contains("\n"), "\(message)")
            for part in parts { #expect(message.contains(part), "\(file): '\(part)' not in: \(message)") }
        }
    }
}
