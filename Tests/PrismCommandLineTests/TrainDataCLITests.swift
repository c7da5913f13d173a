import Foundation
import Prism
import PrismCL
import PrismExplain
import PrismReport
import PrismTestSupport
import Testing

/// `prism train`, `eval` and `predict` on a user's own image folders and .npy arrays, run as a user
/// runs them, checked against answers computed here from the files and the saved model.
@Suite(.serialized) struct TrainDataCLITests {
    /// The class colours of the image folders: red, green and blue dominate in turn.
    static let colours: [String: (Float, Float, Float)] = ["blue": (0.1, 0.2, 0.9), "green": (0.15, 0.85, 0.2), "red": (0.9, 0.2, 0.1)]

    func scratch() throws -> String { try scratchDirectory("cli-data") }

    /// An image folder of `perClass` PNGs per class, each the class colour with seeded noise; image
    /// k of a class is `sizes[k % sizes.count]` pixels square.
    func imageFolder(_ dir: String, perClass: Int, sizes: [Int] = [8], seed: UInt64 = 1) throws -> String {
        for (c, name) in Self.colours.keys.sorted().enumerated() {
            let folder = dir + "/" + name
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let colour = Self.colours[name]!
            for k in 0..<perClass {
                let side = sizes[k % sizes.count]
                let noise = seededFloats(side * side * 3, seed: seed &* 1000 &+ UInt64(c * 100 + k))
                var image = RGBImage(width: side, height: side)
                for y in 0..<side {
                    for x in 0..<side {
                        let i = 3 * (y * side + x)
                        func byte(_ v: Float, _ n: Float) -> UInt8 { UInt8(max(0, min(255, (v + 0.1 * n) * 255)).rounded()) }
                        image[x, y] = (byte(colour.0, noise[i]), byte(colour.1, noise[i + 1]), byte(colour.2, noise[i + 2]))
                    }
                }
                try Data(try image.pngData()).write(to: URL(fileURLWithPath: String(format: "%@/img%02d.png", folder, k)))
            }
        }
        return dir
    }

    /// Writes a little-endian int64 .npy array of shape [values.count].
    func writeLabels(_ values: [Int], path: String) throws {
        var header = "{'descr': '<i8', 'fortran_order': False, 'shape': (\(values.count),), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        bytes += Array(header.utf8)
        for v in values { withUnsafeBytes(of: Int64(v).littleEndian) { bytes += $0 } }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    func evalJSON(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let eval = try runPrism(["eval", "--device", "cpu", "--json"] + arguments)
        #expect(eval.status == 0, "\(eval.stderr)", sourceLocation: sourceLocation)
        return try #require(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any], sourceLocation: sourceLocation)
    }

    /// The share of `indices` of `data` the model classifies as labelled, computed row by row here.
    func accuracy(model path: String, features: [Float], labels: [Int32], shape: [Int], indices: [Int]) throws -> Double {
        let engine = Engine(context: try testContext())
        let (net, _) = try Model.load(path: path, engine: engine)
        let size = shape.reduce(1, *)
        var correct = 0
        for i in indices {
            let x = try Tensor(Array(features[(i * size)..<((i + 1) * size)]), shape: [1] + shape, engine: engine)
            let scores = try engine.noGrad { try net(x).toArray() }
            let best = scores.indices.max { scores[$0] < scores[$1] }!
            if best == Int(labels[i]) { correct += 1 }
        }
        return Double(correct) / Double(indices.count)
    }

    @Test func imageFolderTrainsWithClassNamesAndASeededSplitThatEvalReproduces() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = try imageFolder(dir + "/images", perClass: 8)
        let base = ["train", "--device", "cpu", "--data", folder, "--arch", "mlp", "--hidden", "16", "--epochs", "15", "--batch", "8", "--lr", "0.01"]
        let first = try runPrism(base + ["--out", dir + "/a.safetensors"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("note: \(folder): size 8×8 (height×width) and 3 channels taken from the first image, \(folder)/blue/img00.png"), "\(first.stderr)")
        // 24 images: 24 - 24·4/5 = 5 held out by the seeded permutation.
        #expect(first.stderr.contains("note: \(folder): no --test-data, so 5 of the 24 examples (20%, drawn by a permutation with seed 0) are the test set and the other 19 the training set"), "\(first.stderr)")
        #expect(first.stderr.contains("19 training, 5 test examples"))
        #expect(!first.stderr.contains("resized"))

        let engine = Engine(context: try testContext())
        let loaded = try LoadedModel(path: dir + "/a.safetensors", engine: engine)
        #expect(loaded.classNames == ["blue", "green", "red"])
        #expect(loaded.model.spec.inputShape == [3, 8, 8])

        // The split, computed here: the first 5 of the seeded permutation are the test rows, in file order.
        let images = try ImageDataset.loadImageFolder(directory: folder, height: 8, width: 8, channels: 3)
        #expect(images.classes == ["blue", "green", "red"])
        let order = seededPermutation(24, seed: 0)
        let testRows = order[0..<5].sorted(), trainRows = order[5...].sorted()
        #expect(testRows != Array(19..<24), "not the last files, which are one class")

        // The model normalizes each of the 3 channels by the training images' mean.
        let normalization = try #require(loaded.model.spec.inputNormalization)
        let plane = 64
        let means = (0..<3).map { c in
            trainRows.map { r in images.dataset.pixels[(r * 3 + c) * plane..<(r * 3 + c + 1) * plane].reduce(0, +) }.reduce(0, +) / Float(trainRows.count * plane)
        }
        expectClose(normalization.mean, means, atol: 1e-5, rtol: 1e-5)

        let expected = try accuracy(model: dir + "/a.safetensors", features: images.dataset.pixels, labels: images.dataset.labels,
                                    shape: [3, 8, 8], indices: testRows)
        let evalA = try evalJSON(["--data", folder, "--model", dir + "/a.safetensors"])
        #expect(evalA["count"] as? Int == 5)
        let accuracyA = try #require(evalA["accuracy"] as? Double)
        #expect(abs(accuracyA - expected) <= 1e-9, "eval \(accuracyA), computed \(expected)")
        #expect(accuracyA >= 0.8, "colours this distinct are learnt")

        // A second run finds the same split and trains the same model.
        let second = try runPrism(base + ["--out", dir + "/b.safetensors"])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("19 training, 5 test examples"))
        let evalB = try evalJSON(["--data", folder, "--model", dir + "/b.safetensors"])
        #expect(evalB["count"] as? Int == 5 && evalB["accuracy"] as? Double == accuracyA)

        // predict prints the folder's class names.
        let predict = try runPrism(["predict", "--device", "cpu", "--data", folder, "--model", dir + "/a.safetensors", "--index", "0"])
        #expect(predict.status == 0, "\(predict.stderr)")
        let truth = ["blue", "green", "red"][Int(images.dataset.labels[testRows[0]])]
        #expect(predict.stdout.hasPrefix("example 0: true class \(images.dataset.labels[testRows[0]]) (\(truth))"), "\(predict.stdout)")
    }

