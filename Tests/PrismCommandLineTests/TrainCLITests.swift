import Foundation
import Prism
import PrismCL
import PrismFormats
import PrismTestSupport
import Testing

/// `prism train`, `eval` and `predict` run as a user runs them, on the committed fixtures.
@Suite(.serialized) struct TrainCLITests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path
    static var images: String { fixtures + "/fashion-mnist-subset" }

    /// A fresh folder for one test's files.
    func scratch() throws -> String { try scratchDirectory("cli") }

    /// A copy of the image fixture folder in which `name` is replaced by `bytes`.
    func imagesWith(_ name: String, bytes: [UInt8], in dir: String) throws -> String {
        let folder = dir + "/images"
        try FileManager.default.copyItem(atPath: Self.images, toPath: folder)
        try FileManager.default.removeItem(atPath: folder + "/" + name + ".gz")
        try Data(bytes).write(to: URL(fileURLWithPath: folder + "/" + name))
        return folder
    }

    @Test func trainEvalPredictOnTheFixture() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/m.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", Self.images, "--arch", "mlp", "--hidden", "32",
                                  "--epochs", "2", "--batch", "32", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stdout.contains("epoch 1/2"))
        #expect(train.stdout.contains("epoch 2/2"))
        #expect(FileManager.default.fileExists(atPath: model))
        #expect(FileManager.default.fileExists(atPath: model + ".ckpt"))
        let log = try String(contentsOfFile: model + ".log.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(log.count == 2)
        let first = try #require(try JSONSerialization.jsonObject(with: Data(log[0].utf8)) as? [String: Any])
        #expect(first["epoch"] as? Int == 1)
        #expect(first["test_accuracy"] is Double)

        let eval = try runPrism(["eval", "--device", "cpu", "--data", Self.images, "--model", model, "--json"])
        #expect(eval.status == 0, "\(eval.stderr)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        #expect(result["count"] as? Int == 200)
        #expect((result["accuracy"] as? Double ?? 0) > 0.5)
        let confusion = try #require(result["confusion"] as? [[Int]])
        #expect(confusion.count == 10 && confusion.joined().reduce(0, +) == 200)

        let predict = try runPrism(["predict", "--device", "cpu", "--data", Self.images, "--model", model, "--index", "3"])
        #expect(predict.status == 0, "\(predict.stderr)")
        #expect(predict.stdout.hasPrefix("example 3: true class"))
        #expect(predict.stdout.split(separator: "\n").count == 4)

        // Resume past the end: epochs 3 from the checkpoint of epoch 2.
        let resumed = try runPrism(["train", "--device", "cpu", "--data", Self.images, "--epochs", "3", "--out", model, "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming"))
        #expect(resumed.stdout.contains("epoch 3/3") && !resumed.stdout.contains("epoch 2/3"))
    }

    @Test func outputsAreCheckedBeforeTrainingAndLinksAreKept() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = ["train", "--device", "cpu", "--data", Self.images, "--arch", "mlp", "--hidden", "8", "--epochs", "1", "--batch", "64"]
        #expect(mkfifo(dir + "/fifo", 0o644) == 0)
        #expect(symlink("/dev/full", dir + "/full") == 0)
        let fifo = try runPrism(base + ["--out", dir + "/fifo"])
        expectOneLineError(fifo, "\(dir)/fifo: is a FIFO (named pipe), not a regular file; refusing to replace it")
        let full = try runPrism(base + ["--out", dir + "/m.safetensors", "--log", dir + "/full"])
        expectOneLineError(full, "\(dir)/full: links to /dev/full, which is a character device, not a regular file; refusing to replace it")
        let missing = try runPrism(base + ["--out", dir + "/m.safetensors", "--checkpoint", dir + "/none/m.ckpt"])
        expectOneLineError(missing, "\(dir)/none/m.ckpt: the folder \(dir)/none does not exist")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["fifo", "full"])

        // Through links: the links stay, their targets get the model and the log.
        #expect(symlink("real.safetensors", dir + "/m.safetensors") == 0)
        #expect(symlink("real.log", dir + "/m.log") == 0)
        let linked = try runPrism(base + ["--out", dir + "/m.safetensors", "--log", dir + "/m.log"])
        #expect(linked.status == 0, "\(linked.stderr)")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/m.safetensors")) == "real.safetensors")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/m.log")) == "real.log")
        let model = try SafetensorsFile.read(path: dir + "/real.safetensors")
        #expect(!model.tensors.isEmpty && model.metadata[Model.specMetadataKey] != nil)
        let log = try String(contentsOfFile: dir + "/real.log", encoding: .utf8).split(separator: "\n")
        #expect(log.count == 1 && log[0].contains("\"epoch\":1"), "\(log)")
    }

    @Test func csvTrainingWithStandardization() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/t.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", Self.fixtures + "/tabular.csv", "--label", "species",
                                  "--arch", "mlp", "--hidden", "16", "--epochs", "20", "--batch", "16", "--lr", "1e-2", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        let eval = try runPrism(["eval", "--device", "cpu", "--data", Self.fixtures + "/tabular.csv", "--label", "species",
                                 "--model", model, "--json"])
        #expect(eval.status == 0, "\(eval.stderr)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        #expect((result["accuracy"] as? Double ?? 0) >= 0.9)
    }

    /// `--model-spec`: a graph of the user's own (a residual Linear block) trains like the built-in
    /// architectures and is saved with its node names; a description that does not fit the data, or
    /// one given with --arch, is refused in one line.
    @Test func trainingAModelDescription() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spec = dir + "/residual.json"
        try Data(#"""
        {"format": 2, "architecture": "custom", "input_shape": [4], "outputs": 3, "nodes": [
          {"name": "inp", "op": "linear", "in_features": 4, "out_features": 16}, {"name": "r", "op": "relu"},
          {"name": "hid", "op": "linear", "in_features": 16, "out_features": 16},
          {"name": "sum", "op": "add", "inputs": ["hid", "r"]}, {"name": "s", "op": "relu"},
          {"name": "head", "op": "linear", "in_features": 16, "out_features": 3}]}
        """#.utf8).write(to: URL(fileURLWithPath: spec))
        let csv = ["--device", "cpu", "--data", Self.fixtures + "/tabular.csv", "--label", "species", "--task", "classification"]
        let model = dir + "/r.safetensors"
        let train = try runPrism(["train"] + csv + ["--model-spec", spec, "--epochs", "20", "--batch", "16", "--lr", "1e-2", "--out", model])
        #expect(train.status == 0 && train.stderr.contains("training custom (403 parameters)"), "\(train.stderr)")
        let file = try SafetensorsFile.read(path: model)
        #expect(file.tensors["hid.weight"]?.shape == [16, 16] && file.tensors["head.bias"]?.shape == [3])
        let eval = try runPrism(["eval", "--device", "cpu", "--data", Self.fixtures + "/tabular.csv", "--label", "species", "--model", model, "--json"])
        #expect(eval.status == 0, "\(eval.stderr)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        #expect((result["accuracy"] as? Double ?? 0) >= 0.9, "\(result)")
        try Data(#"{"format": 2, "input_shape": [5], "outputs": 3, "nodes": [{"name": "l", "op": "linear", "in_features": 5, "out_features": 3}]}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/five.json"))
        // The data's note on its label column comes first; the refusal is the last line.
        let misfit = try runPrism(["train"] + csv + ["--model-spec", dir + "/five.json", "--out", dir + "/x.safetensors"])
        #expect(misfit.status == 1 && misfit.stderr.split(separator: "\n").count == 2 && misfit.stderr.split(separator: "\n").last?
            .contains("\(dir)/five.json: the model takes [5] and gives 3 outputs; \(Self.fixtures)/tabular.csv has examples of shape [4] and 3 classes") == true, "\(misfit.stderr)")
        expectOneLineError(try runPrism(["train"] + csv + ["--model-spec", spec, "--arch", "mlp", "--out", dir + "/x.safetensors"]),
                           "--model-spec describes the model; drop --arch")
    }

    /// Image models carry the training set's channel statistics as their input normalization
    /// (unless --normalize none); CSV data refuses it (its columns are standardized).
    @Test func imageModelsCarryTheTrainingSetsNormalization() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let engine = Engine(context: try testContext())
        let data = try LabeledData(try ImageDataset.loadMNISTFormat(directory: Self.images, split: .train))
        for choice in ["dataset", "none"] {
            let model = dir + "/\(choice).safetensors"
            let train = try runPrism(["train", "--device", "cpu", "--data", Self.images, "--arch", "mlp", "--hidden", "8",
                                      "--epochs", "1", "--normalize", choice, "--out", model])
            #expect(train.status == 0, "\(train.stderr)")
            let spec = try Model.load(path: model, engine: engine).model.spec
            #expect(spec.inputNormalization == (choice == "dataset" ? data.channelStatistics() : nil), "\(choice)")
        }
        let csv = try runPrism(["train", "--device", "cpu", "--data", Self.fixtures + "/tabular.csv", "--label", "species",
                                "--arch", "mlp", "--normalize", "dataset", "--out", dir + "/t.safetensors"])
        expectOneLineError(csv, "--normalize dataset is for images")
        let resumed = try runPrism(["train", "--device", "cpu", "--data", Self.images, "--epochs", "2", "--normalize", "none",
                                    "--out", dir + "/dataset.safetensors", "--resume"])
        #expect(resumed.status != 0 && resumed.stderr.contains("--normalize applies to a new run"), "\(resumed.stderr)")
    }

    @Test func badIDXFilesNameTheFileAndTheProblem() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A wrong magic number.
        var folder = try imagesWith("t10k-labels-idx1-ubyte", bytes: [0x12, 0x34, 0x08, 0x01, 0, 0, 0, 1, 3], in: dir + "/magic")
        expectOneLineError(try runPrism(["train", "--device", "cpu", "--data", folder, "--arch", "mlp", "--epochs", "1"]),
                           "t10k-labels-idx1-ubyte: not an IDX file: magic number")
        // Truncated: 200 labels declared, 3 present.
        folder = try imagesWith("t10k-labels-idx1-ubyte", bytes: [0, 0, 0x08, 0x01, 0, 0, 0, 200, 1, 2, 3], in: dir + "/short")
        expectOneLineError(try runPrism(["train", "--device", "cpu", "--data", folder, "--arch", "mlp", "--epochs", "1"]),
                           "t10k-labels-idx1-ubyte: truncated IDX file: dimensions [200] need 208 bytes, found 11")
        // Counts that disagree: 3 labels for 200 images.
        folder = try imagesWith("t10k-labels-idx1-ubyte", bytes: [0, 0, 0x08, 0x01, 0, 0, 0, 3, 1, 2, 3], in: dir + "/counts")
        expectOneLineError(try runPrism(["train", "--device", "cpu", "--data", folder, "--arch", "mlp", "--epochs", "1"]),
                           "t10k-labels-idx1-ubyte: 3 labels, but t10k-images-idx3-ubyte.gz holds 200 images")
        // A label out of range.
        folder = try imagesWith("t10k-labels-idx1-ubyte", bytes: [0, 0, 0x08, 0x01, 0, 0, 0, 200] + [UInt8](repeating: 1, count: 199) + [42],
                                in: dir + "/range")
        expectOneLineError(try runPrism(["train", "--device", "cpu", "--data", folder, "--arch", "mlp", "--epochs", "1"]),
                           "t10k-labels-idx1-ubyte: label 42 at index 199 outside 0..<10")
    }

    @Test func badCSVNamesRowAndColumn() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let csv = dir + "/bad.csv"
        try "a,b,y\n1,2,0\n3,x,1\n".write(toFile: csv, atomically: true, encoding: .utf8)
        expectOneLineError(try runPrism(["train", "--device", "cpu", "--data", csv, "--label", "y", "--arch", "mlp"]),
                           "bad.csv: row 3, column 'b': 'x' is not a finite number")
        expectOneLineError(try runPrism(["train", "--device", "cpu", "--data", csv, "--label", "nope", "--arch", "mlp"]),
                           "bad.csv: no label column 'nope'")
    }

    @Test func badModelFilesNameTheTensor() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/m.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", Self.images, "--arch", "mlp", "--hidden", "8",
                                  "--epochs", "1", "--limit", "64", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: model)))
        let headerLength = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let header = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)

        func variant(_ name: String, _ edit: (String) -> String) throws -> String {
            let edited = Array(edit(header).utf8)
            let padded = edited + [UInt8](repeating: 0x20, count: max(0, headerLength - edited.count))
            var length = UInt64(padded.count)
            var out: [UInt8] = []
            for _ in 0..<8 { out.append(UInt8(length & 0xFF)); length >>= 8 }
            let path = dir + "/" + name
            try Data(out + padded + bytes[(8 + headerLength)...]).write(to: URL(fileURLWithPath: path))
            return path
        }
        let missing = try variant("missing.safetensors") { $0.replacingOccurrences(of: "\"3.bias\"", with: "\"3.xxxx\"") }
        expectOneLineError(try runPrism(["eval", "--device", "cpu", "--data", Self.images, "--model", missing]),
                           "missing.safetensors: missing tensor '3.bias'")
        let dtype = try variant("dtype.safetensors") { $0.replacingOccurrences(of: "\"F32\"", with: "\"C64\"") }
        expectOneLineError(try runPrism(["eval", "--device", "cpu", "--data", Self.images, "--model", dtype]),
                           "unsupported dtype C64")
        // Data of another shape than the model's input: the model expects 28×28 images, the CSV has 4 columns.
        expectOneLineError(try runPrism(["eval", "--device", "cpu", "--data", Self.fixtures + "/tabular.csv", "--label", "species",
                                         "--model", model]),
                           "data: examples have shape [4], the model expects [1, 28, 28]")
    }
}
