import Foundation
import Prism
import PrismFormats
import PrismExplain
import PrismTestSupport
import Testing

/// `prism compress`: weight pruning on an MLP (Flatten, Linear 4→16, ReLU, Linear 16→3) — the sparsity
/// and test scores it prints, a file with torch's pruned names that every command reads, fine-tuning
/// that keeps the pruned weights at zero, `--finalize`, the comparison report; filter pruning and
/// distillation of a cnn on the fixture images with the report's pictures; bad values in one line.
@Suite struct CompressCLITests {
    static let csv = TrainCLITests.fixtures + "/tabular.csv"

    @Test func pruneFineTuneAndFinalize() throws {
        let dir = try scratchDirectory("prune")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/m.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", Self.csv, "--label", "species", "--arch", "mlp", "--hidden", "16",
                                  "--epochs", "3", "--batch", "16", "--lr", "0.01", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        let common = ["compress", "prune", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model]

        // Per layer: 16×4 = 64 and 3×16 = 48 weights, half of each pruned.
        let layer = try runPrism(common + ["--amount", "0.5", "--scope", "layer", "--finetune-epochs", "2", "--lr", "0.01", "--out", dir + "/p"])
        #expect(layer.status == 0, "\(layer.stderr)")
        #expect(layer.stdout.contains("pruned 56 of 112 weights (50.0%, layer scope, L1 magnitude) in 2 tensors"), "\(layer.stdout)")
        #expect(layer.stdout.contains("1.weight: 32 of 64 pruned (50.0%)") && layer.stdout.contains("3.weight: 24 of 48 pruned (50.0%)"), "\(layer.stdout)")
        #expect(layer.stdout.contains("test set: before accuracy ") && layer.stdout.contains("; pruned accuracy ")
                && layer.stdout.contains("fine-tuned: accuracy "), "\(layer.stdout)")
        // The original's and the pruned model's explanations compared on 8 test examples.
        for method in ["ig", "kernel-shap"] {
            #expect(layer.stdout.contains("explanation agreement, \(method) on 8 test examples (the original's predicted class): Spearman "), "\(layer.stdout)")
        }
        let summary = try Self.report(dir + "/p")
        let methods = try #require(summary["methods"] as? [[String: Any]])
        #expect(methods.compactMap { $0["method"] as? String } == ["ig", "kernel-shap"])
        for m in methods {
            let a = try #require(m["agreement"] as? [String: Any])
            let (rho, overlap) = (a["spearman"] as? Double ?? .nan, a["top_k_overlap"] as? Double ?? .nan)
            // 4 features: top-10 is all of them.
            #expect(rho >= -1 && rho <= 1 && overlap == 1 && a["k"] as? Int == 4 && a["instances"] as? Int == 8, "\(m)")
            #expect((m["deletion_auc"] as? [Double])?.count == 2 && (m["insertion_auc"] as? [Double])?.count == 2)
        }
        // 56 of the 112 weights are zero in the compressed model; both files measured.
        let (original, compressed) = (try #require(summary["original"] as? [String: Any]), try #require(summary["compressed"] as? [String: Any]))
        #expect(original["parameters"] as? Int == 131 && original["nonzero_parameters"] as? Int == 131)
        #expect(compressed["parameters"] as? Int == 131 && compressed["nonzero_parameters"] as? Int == 75)
        for facts in [original, compressed] {
            #expect((facts["file_bytes"] as? Int ?? 0) > 0 && (facts["evaluations_per_second"] as? Double ?? 0) > 0 && facts["accuracy"] is Double, "\(facts)")
        }
        #expect((summary["details"] as? [String])?.contains { $0.hasPrefix("fine-tuned 2 epochs") } == true)
        // Tabular data: tables, no pictures.
        let html = try String(contentsOfFile: dir + "/p/index.html", encoding: .utf8)
        #expect(html.contains("<table>") && !html.contains(".png"))
        let file = try SafetensorsFile.read(path: dir + "/p/model.safetensors")
        #expect(file.tensors["1.weight_mask"] != nil && file.tensors["1.weight_orig"] != nil && file.tensors["1.weight"] == nil)
        // Fine-tuning kept the pruned weights at zero.
        for name in ["1.weight", "3.weight"] {
            let (w, m) = (try #require(file.tensors[name + "_orig"]).values, try #require(file.tensors[name + "_mask"]).values)
            #expect(zip(w, m).allSatisfy { $1 == 1 || $0 == 0 } && m.filter { $0 == 0 }.count * 2 == m.count, "\(name)")
        }
        #expect(file.metadata[ModelFileKey.standardization] != nil)
        let eval = try runPrism(["eval", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", dir + "/p/model.safetensors"])
        #expect(eval.status == 0 && eval.stdout.contains("accuracy "), "\(eval.stderr)")

        // Global and folded away: plain weights, 30% of all zero.
        let global = try runPrism(common + ["--amount", "0.3", "--finalize", "--agreement-examples", "0", "--out", dir + "/f"])
        #expect(global.status == 0, "\(global.stderr)")
        #expect(global.stdout.contains("pruned 34 of 112 weights (30.4%, global scope"), "\(global.stdout)")
        let folded = try SafetensorsFile.read(path: dir + "/f/model.safetensors")
        #expect(Set(folded.tensors.keys) == ["1.weight", "1.bias", "3.weight", "3.bias"])
        #expect(["1.weight", "3.weight"].map { folded.tensors[$0]!.values.filter { $0 == 0 }.count }.reduce(0, +) == 34)

        expectOneLineError(try runPrism(common + ["--amount", "1.5", "--out", dir + "/x"]), "--amount 1.5: give a fraction from 0 to 1")
        expectOneLineError(try runPrism(common + ["--amount", "0.5", "--out", dir + "/x.safetensors"]), "--out \(dir)/x.safetensors: give a folder")
        expectOneLineError(try runPrism(common + ["--amount", "0.5", "--structure", "filters", "--scope", "global", "--out", dir + "/x"]),
                           "--scope applies to --structure weights")
        expectOneLineError(try runPrism(common + ["--amount", "0.5", "--agreement-methods", "ig,lime", "--out", dir + "/x"]),
                           "--agreement-methods ig,lime: give ig, kernel-shap or both")
    }

    static func report(_ folder: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/report.json"))) as? [String: Any])
    }

    /// The report's pictures exist and are linked; the IG flag agrees with the target.
    func expectPictures(_ folder: String, methods: [String], examples: Int) throws {
        let html = try String(contentsOfFile: folder + "/index.html", encoding: .utf8)
        for i in 0..<examples {
            for name in ["example-\(i)-input.png"] + methods.flatMap({ ["example-\(i)-\($0)-original.png", "example-\(i)-\($0)-compressed.png"] }) {
                #expect(FileManager.default.fileExists(atPath: folder + "/" + name) && html.contains("src=\"\(name)\""), "\(name)")
            }
        }
        let summary = try Self.report(folder)
        guard methods.contains("ig") else { return }
        let ig = try #require((summary["methods"] as? [[String: Any]])?.first { $0["method"] as? String == "ig" }?["agreement"] as? [String: Any])
        let below = (ig["spearman"] as? Double ?? .nan) < 0.9
        #expect(summary["below_target"] as? Bool == below && html.contains("Below target") == below)
    }

    @Test func filterPruningAndDistillationOfACNN() throws {
        let dir = try scratchDirectory("filters")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = ["--device", "cpu", "--data", TrainCLITests.images, "--limit", "200"]
        let teacher = dir + "/t.safetensors"
        let train = try runPrism(["train"] + data + ["--epochs", "2", "--out", teacher])
        #expect(train.status == 0, "\(train.stderr)")

        // 50% of each channel group's filters: 16 of 32, 32 of 64, 64 of 128; an ordinary, smaller model.
        let prune = try runPrism(["compress", "prune"] + data + ["--model", teacher, "--structure", "filters", "--amount", "0.5",
                                                                "--agreement-examples", "2", "--agreement-methods", "ig", "--out", dir + "/pf"])
        #expect(prune.status == 0, "\(prune.stderr)")
        #expect(prune.stdout.contains("removed 112 of 224 channels (L2 norm of the filters) in 3 channel groups; 56714 of 225034 parameters remain"), "\(prune.stdout)")
        #expect(prune.stdout.contains("  0: 16 of 32 channels kept") && prune.stdout.contains("  7: 64 of 128 channels kept"))
        let file = try SafetensorsFile.read(path: dir + "/pf/model.safetensors")
        #expect(file.tensors["3.weight"]?.shape == [32, 16, 3, 3] && file.tensors["7.weight"]?.shape == [64, 800] && file.tensors["9.weight"]?.shape == [10, 64])
        #expect(!file.tensors.keys.contains { $0.hasSuffix("_mask") })
        try expectPictures(dir + "/pf", methods: ["ig"], examples: 2)
        let eval = try runPrism(["eval"] + data + ["--model", dir + "/pf/model.safetensors"])
        #expect(eval.status == 0 && eval.stdout.contains("accuracy "), "\(eval.stderr)")

        // The teacher's graph at half width, trained with the teacher.
        let distill = try runPrism(["compress", "distill"] + data + ["--teacher", teacher, "--width", "0.5", "--epochs", "1",
                                                                    "--agreement-examples", "2", "--agreement-methods", "kernel-shap", "--out", dir + "/d"])
        #expect(distill.status == 0, "\(distill.stderr)")
        #expect(distill.stdout.contains("student: the teacher's graph at width 0.5 (56714 parameters, 25.2% of the teacher's)"), "\(distill.stdout)")
        #expect(distill.stderr.contains("α·T²·KL(teacher ‖ student) + (1 − α)·CE with T = 4.0, α = 0.7"), "\(distill.stderr)")
        try expectPictures(dir + "/d", methods: ["kernel-shap"], examples: 2)
        let summary = try Self.report(dir + "/d")
        #expect(summary["command"] as? String == "distill" && (summary["compressed"] as? [String: Any])?["parameters"] as? Int == 56714)
        // A new MLP as the student, the report without explanations.
        let mlp = try runPrism(["compress", "distill"] + data + ["--teacher", teacher, "--arch", "mlp", "--hidden", "32", "--epochs", "1",
                                                                "--agreement-examples", "0", "--out", dir + "/m"])
        #expect(mlp.status == 0 && mlp.stdout.contains("student: a new mlp (25450 parameters"), "\(mlp.stderr)")

        // Static int8: the file holds I8 weights with their scales, every command reads it, the report uses the integer kernels.
        let quantize = try runPrism(["compress", "quantize"] + data + ["--model", teacher, "--calibration", "64", "--agreement-examples", "2",
                                                                      "--agreement-methods", "ig", "--out", dir + "/q"])
        #expect(quantize.status == 0, "\(quantize.stderr)")
        #expect(quantize.stdout.contains("int8 static quantization: 4 weight tensors int8 per output channel, activations uint8 per tensor (minmax observer, 64 calibration examples); 7 steps in integers"), "\(quantize.stdout)")
        let q = try SafetensorsFile.read(path: dir + "/q/model.safetensors")
        #expect(q.integerTensors["0.weight"]?.dtype == "I8" && q.integerTensors["0.weight"]?.shape == [32, 1, 3, 3] && q.tensors["0.weight_scale"]?.shape == [32])
        #expect(q.integerTensors["9.weight"]?.values.allSatisfy { abs($0) <= 127 } == true && q.tensors["0.weight"] == nil)
        let qeval = try runPrism(["eval"] + data + ["--model", dir + "/q/model.safetensors"])
        #expect(qeval.status == 0 && qeval.stdout.contains("accuracy "), "\(qeval.stderr)")
        try expectPictures(dir + "/q", methods: ["ig"], examples: 2)
        // A quarter of the float file (int8 weights), and the integer model's accuracy near the float one's.
        let qsummary = try Self.report(dir + "/q")
        let (qo, qc) = (try #require(qsummary["original"] as? [String: Any]), try #require(qsummary["compressed"] as? [String: Any]))
        #expect((qc["file_bytes"] as? Int ?? .max) * 3 < (qo["file_bytes"] as? Int ?? 0), "\(qc) \(qo)")
        #expect(abs((qc["accuracy"] as? Double ?? 0) - (qo["accuracy"] as? Double ?? 1)) < 0.03, "\(qc) \(qo)")
        // Dynamic: the original graph with int8 weights, inputs quantized at run time.
        let dynamic = try runPrism(["compress", "quantize"] + data + ["--model", teacher, "--mode", "dynamic", "--agreement-examples", "0", "--out", dir + "/qd"])
        #expect(dynamic.status == 0 && dynamic.stdout.contains("int8 dynamic quantization: 4 weight tensors"), "\(dynamic.stderr)")
        let qd = try SafetensorsFile.read(path: dir + "/qd/model.safetensors")
        #expect(qd.integerTensors["3.weight"]?.dtype == "I8" && !(qd.metadata[Model.specMetadataKey] ?? "").contains("fake_quantize"))
        expectOneLineError(try runPrism(["compress", "quantize"] + data + ["--model", teacher, "--percentile", "20", "--out", dir + "/x"]),
                           "--percentile 20.0: give a value in (50, 100]")

        let common = ["compress", "distill"] + data + ["--teacher", teacher, "--out", dir + "/x"]
        expectOneLineError(try runPrism(common), "give the student as one of --width, --arch or --model-spec")
        expectOneLineError(try runPrism(common + ["--width", "0.5", "--arch", "cnn"]), "give the student as one of --width, --arch or --model-spec")
        expectOneLineError(try runPrism(common + ["--width", "1.5"]), "--width 1.5: give a fraction in (0, 1]")
        expectOneLineError(try runPrism(common + ["--width", "0.5", "--alpha", "2"]), "--alpha 2.0: give a weight from 0 to 1")
        try Data("{".utf8).write(to: URL(fileURLWithPath: dir + "/bad.json"))
        expectOneLineError(try runPrism(common + ["--model-spec", dir + "/bad.json"]), "bad.json: not a Prism model description")
    }

    /// The residual CNN exported from PyTorch and imported, on seeded .npy examples: static int8 runs
    /// its convolutions, Linear layers and residual Add in integers and names the nodes left in float
    /// (the grouped convolution among them); the file exports to ONNX in QDQ form; distillation into
    /// the imported graph at half width trains a smaller student.
    @Test func compressionOfAnImportedModel() throws {
        let dir = try scratchDirectory("compress-onnx")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = URL(fileURLWithPath: TrainCLITests.fixtures).appendingPathComponent("onnx/residual_cnn_torchscript.onnx").path
        try writeNpy(seededFloats(120 * 360, seed: 4).map(Double.init), shape: [120, 3, 12, 10], path: dir + "/x.npy")
        try TrainDataCLITests().writeLabels(seededFloats(120, seed: 5, low: 0, high: 6.99).map { Int($0) }, path: dir + "/y.npy")
        let data = ["--device", "cpu", "--data", dir + "/x.npy", "--labels", dir + "/y.npy", "--agreement-examples", "0"]
        let quantize = try runPrism(["compress", "quantize"] + data + ["--model", model, "--calibration", "32", "--out", dir + "/q"])
        #expect(quantize.status == 0, "\(quantize.stderr)")
        #expect(quantize.stdout.contains("int8 static quantization: 5 weight tensors int8 per output channel, activations uint8 per tensor (minmax observer, 32 calibration examples); 6 steps in integers"),
                "\(quantize.stdout)")
        #expect(quantize.stdout.contains("in float between dequantization and quantization (no integer kernel here): 'block.conv1' (conv2d), "), "\(quantize.stdout)")
        let q = try SafetensorsFile.read(path: dir + "/q/model.safetensors")
        #expect(q.integerTensors["block.conv2.weight"]?.dtype == "I8" && q.tensors["block.conv1.weight"] != nil)
        let export = try runPrism(["export", "--model", dir + "/q/model.safetensors", "--onnx", dir + "/q.onnx"])
        #expect(export.status == 0 && export.stdout.contains("(5 int8 weights through DequantizeLinear included)"), "\(export.stderr)")
        let distill = try runPrism(["compress", "distill"] + data + ["--teacher", model, "--width", "0.5", "--epochs", "1", "--out", dir + "/d"])
        #expect(distill.status == 0 && distill.stdout.contains("student: the teacher's graph at width 0.5"), "\(distill.stderr)")
    }
}
