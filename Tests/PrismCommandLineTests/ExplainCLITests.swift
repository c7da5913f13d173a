import Foundation
import Prism
import PrismCL
import PrismExplain
import PrismTestSupport
import Testing

/// `prism explain` run as a user runs it, on the committed tabular fixture.
@Suite(.serialized) struct ExplainCLITests {
    static let csv = TrainCLITests.fixtures + "/tabular.csv"

    func trainedModel(in dir: String) throws -> String {
        let model = dir + "/t.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", Self.csv, "--label", "species", "--arch", "mlp",
                                  "--hidden", "8", "--epochs", "3", "--batch", "16", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        return model
    }

    @Test func exactAndKernelWriteAgreeingJSONAndNpy() throws {
        let dir = try scratchDirectory("explain")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try trainedModel(in: dir)
        var values: [String: [Double]] = [:]
        for method in ["exact-shap", "kernel-shap"] {
            let run = try runPrism(["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model,
                                    "--index", "0,4", "--method", method, "--background", "12", "--seed", "3",
                                    "--json", dir + "/\(method).json", "--npy", dir + "/\(method)"])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.hasPrefix("example 0: predicted"))
            #expect(run.stdout.contains("example 4: predicted"))
            let doc = try ExplainDocumentReader(path: dir + "/\(method).json")
            #expect(doc.methodNames == [method])
            #expect(doc.shape() == [2, 4, 3])
            #expect(doc.featureNames == ["sepal_length", "sepal_width", "petal_length", "petal_width"])
            #expect((doc.background["indices"] as? [Int])?.count == 12)
            #expect(doc.inputs["indices"] as? [Int] == [0, 4])
            #expect(doc.json["version"] as? Int == 1)
            values[method] = doc.values()
            let npy = try Data(contentsOf: URL(fileURLWithPath: dir + "/\(method)/values.npy"))
            #expect(npy.count >= 128 + 8 * 2 * 4 * 3)
        }
        // Four features: Kernel SHAP's default budget enumerates every coalition, so it is exact.
        let exact = try #require(values["exact-shap"]), kernel = try #require(values["kernel-shap"])
        #expect(exact.count == 24 && kernel.count == 24)
        for i in exact.indices { #expect(abs(exact[i] - kernel[i]) <= 1e-9 + 1e-9 * abs(exact[i])) }
    }

