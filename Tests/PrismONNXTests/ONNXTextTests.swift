import Foundation
import Testing
import Prism
import PrismFormats
import PrismGraph
import PrismONNX
import PrismExplain
import PrismTestSupport

/// A text classifier of two inputs, token ids and an attention mask, exported from PyTorch
/// (`Tests/Fixtures/make_onnx_text.py`): imported with either input explained, its logits against
/// onnxruntime's, its gradients with respect to the token embeddings against PyTorch's.
@Suite struct ONNXTextTests {
    static let folder = ONNXTransformerTests.folder

    func golden() throws -> SafetensorsFile { try SafetensorsFile.read(path: Self.folder + "/onnx_text.safetensors") }

    func ints(_ file: SafetensorsFile, _ name: String) throws -> IntegerTensor {
        try #require(file.integerTensors[name], "no \(name) in the golden file")
    }

    func load(_ export: String, input: String? = nil, engine: Engine) throws -> Model {
        let file = "text_\(export).onnx"
        let (spec, tensors) = try ONNXModel.read(path: Self.folder + "/" + file, input: input)
        let model = try Model(spec: spec, seed: 0, engine: engine)
        try model.loadStateDict(tensors, source: file)
        return model
    }

    /// The torchscript export with example 0's attention mask bound, and example 0's ids.
    func exampleZero(_ golden: SafetensorsFile, engine: Engine) throws -> (Model, [Int64]) {
        let model = try load("torchscript", engine: engine)
        let ids = try ints(golden, "ids"), mask = try ints(golden, "mask"), t = ids.shape[1]
        try model.bind(["attention_mask": Model.BoundInput(values: mask.values[0..<t].map { Double($0) }, type: .int64)])
        return (model, Array(ids.values[0..<t]))
    }

    func expectClose(_ got: [Float], _ want: [Float], _ what: String) {
        #expect(got.count == want.count, "\(what): \(got.count) values, expected \(want.count)")
        for (a, b) in zip(got, want) {
            #expect(abs(a - b) <= 1e-5 + 1e-4 * abs(b), "\(what): \(a) vs \(b)")
        }
    }

    @Test(arguments: ["torchscript", "dynamo"])
    func logitsMatchOnnxruntime(export: String) throws {
        let engine = try testEngine()
        let golden = try golden()
        let model = try load(export, engine: engine)
        #expect(model.spec.inputType == .int64 && model.spec.inputShape == [10] && model.spec.inputName == "input_ids")
        #expect(model.extraInputs.map(\.name) == ["attention_mask"] && model.extraInputs[0].type == .int64)
        let ops = Set(model.spec.nodes.map(\.op))
        for op in ["input", "embedding", "eq", "where", "broadcast_to", "matmul", "softmax", "layernorm"] {
            #expect(ops.contains(op), "\(export): no \(op) node in \(ops.sorted())")
        }
        let ids = try ints(golden, "ids"), mask = try ints(golden, "mask")
        let x = try IntTensor(ids.values, shape: ids.shape, engine: engine)
        let m = try IntTensor(mask.values, shape: mask.shape, engine: engine)
        let output = try engine.noGrad { try model.forward(.integer(x), inputs: ["attention_mask": .integer(m)]).output }
        expectClose(try output.toArray(), try golden.tensor("logits_\(export)").values, "\(export) vs onnxruntime")
        expectClose(try output.toArray(), try golden.tensor("logits").values, "\(export) vs PyTorch")

        // Token ids as float32 whole numbers and the mask bound for one example, repeated over the batch.
        let row = 2, t = ids.shape[1]
        let one = Array(ids.values[(row * t)..<((row + 1) * t)]).map { Float($0) }
        try model.bind(["attention_mask": Model.BoundInput(values: mask.values[(row * t)..<((row + 1) * t)].map { Double($0) }, type: .int64)])
        defer { try? model.bind(nil) }
        let batch = try Tensor(one + one + one, shape: [3, t], engine: engine)
        let repeated = try engine.noGrad { try model(batch).toArray() }
        let want = Array(try golden.tensor("logits").values[(row * 3)..<((row + 1) * 3)])
        expectClose(repeated, want + want + want, "\(export) bound mask")
        // A float that is not a whole number is refused, not truncated.
        let bad = try Tensor(one.enumerated().map { $0.offset == 4 ? $0.element + 0.5 : $0.element }, shape: [1, t], engine: engine)
        #expect(throws: TensorError.self) { try engine.noGrad { try model(bad) } }
    }

