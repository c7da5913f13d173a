import Foundation
import Testing

extension ExplainCLITests {
    /// `--method leverage-shap` on the four-feature model: at a sampled budget its values add up to
    /// f(x) − base, with exact-shap's base values and outputs; `--instances-per-batch 2` gives the same
    /// values; a budget above every coalition is capped at 2^4 − 2 and gives exact-shap's values.
    @Test func leverageShapAddsUpAndMatchesExactAtEveryCoalition() throws {
        let dir = try scratchDirectory("leverage")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try trainedModel(in: dir)
        let base = ["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model, "--index", "0,4",
                    "--background", "12", "--seed", "3"]
        var docs: [ExplainDocumentReader] = []
        for batch in ["1", "2"] {
            let run = try runPrism(base + ["--method", "exact-shap,leverage-shap", "--samples", "10", "--instances-per-batch", batch,
                                           "--json", dir + "/b\(batch).json"])
            #expect(run.status == 0, "\(run.stderr)")
            docs.append(try ExplainDocumentReader(path: dir + "/b\(batch).json"))
        }
        let doc = docs[0]
        #expect(doc.methodNames == ["exact-shap", "leverage-shap"])
        #expect(doc.shape("leverage-shap") == [2, 4, 3])
        let settings = doc.settings("leverage-shap")
        #expect(settings["budget"] as? Int == 10 && (settings["sampled"] as? Int ?? 0) > 0, "\(settings)")
        #expect(doc.array("standard_errors", of: "leverage-shap") != nil)
        let values = doc.values("leverage-shap")
        let baseValues = try #require(doc.array("base_values", of: "leverage-shap")?.values)
        let outputs = try #require(doc.array("outputs", of: "leverage-shap")?.values)
        expectNear(baseValues, try #require(doc.array("base_values", of: "exact-shap")?.values), 1e-6, "base values vs exact-shap")
        expectNear(outputs, try #require(doc.array("outputs", of: "exact-shap")?.values), 1e-6, "f(x) vs exact-shap")
        for i in 0..<2 {
            for k in 0..<3 {
                let sum = (0..<4).reduce(0.0) { $0 + values[(i * 4 + $1) * 3 + k] }
                #expect(abs(sum - (outputs[i * 3 + k] - baseValues[i * 3 + k])) <= 1e-5 * max(1, abs(outputs[i * 3 + k])),
                        "example \(i) output \(k): Σφ \(sum), f(x) − base \(outputs[i * 3 + k] - baseValues[i * 3 + k])")
            }
        }
        expectNear(docs[1].values("leverage-shap"), values, 1e-6, "--instances-per-batch 2 vs 1")

        let capped = try runPrism(base + ["--method", "leverage-shap", "--samples", "100", "--stop-threshold", "0.5",
                                          "--json", dir + "/all.json"])
        #expect(capped.status == 0, "\(capped.stderr)")
        let all = try ExplainDocumentReader(path: dir + "/all.json")
        #expect(all.settings()["budget"] as? Int == 14 && all.settings()["enumerated"] as? Int == 14, "\(all.settings())")
        #expect(all.settings()["stopping_threshold"] as? Double == 0.5)
        expectNear(all.values(), doc.values("exact-shap"), 1e-6, "every coalition vs exact-shap")
    }
}