    @Test func explainFindsTheHeldOutRowsAndDrawsTheBackgroundFromTheTrainingRows() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = try imageFolder(dir + "/images", perClass: 5)
        let model = dir + "/m.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", folder, "--arch", "mlp", "--hidden", "8", "--epochs", "1", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        let run = try runPrism(["explain", "--device", "cpu", "--data", folder, "--model", model, "--index", "2", "--method", "permutation-shap",
                                "--samples", "40", "--background", "4", "--superpixel", "4", "--json", dir + "/e.json"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("no --test-data, so 3 of the 15 examples"), "\(run.stderr)")
        let doc = try ExplainDocumentReader(path: dir + "/e.json")
        #expect((doc.json["model"] as? [String: Any])?["output_names"] as? [String] == ["blue", "green", "red"])

        // Test row 2 and the training rows, computed here from the files and the permutation.
        let images = try ImageDataset.loadImageFolder(directory: folder, height: 8, width: 8, channels: 3)
        let order = seededPermutation(15, seed: 0)
        let row = order[0..<3].sorted()[2]
        #expect(doc.inputs["labels"] as? [Int] == [Int(images.dataset.labels[row])])
        func flatten(_ value: Any?) -> [Float] {
            if let list = value as? [Any] { return list.flatMap(flatten) }
            return [(value as? NSNumber)?.floatValue ?? .nan]
        }
        let values = flatten((doc.inputs["values"] as? [String: Any])?["values"])
        expectClose(values, Array(images.dataset.pixels[(row * 192)..<((row + 1) * 192)]), atol: 1e-6, rtol: 0)
        let drawn = try #require(doc.background["indices"] as? [Int])
        #expect(drawn.count == 4 && drawn.allSatisfy { (0..<12).contains($0) }, "indices into the 12 training rows: \(drawn)")
    }

