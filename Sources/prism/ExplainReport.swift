import ArgumentParser
import Foundation
import Prism
import PrismExplain
import PrismReport

/// The HTML report of an explain run: per example the pictures, captions and plots; over the run the
/// summary plots and the data files.
extension ExplainPlan {
    func writeReport(_ results: ExplainResults, folder out: String, pictures: [Int: [(String, String)]],
                     dataFiles: [(String, String)], extras: ReportExtras) throws {
        let runs = results.runs
        var examples: [HTMLReport.Example] = []
        for n in 0..<instances.count {
            let p = results.predicted[n], t = results.targets[n]
            let captions = runs.map { caption($0, example: n, target: t, outputs: results.outputs[n]) }
            let name = instances.indices == nil ? instances.names[n] : "Test example \(instances.indices![n])"
            var title: String, head: [String]
            if loaded.task.kind == .regression {
                title = "\(name): output '\(loaded.outputName(t))' = " + String(format: "%.4g", results.outputs[n][t])
                if let truth = instances.trueValues?[n], t < truth.count { title += String(format: ", true %.4g", truth[t]) }
                head = []
            } else {
                let probabilities = softmax(results.outputs[n])
                let ranked = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }.prefix(3)
                    .map { String(format: "%@ %.1f%%", loaded.className($0), 100 * probabilities[$0]) }.joined(separator: ", ")
                title = "\(name): predicted \(loaded.name(ofOutput: p))"
                if let labels = instances.labels { title += ", true \(loaded.className(labels[n]))" }
                if t != p { title += "; explaining \(loaded.className(t))" }
                head = ["Top classes: \(ranked)."]
            }
            examples.append(HTMLReport.Example(
                title: title, captions: head + captions, images: pictures[n] ?? [],
                plots: try examplePlots(runs, example: n, target: t, folder: out)))
        }
        let methodList = runs.map(\.method.title).joined(separator: ", ")
        let explained = target == .predicted ? "the predicted class's output (logit)" : "output '\(loaded.name(ofOutput: results.targets.first ?? 0))'"
        let report = HTMLReport(
            title: extras.title ?? "Prism: \(methodList) explanations of \(modelPath)",
            summary: extras.summary + [
                "Data: \(instances.source). Background: \(backgroundNote.count > 160 ? backgroundNote.prefix(150) + "… (all in the JSON)" : backgroundNote).",
                metricRanking(runs),
                "Every method explains \(explained); features: \(isImage ? (segmentation.map { "the segments of \(($0 as NSString).lastPathComponent)" } ?? "\(superpixel ?? 1)×\(superpixel ?? 1) superpixels") + " for the SHAP methods and LIME, pixels for the gradient methods" : groups.featureCount == elementCount ? "columns" : "groups of columns"). Each heatmap is scaled to its own largest magnitude.",
            ],
            figures: extras.figures + (try summaryPlots(runs, targets: results.targets, folder: out, means: extras.perRunSummaryPlots)), examples: examples, files: dataFiles + extras.files,
            inside: extras.inside)
        try report.write(directory: out)
    }

    /// With --metrics: the methods ranked by their mean faithfulness correlation over the examples,
    /// with their mean deletion and insertion AUCs (lower deletion and higher insertion are better).
    func metricRanking(_ runs: [MethodRun]) -> String {
        func mean(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count) }
        let rows = runs.compactMap { run -> (String, Double, Double, Double, Double?)? in
            guard let f = run.faithfulness, let c = run.curves else { return nil }
            return (run.method.title, mean(f.compactMap { $0 }), mean(c.map(\.deletionAUC)), mean(c.map(\.insertionAUC)),
                    run.sensitivity.map { mean($0.compactMap { $0 }) })
        }
        guard !rows.isEmpty else { return "" }
        let ranked = rows.sorted { ($0.1.isNaN ? -2 : $0.1) > ($1.1.isNaN ? -2 : $1.1) }
        return "Faithfulness, methods ranked by mean faithfulness correlation (Bhatt et al. 2020; 100 random subsets per example; higher is better), "
            + "with mean deletion / insertion AUC and max-sensitivity (Yeh et al. 2019; \(max(sensitivitySamples, 1)) noisy copies per example, "
            + "lower is more robust\(sensitivityLeftOut(runs))): "
            + ranked.map { String(format: "%@ %.3f (%.3f / %.3f; %@)", $0.0, $0.1, $0.2, $0.3, $0.4.map { String(format: "%.3f", $0) } ?? "—") }
            .joined(separator: "; ") + "."
    }

    /// Which methods' max-sensitivity was not computed, and why (for the ranking's sentence).
    func sensitivityLeftOut(_ runs: [MethodRun]) -> String {
        let missing = runs.filter { $0.curves != nil && $0.sensitivity == nil }
        guard !missing.isEmpty else { return "" }
        if sensitivitySamples == 0 { return "; not computed: --sensitivity-samples 0" }
        let why = options.shapBaseline != nil ? "--shap-baseline makes their references from each example" :
            "each noisy copy would run the estimator again; prism explain --metrics computes it"
        return "; not computed for \(missing.map(\.method.title).joined(separator: ", ")): \(why)"
    }

    /// Per example: the waterfall of each SHAP method (features from the base value to f(x)) and the
    /// deletion and insertion curves of every method (next to the random order's), as SVG files.
    func examplePlots(_ runs: [MethodRun], example n: Int, target p: Int, folder: String) throws -> [(String, String)] {
        let i = pictureStem(n)
        var plots: [(String, String)] = []
        for run in runs where run.method.isShapley {
            let e = run.explanation, slot = run.outputSlot[n]
            guard let base = e.baseValues?[n * e.outputCount + slot] else { continue }
            let name = "\(i)-\(run.method.name)-waterfall.svg"
            try WaterfallPlot(names: (0..<e.featureCount).map { featureName($0, of: e) }, values: e.attributions(instance: n, output: slot),
                              baseValue: base, title: "\(run.method.title): \(loaded.name(ofOutput: p))")
                .write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent(name)))
            plots.append((name, "\(run.method.title) waterfall: from the base value (the background's mean output) to f(x) for class \(loaded.name(ofOutput: p))"))
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
                let name = "\(i)-\(kind).svg"
                try LinePlot(series: series, title: "\(kind.capitalized) curve, \(loaded.name(ofOutput: p))", xLabel: "fraction of features \(kind == "deletion" ? "removed" : "inserted")",
                             yLabel: "probability of the class").write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent(name)))
                plots.append((name, "\(kind.capitalized): the most relevant features first (area under the curve in brackets; \(kind == "deletion" ? "lower" : "higher") is better)"))
            }
        }
        return plots
    }

    /// Over all examples: mean |φ| per feature of each SHAP method, and for tabular data with several
    /// examples shap's beeswarm (unless `means` is false); for a vision transformer, the attention
    /// maps of the first example.
    func summaryPlots(_ runs: [MethodRun], targets: [Int], folder: String, means: Bool = true) throws -> [(String, String)] {
        var plots: [(String, String)] = []
        let x = instances.values
        for run in runs where run.method.isShapley && means {
            let e = run.explanation, m = e.featureCount
            let perInstance = (0..<e.instanceCount).map { e.attributions(instance: $0, output: run.outputSlot[$0]) }
            let meanAbs = (0..<m).map { j in perInstance.reduce(0.0) { $0 + abs($1[j]) } / Double(e.instanceCount) }
            let names = (0..<m).map { featureName($0, of: e) }
            let bar = "\(run.method.name)-mean-abs.svg"
            try BarPlot(names: names, values: meanAbs, title: "\(run.method.title): mean |φ| of the explained output")
                .write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent(bar)))
            plots.append((bar, "\(run.method.title): mean |φ| per feature over the \(e.instanceCount) examples, explained outputs"))
            if !isImage && e.instanceCount >= 2 && m == elementCount {
                let swarm = "\(run.method.name)-beeswarm.svg"
                try BeeswarmPlot(featureNames: names, values: perInstance.flatMap { $0 }, featureValues: x.map(Double.init),
                                 title: "\(run.method.title): φ of the explained output per example")
                    .write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent(swarm)))
                plots.append((swarm, "\(run.method.title): one dot per example and feature, colour by the feature's value"))
            }
        }
        if runs.contains(where: \.method.showsAttentionMaps) {
            let maps = try AttentionMaps(model: model)
            let (rows, columns, _) = maps.grid
            let p = try maps.probabilities(instances: Array(x[0..<elementCount]))[0]
            let t = p.tokens
            let grid = p.layers.map { layer in (0..<p.heads).map { h in (1..<t).map { layer[h * t * t + $0] } } }
            let name = "attention-maps.svg"
            try AttentionGridPlot(maps: grid, rows: rows, columns: columns, title: "Attention of the class token to each patch, \(instances.names[0])")
                .write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent(name)))
            plots.append((name, "Attention maps per layer (rows) and head (columns) of \(instances.names[0]): the class token's attention to each patch, each map scaled to its own maximum"))
        }
        return plots
    }

    /// How one method's picture of example `n` was computed.
    func caption(_ run: MethodRun, example n: Int, target p: Int, outputs: [Float]) -> String {
        let e = run.explanation, slot = run.outputSlot[n]
        var parts: [String] = []
        var head = "\(run.method.title) (\(e.method)"
        if let budget = e.settings["budget"] { head += ", budget \(budget)" }
        if let detail = run.method.captionDetail?(options) { head += ", " + detail }
        if let baseline = e.settings["baseline"] { head += ", baseline \(baseline)" }
        head += ")"
        parts.append(head + String(format: ": %d model evaluations in %.2f s", run.evaluations[n], run.seconds[n])
                     + (!run.method.isShapley && instances.count > 1 ? " (share of a batch of \(instances.count))" : ""))
        if let base = e.baseValues?[n * e.outputCount + slot], let gap = e.additivityGap(instance: n, output: slot) {
            let baseName = run.method.baseName
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
        if let f = run.faithfulness?[n] { parts.append(String(format: "faithfulness correlation %.3f", f)) }
        if let m = run.sensitivity?[n] { parts.append(String(format: "max-sensitivity %.3f", m)) }
        let phi = e.attributions(instance: n, output: slot)
        if e.featureCount <= 64 {
            let largest = phi.indices.sorted { abs(phi[$0]) > abs(phi[$1]) }.prefix(3)
                .map { String(format: "%@ %+.4f", featureName($0, of: e), phi[$0]) }.joined(separator: ", ")
            parts.append("largest: \(largest)")
        }
        return parts.joined(separator: "; ") + "."
    }
}

/// Probabilities from logits.
func softmax(_ logits: [Float]) -> [Double] {
    let m = Double(logits.max() ?? 0)
    let e = logits.map { exp(Double($0) - m) }
    let s = e.reduce(0, +)
    return e.map { $0 / s }
}
