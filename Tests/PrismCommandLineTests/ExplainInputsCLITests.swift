import Foundation
import Prism
import PrismReport
import PrismTestSupport
import Testing

/// `prism explain --input`: the user's own PNG, .npy and unlabelled CSV files give the values the
/// same examples give as test rows (`--index`), which is the independent answer here.
@Suite(.serialized) struct ExplainInputsCLITests {
    func scratch() throws -> String { try scratchDirectory("inputs") }

    /// A little-endian float32 .npy file of `shape`.
    func writeNpy(_ values: [Float], shape: [Int], path: String) throws {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? ",), }" : "), }")
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)] + Array(header.utf8)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    @Test func imagesAndArraysGiveTheTestRowsValues() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let images = TrainCLITests.images, model = dir + "/m.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", images, "--arch", "cnn", "--epochs", "1", "--limit", "128", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        let test = try LabeledData(try ImageDataset.loadMNISTFormat(directory: images, split: .test))
        // Test image 2 as an 8-bit grey RGB PNG (its pixels are bytes / 255), test image 3 as a float32 .npy.
        let pixels = try test.example(2).features
        var png = RGBImage(width: 28, height: 28)
        for p in 0..<784 { let v = UInt8((pixels[p] * 255).rounded()); png[p % 28, p / 28] = (v, v, v) }
        try png.writePNG(path: dir + "/two.png")
        try writeNpy(try test.example(3).features, shape: [1, 1, 28, 28], path: dir + "/three.npy")

        let common = ["explain", "--device", "cpu", "--data", images, "--model", model, "--method", "exact-shap,saliency",
                      "--superpixel", "14", "--background", "6"]
        let rows = try runPrism(common + ["--index", "2,3", "--json", dir + "/rows.json"])
        #expect(rows.status == 0, "\(rows.stderr)")
        let strict = try runPrism(common + ["--input", dir + "/two.png", dir + "/three.npy", "--channel-conversion", "refuse"])
        #expect(strict.status == 1 && strict.stderr.contains("two.png") && strict.stderr.contains("3 channels"), "\(strict.stderr)")
        let files = try runPrism(common + ["--input", dir + "/two.png", dir + "/three.npy", "--json", dir + "/files.json",
                                           "--out", dir + "/report"])
        #expect(files.status == 0, "\(files.stderr)")
        #expect(files.stderr.contains("note: two.png: 28×28 (height×width) RGB image: converted to 1 channel"), "\(files.stderr)")
        #expect(files.stdout.contains("two.png: predicted") && files.stdout.contains("three.npy[0]: predicted"), "\(files.stdout)")
        let a = try ExplainDocumentReader(path: dir + "/rows.json"), b = try ExplainDocumentReader(path: dir + "/files.json")
        #expect(b.inputs["names"] as? [String] == ["two.png", "three.npy[0]"])
        for method in ["exact-shap", "saliency"] {
            #expect(a.values(method).count == b.values(method).count && !a.values(method).isEmpty)
            for (x, y) in zip(a.values(method), b.values(method)) { #expect(abs(x - y) <= 1e-6 * max(1, abs(x)), "\(method)") }
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/report/input-0-exact-shap-overlay.png"))

        // predict: the file's classes and probabilities are the test row's.
        let row = try runPrism(["predict", "--device", "cpu", "--data", images, "--model", model, "--index", "3", "--top", "10"])
        let file = try runPrism(["predict", "--device", "cpu", "--model", model, "--input", dir + "/three.npy", "--top", "10"])
        #expect(row.status == 0 && file.status == 0, "\(row.stderr) \(file.stderr)")
        #expect(row.stdout.split(separator: "\n").dropFirst() == file.stdout.split(separator: "\n").dropFirst(), "\(row.stdout) \(file.stdout)")
        #expect(file.stdout.hasPrefix("three.npy[0]\n"))

        let missing = try runPrism(common + ["--input", dir + "/nothing.png"])
        #expect(missing.status == 1 && missing.stderr.split(separator: "\n").count == 1 && missing.stderr.contains("nothing.png"), "\(missing.stderr)")
        let both = try runPrism(common + ["--input", dir + "/two.png", "--index", "1"])
        #expect(both.status != 0 && both.stderr.contains("give --input or --index I,J, not both"), "\(both.stderr)")
    }

    /// CSV rows without a label column, columns in another order, give the test rows' values; a
    /// missing column is named.
    @Test func unlabelledCSVRowsMatchedByHeader() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try ExplainCLITests().trainedModel(in: dir)
        let lines = try String(contentsOfFile: ExplainCLITests.csv, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
        // Test rows 0 and 4 are file rows 120 and 124 (the last 20% are the test set); columns reversed, no species.
        let order = [3, 2, 1, 0]
        let text = ([lines[0]] + [lines[121], lines[125]]).map { row in order.map { row[$0] }.joined(separator: ",") }.joined(separator: "\n") + "\n"
        try text.write(toFile: dir + "/rows.csv", atomically: true, encoding: .utf8)
        // The model file alone names its features: no --data needed with --background-data.
        try ([lines[0].joined(separator: ",")] + lines[1...20].map { $0.joined(separator: ",") }).joined(separator: "\n")
            .write(toFile: dir + "/bg.csv", atomically: true, encoding: .utf8)
        let base = ["explain", "--device", "cpu", "--model", model, "--method", "exact-shap", "--label", "species", "--background-data", dir + "/bg.csv"]
        let rows = try runPrism(base + ["--data", ExplainCLITests.csv, "--index", "0,4", "--json", dir + "/rows.json"])
        #expect(rows.status == 0, "\(rows.stderr)")
        let files = try runPrism(base + ["--input", dir + "/rows.csv", "--json", dir + "/files.json"])
        #expect(files.status == 0, "\(files.stderr)")
        #expect(files.stderr.contains("feature values standardized with the model's stored"), "\(files.stderr)")
        let a = try ExplainDocumentReader(path: dir + "/rows.json").values(), b = try ExplainDocumentReader(path: dir + "/files.json").values()
        #expect(a.count == 2 * 4 * 3 && a.count == b.count)
        for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-5 * max(1, abs(x))) }

        try "sepal_length,sepal_width,petal_length\n5,3,1\n".write(toFile: dir + "/narrow.csv", atomically: true, encoding: .utf8)
        let narrow = try runPrism(base + ["--input", dir + "/narrow.csv"])
        #expect(narrow.status == 1 && narrow.stderr.contains("narrow.csv") && narrow.stderr.contains("petal_width"), "\(narrow.stderr)")
    }
}