    @Test func mixedSizesAreResizedWithOneNoteAndTestFoldersAreRead() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Per class: images 0, 2 are 10×10, 1, 3 are 12×12 — the first (blue/img00) decides 10×10.
        let folder = try imageFolder(dir + "/images", perClass: 4, sizes: [10, 12])
        let testFolder = try imageFolder(dir + "/test", perClass: 2, sizes: [12], seed: 7)
        let model = dir + "/m.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", folder, "--test-data", testFolder, "--arch", "cnn",
                                  "--epochs", "1", "--batch", "4", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        let notes = train.stderr.split(separator: "\n").filter { $0.contains("resized") }
        #expect(notes == ["note: \(folder): 6 of 12 images resized to 10×10 (bilinear, antialiased as PIL and torchvision)",
                          "note: \(testFolder): 6 of 6 images resized to 10×10 (bilinear, antialiased as PIL and torchvision)"], "\(train.stderr)")
        #expect(!train.stderr.contains("no --test-data"))
        #expect(train.stderr.contains("12 training, 6 test examples"))
        let engine = Engine(context: try testContext())
        let loaded = try LoadedModel(path: model, engine: engine)
        #expect(loaded.model.spec.inputShape == [3, 10, 10] && loaded.classNames == ["blue", "green", "red"])
        #expect(loaded.model.spec.inputNormalization?.mean.count == 3)

        // Resuming reads the folders at the checkpoint's size, not at a new first image's.
        try FileManager.default.removeItem(atPath: folder + "/blue/img00.png")
        let resumed = try runPrism(["train", "--device", "cpu", "--data", folder, "--test-data", testFolder, "--epochs", "2",
                                    "--out", model, "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("epoch 2/2") && !resumed.stderr.contains("taken from the first image"), "\(resumed.stderr)")
        #expect(resumed.stderr.contains("note: \(folder): 6 of 11 images resized to 10×10"), "\(resumed.stderr)")

        // eval reads the test folder at the model's size; its accuracy is the model's on those images.
        let images = try ImageDataset.loadImageFolder(directory: testFolder, height: 10, width: 10, channels: 3)
        let expected = try accuracy(model: model, features: images.dataset.pixels, labels: images.dataset.labels, shape: [3, 10, 10],
                                    indices: Array(0..<6))
        let eval = try evalJSON(["--data", folder, "--test-data", testFolder, "--model", model])
        #expect(eval["count"] as? Int == 6)
        #expect(abs((eval["accuracy"] as? Double ?? -1) - expected) <= 1e-9)

        // Chosen size and channels: RGB reduced to luma, with notes, and no "taken from" note.
        let gray = try runPrism(["train", "--device", "cpu", "--data", folder, "--image-size", "9,11", "--channels", "1", "--arch", "mlp",
                                 "--hidden", "8", "--epochs", "1", "--out", dir + "/g.safetensors"])
        #expect(gray.status == 0, "\(gray.stderr)")
        #expect(!gray.stderr.contains("taken from the first image"))
        #expect(gray.stderr.contains("note: \(folder): 11 of 11 images converted to 1 channel (ITU-R 601-2 luma"), "\(gray.stderr)")
        #expect(gray.stderr.contains("note: \(folder): 11 of 11 images resized to 9×11"))
        #expect(try LoadedModel(path: dir + "/g.safetensors", engine: engine).model.spec.inputShape == [1, 9, 11])
    }

    @Test func numPyArraysTrainAndEval() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Tabular: 30 rows of 4 features; the class is whether feature 0 + feature 1 is positive.
        let x = seededFloats(30 * 4, seed: 11).map(Double.init)
        let y = (0..<30).map { x[$0 * 4] + x[$0 * 4 + 1] > 0 ? 1 : 0 }
        try writeNpy(x, shape: [30, 4], path: dir + "/x.npy")
        try writeLabels(y, path: dir + "/y.npy")
        let model = dir + "/t.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", dir + "/x.npy", "--labels", dir + "/y.npy", "--arch", "mlp",
                                  "--hidden", "8", "--epochs", "2", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stderr.contains("no --test-data, so 6 of the 30 examples"))
        #expect(train.stderr.contains("24 training, 6 test examples"))
        let rows = seededPermutation(30, seed: 0)[0..<6].sorted()
        let expected = try accuracy(model: model, features: x.map(Float.init), labels: y.map(Int32.init), shape: [4], indices: rows)
        let eval = try evalJSON(["--data", dir + "/x.npy", "--labels", dir + "/y.npy", "--model", model])
        #expect(eval["count"] as? Int == 6)
        #expect(abs((eval["accuracy"] as? Double ?? -1) - expected) <= 1e-9)

        // Images [N, C, H, W] with a separate test pair: cnn, normalized per channel by default.
        let n = 12, m = 5, shape = [3, 10, 10], size = 300
        let images = seededFloats((n + m) * size, seed: 12).map { Double(($0 + 1) / 2) }
        let labels = (0..<(n + m)).map { $0 % 3 }
        try writeNpy(Array(images[0..<(n * size)]), shape: [n] + shape, path: dir + "/xi.npy")
        try writeLabels(Array(labels[0..<n]), path: dir + "/yi.npy")
        try writeNpy(Array(images[(n * size)...]), shape: [m] + shape, path: dir + "/xt.npy")
        try writeLabels(Array(labels[n...]), path: dir + "/yt.npy")
        let cnn = dir + "/c.safetensors"
        let trainImages = try runPrism(["train", "--device", "cpu", "--data", dir + "/xi.npy", "--labels", dir + "/yi.npy",
                                        "--test-data", dir + "/xt.npy", "--test-labels", dir + "/yt.npy", "--epochs", "1", "--batch", "4", "--out", cnn])
        #expect(trainImages.status == 0, "\(trainImages.stderr)")
        #expect(trainImages.stderr.contains("12 training, 5 test examples"))
        let engine = Engine(context: try testContext())
        let spec = try LoadedModel(path: cnn, engine: engine).model.spec
        #expect(spec.inputShape == shape && spec.classCount == 3 && spec.inputNormalization?.mean.count == 3)
        let expectedImages = try accuracy(model: cnn, features: images[(n * size)...].map(Float.init), labels: labels[n...].map(Int32.init),
                                          shape: shape, indices: Array(0..<m))
        let evalImages = try evalJSON(["--data", dir + "/xi.npy", "--labels", dir + "/yi.npy", "--test-data", dir + "/xt.npy",
                                       "--test-labels", dir + "/yt.npy", "--model", cnn])
        #expect(evalImages["count"] as? Int == m)
        #expect(abs((evalImages["accuracy"] as? Double ?? -1) - expectedImages) <= 1e-9)
    }

    @Test func badCombinationsGiveOneLineErrors() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeNpy(seededFloats(20, seed: 3).map(Double.init), shape: [5, 4], path: dir + "/x.npy")
        try writeLabels([0, 1, 0, 1], path: dir + "/y4.npy")
        try writeLabels([0, 1, 0, 1, 1], path: dir + "/y5.npy")
        try "a,b,y\n1,2,0\n3,4,1\n".write(toFile: dir + "/t.csv", atomically: true, encoding: .utf8)
        let folder = try imageFolder(dir + "/images", perClass: 2)
        let base = ["train", "--device", "cpu", "--arch", "mlp", "--epochs", "1", "--out", dir + "/m.safetensors"]
        expectOneLineError(try runPrism(base + ["--data", dir + "/t.csv", "--label", "y", "--labels", dir + "/y5.npy"]),
                           "--labels is for .npy inputs (--data x.npy); \(dir)/t.csv is a CSV file (a CSV file's label column is --label NAME)")
        expectOneLineError(try runPrism(base + ["--data", folder, "--labels", dir + "/y5.npy"]),
                           "--labels is for .npy inputs (--data x.npy); \(folder) is an image folder")
        expectOneLineError(try runPrism(base + ["--data", dir + "/x.npy"]), "\(dir)/x.npy: .npy inputs need --labels y.npy")
        expectOneLineError(try runPrism(base + ["--data", dir + "/x.npy", "--labels", dir + "/y4.npy"]),
                           "\(dir)/y4.npy: 4 labels, but \(dir)/x.npy holds 5 examples")
        expectOneLineError(try runPrism(base + ["--data", dir + "/x.npy", "--labels", dir + "/y5.npy", "--test-data", dir + "/x.npy"]),
                           "\(dir)/x.npy: .npy test inputs need --test-labels yt.npy")
        expectOneLineError(try runPrism(base + ["--data", dir + "/x.npy", "--labels", dir + "/y5.npy", "--image-size", "4,4"]),
                           "--image-size and --channels are for image folders; \(dir)/x.npy is a .npy file")
        expectOneLineError(try runPrism(base + ["--data", folder, "--image-size", "8"]), "--image-size '8' is not H,W")
        // After the note on the held-out split, one line of error.
        let normalize = try runPrism(base + ["--data", dir + "/x.npy", "--labels", dir + "/y5.npy", "--normalize", "dataset"])
        #expect(normalize.status == 1)
        #expect(normalize.stderr.split(separator: "\n").last == "--normalize dataset is for images [channels, height, width]; \(dir)/x.npy has examples of shape [4]",
                "\(normalize.stderr)")

        // A model trained on one folder refuses a folder with other classes.
        let model = dir + "/f.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", folder, "--arch", "mlp", "--hidden", "4", "--epochs", "1", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        try FileManager.default.moveItem(atPath: folder + "/red", toPath: folder + "/yellow")
        expectOneLineError(try runPrism(["eval", "--device", "cpu", "--data", folder, "--model", model]),
                           "\(folder): classes [\"blue\", \"green\", \"yellow\"] differ from the model's [\"blue\", \"green\", \"red\"]")
    }
}
