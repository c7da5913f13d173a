import Foundation
import Testing
import Prism
import PrismFormats
import PrismGraph
@testable import PrismONNX
import PrismTestSupport

/// Prism models written as ONNX (`ONNXExport`) and run by onnxruntime (`Tests/Fixtures/run_onnxruntime.py`):
/// its logits must be Prism's to 1e-5 absolute + 1e-4 relative. What has no ONNX form is refused in one line.
@Suite struct ONNXExportTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path

    /// A scratch folder, removed by the caller.
    func scratch() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("prism-onnx-export-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A model built from `json` with seeded parameters; BatchNorm running statistics and affine
    /// parameters seeded away from their initial 0, 1 so that they count.
    func build(_ json: String, seed: UInt64, engine: Engine) throws -> Model {
        let spec = try ModelSpec.decode(json: json)
        let model = try Model(spec: spec, seed: seed, engine: engine)
        var random = SeededRandom(seed: seed &+ 100)
        var state = try model.stateDict()
        for key in state.keys.sorted() where key.hasSuffix("running_mean") || key.hasSuffix("running_var") || spec.nodes.contains(where: {
            $0.op.hasPrefix("batchnorm") && (key == "\($0.name).weight" || key == "\($0.name).bias")
        }) {
            let count = state[key]!.values.count
            state[key]!.values = key.hasSuffix("running_var") ? random.floats(count, 0.5, 2) : random.floats(count, -0.5, 0.5)
            if key.hasSuffix(".weight") { state[key]!.values = state[key]!.values.map { $0 + 1 } }
        }
        try model.loadStateDict(state)
        return model
    }

    /// Prism's outputs on `x` (float32, batch first).
    func prismLogits(_ model: Model, _ x: [Float], shape: [Int]) throws -> [Float] {
        let engine = model.engine
        return try engine.noGrad { try model(try Tensor(x, shape: shape, engine: engine)).toArray() }
    }

    /// Exports `model` (with `standardization`), runs the file with onnxruntime on `input` and
    /// compares its logits with `expected`.
    /// - Returns: the file's bytes.
    @discardableResult
    func exportAndCompare(_ model: Model, tensors: [String: HostTensor]? = nil, standardization: ModelSpec.InputNormalization? = nil,
                          input: [Float], shape: [Int], integers: Bool = false, expected: [Float], label: String) throws -> [UInt8] {
        let folder = try scratch()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/model.onnx"
        try ONNXExport.write(spec: model.spec, tensors: tensors ?? model.stateDict(), standardization: standardization, source: label, to: path)
        let logits = try ONNXRuntime.run(model: path, input: input, shape: shape, integers: integers, folder: folder)
        expectClose(logits, expected, "\(label): onnxruntime vs Prism")
        #expect(expected.allSatisfy(\.isFinite) && expected.contains { $0 != 0 }, "\(label): Prism's logits are degenerate")
        return try readFile(path)
    }

    static let cnn = """
    {"format": 2, "architecture": "custom", "input_shape": [3, 11, 9], "outputs": 7,
     "input_normalization": {"mean": [0.4, 0.5, 0.3], "std": [0.2, 0.3, 0.25]},
     "nodes": [
      {"name": "stem.0", "op": "conv2d", "in_channels": 3, "out_channels": 8, "kernel_size": 3, "padding": 1, "bias": false},
      {"name": "stem.1", "op": "batchnorm2d", "num_features": 8},
      {"name": "stem.2", "op": "relu"},
      {"name": "block.conv", "op": "conv2d", "in_channels": 8, "out_channels": 8, "kernel_size": 3, "padding": 2, "dilation": 2, "groups": 2},
      {"name": "block.bn", "op": "batchnorm2d", "num_features": 8, "eps": 0.001},
      {"name": "block.add", "op": "add", "inputs": ["stem.2", "block.bn"]},
      {"name": "block.act", "op": "relu"},
      {"name": "se.pool", "op": "adaptiveavgpool2d", "output_size": 1},
      {"name": "se.gate", "op": "sigmoid"},
      {"name": "se.add", "op": "add", "inputs": ["block.act", "se.gate"]},
      {"name": "pool0", "op": "maxpool2d", "kernel_size": 3, "stride": 1, "padding": 1},
      {"name": "pool", "op": "maxpool2d", "kernel_size": 2, "ceil_mode": true},
      {"name": "avg", "op": "avgpool2d", "kernel_size": 3, "stride": 1, "padding": 1, "count_include_pad": false},
      {"name": "avg_act", "op": "tanh"},
      {"name": "cat", "op": "cat", "inputs": ["pool", "avg_act"], "dim": 1},
      {"name": "mix", "op": "hardswish"},
      {"name": "down", "op": "conv2d", "in_channels": 16, "out_channels": 12, "kernel_size": [2, 3], "stride": 2, "padding": [1, 0]},
      {"name": "down_act", "op": "elu", "alpha": 0.5},
      {"name": "avg2", "op": "avgpool2d", "kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": true},
      {"name": "gap", "op": "adaptiveavgpool2d", "output_size": [2, 2]},
      {"name": "tokens", "op": "flatten", "start_dim": 2},
      {"name": "tok", "op": "linear", "in_features": 4, "out_features": 6},
      {"name": "tok_act", "op": "gelu", "approximate": "tanh"},
      {"name": "flat", "op": "flatten"},
      {"name": "fc", "op": "linear", "in_features": 72, "out_features": 10},
      {"name": "fc_act", "op": "silu"},
      {"name": "drop", "op": "dropout", "p": 0.3},
      {"name": "head", "op": "linear", "in_features": 10, "out_features": 7}
     ]}
    """

    static let mlp = """
    {"format": 2, "architecture": "custom", "input_shape": [2, 12], "outputs": 5,
     "input_normalization": {"mean": [0.1, -0.2], "std": [0.5, 2.0]},
     "nodes": [
      {"name": "flat", "op": "flatten"},
      {"name": "fc1", "op": "linear", "in_features": 24, "out_features": 32},
      {"name": "ln", "op": "layernorm", "normalized_shape": 32},
      {"name": "act1", "op": "gelu"},
      {"name": "fc2", "op": "linear", "in_features": 32, "out_features": 16},
      {"name": "bn", "op": "batchnorm1d", "num_features": 16},
      {"name": "act2", "op": "leakyrelu", "negative_slope": 0.2},
      {"name": "fc3", "op": "linear", "in_features": 16, "out_features": 16, "bias": false},
      {"name": "act3", "op": "elu", "alpha": 0.7},
      {"name": "fc4", "op": "linear", "in_features": 16, "out_features": 12},
      {"name": "act4", "op": "tanh"},
      {"name": "fc5", "op": "linear", "in_features": 12, "out_features": 5},
      {"name": "probabilities", "op": "softmax"}
     ], "output": "fc5"}
    """

    @Test func cnnWithNormalizationBatchNormPoolingResidualAndCatRunsInONNXRuntime() throws {
        let engine = try testEngine()
        let model = try build(Self.cnn, seed: 3, engine: engine)
        var random = SeededRandom(seed: 11)
        let x = random.floats(4 * 3 * 11 * 9, 0, 1)
        try exportAndCompare(model, input: x, shape: [4, 3, 11, 9], expected: try prismLogits(model, x, shape: [4, 3, 11, 9]), label: "cnn")
    }

    @Test func mlpWithLayerNormAndGELURunsInONNXRuntime() throws {
        let engine = try testEngine()
        let model = try build(Self.mlp, seed: 5, engine: engine)
        var random = SeededRandom(seed: 12)
        let x = random.floats(3 * 24, -2, 2)
        let bytes = try exportAndCompare(model, input: x, shape: [3, 2, 12], expected: try prismLogits(model, x, shape: [3, 2, 12]), label: "mlp")
        // The file's interface, and the softmax after the output node not written.
        let written = try Onnx_ModelProto(serializedBytes: bytes)
        #expect(written.irVersion == 8 && written.opsetImport.map(\.version) == [17])
        let input = written.graph.input.map(\.name), output = written.graph.output.map(\.name)
        #expect(input == ["input"] && output == ["logits"])
        #expect(written.graph.input.first?.type.tensorType.shape.dim.map(\.dimParam) == ["batch", "", ""])
        #expect(written.graph.output.first?.type.tensorType.shape.dim.map(\.dimValue) == [0, 5])
        let ops = written.graph.node.map(\.opType)
        #expect(!ops.contains("Softmax") && Array(ops.prefix(2)) == ["Sub", "Div"] && ops.contains("LayerNormalization") && ops.contains("Erf"), "\(ops)")
    }

    @Test func graphFixturesRunInONNXRuntime() throws {
        let engine = try testEngine()
        // The residual CNN (BatchNorm, dilated and grouped convolutions, pooling, cat, adaptive pooling, SiLU).
        let (model, _) = try Model.load(path: Self.fixtures + "/graph/residual_cnn.safetensors", engine: engine)
        let x = try SafetensorsFile.read(path: Self.fixtures + "/graph/residual_cnn_golden.safetensors").tensor("x")
        try exportAndCompare(model, input: x.values, shape: x.shape, expected: try prismLogits(model, x.values, shape: x.shape), label: "residual_cnn")
        // The residual training fixture: its description and initial parameters (the file also holds x, y, losses).
        let file = try SafetensorsFile.read(path: Self.fixtures + "/graph/residual_train.safetensors")
        let spec = try ModelSpec.decode(json: try #require(file.metadata[Model.specMetadataKey]))
        let train = try Model(spec: spec, seed: 0, engine: engine)
        try train.loadStateDict(file.tensors, strict: false)
        let tx = try file.tensor("x")
        try exportAndCompare(train, input: tx.values, shape: tx.shape, expected: try prismLogits(train, tx.values, shape: tx.shape), label: "residual_train")
    }

    @Test func tabularStandardizationIsWrittenInFront() throws {
        let engine = try testEngine()
        let json = """
        {"format": 2, "input_shape": [5], "outputs": 3, "nodes": [
         {"name": "fc1", "op": "linear", "in_features": 5, "out_features": 8}, {"name": "act", "op": "sigmoid"},
         {"name": "fc2", "op": "linear", "in_features": 8, "out_features": 3}, {"name": "probabilities", "op": "softmax"}]}
        """
        let model = try build(json, seed: 9, engine: engine)
        let s = ModelSpec.InputNormalization(mean: [1, -2, 30, 0.5, 4], std: [0.5, 3, 10, 1, 2])
        var random = SeededRandom(seed: 13)
        let raw = random.floats(6 * 5, -20, 40)
        // Prism's commands standardize raw feature values before the model: the file takes them raw.
        let standardized = raw.indices.map { (raw[$0] - s.mean[$0 % 5]) / s.std[$0 % 5] }
        try exportAndCompare(model, standardization: s, input: raw, shape: [6, 5], expected: try prismLogits(model, standardized, shape: [6, 5]),
                             label: "tabular")
    }

    @Test func integerInputModelRunsInONNXRuntime() throws {
        let engine = try testEngine()
        let json = """
        {"format": 2, "input_shape": [6], "outputs": 4, "input_dtype": "int64", "nodes": [
         {"name": "emb", "op": "embedding", "num_embeddings": 20, "embedding_dim": 8, "inputs": ["input"]},
         {"name": "t", "op": "tanh"},
         {"name": "positive", "op": "gt", "inputs": ["emb", "t"]},
         {"name": "mixed", "op": "where", "inputs": ["positive", "emb", "t"]},
         {"name": "norm", "op": "layernorm", "normalized_shape": 8, "eps": 0.0001},
         {"name": "flat", "op": "flatten"},
         {"name": "fc", "op": "linear", "in_features": 48, "out_features": 4},
         {"name": "ids", "op": "cast", "dtype": "float32", "inputs": ["input"]},
         {"name": "fc_ids", "op": "linear", "in_features": 6, "out_features": 4},
         {"name": "sum", "op": "add", "inputs": ["fc", "fc_ids"]}
        ]}
        """
        let model = try build(json, seed: 21, engine: engine)
        var random = SeededRandom(seed: 14)
        let ids = (0..<(3 * 6)).map { _ in Int(random.next() % 20) }
        let expected = try engine.noGrad { try model.forward(try IntTensor(ids, shape: [3, 6], engine: engine)).output.toArray() }
        try exportAndCompare(model, input: ids.map(Float.init), shape: [3, 6], integers: true, expected: expected, label: "embedding")
    }

    /// Ceil-mode pooling whose last window would start in the padding: PyTorch (and Prism) drop it.
    @Test(arguments: ["maxpool2d\"", "avgpool2d\", \"count_include_pad\": true", "avgpool2d\", \"count_include_pad\": false"])
    func ceilModePoolingAtTheEdgeRunsInONNXRuntime(pool: String) throws {
        let engine = try testEngine()
        let json = """
        {"format": 2, "input_shape": [2, 5, 7], "outputs": 3, "nodes": [
         {"name": "pool", "op": "\(pool), "kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": true},
         {"name": "flat", "op": "flatten"}, {"name": "fc", "op": "linear", "in_features": 24, "out_features": 3}]}
        """
        let model = try build(json, seed: 51, engine: engine)
        var random = SeededRandom(seed: 18)
        let x = random.floats(2 * 2 * 5 * 7, -1, 1)
        try exportAndCompare(model, input: x, shape: [2, 2, 5, 7], expected: try prismLogits(model, x, shape: [2, 2, 5, 7]), label: pool)
    }

    @Test func visionTransformerRunsInONNXRuntime() throws {
        let engine = try testEngine()
        var spec = try ModelSpec.vit(height: 12, width: 8, channels: 2, classes: 5, patch: 4, dim: 16, depth: 2, heads: 4, mlpDim: 24)
        spec.inputNormalization = ModelSpec.InputNormalization(mean: [0.5, 0.25], std: [0.3, 0.2])
        let model = try Model(spec: spec, seed: 7, engine: engine)
        // Class token, positions and LayerNorm parameters away from their initial values so that they count.
        var random = SeededRandom(seed: 17)
        var state = try model.stateDict()
        for key in state.keys.sorted() where key.hasSuffix("cls_token") || key.hasSuffix("pos_embed") || key.contains("norm") {
            state[key]!.values = state[key]!.values.map { $0 + Float(random.uniform(-0.5, 0.5)) }
        }
        try model.loadStateDict(state)
        let x = random.floats(3 * 2 * 12 * 8, 0, 1)
        try exportAndCompare(model, input: x, shape: [3, 2, 12, 8], expected: try prismLogits(model, x, shape: [3, 2, 12, 8]), label: "vit")
    }

    /// The export imported back by Prism's own importer computes the same logits (for ops it imports).
    @Test func exportReimportsWithTheSameLogits() throws {
        let engine = try testEngine()
        let file = try SafetensorsFile.read(path: Self.fixtures + "/graph/residual_train.safetensors")
        let spec = try ModelSpec.decode(json: try #require(file.metadata[Model.specMetadataKey]))
        let train = try Model(spec: spec, seed: 0, engine: engine)
        try train.loadStateDict(file.tensors, strict: false)
        let json = """
        {"format": 2, "input_shape": [3, 10, 8], "outputs": 6, "input_normalization": {"mean": [0.3, 0.4, 0.5], "std": [0.2, 0.25, 0.3]}, "nodes": [
         {"name": "conv", "op": "conv2d", "in_channels": 3, "out_channels": 6, "kernel_size": 3, "padding": 1},
         {"name": "bn", "op": "batchnorm2d", "num_features": 6},
         {"name": "act", "op": "leakyrelu", "negative_slope": 0.1},
         {"name": "pool", "op": "maxpool2d", "kernel_size": 2},
         {"name": "avg", "op": "avgpool2d", "kernel_size": 3, "stride": 1, "padding": 1},
         {"name": "cat", "op": "cat", "inputs": ["pool", "avg"]},
         {"name": "gap", "op": "adaptiveavgpool2d", "output_size": 1},
         {"name": "flat", "op": "flatten"},
         {"name": "fc", "op": "linear", "in_features": 12, "out_features": 6},
         {"name": "fc_act", "op": "hardswish"},
         {"name": "head", "op": "linear", "in_features": 6, "out_features": 6},
         {"name": "probabilities", "op": "softmax"}
        ]}
        """
        let built = try build(json, seed: 31, engine: engine)
        var random = SeededRandom(seed: 15)
        for (label, model, shape) in [("residual_train", train, [3, 1, 8, 8]), ("cnn", built, [3, 3, 10, 8])] {
            let x = random.floats(shape.reduce(1, *), -1, 1)
            let bytes = try ONNXExport.serialized(spec: model.spec, tensors: try model.stateDict(), source: label)
            let (imported, tensors) = try ONNXModel.read(bytes: bytes, source: label)
            #expect(imported.inputShape == model.spec.inputShape && imported.classCount == model.spec.classCount)
            // The Sub and Div in front are the input normalization again, not nodes.
            #expect(imported.inputNormalization == model.spec.inputNormalization, "\(label): \(String(describing: imported.inputNormalization))")
            #expect(imported.nodes.map(\.op) == model.spec.nodes.map(\.op), "\(label)")
            let reimported = try Model(spec: imported, seed: 0, engine: engine)
            try reimported.loadStateDict(tensors, source: label)
            expectClose(try prismLogits(reimported, x, shape: shape), try prismLogits(model, x, shape: shape), "\(label): re-imported vs original")
        }
    }

    /// A tabular model's standardization and normalization written in front import as one normalization.
    @Test func standardizationAndNormalizationReimportAsOne() throws {
        let engine = try testEngine()
        let json = """
        {"format": 2, "input_shape": [4], "outputs": 2, "input_normalization": {"mean": [0.5, -1, 0, 2], "std": [2, 0.5, 1, 4]},
         "nodes": [{"name": "fc", "op": "linear", "in_features": 4, "out_features": 2}]}
        """
        let model = try build(json, seed: 41, engine: engine)
        let s = ModelSpec.InputNormalization(mean: [10, 20, -5, 1], std: [3, 0.25, 2, 8])
        let bytes = try ONNXExport.serialized(spec: model.spec, tensors: try model.stateDict(), standardization: s, source: "tabular")
        let (imported, tensors) = try ONNXModel.read(bytes: bytes, source: "tabular")
        #expect(imported.nodes.map(\.op) == ["linear"])
        let reimported = try Model(spec: imported, seed: 0, engine: engine)
        try reimported.loadStateDict(tensors)
        var random = SeededRandom(seed: 16)
        let raw = random.floats(5 * 4, -30, 30)
        let standardized = raw.indices.map { (raw[$0] - s.mean[$0 % 4]) / s.std[$0 % 4] }
        expectClose(try prismLogits(reimported, raw, shape: [5, 4]), try prismLogits(model, standardized, shape: [5, 4]), "standardized re-import")
    }

    /// The error of exporting a model, as text.
    func refusal(_ json: String, tensors: (([String: HostTensor]) -> [String: HostTensor])? = nil) throws -> String {
        let engine = try testEngine()
        let model = try Model(spec: try ModelSpec.decode(json: json), seed: 1, engine: engine)
        let state = try model.stateDict()
        do {
            _ = try ONNXExport.serialized(spec: model.spec, tensors: tensors?(state) ?? state, source: "m.safetensors")
            return "exported"
        } catch let error as DataError {
            #expect(!error.message.contains("\n") && error.message.hasPrefix("m.safetensors: "), "\(error.message)")
            return error.message
        }
    }

    @Test func whatHasNoONNXFormIsRefusedInOneLine() throws {
        // index_select: ONNX would use the first example's positions for every example.
        let select = try refusal("""
        {"format": 2, "input_shape": [4], "outputs": 2, "nodes": [
         {"name": "positions", "op": "cast", "dtype": "int64"},
         {"name": "select", "op": "index_select", "dim": 1, "inputs": ["input", "positions"]},
         {"name": "fc", "op": "linear", "in_features": 4, "out_features": 2}]}
        """)
        #expect(select == "m.safetensors: node 'select' (index_select): selects positions given as an input; the export writes index_select with constant positions ('index')", "\(select)")
        // Adaptive pooling of 5 rows into 3 windows of sizes 2, 3, 2: no AveragePool computes it.
        let uneven = try refusal("""
        {"format": 2, "input_shape": [2, 5, 4], "outputs": 2, "nodes": [
         {"name": "gap", "op": "adaptiveavgpool2d", "output_size": [3, 2]}, {"name": "flat", "op": "flatten"},
         {"name": "fc", "op": "linear", "in_features": 12, "out_features": 2}]}
        """)
        #expect(uneven.contains("node 'gap' (adaptiveavgpool2d): output_size (3, 2) over a 5×4 input averages windows of different sizes"), "\(uneven)")
        // Add of a [3] over a [2, 3]: Prism lines it up per example, ONNX over the batch.
        let ranks = try refusal("""
        {"format": 2, "input_shape": [2, 3], "outputs": 2, "nodes": [
         {"name": "act", "op": "relu"}, {"name": "flat", "op": "flatten", "inputs": ["input"]},
         {"name": "proj", "op": "linear", "in_features": 6, "out_features": 3},
         {"name": "sum", "op": "add", "inputs": ["act", "proj"]}, {"name": "flat2", "op": "flatten"},
         {"name": "fc", "op": "linear", "in_features": 6, "out_features": 2}]}
        """)
        #expect(ranks.contains("node 'sum' (add): inputs of shapes [batch] + [2, 3] and [batch] + [3] differ in rank"), "\(ranks)")
        // A parameter missing from the tensors given.
        let missing = try refusal("""
        {"format": 2, "input_shape": [4], "outputs": 2, "nodes": [{"name": "fc", "op": "linear", "in_features": 4, "out_features": 2}]}
        """, tensors: { $0.filter { $0.key != "fc.bias" } })
        #expect(missing == "m.safetensors: node 'fc' (linear): its parameter 'fc.bias' is missing", "\(missing)")
    }
}