    /// Backward through the masked attention: the gradient at the token embeddings (the embedding
    /// node's output, captured by name) against PyTorch's.
    @Test(arguments: ["torchscript", "dynamo"])
    func embeddingGradientsMatchPyTorch(export: String) throws {
        let engine = try testEngine()
        let golden = try golden()
        let model = try load(export, engine: engine)
        let embedding = try #require(model.spec.nodes.first { $0.op == "embedding" }?.name)
        #expect(embedding == "tok")
        let ids = try ints(golden, "ids"), mask = try ints(golden, "mask")
        let x = try IntTensor(ids.values, shape: ids.shape, engine: engine)
        let m = try IntTensor(mask.values, shape: mask.shape, engine: engine)
        let (output, activations) = try model.forward(.integer(x), inputs: ["attention_mask": .integer(m)], capture: [embedding])
        let w = try golden.tensor("w")
        try output.backward(try Tensor(w.values, shape: w.shape, engine: engine))
        let got = try #require(activations[embedding]?.grad).toArray()
        let want = try golden.tensor("embedding_grad").values
        let scale = want.map(abs).max() ?? 0
        #expect(scale > 0 && got.count == want.count)
        for (a, b) in zip(got, want) { #expect(abs(a - b) <= 1e-4 * scale, "\(export): \(a) vs PyTorch \(b)") }
    }

    /// Shapley values over the token positions of example 0 (a position left out takes id 0, the mask
    /// kept) by Prism's exact enumeration on the device against PyTorch's in float64.
    @Test func tokenShapleyValuesMatchPyTorchEnumeration() throws {
        let engine = try testEngine()
        let golden = try golden()
        let (model, ids) = try exampleZero(golden, engine: engine), t = ids.count
        let game = try DeviceGame(model: model, instance: ids.map { Float($0) }, background: [Float](repeating: 0, count: t))
        let explanation = try ExactShapley().explain(game)
        let want = try golden.tensor("shapley").values   // [10 positions, 3 classes]
        let scale = want.map(abs).max() ?? 0
        #expect(scale > 0 && explanation.values.count == want.count)
        for (i, (a, b)) in zip(explanation.values, want).enumerated() {
            #expect(abs(a - Double(b)) <= 1e-5 + 1e-4 * Double(scale), "value \(i): \(a) vs PyTorch \(b)")
        }
        // Padding positions (mask 0) take no part: their values are zero.
        for p in 7..<t { for c in 0..<3 { #expect(abs(explanation.values[p * 3 + c]) <= 1e-6, "padding position \(p)") } }
    }

    /// Integrated Gradients at the token embeddings (Captum's LayerIntegratedGradients on the
    /// embedding), summed per token: complete (Σφ = f(x) − f(x′), x′ the padding token everywhere);
    /// gradient × input per token against central differences along that token's embedding.
    @Test func embeddingAttributionsAreCompleteAndMatchFiniteDifferences() throws {
        let engine = try testEngine()
        let golden = try golden()
        let (model, ids) = try exampleZero(golden, engine: engine), t = ids.count
        let x = ids.map { Float($0) }
        let ig = try EmbeddingAttribution(model: model, baselineToken: 0) { m, reference in
            IntegratedGradients(model: m, steps: 64, rule: .gaussLegendre, baseline: .values(reference))
        }
        let e = try ig.explain(instances: x, targets: .classes([0, 1, 2]))
        #expect(e.featureCount == t && e.outputCount == 3 && e.settings["layer"] == .string("tok"))
        let fx = try engine.noGrad { try model(try Tensor(x, shape: [1, t], engine: engine)).toArray() }
        let fBase = try engine.noGrad { try model(try Tensor([Float](repeating: 0, count: t), shape: [1, t], engine: engine)).toArray() }
        for c in 0..<3 {
            let sum = (0..<t).reduce(0.0) { $0 + e.values[$1 * 3 + c] }
            let delta = Double(fx[c] - fBase[c])
            #expect(abs(sum - delta) <= 1e-4 * max(1, abs(delta)), "class \(c): Σφ \(sum) vs f(x) − f(x′) \(delta)")
        }

        let gxi = try EmbeddingAttribution(model: model, baselineToken: 0) { m, _ in GradientTimesInput(model: m) }
        let g = try gxi.explain(instances: x, targets: .classes([1]))
        // d/ds f(e + s·e_p) at s = 0, e_p token p's embedding alone: Σ_d ∂f/∂e[p, d] · e[p, d].
        let embedded = try gxi.embedded(x), width = embedded.count / t, h: Float = 1e-2
        let tensor = try IntTensor(ids, shape: [1, t], engine: engine)
        func f(_ e: [Float]) throws -> Double {
            let out = try engine.noGrad { try model.forward(.integer(tensor), inputs: [:], overrides: ["tok": try Tensor(e, shape: [1, t, width], engine: engine)]).output }
            return Double(try out.toArray()[1])
        }
        for p in 0..<t {
            var plus = embedded, minus = embedded
            for j in 0..<width { plus[p * width + j] *= 1 + h; minus[p * width + j] *= 1 - h }
            let fd = (try f(plus) - f(minus)) / (2 * Double(h))
            #expect(abs(g.values[p] - fd) <= 2e-3, "token \(p): gradient × input \(g.values[p]) vs central difference \(fd)")
        }
    }

    /// The imported text model exported again (`input` nodes as graph inputs, eq/where with numbers,
    /// broadcast_to, the clamp): onnxruntime runs it on both inputs with PyTorch's logits.
    @Test func reexportRunsInOnnxruntimeWithBothInputs() throws {
        let engine = try testEngine()
        let golden = try golden()
        let model = try load("dynamo", engine: engine)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("prism-text-export-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/text.onnx"
        try ONNXExport.write(spec: model.spec, tensors: try model.stateDict(), source: "text", to: path)
        let ids = try ints(golden, "ids"), mask = try ints(golden, "mask")
        let got = try ONNXRuntime.run(model: path, input: ids.values.map { Float($0) }, shape: ids.shape, integers: true,
                                      extra: ["attention_mask": (mask.values.map { Float($0) }, mask.shape)], folder: folder)
        expectClose(got, try golden.tensor("logits").values, "re-exported text model in onnxruntime")
        // And it imports back with the same two inputs.
        let (spec, _) = try ONNXModel.read(path: path)
        #expect(spec.inputType == .int64 && spec.nodes.contains { $0.op == "input" && $0.name == "attention_mask" })
    }

    /// Imported graphs of layout ops (split, slices, transposes that move the batch, softmax and
    /// log_softmax over middle axes, sum/amax/mean) and a transformer, exported again: onnxruntime
    /// gives PyTorch's logits.
    @Test(arguments: [("layout_torchscript.onnx", "layout_"), ("transformer_dynamo.onnx", "")])
    func importedLayoutGraphsExportAgain(_ file: String, _ prefix: String) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("prism-layout-export-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (spec, tensors) = try ONNXModel.read(path: Self.folder + "/" + file)
        let path = folder + "/again.onnx"
        try ONNXExport.write(spec: spec, tensors: tensors, source: file, to: path)
        let golden = try SafetensorsFile.read(path: Self.folder + "/onnx_transformer.safetensors")
        let x = try golden.tensor(prefix + "x")
        let got = try ONNXRuntime.run(model: path, input: x.values, shape: x.shape, folder: folder)
        expectClose(got, try golden.tensor(prefix + "logits").values, "\(file) exported again")
    }

    @Test func missingOrUnknownInputsAreNamed() throws {
        let engine = try testEngine()
        let model = try load("torchscript", engine: engine)
        let x = try IntTensor([Int64](repeating: 1, count: 10), shape: [1, 10], engine: engine)
        let error = #expect(throws: TensorError.self) { try model.forward(.integer(x), inputs: [:]) }
        #expect(error?.message.contains("'attention_mask'") == true, "\(error?.message ?? "")")
        let unknown = #expect(throws: TensorError.self) { try model.forward(.integer(x), inputs: ["token_type_ids": .integer(x)]) }
        #expect(unknown?.message.contains("token_type_ids") == true, "\(unknown?.message ?? "")")
        let notThere = #expect(throws: DataError.self) { try ONNXModel.read(path: Self.folder + "/text_torchscript.onnx", input: "ids") }
        #expect(notThere?.message.contains("'input_ids', 'attention_mask'") == true, "\(notThere?.message ?? "")")
    }
}
