import Foundation
import Prism
import PrismExplain
import PrismCL
import PrismFiles
@testable import prism
import PrismTestSupport
import Testing

/// `prism inspect`: the embedding view of a trained model over the test set, its arrays against a
/// PCA of the same activations, and its refusals.
@Suite(.serialized) struct InspectCLITests {
    @Test func writesThePCAViewOfTheTestSet() throws {
        let dir = try scratchDirectory("inspect")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/m.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", TrainCLITests.images, "--epochs", "1", "--limit", "256", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        let run = try runPrism(["inspect", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--components", "3",
                                "--test-limit", "60", "--out", dir + "/view"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("PCA of '8.relu' (128 features) over 60 test examples"), "\(run.stdout)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/view/pca.json"))) as? [String: Any])
        let ratios = try #require(summary["explained_variance_ratio"] as? [Double])
        #expect(ratios.count == 3 && ratios[0] >= ratios[1] && ratios[1] >= ratios[2] && ratios.reduce(0, +) <= 1 + 1e-9)
        let svg = try String(contentsOfFile: dir + "/view/pca.svg", encoding: .utf8)
        #expect(svg.components(separatedBy: "<circle").count - 1 == 60 + 10, "a point per example and a legend entry per class")

        // The projections equal the library's PCA of the same activations.
        var settings = Settings.current
        settings.device = "cpu"
        let engine = try Engine(settings: settings)
        let (net, _) = try Model.load(path: model, engine: engine)
        let test = try LabeledData(try ImageDataset.loadMNISTFormat(directory: TrainCLITests.images, split: .test))
        let inputs = try (0..<60).flatMap { try test.example($0).features }
        let pca = try ActivationPCA.fit(try ActivationPCA.activations(of: net, layer: "8.relu", inputs: inputs), components: 3)
        let npy = try Data(contentsOf: URL(fileURLWithPath: dir + "/view/pca_projections.npy"))
        let stored = npy.suffix(8 * 180).withUnsafeBytes { raw in (0..<180).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) } }
        for (a, b) in zip(stored, pca.projections) { #expect(abs(a - Double(b)) <= 1e-4 * max(1, abs(Double(b)))) }

        // --maximize: each class's logit rises, and the grid picture is written.
        let maximized = try runPrism(["inspect", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--test-limit", "20",
                                      "--maximize", "--maximize-steps", "20", "--out", dir + "/max"])
        #expect(maximized.status == 0, "\(maximized.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/max/maximize.json"))) as? [String: Any])
        let rows = try #require(doc["outputs"] as? [[String: Any]])
        #expect(rows.count == 10)
        for row in rows {
            let (a, b) = (row["logit_start"] as? Double ?? .nan, row["logit_end"] as? Double ?? .nan)
            #expect(b > a, "\(row)")
        }
        let png = try Data(contentsOf: URL(fileURLWithPath: dir + "/max/maximize.png"))
        #expect(png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))

        // --feature-maps: the maps of one example and each channel's top test examples, as the library ranks them.
        let maps = try runPrism(["inspect", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--test-limit", "30",
                                 "--feature-maps", "1.relu", "--index", "2", "--top", "4", "--out", dir + "/maps"])
        #expect(maps.status == 0, "\(maps.stderr)")
        let summary2 = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/maps/feature_maps.json"))) as? [String: Any])
        let channels = try #require(summary2["channels"] as? [[String: Any]])
        let first30 = try (0..<30).flatMap { try test.example($0).features }
        let ranked = try FeatureMaps.topExamples(of: net, layer: "1.relu", inputs: first30, k: 4)
        #expect(channels.count == 32 && (channels[5]["top_examples"] as? [Int]) == ranked[5].indices)
        for name in ["feature_maps.png", "top_examples.png"] {
            #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/maps/" + name)).prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
        }
        let notMaps = try runPrism(["inspect", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--test-limit", "5",
                                    "--feature-maps", "8.relu", "--out", dir + "/maps2"])
        expectOneLineError(notMaps, "not channels of maps")

        let one = try runPrism(["inspect", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--components", "1", "--out", dir + "/v2"])
        #expect(one.status != 0 && one.stderr.contains("--components must be at least 2"), "\(one.stderr)")
        let wide = try runPrism(["inspect", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--layer", "0.conv2d",
                                 "--test-limit", "10", "--out", dir + "/v3"])
        expectOneLineError(wide, "pca: the layer has 21632 features per example, more than the 1024")
    }
}
