import Foundation
import Prism
import PrismCL
import PrismTestSupport
import Testing

/// `prism train --task`, and `eval` and `predict` on regression models and on CSV models, run as a
/// user runs them on small CSV files written by the tests.
@Suite(.serialized) struct RegressionCLITests {
    /// A fresh folder for one test's files.
    func scratch() throws -> String { try scratchDirectory("cli-regression") }

    /// `rows` rows of three seeded features a, b, c and `target` = 100 + 30a − 20b + 5c + noise,
    /// written with `digits` decimals (0: integers).
    func writeLinearCSV(_ path: String, rows: Int = 200, digits: Int = 3) throws {
        let x = seededFloats(rows * 3, seed: 31), noise = seededFloats(rows, seed: 32)
        var text = "a,b,c,target\n"
        for i in 0..<rows {
            let (a, b, c) = (x[3 * i], x[3 * i + 1], x[3 * i + 2])
            let y = 100 + 30 * a - 20 * b + 5 * c + 2 * noise[i]
            text += String(format: "%.4f,%.4f,%.4f,%.\(digits)f\n", a, b, c, y)
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Train → eval → predict on a numeric target: eval's RMSE, MAE and R² are those computed here
    /// from the saved model's outputs on the last 20% of the rows (standardized with the stored transform).
    @Test func regressionTrainEvalPredict() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let csv = dir + "/lin.csv", model = dir + "/m.safetensors"
        try writeLinearCSV(csv)
        let train = try runPrism(["train", "--device", "cpu", "--data", csv, "--label", "target", "--task", "regression",
                                  "--arch", "mlp", "--hidden", "16", "--epochs", "40", "--batch", "32", "--lr", "0.01", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stdout.contains("epoch 40/40  train MSE"), "\(train.stdout)")
        #expect(!train.stderr.contains("note:"))
        let log = try String(contentsOfFile: model + ".log.jsonl", encoding: .utf8).split(separator: "\n")
        let last = try #require(try JSONSerialization.jsonObject(with: Data(log[log.count - 1].utf8)) as? [String: Any])
        #expect(last["test_r2"] is Double && last["train_accuracy"] == nil)

        // Independent answer: the model's outputs on the test rows, metrics computed here.
        let engine = Engine(context: try testContext())
        let (loaded, file) = try Model.load(path: model, engine: engine)
        #expect(loaded.spec.task == .regression(outputs: ["target"]))
        #expect(file.metadata["prism.target-standardization"] == nil)
        let s = try JSONDecoder().decode(TabularDataset.Standardization.self, from: Data(try #require(file.metadata["prism.standardization"]).utf8))
        let table = try TabularDataset.loadRegressionCSV(path: csv, target: "target")
        let rows = Array(160..<200), width = 3
        var features: [Float] = []
        for i in rows { for j in 0..<width { features.append((table.features[i * width + j] - s.mean[j]) / s.std[j]) } }
        let outputs = try engine.noGrad { try loaded(try Tensor(features, shape: [rows.count, width], engine: engine)).toArray() }
        let targets = rows.map { Double(table.targets![$0]) }
        let errors = zip(outputs, targets).map { Double($0) - $1 }
        let n = Double(rows.count)
        let mean: Double = targets.reduce(0, +) / n
        let squares: Double = errors.reduce(0) { $0 + $1 * $1 }
        let absolute: Double = errors.reduce(0) { $0 + abs($1) }
        let total: Double = targets.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        let rmse = (squares / n).squareRoot(), mae = absolute / n, r2 = 1 - squares / total

        let eval = try runPrism(["eval", "--device", "cpu", "--data", csv, "--label", "target", "--model", model, "--json"])
        #expect(eval.status == 0, "\(eval.stderr)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        #expect(result["count"] as? Int == 40)
        let (gotRMSE, gotMAE, gotR2) = (try #require(result["rmse"] as? Double), try #require(result["mae"] as? Double), try #require(result["r2"] as? Double))
        #expect(abs(gotRMSE - rmse) <= 1e-4 * max(1, rmse), "rmse \(gotRMSE) vs \(rmse)")
        #expect(abs(gotMAE - mae) <= 1e-4 * max(1, mae), "mae \(gotMAE) vs \(mae)")
        #expect(abs(gotR2 - r2) <= 1e-5, "r2 \(gotR2) vs \(r2)")
        // The model learned the line: the noise (uniform in ±2) has an RMS of 1.15; the target's spread is about 22.
        #expect(r2 >= 0.9 && rmse <= 6, "r2 \(r2), rmse \(rmse)")

        let text = try runPrism(["eval", "--device", "cpu", "--data", csv, "--label", "target", "--model", model])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains(String(format: "RMSE %.4f, MAE %.4f, R² %.4f over 40 examples", rmse, mae, r2)), "\(text.stdout)")

        let predict = try runPrism(["predict", "--device", "cpu", "--data", csv, "--label", "target", "--model", model, "--index", "2"])
        #expect(predict.status == 0, "\(predict.stderr)")
        #expect(predict.stdout.contains(String(format: "example 2: true 'target' %.4g", targets[2])), "\(predict.stdout)")
        #expect(predict.stdout.contains(String(format: "output 'target': %.4g", outputs[2])), "\(predict.stdout)")

        // Resuming continues with the checkpoint's task and target standardization: the same model as one run.
        let straight = dir + "/straight.safetensors", split = dir + "/split.safetensors"
        let common = ["train", "--device", "cpu", "--data", csv, "--label", "target", "--task", "regression", "--arch", "mlp",
                      "--hidden", "8", "--batch", "32", "--lr", "0.01"]
        #expect(try runPrism(common + ["--epochs", "2", "--out", straight]).status == 0)
        #expect(try runPrism(common + ["--epochs", "1", "--out", split]).status == 0)
        let resumed = try runPrism(["train", "--device", "cpu", "--data", csv, "--label", "target", "--epochs", "2", "--out", split, "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try SafetensorsFile.read(path: straight).tensors == SafetensorsFile.read(path: split).tensors)
        let wrongTask = try runPrism(["train", "--device", "cpu", "--data", csv, "--label", "target", "--task", "classification",
                                      "--epochs", "3", "--out", split, "--resume"])
        expectOneLineError(wrongTask, "the checkpoint \(split).ckpt holds a regression model")
    }

    /// Integer targets without --task become classes with a note; above --max-classes they are refused
    /// with the count; non-integer ones are refused naming --task regression.
    @Test func labelColumnsAreNeverGuessedQuietly() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let integers = dir + "/int.csv", floats = dir + "/float.csv"
        try writeLinearCSV(integers, digits: 0)
        try writeLinearCSV(floats)
        let classes = try runPrism(["train", "--device", "cpu", "--data", integers, "--label", "target", "--arch", "mlp",
                                    "--hidden", "4", "--epochs", "1", "--max-classes", "1000", "--out", dir + "/c.safetensors"])
        #expect(classes.status == 0, "\(classes.stderr)")
        let table = try TabularDataset.loadRegressionCSV(path: integers, target: "target")
        let distinct = Set(table.targets!).count, largest = Int(table.targets!.max()!)
        #expect(classes.stderr.contains("note: int.csv: column 'target': \(distinct) distinct integer values taken as classes 0…\(largest) (\(largest + 1) classes); pass --task regression"),
                "\(classes.stderr)")
        expectOneLineError(try runPrism(["train", "--device", "cpu", "--data", integers, "--label", "target", "--arch", "mlp", "--epochs", "1",
                                         "--out", dir + "/d.safetensors"]),
                           "int.csv: column 'target': \(distinct) distinct integer values up to \(largest) would make \(largest + 1) classes, more than the limit of 100 (--max-classes); for a numeric target use --task regression")
        expectOneLineError(try runPrism(["train", "--device", "cpu", "--data", floats, "--label", "target", "--arch", "mlp", "--epochs", "1",
                                         "--out", dir + "/e.safetensors"]),
                           "float.csv: column 'target' holds values that are not class indices")
        let refused = try runPrism(["train", "--device", "cpu", "--data", floats, "--label", "target", "--arch", "mlp", "--epochs", "1",
                                    "--out", dir + "/e.safetensors"])
        #expect(refused.stderr.contains("--task regression"))
        expectOneLineError(try runPrism(["train", "--device", "cpu", "--data", floats, "--label", "target", "--task", "classification",
                                         "--arch", "mlp", "--epochs", "1", "--out", dir + "/e.safetensors"]),
                           "is not a class index (a non-negative integer); for a numeric target use --task regression")
        #expect(!FileManager.default.fileExists(atPath: dir + "/d.safetensors") && !FileManager.default.fileExists(atPath: dir + "/e.safetensors"))
    }

    /// A CSV model without its stored standardization is refused by eval and predict, naming the file,
    /// rather than standardized by whatever --data is given.
    @Test func csvModelWithoutStandardizationIsRefused() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let csv = dir + "/lin.csv", model = dir + "/m.safetensors", bare = dir + "/bare.safetensors"
        try writeLinearCSV(csv, rows: 60)
        let train = try runPrism(["train", "--device", "cpu", "--data", csv, "--label", "target", "--task", "regression",
                                  "--arch", "mlp", "--hidden", "4", "--epochs", "1", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        var file = try SafetensorsFile.read(path: model)
        #expect(file.metadata.removeValue(forKey: "prism.standardization") != nil)
        try file.write(path: bare)
        for command in ["eval", "predict"] {
            expectOneLineError(try runPrism([command, "--device", "cpu", "--data", csv, "--label", "target", "--model", bare]),
                               "\(bare) has no stored standardization ('prism.standardization'), which CSV inputs need; retrain it with prism train")
        }
        // A regression model on image data is refused too.
        let images = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/fashion-mnist-subset").path
        expectOneLineError(try runPrism(["eval", "--device", "cpu", "--data", images, "--model", model]),
                           "\(model) is a regression model")
        expectOneLineError(try runPrism(["train", "--device", "cpu", "--data", images, "--task", "regression", "--arch", "mlp", "--epochs", "1",
                                         "--out", dir + "/i.safetensors"]),
                           "--task regression needs a CSV file with a numeric target column")
    }
}
