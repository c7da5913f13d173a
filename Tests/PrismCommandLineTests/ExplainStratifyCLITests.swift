import Foundation
import Testing

extension ExplainCLITests {
    /// `--stratify` on the four-feature model: leverage-shap with every coalition of every background
    /// row gives exact-shap's values; sampled kernel-shap and permutation-shap add up to f(x) − base,
    /// cost the unstratified run's model evaluations, record the strata, and give the same values with
    /// `--instances-per-batch 2`. Exact Shapley values, a stopping rule and feature selection are refused.
    @Test func stratifyByBackgroundRow() throws {
        let dir = try scratchDirectory("stratify")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try trainedModel(in: dir)
        let base = ["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model, "--index", "0,4",
                    "--background", "12", "--seed", "3"]
        let exact = try runPrism(base + ["--method", "exact-shap", "--json", dir + "/exact.json"])
        #expect(exact.status == 0, "\(exact.stderr)")
        let exactDoc = try ExplainDocumentReader(path: dir + "/exact.json")
        let all = try runPrism(base + ["--method", "leverage-shap", "--samples", "100", "--stratify", "--json", dir + "/all.json"])
        #expect(all.status == 0, "\(all.stderr)")
        let allDoc = try ExplainDocumentReader(path: dir + "/all.json")
        #expect(allDoc.settings()["strata"] as? Int == 12 && allDoc.settings()["stratified"] as? String == "background rows", "\(allDoc.settings())")
        expectNear(allDoc.values(), exactDoc.values(), 1e-5, "every coalition of every row vs exact-shap")

        for (method, samples) in [("kernel-shap", "10"), ("permutation-shap", "28")] {
            var docs: [ExplainDocumentReader] = []
            for (name, extra) in [("plain", [String]()), ("strat", ["--stratify"]), ("strat2", ["--stratify", "--instances-per-batch", "2"])] {
                let run = try runPrism(base + ["--method", method, "--samples", samples, "--json", dir + "/\(name).json"] + extra)
                #expect(run.status == 0, "\(run.stderr)")
                docs.append(try ExplainDocumentReader(path: dir + "/\(name).json"))
            }
            let strat = docs[1]
            #expect(strat.settings()["strata"] as? Int == 12, "\(strat.settings())")
            #expect(strat.modelEvaluations() == docs[0].modelEvaluations() && strat.modelEvaluations() > 0,
                    "\(method): \(strat.modelEvaluations()) evaluations stratified, \(docs[0].modelEvaluations()) not")
            let values = strat.values()
            let baseValues = try #require(strat.array("base_values")?.values)
            let outputs = try #require(strat.array("outputs")?.values)
            expectNear(baseValues, try #require(exactDoc.array("base_values")?.values), 1e-5, "\(method) base values vs exact-shap")
            for i in 0..<2 {
                for k in 0..<3 {
                    let sum = (0..<4).reduce(0.0) { $0 + values[(i * 4 + $1) * 3 + k] }
                    #expect(abs(sum - (outputs[i * 3 + k] - baseValues[i * 3 + k])) <= 1e-5 * max(1, abs(outputs[i * 3 + k])),
                            "\(method) example \(i) output \(k): Σφ \(sum), f(x) − base \(outputs[i * 3 + k] - baseValues[i * 3 + k])")
                }
            }
            expectNear(docs[2].values(), values, 1e-5, "\(method) --instances-per-batch 2 vs 1")
        }

        for (extra, word) in [(["--method", "exact-shap"], "exact-shap"), (["--method", "kernel-shap", "--stop-threshold", "0.1"], "--stop-threshold"),
                              (["--method", "kernel-shap", "--num-features", "2"], "--num-features"), (["--method", "saliency"], "SHAP")] {
            let run = try runPrism(base + extra + ["--stratify", "--json", dir + "/refused.json"])
            #expect(run.status != 0 && run.stderr.contains("--stratify") && run.stderr.contains(word), "\(extra): \(run.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/refused.json"))
        }
    }
}
