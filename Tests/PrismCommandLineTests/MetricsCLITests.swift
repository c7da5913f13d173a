import Foundation
import Prism
@testable import prism
import PrismExplain
import PrismTestSupport
import Testing

/// `--metrics` max-sensitivity for every method, the SHAP estimators included: on a linear model the
/// exact Shapley values are w ⊙ (x − mean of the background), so each noisy copy's change is known.
@Suite(.serialized) struct MetricsCLITests {
    @Test func maxSensitivityOfAShapleyEstimatorMatchesTheClosedForm() throws {
        let dir = try scratchDirectory("metrics")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let engine = try testEngine()
        let net = try Model(spec: try ModelSpec.decode(json: #"{"format": 2, "input_shape": [4], "outputs": 1, "nodes": [{"name": "fc", "op": "linear", "in_features": 4, "out_features": 1}]}"#),
                            seed: 3, engine: engine)
        try net.save(path: dir + "/linear.safetensors")
        let w = try #require(try net.stateDict()["fc.weight"]).values.map(Double.init)
        let x: [Double] = [0.5, -1, 2, 0.25, 1, 1, -0.5, 0]
        let background: [Double] = [0, 0, 0, 0, 1, -1, 0.5, 2, -0.5, 0.5, 1, 0]
        try writeNpy(x, shape: [2, 4], path: dir + "/x.npy")
        try writeNpy(background, shape: [3, 4], path: dir + "/bg.npy")
        let run = try runPrism(["explain", "--device", "cpu", "--model", dir + "/linear.safetensors", "--input", dir + "/x.npy",
                                "--background-data", dir + "/bg.npy", "--method", "exact-shap,saliency", "--metrics", "--sensitivity-samples", "3",
                                "--json", dir + "/e.json"])
        #expect(run.status == 0, "\(run.stderr)")
        let doc = try ExplainDocumentReader(path: dir + "/e.json")
        let got = try #require(doc.method("exact-shap")["max_sensitivity"] as? [Double])
        let mean = (0..<4).map { j in (0..<3).reduce(0.0) { $0 + background[$1 * 4 + j] } / 3 }
        let metric = MaxSensitivity(elementCount: 4, samples: 3, seed: 0) { _, _ in [] }
        for i in 0..<2 {
            let norm = (0..<4).reduce(0.0) { t, j in let v = w[j] * (x[i * 4 + j] - mean[j]); return t + v * v }.squareRoot()
            let worst = (0..<3).map { s in
                let delta = metric.noise(instance: i, sample: s)
                return (0..<4).reduce(0.0) { t, j in let v = w[j] * Double(delta[j]); return t + v * v }.squareRoot() / norm
            }.max()!
            #expect(abs(got[i] - worst) <= 1e-4 * worst, "example \(i): \(got[i]) against \(worst)")
        }
        #expect((doc.method("saliency")["max_sensitivity"] as? [Double])?.count == 2)

        // 0 samples: not computed.
        let none = try runPrism(["explain", "--device", "cpu", "--model", dir + "/linear.safetensors", "--input", dir + "/x.npy",
                                 "--background-data", dir + "/bg.npy", "--method", "exact-shap", "--metrics", "--sensitivity-samples", "0",
                                 "--json", dir + "/n.json"])
        #expect(none.status == 0, "\(none.stderr)")
        #expect(try ExplainDocumentReader(path: dir + "/n.json").method("exact-shap")["max_sensitivity"] == nil)
    }
}
