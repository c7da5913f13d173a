import Foundation
import PrismTestSupport
import Testing

/// `prism explain` on a regression model: its one output is explained (no predicted class), lines and
/// the report say "output", the document says `regression` and carries the true values.
@Suite(.serialized) struct ExplainRegressionCLITests {
    @Test func regressionModelsExplainTheirOutput() throws {
        let dir = try scratchDirectory("explain-regression")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let csv = dir + "/lin.csv", model = dir + "/m.safetensors"
        try RegressionCLITests().writeLinearCSV(csv, rows: 100)
        let train = try runPrism(["train", "--device", "cpu", "--data", csv, "--label", "target", "--task", "regression",
                                  "--arch", "mlp", "--hidden", "8", "--epochs", "5", "--batch", "16", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        let run = try runPrism(["explain", "--device", "cpu", "--data", csv, "--label", "target", "--model", model, "--index", "0,5",
                                "--method", "exact-shap,kernel-shap", "--background", "20", "--out", dir + "/report"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("example 0: output 'target', f(x) ") && run.stdout.contains("(true "), "\(run.stdout)")
        #expect(!run.stdout.contains("predicted"))

        let doc = try ExplainDocumentReader(path: dir + "/report/explanation.json")
        let model_ = try #require(doc.json["model"] as? [String: Any])
        #expect(model_["task"] as? String == "regression" && model_["output_names"] as? [String] == ["target"])
        #expect((doc.inputs["true_values"] as? [[Double]])?.count == 2)
        // Three features, one output: exact and Kernel SHAP (which enumerates every coalition here) agree
        // and add up to f(x) − E f.
        let exact = doc.values("exact-shap"), kernel = doc.values("kernel-shap")
        #expect(doc.shape("exact-shap") == [2, 3, 1] && exact.count == kernel.count)
        for (a, b) in zip(exact, kernel) { #expect(abs(a - b) <= 1e-6 * max(1, abs(a))) }
        let base = try #require(doc.array("base_values", of: "exact-shap")?.values)
        let outputs = try #require(doc.array("outputs", of: "exact-shap")?.values)
        for i in 0..<2 {
            let sum = (0..<3).reduce(0.0) { $0 + exact[i * 3 + $1] }
            #expect(abs(sum + base[i] - outputs[i]) <= 1e-4 * max(1, abs(outputs[i])))
        }
        let html = try String(contentsOfFile: dir + "/report/index.html", encoding: .utf8)
        #expect(html.contains("output 'target'") && !html.contains("Top classes"))

        let badTarget = try runPrism(["explain", "--device", "cpu", "--data", csv, "--label", "target", "--model", model, "--target", "3"])
        #expect(badTarget.status == 1 && badTarget.stderr == "--target 3 is outside the model's outputs 0..<1\n", "\(badTarget.stderr)")
    }
}
