import Foundation
@testable import prism
import PrismExplain
import PrismTestSupport
import Testing

/// `prism explain --method layer-ig,layer-gradient-shap --layer NODE`: attributions to a layer's
/// positions (Captum's LayerIntegratedGradients and LayerGradientShap, summed per position), drawn
/// over the image for a convolution's output, named positions in the JSON, refused in one line for a
/// node that does not exist or has no positions on the image.
@Suite(.serialized) struct LayerAttributionCLITests {
    static let fixtures = TrainCLITests.fixtures + "/format1"

    @Test func layerAttributionsOfAnImageModel() throws {
        let dir = try scratchDirectory("layer-attribution")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = Self.fixtures + "/format1_cnn_rgb.safetensors", x = Self.fixtures + "/x_rgb.npy"
        // The first ReLU: [32, 9, 8] over the 3×11×10 image; the background is the image, flipped.
        try writeNpy((0..<330).map { Double(329 - $0) / 329 }, shape: [1, 3, 11, 10], path: dir + "/bg.npy")
        let run = try runPrism(["explain", "--device", "cpu", "--model", model, "--input", x, "--method", "layer-ig,layer-gradient-shap",
                                "--layer", "1.relu", "--steps", "200", "--background-data", dir + "/bg.npy", "--gradient-shap-samples", "400",
                                "--metrics", "--out", dir + "/report"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("note: layer-ig attributes to the positions of 1.relu, not to the input"), "\(run.stderr)")
        let doc = try ExplainDocumentReader(path: dir + "/report/explanation.json")
        for method in ["layer-ig", "layer-gradient-shap"] {
            #expect(doc.shape(method) == [1, 72, 1])
            let settings = doc.settings(method)
            #expect(settings["layer"] as? String == "1.relu" && settings["layer_shape"] as? [Int] == [32, 9, 8])
            let names = try #require(doc.method(method)["feature_names"] as? [String])
            #expect(names.count == 72 && names[0] == "1.relu (0, 0)" && names[71] == "1.relu (8, 7)")
            // Summed per position, the values keep the method's sum: f(x) − f at the reference.
            let sum = doc.values(method).reduce(0, +)
            let base = try #require(doc.array("base_values", of: method)?.values.first), output = try #require(doc.array("outputs", of: method)?.values.first)
            let tolerance = method == "layer-ig" ? 1e-3 : 0.1
            #expect(abs(sum + base - output) <= tolerance * max(1, abs(output)), "\(method): Σφ \(sum), f \(output), reference \(base)")
            #expect(FileManager.default.fileExists(atPath: dir + "/report/input-0-\(method).png"))
            // Input-space metrics are not computed for attributions at a layer.
            #expect(doc.method(method)["curves"] == nil && doc.method(method)["faithfulness_correlation"] == nil)
        }
        #expect((doc.settings("layer-ig")["completeness_gap"] as? Double ?? 1) <= 1e-3)

        // Default layer: the last convolution's output after its ReLU, [64, 2, 2].
        let defaulted = try runPrism(["explain", "--device", "cpu", "--model", model, "--input", x, "--method", "layer-ig", "--json", dir + "/d.json"])
        #expect(defaulted.status == 0, "\(defaulted.stderr)")
        #expect(try ExplainDocumentReader(path: dir + "/d.json").settings("layer-ig")["layer_shape"] as? [Int] == [64, 2, 2])

        // A missing node, and a node without positions on the image: one line each, before any work.
        expectOneLineError(try runPrism(["explain", "--device", "cpu", "--model", model, "--input", x, "--method", "layer-ig", "--layer", "nope"]),
                           "--layer: no node 'nope'; nodes are 0.conv2d, 1.relu")
        expectOneLineError(try runPrism(["explain", "--device", "cpu", "--model", model, "--input", x, "--method", "layer-ig", "--layer", "9.linear"]),
                           "layer attribution at '9.linear': its output [2] has no positions on the 11×10 image")
    }

    @Test func layerAttributionsOfATabularModel() throws {
        let dir = try scratchDirectory("layer-attribution-tabular")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = Self.fixtures + "/format1_regression.safetensors"
        let run = try runPrism(["explain", "--device", "cpu", "--model", model, "--data", TrainCLITests.fixtures + "/tabular.csv",
                                "--label", "petal_width", "--index", "0,3", "--method", "layer-ig", "--layer", "2.relu", "--steps", "100",
                                "--json", dir + "/e.json"])
        #expect(run.status == 0, "\(run.stderr)")
        let doc = try ExplainDocumentReader(path: dir + "/e.json")
        #expect(doc.shape("layer-ig") == [2, 6, 1])
        #expect(doc.method("layer-ig")["feature_names"] as? [String] == (0..<6).map { "2.relu[\($0)]" })
        #expect((doc.settings("layer-ig")["completeness_gap"] as? Double ?? 1) <= 1e-3)
        // No convolution to default to: the node must be named.
        let unnamed = try runPrism(["explain", "--device", "cpu", "--model", model, "--data", TrainCLITests.fixtures + "/tabular.csv",
                                    "--label", "petal_width", "--index", "0", "--method", "layer-ig"])
        #expect(unnamed.status == 1 && unnamed.stderr.contains("layer-ig: name the node with --layer"), "\(unnamed.stderr)")
    }
}
