import Foundation
import Prism
import PrismFormats
import Testing

/// `prism compress prune` on an MLP (Flatten, Linear 4→16, ReLU, Linear 16→3): the sparsity and test scores it prints, a file with torch's pruned names
/// that every command reads, fine-tuning that keeps the pruned weights at zero, `--finalize`, and
/// bad values in one line.
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
        let layer = try runPrism(common + ["--amount", "0.5", "--scope", "layer", "--finetune-epochs", "2", "--lr", "0.01", "--out", dir + "/p.safetensors",
                                           "--json", dir + "/s.json"])
        #expect(layer.status == 0, "\(layer.stderr)")
        #expect(layer.stdout.contains("pruned 56 of 112 weights (50.0%, layer scope, L1 magnitude) in 2 tensors"), "\(layer.stdout)")
        #expect(layer.stdout.contains("1.weight: 32 of 64 pruned (50.0%)") && layer.stdout.contains("3.weight: 24 of 48 pruned (50.0%)"), "\(layer.stdout)")
        #expect(layer.stdout.contains("test set: before accuracy ") && layer.stdout.contains("; pruned accuracy ")
                && layer.stdout.contains("fine-tuned: accuracy "), "\(layer.stdout)")
        // The original's and the pruned model's explanations compared on 8 test examples.
        for method in ["ig", "kernel-shap"] {
            #expect(layer.stdout.contains("explanation agreement, \(method) on 8 test examples (the original's predicted class): Spearman "), "\(layer.stdout)")
        }
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/s.json"))) as? [String: Any])
        let agreement = try #require(summary["agreement"] as? [String: [String: Any]])
        #expect(Set(agreement.keys) == ["ig", "kernel-shap"])
        for (method, a) in agreement {
            let (rho, overlap) = (a["spearman"] as? Double ?? .nan, a["topKOverlap"] as? Double ?? .nan)
            // 4 features: top-10 is all of them.
            #expect(rho >= -1 && rho <= 1 && overlap == 1 && a["k"] as? Int == 4 && a["instances"] as? Int == 8, "\(method): \(a)")
        }
        #expect((summary["tensors"] as? [[String: Any]])?.count == 2 && summary["fineTuned"] is String)
        let file = try SafetensorsFile.read(path: dir + "/p.safetensors")
        #expect(file.tensors["1.weight_mask"] != nil && file.tensors["1.weight_orig"] != nil && file.tensors["1.weight"] == nil)
        // Fine-tuning kept the pruned weights at zero.
        for name in ["1.weight", "3.weight"] {
            let (w, m) = (try #require(file.tensors[name + "_orig"]).values, try #require(file.tensors[name + "_mask"]).values)
            #expect(zip(w, m).allSatisfy { $1 == 1 || $0 == 0 } && m.filter { $0 == 0 }.count * 2 == m.count, "\(name)")
        }
        #expect(file.metadata[ModelFileKey.standardization] != nil)
        let eval = try runPrism(["eval", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", dir + "/p.safetensors"])
        #expect(eval.status == 0 && eval.stdout.contains("accuracy "), "\(eval.stderr)")

        // Global and folded away: plain weights, 30% of all zero.
        let global = try runPrism(common + ["--amount", "0.3", "--finalize", "--out", dir + "/f.safetensors"])
        #expect(global.status == 0, "\(global.stderr)")
        #expect(global.stdout.contains("pruned 34 of 112 weights (30.4%, global scope"), "\(global.stdout)")
        let folded = try SafetensorsFile.read(path: dir + "/f.safetensors")
        #expect(Set(folded.tensors.keys) == ["1.weight", "1.bias", "3.weight", "3.bias"])
        #expect(["1.weight", "3.weight"].map { folded.tensors[$0]!.values.filter { $0 == 0 }.count }.reduce(0, +) == 34)

        expectOneLineError(try runPrism(common + ["--amount", "1.5", "--out", dir + "/x.safetensors"]), "--amount 1.5: give a fraction from 0 to 1")
        expectOneLineError(try runPrism(common + ["--amount", "0.5", "--structure", "filters", "--out", dir + "/x.safetensors"]), "filters")
    }
}
