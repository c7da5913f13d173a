import Foundation
@testable import prism
import PrismExplain
import PrismTestSupport
import Testing

/// `prism explain --method deeplift,deepshap` from the command line: DeepLIFT against the
/// `--baseline`, DeepSHAP against the `--background` rows, both summing to their deltas in the JSON.
@Suite(.serialized) struct DeepLiftCLITests {
    /// An MLP trained for one epoch on the tabular fixture, written into `dir`.
    static func trainedMLP(in dir: String) throws -> String {
        let model = dir + "/t.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", ExplainCLITests.csv, "--label", "species", "--arch", "mlp",
                                  "--hidden", "8", "--epochs", "1", "--batch", "16", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        return model
    }

    @Test func deepLiftAndDeepShapFromTheCommandLine() throws {
        let dir = try scratchDirectory("deeplift")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try Self.trainedMLP(in: dir)
        let run = try runPrism(["explain", "--device", "cpu", "--data", ExplainCLITests.csv, "--label", "species", "--model", model,
                                "--index", "2,5", "--method", "deeplift,deepshap", "--background", "12", "--baseline", "mean",
                                "--out", dir + "/report"])
        #expect(run.status == 0, "\(run.stderr)")
        let doc = try ExplainDocumentReader(path: dir + "/report/explanation.json")
        #expect(doc.methodNames == ["deeplift", "deepshap"])
        for method in ["deeplift", "deepshap"] {
            let settings = doc.settings(method)
            let gap = try #require(settings["summation_gap"] as? Double), conservation = try #require(settings["conservation_gap"] as? Double)
            #expect(gap <= 1e-4 && conservation <= 1e-4, "\(method): summation gap \(gap), conservation gap \(conservation)")
            #expect(doc.values(method).count == 2 * 4 && doc.values(method).contains { $0 != 0 })
        }
        #expect(doc.settings("deepshap")["references"] as? Int == 12 && doc.settings("deeplift")["references"] as? Int == 1)
        // Both compare with the background's mean: for deeplift it is the one reference (--baseline mean).
        let html = try String(contentsOfFile: dir + "/report/index.html", encoding: .utf8)
        #expect(html.contains("DeepLIFT") && html.contains("DeepSHAP"))
    }

    /// `--method gradient-shap` with its options: standard errors in the JSON, the samples it drew,
    /// and values that sum to about f(x) − E f(background).
    @Test func gradientShapFromTheCommandLine() throws {
        let dir = try scratchDirectory("gradient-shap")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try Self.trainedMLP(in: dir)
        let run = try runPrism(["explain", "--device", "cpu", "--data", ExplainCLITests.csv, "--label", "species", "--model", model,
                                "--index", "1,4", "--method", "gradient-shap", "--background", "10", "--gradient-shap-samples", "400",
                                "--json", dir + "/e.json"])
        #expect(run.status == 0, "\(run.stderr)")
        let doc = try ExplainDocumentReader(path: dir + "/e.json")
        #expect(doc.settings("gradient-shap")["samples_drawn"] as? Int == 800)
        let errors = try #require(doc.array("standard_errors", of: "gradient-shap")?.values)
        #expect(errors.count == 8 && errors.allSatisfy { $0 > 0 && $0.isFinite })
        let values = doc.values("gradient-shap")
        let base = try #require(doc.array("base_values", of: "gradient-shap")?.values), outputs = try #require(doc.array("outputs", of: "gradient-shap")?.values)
        for i in 0..<2 {
            let sum = values[(i * 4)..<((i + 1) * 4)].reduce(0, +)
            #expect(abs(sum + base[i] - outputs[i]) <= 0.1 * max(1, abs(outputs[i])), "example \(i): Σφ \(sum), f \(outputs[i]), E f \(base[i])")
        }
        let bad = try runPrism(["explain", "--device", "cpu", "--data", ExplainCLITests.csv, "--label", "species", "--model", model,
                                "--index", "1", "--method", "gradient-shap", "--gradient-shap-samples", "1"])
        #expect(bad.status != 0 && bad.stderr.contains("--gradient-shap-samples must be at least 2"), "\(bad.stderr)")
    }

    /// An imported MLP that ends in Softmax (explained as shap treats Softmax, summing to delta), and a
    /// built-in vision transformer (its blocks through the steps they are made of), with its report.
    @Test func deepShapExplainsSoftmaxAndTheBuiltInTransformer() throws {
        let dir = try scratchDirectory("deeplift-refuse")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let mlp = TrainCLITests.fixtures + "/onnx/mlp_torchscript.onnx"
        try writeNpy((0..<40).map { Double($0 % 7) / 7 }, shape: [2, 20], path: dir + "/x.npy")
        try writeNpy((0..<100).map { Double($0 % 5) / 5 }, shape: [5, 20], path: dir + "/bg.npy")
        let run = try runPrism(["explain", "--device", "cpu", "--model", mlp, "--input", dir + "/x.npy", "--method", "deepshap",
                                "--background-data", dir + "/bg.npy", "--target", "0", "--json", dir + "/e.json"])
        #expect(run.status == 0, "\(run.stderr)")
        let gap = try #require(try ExplainDocumentReader(path: dir + "/e.json").settings("deepshap")["summation_gap"] as? Double)
        #expect(gap <= 1e-4)

        let vit = TrainCLITests.fixtures + "/format1/format1_vit.safetensors"
        try writeNpy((0..<(3 * 784)).map { Double(($0 * 37) % 101) / 101 }, shape: [3, 1, 28, 28], path: dir + "/images.npy")
        let transformer = try runPrism(["explain", "--device", "cpu", "--model", vit, "--input", TrainCLITests.fixtures + "/format1/x_mnist.npy",
                                        "--method", "deepshap", "--background-data", dir + "/images.npy",
                                        "--out", dir + "/report"])
        #expect(transformer.status == 0, "\(transformer.stderr)")
        let settings = try ExplainDocumentReader(path: dir + "/report/explanation.json").settings("deepshap")
        #expect((settings["summation_gap"] as? Double ?? 1) <= 1e-4 && (settings["conservation_gap"] as? Double ?? 1) <= 1e-4, "\(settings)")
        #expect(settings["references"] as? Int == 3)
        #expect(FileManager.default.fileExists(atPath: dir + "/report/input-0-deepshap.png"))
    }
}
