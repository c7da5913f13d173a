import Foundation
import Prism
import PrismCL
import Testing

/// Crafted model files and tuning tables given to the commands: each ends with exit status 1 and
/// one line naming the file and what is wrong, never a trap or a prediction from a broken model.
@Suite(.serialized) struct HostileModelFilesCLITests {
    static let csv = TrainCLITests.fixtures + "/tabular.csv"

    /// A model trained on the tabular fixture, then `edit`ed and written to `name`.
    static func edited(_ model: String, _ name: String, _ edit: (inout SafetensorsFile) throws -> Void) throws -> String {
        var file = try SafetensorsFile.read(path: model)
        try edit(&file)
        let path = (model as NSString).deletingLastPathComponent + "/" + name
        try file.write(path: path)
        return path
    }

    @Test func brokenModelFilesAndTuningTablesAreRefusedInOneLine() throws {
        let dir = try scratchDirectory("hostile-model")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/t.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", Self.csv, "--label", "species", "--arch", "mlp",
                                  "--hidden", "8", "--epochs", "1", "--batch", "16", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        func predict(_ path: String, environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
            try runPrism(["predict", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", path, "--index", "0"],
                         environment: environment)
        }
        let good = try predict(model)
        #expect(good.status == 0, "\(good.stderr)")

        // Non-finite weights: no prediction.
        let nan = try Self.edited(model, "nan.safetensors") { $0.tensors["1.weight"]!.values[3] = .nan }
        expectOneLineError(try predict(nan), "\(nan): tensor '1.weight' holds 1 NaN and 0 infinite values of 32")
        // A tensor the model has no parameter for.
        let extra = try Self.edited(model, "extra.safetensors") { $0.tensors["5.weight"] = HostTensor(shape: [2], values: [1, 2]) }
        expectOneLineError(try predict(extra), "\(extra): unexpected tensor '5.weight' (the model has no such parameter)")
        // Descriptions naming an op or an attribute Prism does not have: the node and the choices.
        let unknownOp = try Self.edited(model, "op.safetensors") {
            $0.metadata[Model.specMetadataKey] = $0.metadata[Model.specMetadataKey]!.replacingOccurrences(of: #""op":"relu""#, with: #""op":"relu6""#)
        }
        let opResult = try predict(unknownOp)
        expectOneLineError(opResult, "\(unknownOp): model: node 2 '2' (relu6): unknown op 'relu6'; supported ops: ")
        #expect(opResult.stderr.contains("leakyrelu") && opResult.stderr.contains("batchnorm2d"))
        let unknownAttribute = try Self.edited(model, "attribute.safetensors") {
            $0.metadata[Model.specMetadataKey] = $0.metadata[Model.specMetadataKey]!.replacingOccurrences(of: #""op":"relu""#, with: #""op":"relu","inplace":true"#)
        }
        expectOneLineError(try predict(unknownAttribute), "\(unknownAttribute): model: node 2 '2' (relu): unknown attribute 'inplace'; relu takes no attributes")
        // A class count the last layer does not have (evaluation read past the logits).
        let classes = try Self.edited(model, "classes.safetensors") { file in
            var spec = try ModelSpec.decode(json: file.metadata[Model.specMetadataKey]!)
            spec.classCount = 7
            file.metadata[Model.specMetadataKey] = try spec.json()
        }
        expectOneLineError(try runPrism(["eval", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", classes]),
                           "\(classes): model: the output node '3' gives [3] per example, but the model says 7 outputs")
        // Bytes after the last tensor.
        let trailing = dir + "/trailing.safetensors"
        try (Data(contentsOf: URL(fileURLWithPath: model)) + Data([0, 0, 0, 0])).write(to: URL(fileURLWithPath: trailing))
        expectOneLineError(try predict(trailing), "trailing.safetensors: 4 trailing bytes after the tensors' data")

        // A tuning table with a 0: refused before any kernel is built.
        let table = dir + "/tuning.json"
        try TuningTable(default: ["matmul.cl": ["MM_MB": "0"]]).json().write(to: URL(fileURLWithPath: table))
        expectOneLineError(try predict(model, environment: ["PRISM_TUNING_FILE": table]),
                           "tuning table \(table), default: kernel family matmul (matmul.cl): MM_MB = 0 is outside 1…1024")
    }
}
