import Foundation
import Testing

/// `prism explain-train` and `prism explain --method fastshap` on the tabular fixture: the explainer
/// file, efficiency of its values, its error against Kernel SHAP (exact here: four features), and
/// the refusals.
@Suite struct FastShapCLITests {
    @Test func trainsAnExplainerAndChecksItAgainstKernelShap() throws {
        let dir = try scratchDirectory("fastshap")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try ExplainCLITests().trainedModel(in: dir)
        let data = ["--data", ExplainCLITests.csv, "--label", "species"]
        let trained = try runPrism(["explain-train", "--device", "cpu", "--model", model, "--out", dir + "/e.safetensors", "--images", "120",
                                    "--coalitions", "8", "--background", "12", "--epochs", "60", "--hidden", "32", "--learning-rate", "0.01"] + data)
        #expect(trained.status == 0, "\(trained.stderr)")
        #expect(trained.stdout.hasPrefix("wrote \(dir)/e.safetensors: loss "), "\(trained.stdout)")
        #expect(trained.stderr.contains("120 examples × (8 coalitions + the empty and the full one) × 12 background rows = 14400 model evaluations"), "\(trained.stderr)")

        let explained = try runPrism(["explain", "--device", "cpu", "--model", model, "--index", "0,1,2,3", "--method", "fastshap",
                                      "--explainer", dir + "/e.safetensors", "--check", "4", "--json", dir + "/f.json"] + data)
        #expect(explained.status == 0, "\(explained.stderr)")
        let document = try ExplainDocumentReader(path: dir + "/f.json")
        let values = document.values("fastshap"), base = document.array("base_values")?.values ?? []
        let outputs = document.array("outputs")?.values ?? []
        #expect(document.shape("fastshap") == [4, 4, 1] && base.count == 4 && outputs.count == 4, "\(document.shape("fastshap"))")
        // Efficiency: Σφ = f(x) − E f(background), by the normalization.
        for i in 0..<min(4, base.count, outputs.count) where values.count == 16 {
            let sum = values[(i * 4)..<((i + 1) * 4)].reduce(0, +)
            #expect(abs(sum + base[i] - outputs[i]) <= 1e-4 * max(1, abs(outputs[i])), "example \(i): Σφ \(sum) + base \(base[i]) vs f(x) \(outputs[i])")
        }
        let settings = document.settings("fastshap")
        let mean = settings["check_error_mean"] as? Double ?? .nan
        #expect(settings["check_instances"] as? Int == 4 && mean.isFinite && mean < 0.5, "\(settings)")
        #expect(explained.stdout.contains("fastshap against Kernel SHAP on 4 examples: relative error mean"), "\(explained.stdout)")

        expectOneLineError(try runPrism(["explain", "--device", "cpu", "--model", model, "--index", "0", "--method", "fastshap"] + data),
                           "--method fastshap needs --explainer FILE (written by prism explain-train)")
        expectOneLineError(try runPrism(["explain", "--device", "cpu", "--model", model, "--index", "0", "--method", "fastshap",
                                         "--explainer", model] + data),
                           "not an explainer written by prism explain-train")
        expectOneLineError(try runPrism(["explain-train", "--device", "cpu", "--model", model, "--out", dir + "/x.safetensors",
                                         "--coalitions", "7"] + data),
                           "--coalitions must be an even number of at least 2 (complementary pairs)")
        expectOneLineError(try runPrism(["explain-train", "--device", "cpu", "--model", model, "--out", dir + "/x.safetensors",
                                         "--background-per-coalition", "0"] + data),
                           "--background-per-coalition must be at least 1")
        expectOneLineError(try runPrism(["explain-train", "--device", "cpu", "--model", model, "--out", dir + "/x.safetensors",
                                         "--control-rows", "-1"] + data),
                           "--control-rows must be 0 (no linear control variate) or more")

        // Fresh coalitions every epoch, each valued by 2 background rows drawn for it.
        let resampled = try runPrism(["explain-train", "--device", "cpu", "--model", model, "--out", dir + "/r.safetensors", "--images", "120",
                                      "--coalitions", "8", "--background", "12", "--background-per-coalition", "2", "--epochs", "5",
                                      "--architecture", "model", "--control-rows", "500"] + data)
        #expect(resampled.status == 0, "\(resampled.stderr)")
        #expect(resampled.stderr.contains("5 epochs × 120 examples × 8 fresh coalitions × 2 of 12 background rows = 9600 model evaluations, and 500 to fit the linear control variate"),
                "\(resampled.stderr)")
        #expect(resampled.stdout.contains("over 5 epochs, \(9600 + 120 + 12 + 500) model evaluations"), "\(resampled.stdout)")
        #expect(resampled.stdout.contains("the linear control variate, fitted to 500 masked inputs, has R² 0."), "\(resampled.stdout)")
        // The explainer is the model's own graph, widened: it explains as any explainer file does.
        let fromModel = try runPrism(["explain", "--device", "cpu", "--model", model, "--index", "0,1", "--method", "fastshap",
                                      "--explainer", dir + "/r.safetensors", "--json", dir + "/r.json"] + data)
        #expect(fromModel.status == 0, "\(fromModel.stderr)")
        #expect(try ExplainDocumentReader(path: dir + "/r.json").shape("fastshap") == [2, 4, 1])
        expectOneLineError(try runPrism(["explain-train", "--device", "cpu", "--model", model, "--out", dir + "/x.safetensors",
                                         "--architecture", "unet"] + data),
                           "--architecture must be 'mlp' or 'model', got 'unet'")
    }
}
