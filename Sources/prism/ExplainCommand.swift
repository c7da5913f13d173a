import ArgumentParser
import Foundation
import Prism
import PrismExplain
import PrismReport

extension ShapleyMethod: ExpressibleByArgument {}

struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Shapley values of a model's outputs for test examples, against a background set.",
        discussion: """
            The examples are rows --index of the test set of --data. Hidden features take the values of the \
            background rows: --background N draws N training rows with the seed, --background-data uses every \
            row of a CSV file (columns matched by name, the label column ignored) or of an MNIST-format folder's \
            training images. Images are explained by --superpixel K×K cells (default 4), tabular data by column.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var dataOptions: DataOptions

    @Option(help: "The model file (safetensors written by prism train).")
    var model: String

    @Option(help: "Test-set examples to explain: I or I,J,…")
    var index: String = "0"

    @Option(help: "exact-shap, kernel-shap, permutation-shap or sampling-shap.")
    var method: ShapleyMethod = .kernel

    @Option(help: "Coalition budget (default: the method's; kernel-shap 2M + 2048).")
    var samples: Int?

    @Option(help: "Background: this many training rows drawn with the seed.")
    var background: Int?

    @Option(help: "Background: every row of this CSV file or MNIST-format folder (training images).")
    var backgroundData: String?

    @Option(help: "Images: superpixels of K×K pixels.")
    var superpixel: Int = 4

    @Option(help: "Seed of the background draw and of the sampling.")
    var seed: UInt64 = 0

    @Option(help: "Sampled estimates: stop when max standard error < T × (max φ − min φ).")
    var stopThreshold: Double?

    @Option(help: "Model rows per forward pass (default: sized from device memory).")
    var rowsPerChunk: Int?

    @Option(help: "Write the explanation as JSON to this file.")
    var json: String?

    @Option(help: "Write values.npy, base_values.npy, outputs.npy (and standard_errors.npy) into this folder.")
    var npy: String?

    @Option(help: "Write a report into this folder: index.html with the pictures (images) or the top features, explanation.json and the .npy files.")
    var out: String?

    @Option(help: "Images only: write, per example, the input, the Shapley values of the predicted class as a heatmap (red raises, blue lowers the output) and the heatmap over the input, as PNG files into this folder.")
    var png: String?

    @Option(help: "How many features to print per example.")
    var top: Int = 5

    func validate() throws {
        if background != nil && backgroundData != nil { throw ValidationError("give --background or --background-data, not both") }
        if let background, background < 1 { throw ValidationError("--background must be at least 1") }
        if let samples, samples < 1 { throw ValidationError("--samples must be at least 1") }
        if superpixel < 1 { throw ValidationError("--superpixel must be at least 1") }
        if let rowsPerChunk, rowsPerChunk < 1 { throw ValidationError("--rows-per-chunk must be at least 1") }
        if let stopThreshold, !(stopThreshold > 0) { throw ValidationError("--stop-threshold must be positive") }
        _ = try indices()
    }

    func indices() throws -> [Int] {
        let parts = index.split(separator: ",", omittingEmptySubsequences: false)
        let values = parts.map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil && $0! >= 0 }) else {
            throw ValidationError("--index '\(index)' is not a list of non-negative integers (I or I,J,…)")
        }
        return values.map { $0! }
    }

    func run() throws {
        try runReportingErrors {
            // The report folder is checked before any work.
            if let out {
                do {
                    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                    let probe = (out as NSString).appendingPathComponent(".prism-write-test")
                    guard FileManager.default.createFile(atPath: probe, contents: Data()) else { throw CocoaError(.fileWriteNoPermission) }
                    try FileManager.default.removeItem(atPath: probe)
                } catch {
                    throw DataError("\(out): cannot write the report there")
                }
            }
            let json = self.json ?? out.map { ($0 as NSString).appendingPathComponent("explanation.json") }
            let npy = self.npy ?? out.map { ($0 as NSString).appendingPathComponent("npy") }
            let engine = Engine(context: try global.context())
            let loaded = try LoadedModel(path: model, engine: engine)
            let spec = loaded.model.spec
            let needTrain = backgroundData == nil
            let data = try dataOptions.load(standardization: loaded.standardization, needTrain: needTrain)
            let test = data.test
            guard test.exampleShape == spec.inputShape else {
                throw DataError("data: examples have shape \(test.exampleShape), the model expects \(spec.inputShape)")
            }
            let rows = try indices()
            if let bad = rows.first(where: { $0 >= test.count }) {
                throw ValidationError("--index \(bad) outside 0..<\(test.count) (the test set of \(dataOptions.sourceName))")
            }

            // Background rows.
            let width = test.exampleSize
            var backgroundValues: [Float]
            var backgroundNote: String
            if let backgroundData {
                backgroundValues = try loadBackground(path: backgroundData, width: width, standardization: loaded.standardization)
                backgroundNote = "all \(backgroundValues.count / width) rows of \(backgroundData)"
            } else {
                let train = data.train!
                let n = min(background ?? 100, train.count)
                var rng = SplitMix64(seed: seed ^ 0xBAC6_0000)
                var order = Array(0..<train.count)
                for i in 0..<n { order.swapAt(i, i + Int(rng.next() % UInt64(train.count - i))) }
                let chosen = Array(order[0..<n])
                backgroundValues = []
                backgroundValues.reserveCapacity(n * width)
                for r in chosen { backgroundValues += train.features[(r * width)..<((r + 1) * width)] }
                backgroundNote = "training rows " + chosen.map(String.init).joined(separator: ",")
            }

            // Features.
            let groups: FeatureGroups
            let names: [String]
            if spec.inputShape.count == 3 {
                groups = try FeatureGroups.grid(channels: spec.inputShape[0], height: spec.inputShape[1], width: spec.inputShape[2], cell: superpixel)
                names = (0..<groups.featureCount).map { "superpixel \($0)" }
            } else {
                groups = .elements(width)
                names = try dataOptions.isCSV ? csvFeatureNames(path: dataOptions.path, label: dataOptions.label ?? "", width: width)
                    : (0..<width).map { "feature \($0)" }
            }

            var estimator: ShapleyEstimator = method.estimator(budget: samples, seed: seed)
            if let stopThreshold {
                let rule = StoppingRule(threshold: stopThreshold)
                if var k = estimator as? KernelShap { k.stopping = rule; estimator = k }
                if var p = estimator as? PermutationShap { p.stopping = rule; estimator = p }
                if var s = estimator as? SamplingShap { s.stopping = rule; estimator = s }
            }
            var parts: [Explanation] = []
            for i in rows {
                let game = try DeviceGame(model: loaded.model, instance: try test.example(i).features, background: backgroundValues,
                                          groups: groups, rowsPerChunk: rowsPerChunk)
                parts.append(try estimator.explain(game))
            }
            var explanation = try Explanation(stacking: parts)
            explanation.featureNames = names
            explanation.settings["model"] = model
            explanation.settings["data"] = dataOptions.sourceName
            explanation.settings["indices"] = rows.map(String.init).joined(separator: ",")
            explanation.settings["background"] = backgroundNote
            if spec.inputShape.count == 3 { explanation.settings["superpixel"] = String(superpixel) }

            let o = explanation.outputCount
            // f(x) of each example and its predicted class (the first largest output).
            let exampleOutputs = rows.indices.map { Array(explanation.outputs![($0 * o)..<(($0 + 1) * o)]) }
            let predictedClasses = exampleOutputs.map { out in out.indices.max(by: { out[$0] < out[$1] })! }
            for (n, i) in rows.enumerated() {
                let outputs = exampleOutputs[n], predicted = predictedClasses[n]
                let base = explanation.baseValues![n * o + predicted]
                printLine(String(format: "example %d: predicted %@ (%d), f(x) %.4f, base value %.4f, %@ with %d model evaluations in %.2f s",
                                 i, loaded.className(predicted), predicted, outputs[predicted], base, method.rawValue,
                                 parts[n].modelEvaluations, parts[n].seconds))
                let phi = explanation.attributions(instance: n, output: predicted)
                for j in phi.indices.sorted(by: { abs(phi[$0]) > abs(phi[$1]) }).prefix(max(0, top)) {
                    var line = String(format: "  %@  %+.5f", names[j], phi[j])
                    if let se = explanation.standardErrors { line += String(format: " ± %.5f", se[(n * names.count + j) * o + predicted]) }
                    printLine(line)
                }
            }
            if let json { try explanation.writeJSON(path: json) }
            if let npy { try explanation.writeNumPy(directory: npy) }
            let isImage = spec.inputShape.count == 3 && spec.inputShape[0] == 1
            var pictures: [Int: [(String, String)]] = [:]
            if let png = png ?? (isImage ? out : nil) {
                guard isImage else {
                    throw ValidationError("--png: pictures need single-channel images, the model's input is \(spec.inputShape)")
                }
                try FileManager.default.createDirectory(atPath: png, withIntermediateDirectories: true)
                let (h, w) = (spec.inputShape[1], spec.inputShape[2])
                let scale = max(1, 224 / max(h, w))
                for (n, i) in rows.enumerated() {
                    let predicted = predictedClasses[n]
                    let input = try Heatmap.image(try test.example(i).features, width: w, height: h)
                    let values = try Heatmap.pixelValues(explanation.attributions(instance: n, output: predicted), groups: groups)
                    let heat = try Heatmap.attribution(values, width: w, height: h)
                    let names = ["example-\(i)-input.png", "example-\(i)-\(method.rawValue).png", "example-\(i)-\(method.rawValue)-overlay.png"]
                    try input.upscaled(by: scale).writePNG(path: (png as NSString).appendingPathComponent(names[0]))
                    try heat.upscaled(by: scale).writePNG(path: (png as NSString).appendingPathComponent(names[1]))
                    try Heatmap.blend(input, heat, alpha: 0.6).upscaled(by: scale).writePNG(path: (png as NSString).appendingPathComponent(names[2]))
                    pictures[i] = [(names[0], "input"), (names[1], "\(method.rawValue), class \(loaded.className(predicted))"),
                                   (names[2], "overlay")]
                }
                printLine("wrote \(rows.count * 3) PNG files into \(png)")
            }
            if let out {
                var examples: [HTMLReport.Example] = []
                for (n, i) in rows.enumerated() {
                    let outputs = exampleOutputs[n], predicted = predictedClasses[n]
                    let phi = explanation.attributions(instance: n, output: predicted)
                    let gap = explanation.additivityGap(instance: n, output: predicted) ?? .nan
                    let topFeatures = phi.indices.sorted(by: { abs(phi[$0]) > abs(phi[$1]) }).prefix(5)
                        .map { String(format: "%@ %+.4f", names[$0], phi[$0]) }.joined(separator: ", ")
                    let caption = String(format: "%@, budget %@, %d model evaluations in %.2f s; f(x) = %.4f, base value %.4f, Σφ + base − f(x) = %.2e. Largest: %@.",
                                         method.rawValue, explanation.settings["budget"] ?? "default", parts[n].modelEvaluations, parts[n].seconds,
                                         outputs[predicted], explanation.baseValues![n * o + predicted], gap, topFeatures)
                    let truth = try test.example(i).label
                    examples.append(HTMLReport.Example(title: "Test example \(i): predicted \(loaded.className(predicted)), true \(loaded.className(Int(truth)))",
                                                       caption: caption, images: pictures[i] ?? []))
                }
                let report = HTMLReport(
                    title: "Prism: \(method.rawValue) explanations of \(model)",
                    summary: ["Data: \(dataOptions.sourceName). Background: \(backgroundNote).",
                              "Values explain the predicted class's output (logit) against the background's average; features: \(isImage ? "\(superpixel)×\(superpixel) superpixels" : "columns")."],
                    examples: examples,
                    files: [("explanation.json", "values, base values, f(x), standard errors, settings"),
                            ("npy/values.npy", "values [instances, features, outputs] for numpy.load")])
                try report.write(directory: out)
                printLine("wrote \((out as NSString).appendingPathComponent("index.html"))")
            }
        }
    }

    /// Background rows from a CSV file (columns matched to the model's data by name, other columns
    /// ignored, standardized like the training data) or an MNIST-format folder's training images.
    func loadBackground(path: String, width: Int, standardization: TabularDataset.Standardization?) throws -> [Float] {
        if path.lowercased().hasSuffix(".csv") {
            guard dataOptions.isCSV else { throw DataError("\(path): a CSV background needs CSV data (--data FILE.csv)") }
            let names = try csvFeatureNames(path: dataOptions.path, label: dataOptions.label ?? "", width: width)
            let (header, rows) = try readNumericCSV(path: path, columns: names)
            var values: [Float] = []
            for row in rows {
                for (j, column) in header.enumerated() {
                    var v = row[column]
                    if let s = standardization { v = (v - s.mean[j]) / s.std[j] }
                    values.append(v)
                }
            }
            guard !values.isEmpty else { throw DataError("\(path): no data rows") }
            return values
        }
        let images = try LabeledData(try ImageDataset.loadMNISTFormat(directory: path, split: .train))
        guard images.exampleSize == width else {
            throw DataError("\(path): background images have \(images.exampleSize) values, the model's inputs \(width)")
        }
        return images.features
    }
}

/// The feature columns of a CSV file: the header without the label column.
func csvFeatureNames(path: String, label: String, width: Int) throws -> [String] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8), let first = text.split(separator: "\n").first else {
        throw DataError("\(path): not a readable CSV file")
    }
    let names = first.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        .filter { $0 != label }
    guard names.count == width else { throw DataError("\(path): \(names.count) feature columns, the model has \(width) inputs") }
    return names
}

/// A numeric CSV file's rows, with, for each wanted column in order, its index in the file.
/// - Throws: `DataError` naming a missing column, or the row and column of a cell that is not a number.
func readNumericCSV(path: String, columns: [String]) throws -> (indices: [Int], rows: [[Float]]) {
    let name = (path as NSString).lastPathComponent
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw DataError("\(path): no such file or not UTF-8 text") }
    let lines = text.split(whereSeparator: \.isNewline).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    guard let headerLine = lines.first else { throw DataError("\(name): empty file") }
    let header = headerLine.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    let indices = try columns.map { c -> Int in
        guard let i = header.firstIndex(of: c) else {
            throw DataError("\(name): no column '\(c)' (the model's data has columns \(columns.joined(separator: ", ")))")
        }
        return i
    }
    var rows: [[Float]] = []
    for (r, line) in lines.dropFirst().enumerated() {
        let cells = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard cells.count == header.count else { throw DataError("\(name): row \(r + 2) has \(cells.count) cells, the header has \(header.count)") }
        var row = [Float](repeating: 0, count: cells.count)
        for i in indices {
            guard let v = Float(cells[i]), v.isFinite else {
                throw DataError("\(name): row \(r + 2), column '\(header[i])': '\(cells[i])' is not a finite number")
            }
            row[i] = v
        }
        rows.append(row)
    }
    return (indices, rows)
}