    /// `--instances-per-batch`: instances sharing device batches get the values they get one at a time;
    /// `--num-features`: Kernel SHAP keeps that many features per class.
    @Test func instancesSharingBatchesAndFeatureSelection() throws {
        let dir = try scratchDirectory("explain")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try trainedModel(in: dir)
        var values: [[Double]] = []
        for batch in ["1", "2"] {
            let run = try runPrism(["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model,
                                    "--index", "0,4,7", "--method", "permutation-shap", "--samples", "40", "--background", "10",
                                    "--instances-per-batch", batch, "--json", dir + "/b\(batch).json"])
            #expect(run.status == 0, "\(run.stderr)")
            let doc = try ExplainDocumentReader(path: dir + "/b\(batch).json")
            #expect(doc.shape().first == 3)
            values.append(doc.values())
        }
        #expect(values[0].count == 3 * 4 * 3)
        for i in values[0].indices { #expect(abs(values[0][i] - values[1][i]) <= 1e-6 + 1e-5 * abs(values[0][i]), "value \(i)") }
        let bad = try runPrism(["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model, "--instances-per-batch", "0"])
        #expect(bad.status != 0 && bad.stderr.contains("--instances-per-batch must be at least 1"), "\(bad.stderr)")

        // --num-features: two features per class kept, the library's values.
        let run = try runPrism(["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model,
                                "--index", "4", "--method", "kernel-shap", "--num-features", "2", "--background", "10",
                                "--json", dir + "/nf.json"])
        #expect(run.status == 0, "\(run.stderr)")
        let nf = try ExplainDocumentReader(path: dir + "/nf.json")
        let selected = nf.values()
        #expect(selected.count == 4 * 3)
        for o in 0..<3 { #expect((0..<4).filter { selected[$0 * 3 + o] != 0 }.count == 2, "class \(o): \(selected)") }
        #expect(nf.settings()["num_features"] as? Int == 2)
    }

    /// `--groups`: features from groups of columns, named by the groups; every column its own group is
    /// the ungrouped explanation; bad group files give one line.
    @Test func columnGroupsFromAFile() throws {
        let dir = try scratchDirectory("explain")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try trainedModel(in: dir)
        let base = ["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model, "--index", "3",
                    "--method", "exact-shap", "--background", "12"]
        func explain(_ extra: [String], _ name: String) throws -> ExplainDocumentReader {
            let run = try runPrism(base + extra + ["--json", dir + "/\(name).json"])
            #expect(run.status == 0, "\(run.stderr)")
            return try ExplainDocumentReader(path: dir + "/\(name).json")
        }
        try #"[{"name": "sepal", "columns": ["sepal_length", "sepal_width"]}, {"name": "petal", "columns": [2, 3]}]"#
            .write(toFile: dir + "/g.json", atomically: true, encoding: .utf8)
        let grouped = try explain(["--groups", dir + "/g.json"], "grouped")
        #expect(grouped.shape() == [1, 2, 3] && grouped.featureNames == ["sepal", "petal"])
        #expect((grouped.json["features"] as? [String: Any])?["columns"] as? [[Int]] == [[0, 1], [2, 3]])
        let values = grouped.values(), baseValues = try #require(grouped.array("base_values")?.values)
        let outputs = try #require(grouped.array("outputs")?.values)
        for o in 0..<3 { #expect(abs(values[o] + values[3 + o] + baseValues[o] - outputs[o]) < 1e-4, "additivity, class \(o)") }

        try #"[{"name": "a", "columns": [0]}, {"name": "b", "columns": [1]}, {"name": "c", "columns": [2]}, {"name": "d", "columns": [3]}]"#
            .write(toFile: dir + "/each.json", atomically: true, encoding: .utf8)
        let each = try explain(["--groups", dir + "/each.json"], "each"), plain = try explain([], "plain")
        #expect(each.values() == plain.values() && !plain.values().isEmpty)

        try #"[{"name": "x", "columns": ["petal_colour"]}]"#.write(toFile: dir + "/bad.json", atomically: true, encoding: .utf8)
        let bad = try runPrism(base + ["--groups", dir + "/bad.json"])
        #expect(bad.status == 1 && bad.stderr.contains("group 'x' names column 'petal_colour'"), "\(bad.stderr)")
        let image = try runPrism(base + ["--segments", dir + "/g.json"])
        #expect(image.status != 0 && image.stderr.contains("--segments is for images"), "\(image.stderr)")
    }

    @Test func badInputsGiveOneLineErrors() throws {
        let dir = try scratchDirectory("explain")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try trainedModel(in: dir)
        let base = ["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model]
        var run = try runPrism(base + ["--index", "1000"])
        #expect(run.status == 1 && run.stderr.contains("--index 1000 outside 0..<30"), "\(run.stderr)")
        run = try runPrism(base + ["--method", "kernel-shap", "--samples", "2"])
        #expect(run.status == 1 && run.stderr.contains("below the minimum of 4 for 4 features"), "\(run.stderr)")
        try "a,b\n1,2\n".write(toFile: dir + "/narrow.csv", atomically: true, encoding: .utf8)
        run = try runPrism(base + ["--background-data", dir + "/narrow.csv"])
        #expect(run.status == 1 && run.stderr.contains("narrow.csv: no column 'sepal_length'"), "\(run.stderr)")
        // A background file without the label column is fine: columns are matched by name.
        try "petal_width,petal_length,sepal_width,sepal_length\n0.2,1.4,3.0,5.0\n1.8,5.5,3.0,6.5\n".write(toFile: dir + "/bg.csv", atomically: true, encoding: .utf8)
        run = try runPrism(base + ["--background-data", dir + "/bg.csv", "--method", "exact-shap"])
        #expect(run.status == 0, "\(run.stderr)")
    }
}

extension ExplainCLITests {
    /// `--png` on images: three pictures per example, real PNG files of the upscaled size.
    @Test func pngPicturesForImages() throws {
        let dir = try scratchDirectory("png")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/m.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", TrainCLITests.images, "--arch", "mlp", "--hidden", "8",
                                  "--epochs", "1", "--limit", "64", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        let result = try runPrism(["explain", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--index", "2",
                                   "--method", "permutation-shap", "--samples", "200", "--background", "4", "--superpixel", "7",
                                   "--png", dir + "/png"])
        #expect(result.status == 0, "\(result.stderr)")
        for name in ["example-2-input.png", "example-2-permutation-shap.png", "example-2-permutation-shap-overlay.png"] {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/png/" + name)))
            #expect(bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]), "\(name)")
            // IHDR: width and height 28 × 8 = 224.
            #expect(Array(bytes[16..<24]) == [0, 0, 0, 224, 0, 0, 0, 224], "\(name)")
        }
        let csv = try runPrism(["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model, "--png", dir + "/x"])
        #expect(csv.status == 1)

        // --segments: a map drawing the 7×7 grid gives the grid's values.
        var rows: [String] = []
        for h in 0..<28 {
            let labels: [String] = (0..<28).map { (w: Int) -> String in String((h / 7) * 4 + w / 7) }
            rows.append("[" + labels.joined(separator: ",") + "]")
        }
        let map: String = "[" + rows.joined(separator: ",") + "]"
        try map.write(toFile: dir + "/seg.json", atomically: true, encoding: .utf8)
        var values: [[Double]] = []
        for features in [["--superpixel", "7"], ["--segments", dir + "/seg.json"]] {
            let run = try runPrism(["explain", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--index", "2",
                                    "--method", "permutation-shap", "--samples", "200", "--background", "4", "--json", dir + "/seg-out.json"] + features)
            #expect(run.status == 0, "\(run.stderr)")
            let doc = try ExplainDocumentReader(path: dir + "/seg-out.json")
            #expect(doc.shape() == [1, 16, 10])
            // The segmentation map: the feature of each pixel.
            let map = try #require((doc.json["features"] as? [String: Any])?["segmentation"] as? [String: Any])
            #expect(map["shape"] as? [Int] == [28, 28])
            #expect((map["values"] as? [[Int]])?[27][27] == 15)
            values.append(doc.values())
        }
        #expect(values[0] == values[1])

        // --shap-baseline zeros: hidden superpixels are black, as the library's game with one zero background row.
        let black = try runPrism(["explain", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--index", "2",
                                  "--method", "exact-shap", "--superpixel", "14", "--shap-baseline", "zeros", "--json", dir + "/black.json"])
        #expect(black.status == 0, "\(black.stderr)")
        let blackJSON = try ExplainDocumentReader(path: dir + "/black.json")
        #expect(blackJSON.background["shap_reference"] as? String == "zeros")
        var settings = Settings.current
        settings.device = "cpu"
        let engine = try Engine(settings: settings)
        let (net, _) = try Model.load(path: model, engine: engine)
        let test = try LabeledData(try ImageDataset.loadMNISTFormat(directory: TrainCLITests.images, split: .test))
        let library = try ExactShapley().explain(try DeviceGame(model: net, instance: try test.example(2).features, background: [Float](repeating: 0, count: 784),
                                                                groups: try FeatureGroups.grid(channels: 1, height: 28, width: 28, cell: 14)))
        let cli = blackJSON.values()
        #expect(cli.count == library.values.count)
        for i in cli.indices { #expect(abs(cli[i] - library.values[i]) <= 1e-5 + 1e-5 * abs(library.values[i]), "value \(i)") }

        // --out: a report folder whose page links only files that are there.
        let report = try runPrism(["explain", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--index", "0,3",
                                   "--method", "permutation-shap", "--samples", "200", "--background", "4", "--superpixel", "7",
                                   "--out", dir + "/report"])
        #expect(report.status == 0, "\(report.stderr)")
        let html = try String(contentsOfFile: dir + "/report/index.html", encoding: .utf8)
        let links = html.components(separatedBy: "src=\"").dropFirst().map { $0.prefix { $0 != "\"" } }
            + html.components(separatedBy: "href=\"").dropFirst().map { $0.prefix { $0 != "\"" } }
        // Per example the input, heatmap and overlay and the waterfall; the mean |φ| bars; the JSON, the inputs and the values.
        #expect(links.count == 2 * 4 + 1 + 3)
        #expect(links.filter { $0.hasSuffix(".svg") }.sorted() == ["example-0-permutation-shap-waterfall.svg", "example-3-permutation-shap-waterfall.svg",
                                                                   "permutation-shap-mean-abs.svg"])
        for link in links { #expect(FileManager.default.fileExists(atPath: dir + "/report/" + link), "\(link)") }
        let unwritable = try runPrism(["explain", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--out", "/proc/prism-report"])
        #expect(unwritable.status == 1 && unwritable.stderr.hasPrefix("/proc/prism-report: ") && unwritable.stderr.split(separator: "\n").count == 1, "\(unwritable.stderr)")
    }
}

extension ExplainCLITests {
    /// Several methods in one call: one JSON per method whose values equal the library's, pictures in
    /// columns per method, and an unknown method named in one line.
    @Test func severalMethodsSideBySideEqualTheLibrary() throws {
        let dir = try scratchDirectory("methods")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/m.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", TrainCLITests.images, "--arch", "cnn",
                                  "--epochs", "1", "--limit", "64", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        let run = try runPrism(["explain", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--index", "0,3",
                                "--method", "ig,gradcam", "--method", "occlusion", "--steps", "16", "--window", "7", "--metrics", "--randomization",
                                "--out", dir + "/report"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("deletion AUC"))

        // The library on the same model and inputs, for the predicted classes.
        var settings = Settings.current
        settings.device = "cpu"
        let engine = try Engine(settings: settings)
        let (net, _) = try Model.load(path: model, engine: engine)
        let test = try LabeledData(try ImageDataset.loadMNISTFormat(directory: TrainCLITests.images, split: .test))
        let x = try test.example(0).features + test.example(3).features
        let logits = try engine.noGrad { try net(try Tensor(x, shape: [2, 1, 28, 28], engine: engine)).toArray() }
        let predicted = (0..<2).map { i in (0..<10).max { logits[i * 10 + $0] < logits[i * 10 + $1] }! }
        let differentiable = DifferentiableModel(net)
        let expected: [String: Explanation] = [
            "ig": try IntegratedGradients(model: differentiable, steps: 16).explain(instances: x, targets: .perInstance(predicted)),
            "gradcam": try GradCAM(model: differentiable, layer: "4.relu").explain(instances: x, targets: .perInstance(predicted)),
            "occlusion": try Occlusion(model: differentiable, window: (7, 7), stride: (7, 7)).explain(instances: x, targets: .perInstance(predicted)),
        ]
        for (name, reference) in expected {
            let doc = try ExplainDocumentReader(path: dir + "/report/explanation.json")
            #expect(doc.methodNames == ["ig", "gradcam", "occlusion"])
            let values = doc.values(name)
            #expect(values.count == reference.values.count, "\(name)")
            for (a, b) in zip(values, reference.values) { #expect(abs(a - b) <= 1e-5 + 1e-4 * abs(b), "\(name)") }
            #expect(FileManager.default.fileExists(atPath: dir + "/report/npy/\(name)/values.npy"))
        }
        let doc = try ExplainDocumentReader(path: dir + "/report/explanation.json")
        for name in ["ig", "gradcam", "occlusion"] {
            let fields = doc.method(name)
            #expect((fields["curves"] as? [Any])?.count == 2, "\(name)")
            // The faithfulness correlation of each example, equal to the library's on the same explanation.
            let scores = try #require(fields["faithfulness_correlation"] as? [Any], "\(name)")
            let metric = FaithfulnessCorrelation(model: differentiable, runs: 100, subsetSize: 196)
            for (i, row) in [0, 3].enumerated() {
                let reference = expected[name]!
                let want = try metric.score(instance: Array(x[(i * 784)..<((i + 1) * 784)]), attributions: reference.attributions(instance: i, output: 0),
                                            target: predicted[i], index: i)
                let got = scores[i] as? Double
                #expect((got == nil) == (want == nil) && abs((got ?? 0) - (want ?? 0)) <= 1e-3, "\(name) example \(row): \(String(describing: got)) vs \(String(describing: want))")
            }
            // Max-sensitivity: a value per example, non-negative.
            let sensitivity = try #require(fields["max_sensitivity"] as? [Any], "\(name)")
            #expect(sensitivity.count == 2 && sensitivity.allSatisfy { ($0 as? Double).map { $0 >= 0 && $0.isFinite } ?? false }, "\(name) \(sensitivity)")
            let stages = (fields["randomization"] as? [[String: Any]])?.compactMap { $0["layer"] as? String }
            #expect(stages == ["9.linear", "7.linear", "3.conv2d", "0.conv2d"], "\(name)")
        }

        // Per example: the input and, per method, heatmap and overlay; every link resolves.
        let html = try String(contentsOfFile: dir + "/report/index.html", encoding: .utf8)
        #expect(html.contains("methods ranked by mean faithfulness correlation") && html.contains("faithfulness correlation 0.")
                || html.contains("faithfulness correlation -"))
        let images = html.components(separatedBy: "src=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
        #expect(images.filter { $0.hasSuffix(".png") }.count == 2 * (1 + 3 * 2))
        #expect(images.filter { $0.hasSuffix(".svg") }.sorted() == ["example-0-deletion.svg", "example-0-insertion.svg",
                                                                    "example-3-deletion.svg", "example-3-insertion.svg"])
        #expect(images.contains("example-3-gradcam-overlay.png"))
        let links = images + html.components(separatedBy: "href=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
        for link in links { #expect(FileManager.default.fileExists(atPath: dir + "/report/" + link), "\(link)") }

        let unknown = try runPrism(["explain", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--method", "ig,shapely"])
        #expect(unknown.status == 1 && unknown.stderr.contains("unknown method 'shapely'"), "\(unknown.stderr)")
    }
}

extension ExplainCLITests {
    /// --kmeans: the drawn background becomes K weighted centroids; Shapley values still add up to f(x).
    @Test func kMeansBackgroundSummary() throws {
        let dir = try scratchDirectory("kmeans")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try trainedModel(in: dir)
        let run = try runPrism(["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model, "--index", "1",
                                "--method", "exact-shap", "--background", "20", "--kmeans", "3", "--json", dir + "/e.json"])
        #expect(run.status == 0, "\(run.stderr)")
        let doc = try ExplainDocumentReader(path: dir + "/e.json")
        #expect((doc.background["description"] as? String)?.hasPrefix("3 k-means centroids weighted by cluster size, of 20 training rows") == true, "\(doc.background)")
        #expect((doc.background["rows"] as? [String: Any])?["shape"] as? [Int] == [3, 4])
        #expect((doc.background["weights"] as? [Double])?.reduce(0, +) == 20)
        let values = doc.values(), base = try #require(doc.array("base_values")?.values), outputs = try #require(doc.array("outputs")?.values)
        for k in 0..<3 {
            let sum = (0..<4).reduce(0.0) { $0 + values[$1 * 3 + k] }
            #expect(abs(sum + base[k] - outputs[k]) <= 1e-4 * max(1, abs(outputs[k])))
        }
        let tooMany = try runPrism(["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model,
                                    "--background", "5", "--kmeans", "9"])
        #expect(tooMany.status == 1 && tooMany.stderr == "--kmeans 9 is more than the 5 background rows\n", "\(tooMany.stderr)")
    }
}

extension ExplainCLITests {
    /// A vision transformer trained and explained from the command line: attention rollout and
    /// attention × gradient per patch, equal to the library's values, with pictures in the report.
    @Test func visionTransformerAttentionExplanations() throws {
        let dir = try scratchDirectory("vit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/vit.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", TrainCLITests.images, "--arch", "vit", "--depth", "2",
                                  "--epochs", "1", "--limit", "128", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        let run = try runPrism(["explain", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--index", "0,3",
                                "--method", "attention-rollout,attention-gradient", "--out", dir + "/report"])
        #expect(run.status == 0, "\(run.stderr)")
        var settings = Settings.current
        settings.device = "cpu"
        let engine = try Engine(settings: settings)
        let (net, _) = try Model.load(path: model, engine: engine)
        let test = try LabeledData(try ImageDataset.loadMNISTFormat(directory: TrainCLITests.images, split: .test))
        let x = try test.example(0).features + test.example(3).features
        let logits = try engine.noGrad { try net(try Tensor(x, shape: [2, 1, 28, 28], engine: engine)).toArray() }
        let predicted = (0..<2).map { i in (0..<10).max { logits[i * 10 + $0] < logits[i * 10 + $1] }! }
        for (name, kind) in [("attention-rollout", AttentionAttribution.Kind.rollout), ("attention-gradient", .gradient)] {
            let doc = try ExplainDocumentReader(path: dir + "/report/explanation.json")
            #expect(doc.shape(name) == [2, 16, 1])
            let values = doc.values(name)
            let reference = try AttentionAttribution(model: net, kind: kind).explain(instances: x, targets: .perInstance(predicted))
            #expect(values.count == reference.values.count)
            for (a, b) in zip(values, reference.values) { #expect(abs(a - b) <= 1e-6 + 1e-5 * abs(b), "\(name)") }
            #expect(FileManager.default.fileExists(atPath: dir + "/report/example-3-\(name)-overlay.png"))
        }
        let gradcam = try runPrism(["explain", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--method", "gradcam"])
        #expect(gradcam.status == 1 && gradcam.stderr == "gradcam: the model has no convolution; name an activation with --layer\n", "\(gradcam.stderr)")
    }
}

extension ExplainCLITests {
    /// Output paths are checked before any work; a background equal to the example is refused
    /// instead of giving all-zero values; --background above the training rows is refused, not clamped;
    /// --json - writes the document to standard output and the other lines to standard error.
    @Test func checksBeforeWorkAndNoSilentDegenerateResults() throws {
        let dir = try scratchDirectory("plan")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try trainedModel(in: dir)
        let base = ["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model, "--method", "exact-shap"]

        let missing = try runPrism(base + ["--json", dir + "/no/such/folder/e.json"])
        #expect(missing.status == 1 && missing.stdout.isEmpty && missing.stderr.split(separator: "\n").count == 1
                && missing.stderr.contains(dir + "/no/such/folder"), "\(missing.stdout) \(missing.stderr)")

        // Test row 0 of the fixture's split, as the only background row.
        let csv = try String(contentsOfFile: Self.csv, encoding: .utf8).split(separator: "\n")
        let testRow0 = csv[1 + 120]
        try (String(csv[0]) + "\n" + testRow0 + "\n").write(toFile: dir + "/same.csv", atomically: true, encoding: .utf8)
        let same = try runPrism(base + ["--index", "0", "--background-data", dir + "/same.csv"])
        #expect(same.status == 1 && same.stderr.contains("equals test example 0 on every feature, so every SHAP value would be 0"), "\(same.stderr)")

        let tooMany = try runPrism(base + ["--background", "500"])
        #expect(tooMany.status == 1 && tooMany.stderr == "--background 500 is more than the 120 training rows of \(Self.csv)\n", "\(tooMany.stderr)")
        let features = try runPrism(base + ["--method", "kernel-shap", "--num-features", "9"])
        #expect(features.status == 1 && features.stderr == "--num-features 9 is more than the 4 features\n", "\(features.stderr)")

        let stdout = try runPrism(base + ["--index", "1", "--background", "8", "--json", "-"])
        #expect(stdout.status == 0, "\(stdout.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(stdout.stdout.utf8)) as? [String: Any])
        #expect((doc["methods"] as? [[String: Any]])?.first?["method"] as? String == "exact-shap")
        #expect(stdout.stderr.contains("example 1: predicted"))
    }
}

extension ExplainCLITests {
    /// --samples is the SHAP budget; LIME and SmoothGrad have their own counts, and the old use of
    /// --samples for them is taken with a note when no SHAP method runs.
    @Test func limeAndSmoothGradHaveTheirOwnSampleCounts() throws {
        let dir = try scratchDirectory("samples")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try trainedModel(in: dir)
        let base = ["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model, "--index", "2", "--background", "10"]
        let old = try runPrism(base + ["--method", "lime,smoothgrad", "--samples", "40", "--json", dir + "/old.json"])
        #expect(old.status == 0 && old.stderr.contains("note: --samples for lime is spelled --lime-samples now; taken as --lime-samples 40"), "\(old.stderr)")
        let oldDoc = try ExplainDocumentReader(path: dir + "/old.json")
        #expect(oldDoc.settings("lime")["samples"] as? Int == 40 && oldDoc.settings("smoothgrad")["samples"] as? Int == 40)
        let mixed = try runPrism(base + ["--method", "kernel-shap,lime", "--samples", "10", "--smoothgrad-samples", "7", "--json", dir + "/mixed.json"])
        #expect(mixed.status == 0 && mixed.stderr.contains("note: --samples 10 is the SHAP budget; lime takes --lime-samples (default 1000)"), "\(mixed.stderr)")
        let mixedDoc = try ExplainDocumentReader(path: dir + "/mixed.json")
        #expect(mixedDoc.settings("lime")["samples"] as? Int == 1000 && mixedDoc.settings("kernel-shap")["budget"] as? Int == 10)
        let new = try runPrism(base + ["--method", "lime", "--lime-samples", "30", "--json", dir + "/new.json"])
        #expect(new.status == 0 && !new.stderr.contains("note:"), "\(new.stderr)")
        #expect(try ExplainDocumentReader(path: dir + "/new.json").settings("lime")["samples"] as? Int == 30)
    }
}
