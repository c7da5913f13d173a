import ArgumentParser
import Foundation
import Prism
import PrismExplain
import PrismReport

/// Where an explain run writes its results.
struct ExplainOutputs {
    /// The explanation as JSON (several methods: one file per method, the method's name before the extension).
    var json: String?
    /// A folder for the NumPy arrays (several methods: a subfolder per method).
    var npy: String?
    /// A folder for the PNG pictures (images only).
    var png: String?
    /// A report folder: index.html with every picture, the JSON and the arrays.
    var out: String?

    /// The defaults inside a report folder.
    init(json: String?, npy: String?, png: String?, out: String?) {
        self.out = out
        self.json = json ?? out.map { ($0 as NSString).appendingPathComponent("explanation.json") }
        self.npy = npy ?? out.map { ($0 as NSString).appendingPathComponent("npy") }
        self.png = png
    }

    /// Checks, before any work, that the report folder can be written.
    /// - Throws: `DataError` naming the folder.
    func checkWritable() throws {
        guard let out else { return }
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let probe = (out as NSString).appendingPathComponent(".prism-write-test")
            guard FileManager.default.createFile(atPath: probe, contents: Data()) else { throw CocoaError(.fileWriteNoPermission) }
            try FileManager.default.removeItem(atPath: probe)
        } catch {
            throw DataError("\(out): cannot write the report there")
        }
    }
}

/// What a caller adds to the report page.
struct ReportExtras {
    var title: String?
    var summary: [String] = []
    /// Figures about the whole run (files already in the report folder): (file, caption).
    var figures: [(String, String)] = []
    var files: [(String, String)] = []
}

extension ExplainJob {
    /// `explanation.json` → `explanation-ig.json` when several methods share one name.
    func perMethod(_ path: String, _ method: ExplainMethodName, file: Bool) -> String {
        guard methods.count > 1 else { return path }
        if !file { return (path as NSString).appendingPathComponent(method.rawValue) }
        let ext = (path as NSString).pathExtension
        let stem = ext.isEmpty ? path : (path as NSString).deletingPathExtension
        return stem + "-" + method.rawValue + (ext.isEmpty ? "" : "." + ext)
    }