extension ExplainInputsCLITests {
    /// RGB end to end: a cnn trained on a folder of colour images explains an RGB PNG given with
    /// --input; Shapley values add up to f(x) − E f, and the report's input picture is the file's colours.
    @Test func rgbImagesEndToEnd() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = try TrainDataCLITests().imageFolder(dir + "/colours", perClass: 8, sizes: [12])
        let model = dir + "/rgb.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", folder, "--arch", "cnn", "--epochs", "2", "--batch", "8", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        let file = folder + "/green/img03.png"
        let run = try runPrism(["explain", "--device", "cpu", "--data", folder, "--model", model, "--input", file,
                                "--method", "exact-shap,ig", "--superpixel", "6", "--background", "6", "--out", dir + "/report"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("img03.png: predicted"), "\(run.stdout)")
        let doc = try ExplainDocumentReader(path: dir + "/report/explanation.json")
        #expect((doc.inputs["values"] as? [String: Any])?["shape"] as? [Int] == [1, 3, 12, 12])
        #expect(doc.shape("exact-shap") == [1, 4, 3])
        let values = doc.values("exact-shap"), base = try #require(doc.array("base_values", of: "exact-shap")?.values)
        let outputs = try #require(doc.array("outputs", of: "exact-shap")?.values)
        for k in 0..<3 {
            let sum = (0..<4).reduce(0.0) { $0 + values[$1 * 3 + k] }
            #expect(abs(sum + base[k] - outputs[k]) <= 1e-4 * max(1, abs(outputs[k])), "class \(k)")
        }
        // The input picture (upscaled ×18 to 216 pixels) shows the file's own colours.
        let original = try ImageFile.read(path: file), picture = try ImageFile.read(path: dir + "/report/input-0-input.png")
        #expect(original.channels == 3 && picture.channels == 3 && picture.width == 12 * 18)
        for (x, y) in [(0, 0), (5, 7), (11, 11)] {
            for c in 0..<3 {
                let a = original.values[c * 144 + y * 12 + x], b = picture.values[c * picture.width * picture.height + (y * 18) * picture.width + x * 18]
                #expect(abs(a - b) <= 0.5 / 255, "pixel (\(x), \(y)) channel \(c)")
            }
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/report/input-0-ig-overlay.png"))
    }
}