    /// Writes the JSON, the arrays, the pictures and the report of `runs`.
    func write(_ runs: [MethodRun], outputs: [[Float]], predicted: [Int], to destination: ExplainOutputs, extras: ReportExtras = ReportExtras()) throws {
        var dataFiles: [(String, String)] = []
        for run in runs {
            if let json = destination.json {
                let path = perMethod(json, run.method, file: true)
                try run.explanation.writeJSON(path: path)
                dataFiles.append((relative(path, to: destination.out), "\(run.method.title): values, base values, f(x), settings"))
            }
            if let npy = destination.npy {
                let folder = perMethod(npy, run.method, file: false)
                try run.explanation.writeNumPy(directory: folder)
                dataFiles.append((relative((folder as NSString).appendingPathComponent("values.npy"), to: destination.out),
                                  "\(run.method.title): values [instances, features, outputs] for numpy.load"))
            }
        }
        if metrics || randomization, let out = destination.out {
            let path = (out as NSString).appendingPathComponent("metrics.json")
            try writeMetrics(runs, path: path)
            dataFiles.append(("metrics.json", "deletion/insertion curves and their areas per method and example, the parameter-randomization stages per method"))
        }
        var pictures: [Int: [(String, String)]] = [:]
        if let png = destination.png ?? (isImage ? destination.out : nil) {
            guard isImage, inputShape[0] == 1 else {
                throw ValidationError("--png: pictures need single-channel images, the model's input is \(inputShape)")
            }
            try FileManager.default.createDirectory(atPath: png, withIntermediateDirectories: true)
            let (h, w) = (inputShape[1], inputShape[2])
            let scale = max(1, 224 / max(h, w))
            var count = 0
            for (n, i) in rows.enumerated() {
                let input = try Heatmap.image(try test.example(i).features, width: w, height: h)
                let inputName = "example-\(i)-input.png"
                try input.upscaled(by: scale).writePNG(path: (png as NSString).appendingPathComponent(inputName))
                var files = [(relative((png as NSString).appendingPathComponent(inputName), to: destination.out), "input")]
                count += 1
                for run in runs {
                    let heat = try Heatmap.attribution(try pixelValues(run, example: n), width: w, height: h)
                    let names = ["example-\(i)-\(run.method.rawValue).png", "example-\(i)-\(run.method.rawValue)-overlay.png"]
                    try heat.upscaled(by: scale).writePNG(path: (png as NSString).appendingPathComponent(names[0]))
                    try Heatmap.blend(input, heat, alpha: 0.6).upscaled(by: scale).writePNG(path: (png as NSString).appendingPathComponent(names[1]))
                    files.append((relative((png as NSString).appendingPathComponent(names[0]), to: destination.out), run.method.title))
                    files.append((relative((png as NSString).appendingPathComponent(names[1]), to: destination.out), "\(run.method.title) over the input"))
                    count += 2
                }
                pictures[i] = files
            }
            printLine("wrote \(count) PNG files into \(png)")
        }
        guard let out = destination.out else { return }
        var examples: [HTMLReport.Example] = []
        for (n, i) in rows.enumerated() {
            let p = predicted[n]
            let captions = runs.map { caption($0, example: n, predicted: p, outputs: outputs[n]) }
            let truth = try test.example(i).label
            let probabilities = softmax(outputs[n])
            let ranked = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }.prefix(3)
                .map { String(format: "%@ %.1f%%", loaded.className($0), 100 * probabilities[$0]) }.joined(separator: ", ")
            examples.append(HTMLReport.Example(
                title: "Test example \(i): predicted \(loaded.className(p)), true \(loaded.className(Int(truth)))",
                captions: ["Top classes: \(ranked)."] + captions, images: pictures[i] ?? [],
                plots: try examplePlots(runs, example: n, index: i, predicted: p, folder: out)))
        }
        let methodList = runs.map(\.method.title).joined(separator: ", ")
        let report = HTMLReport(
            title: extras.title ?? "Prism: \(methodList) explanations of \(modelPath)",
            summary: extras.summary + [
                "Data: \(sourceName). Background: \(backgroundNote.count > 160 ? backgroundNote.prefix(150) + "… (all in the JSON settings)" : backgroundNote).",
                "Every method explains the predicted class's output (logit); features: \(isImage ? (segmentation.map { "the segments of \(($0 as NSString).lastPathComponent)" } ?? "\(superpixel ?? 1)×\(superpixel ?? 1) superpixels") + " for the SHAP methods and LIME, pixels for the gradient methods" : groups.featureCount == elementCount ? "columns" : "groups of columns"). Each heatmap is scaled to its own largest magnitude.",
            ],
            figures: extras.figures + (try summaryPlots(runs, folder: out)), examples: examples, files: dataFiles + extras.files)
        try report.write(directory: out)
        printLine("wrote \((out as NSString).appendingPathComponent("index.html"))")
    }

    /// Per example: the waterfall of each SHAP method (features from the base value to f(x)) and the
    /// deletion and insertion curves of every method (next to the random order's), as SVG files.
    func examplePlots(_ runs: [MethodRun], example n: Int, index i: Int, predicted p: Int, folder: String) throws -> [(String, String)] {
        var plots: [(String, String)] = []
        for run in runs where run.method.shapley != nil {
            let e = run.explanation, slot = run.outputSlot[n]
            guard let base = e.baseValues?[n * e.outputCount + slot] else { continue }
            let name = "example-\(i)-\(run.method.rawValue)-waterfall.svg"
            try WaterfallPlot(names: (0..<e.featureCount).map { featureName($0, of: e) }, values: e.attributions(instance: n, output: slot),
                              baseValue: base, title: "\(run.method.title): \(loaded.className(p))")
                .write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent(name)))
            plots.append((name, "\(run.method.title) waterfall: from the base value (the background's mean output) to f(x) for class \(loaded.className(p))"))
        }
        let withCurves = runs.filter { $0.curves != nil }
        if let first = withCurves.first?.curves?[n] {
            for (kind, pick, random) in [("deletion", { (c: DeletionInsertion.Curves) in c.deletion }, first.randomDeletion),
                                         ("insertion", { (c: DeletionInsertion.Curves) in c.insertion }, first.randomInsertion)] {
                var series = withCurves.map { run -> LinePlot.Series in
                    let c = run.curves![n]
                    return .init(name: "\(run.method.title) (\(String(format: "%.3f", kind == "deletion" ? c.deletionAUC : c.insertionAUC)))",
                                 x: c.fractions, y: pick(c))
                }
                series.append(.init(name: "random order", x: first.fractions, y: random, dashed: true))
                let name = "example-\(i)-\(kind).svg"
                try LinePlot(series: series, title: "\(kind.capitalized) curve, \(loaded.className(p))", xLabel: "fraction of features \(kind == "deletion" ? "removed" : "inserted")",
                             yLabel: "probability of the class").write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent(name)))
                plots.append((name, "\(kind.capitalized): the most relevant features first (area under the curve in brackets; \(kind == "deletion" ? "lower" : "higher") is better)"))
            }
        }
        return plots
    }

    /// Over all examples: mean |φ| per feature of each SHAP method, and for tabular data with several
    /// examples shap's beeswarm; for a vision transformer, the attention maps of the first example.
    func summaryPlots(_ runs: [MethodRun], folder: String) throws -> [(String, String)] {
        var plots: [(String, String)] = []
        let x = try instances()
        for run in runs where run.method.shapley != nil {
            let e = run.explanation, m = e.featureCount
            let perInstance = (0..<e.instanceCount).map { e.attributions(instance: $0, output: run.outputSlot[$0]) }
            let meanAbs = (0..<m).map { j in perInstance.reduce(0.0) { $0 + abs($1[j]) } / Double(e.instanceCount) }
            let names = (0..<m).map { featureName($0, of: e) }
            let bar = "\(run.method.rawValue)-mean-abs.svg"
            try BarPlot(names: names, values: meanAbs, title: "\(run.method.title): mean |φ| of the predicted class")
                .write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent(bar)))
            plots.append((bar, "\(run.method.title): mean |φ| per feature over the \(e.instanceCount) examples, predicted classes"))
            if !isImage && e.instanceCount >= 2 && m == elementCount {
                let swarm = "\(run.method.rawValue)-beeswarm.svg"
                try BeeswarmPlot(featureNames: names, values: perInstance.flatMap { $0 }, featureValues: x.map(Double.init),
                                 title: "\(run.method.title): φ of the predicted class per example")
                    .write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent(swarm)))
                plots.append((swarm, "\(run.method.title): one dot per example and feature, colour by the feature's value"))
            }
        }
        if runs.contains(where: { $0.method == .attentionRollout || $0.method == .attentionGradient }) {
            let maps = try AttentionMaps(model: model)
            let (rows, columns, _) = maps.grid
            let p = try maps.probabilities(instances: Array(x[0..<elementCount]))[0]
            let t = p.tokens
            let grid = p.layers.map { layer in (0..<p.heads).map { h in (1..<t).map { layer[h * t * t + $0] } } }
            let name = "attention-maps.svg"
            try AttentionGridPlot(maps: grid, rows: rows, columns: columns, title: "Attention of the class token to each patch, test example \(self.rows[0])")
                .write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent(name)))
            plots.append((name, "Attention maps per layer (rows) and head (columns) of test example \(self.rows[0]): the class token's attention to each patch, each map scaled to its own maximum"))
        }
        return plots
    }

    /// How one method's picture of example `n` was computed.
    func caption(_ run: MethodRun, example n: Int, predicted p: Int, outputs: [Float]) -> String {
        let e = run.explanation, slot = run.outputSlot[n]
        var parts: [String] = []
        var head = "\(run.method.title) (\(e.method)"
        if let budget = e.settings["budget"] { head += ", budget \(budget)" }
        if run.method == .ig { head += ", \(options.steps) steps, \(options.igRule.rawValue)" }
        if let baseline = e.settings["baseline"] { head += ", baseline \(baseline)" }
        head += ")"
        parts.append(head + String(format: ": %d model evaluations in %.2f s", run.evaluations[n], run.seconds[n])
                     + (run.method.shapley == nil && rows.count > 1 ? " (share of a batch of \(rows.count))" : ""))
        if let base = e.baseValues?[n * e.outputCount + slot], let gap = e.additivityGap(instance: n, output: slot) {
            let baseName = run.method.shapley != nil ? "base value" : run.method == .ig ? "f(x′)" : "base"
            parts.append(String(format: "f(x) = %.4f, %@ %.4f, Σφ + %@ − f(x) = %.2e", Double(outputs[p]), baseName, base, baseName, gap))
        }
        if let r2 = e.settings["r2"] { parts.append("surrogate R² \(r2)") }
        if let stages = run.randomization, n == 0 {
            parts.append("parameter randomization over all examples (rank correlation of |φ| / φ with the original as layers are re-initialized from the top): "
                         + stages.map { String(format: "%@ %.2f/%.2f", $0.layer, $0.spearmanAbsolute, $0.spearman) }.joined(separator: ", "))
        }
        if let c = run.curves?[n] {
            parts.append(String(format: "deletion AUC %.3f (random %.3f), insertion AUC %.3f (random %.3f)",
                                c.deletionAUC, c.randomDeletionAUC, c.insertionAUC, c.randomInsertionAUC))
        }
        let phi = e.attributions(instance: n, output: slot)
        if e.featureCount <= 64 {
            let largest = phi.indices.sorted { abs(phi[$0]) > abs(phi[$1]) }.prefix(3)
                .map { String(format: "%@ %+.4f", featureName($0, of: e), phi[$0]) }.joined(separator: ", ")
            parts.append("largest: \(largest)")
        }
        return parts.joined(separator: "; ") + "."
    }

    /// metrics.json: per method, per example, the curves and their areas, and the randomization stages.
    func writeMetrics(_ runs: [MethodRun], path: String) throws {
        struct Entry: Encodable {
            var index: Int
            var fractions, deletion, insertion, randomDeletion, randomInsertion: [Double]
            var deletionAUC, insertionAUC, randomDeletionAUC, randomInsertionAUC: Double
        }
        struct Stage: Encodable {
            var layer: String
            var spearmanAbsolute, spearman: Double
        }
        struct Method: Encodable {
            var curves: [Entry]?
            var randomization: [Stage]?
        }
        var all: [String: Method] = [:]
        for run in runs {
            let stages = run.randomization?.map { Stage(layer: $0.layer, spearmanAbsolute: $0.spearmanAbsolute, spearman: $0.spearman) }
            let curves = run.curves.map { curves in zip(rows, curves).map { i, c in
                Entry(index: i, fractions: c.fractions, deletion: c.deletion, insertion: c.insertion, randomDeletion: c.randomDeletion,
                      randomInsertion: c.randomInsertion, deletionAUC: c.deletionAUC, insertionAUC: c.insertionAUC,
                      randomDeletionAUC: c.randomDeletionAUC, randomInsertionAUC: c.randomInsertionAUC)
            } }
            if curves != nil || stages != nil { all[run.method.rawValue] = Method(curves: curves, randomization: stages) }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeFileAtomically(path: path, bytes: Array(try encoder.encode(all)))
    }

    /// `path` relative to the report folder when it lies inside it.
    func relative(_ path: String, to folder: String?) -> String {
        guard let folder else { return path }
        let prefix = (folder as NSString).standardizingPath + "/"
        let full = (path as NSString).standardizingPath
        return full.hasPrefix(prefix) ? String(full.dropFirst(prefix.count)) : path
    }
}

/// Probabilities from logits.
func softmax(_ logits: [Float]) -> [Double] {
    let m = Double(logits.max() ?? 0)
    let e = logits.map { exp(Double($0) - m) }
    let s = e.reduce(0, +)
    return e.map { $0 / s }
}
