import ArgumentParser
import Foundation
import Prism
import PrismFiles
import PrismExplain
import PrismReport

/// What a caller adds to the report page.
struct ReportExtras {
    var title: String?
    var summary: [String] = []
    /// Figures about the whole run (files already in the report folder): (file, caption).
    var figures: [(String, String)] = []
    var files: [(String, String)] = []
    /// Views of what the model has learned, under "Inside the model" (files already in the folder).
    var inside: [(String, String)] = []
    /// Whether the report draws each SHAP method's mean |φ| and beeswarm over its examples (false
    /// when `figures` already holds global views over more examples).
    var perRunSummaryPlots = true
}

/// The writers of an explain run: each reads the plan and the results and only writes.
extension ExplainPlan {
    /// Writes every output the plan names: the JSON document, the arrays, the pictures and the report.
    /// - Returns: lines saying what was written.
    func writeAll(_ results: ExplainResults, extras: ReportExtras = ReportExtras()) throws -> [String] {
        var lines: [String] = []
        var dataFiles: [(String, String)] = []
        if let json = outputs.json {
            try OutputFile(path: json, allowStandardOutput: true).write(try ExplainDocument(plan: self, results: results).encoded() + Data("\n".utf8))
            if !outputs.jsonToStandardOutput {
                dataFiles.append((relative(json, to: outputs.out), "every method's values, base values, f(x), settings, the inputs, features and background (JSON)"))
            }
        }
        if let npy = outputs.npy {
            dataFiles += try writeNumPy(results, folder: npy)
        }
        // The report links only what lies inside its folder.
        dataFiles.removeAll { ($0.0 as NSString).isAbsolutePath }
        var pictures: [Int: [(String, String)]] = [:]
        if let png = outputs.png ?? (isImage ? outputs.out : nil) {
            let count: Int
            (pictures, count) = try writePictures(results, folder: png)
            pictures = pictures.mapValues { $0.filter { !($0.0 as NSString).isAbsolutePath } }
            lines.append("wrote \(count) PNG files into \(png)")
        }
        if let out = outputs.out {
            try writeReport(results, folder: out, pictures: pictures, dataFiles: dataFiles, extras: extras)
            lines.append("wrote \((out as NSString).appendingPathComponent("index.html"))")
        }
        return lines
    }

    /// The lines `prism explain` prints per example and method: the explained output, the base value,
    /// the cost, the curves' areas and the largest attributions.
    func summaryLines(_ results: ExplainResults, top: Int) -> [String] {
        var lines: [String] = []
        for run in results.runs {
            if let stages = run.randomization {
                lines.append("\(run.method.name): parameter randomization (layers re-initialized from the top; rank correlation with the original, of |φ| and of φ): "
                             + stages.map { String(format: "%@ %.3f/%.3f", $0.layer, $0.spearmanAbsolute, $0.spearman) }.joined(separator: ", "))
            }
            let e = run.explanation
            for n in 0..<instances.count {
                let p = results.predicted[n], t = results.targets[n], slot = run.outputSlot[n]
                var line: String
                if loaded.task.kind == .regression {
                    line = String(format: "%@: output '%@', f(x) %.4f", exampleLabel(n), loaded.outputName(t), results.outputs[n][t])
                    if let truth = instances.trueValues?[n], t < truth.count { line += String(format: " (true %.4f)", truth[t]) }
                } else {
                    line = String(format: "%@: predicted %@ (%d)", exampleLabel(n), loaded.className(p), p)
                    if t != p { line += String(format: ", explaining %@ (%d)", loaded.className(t), t) }
                    line += String(format: ", f(x) %.4f", results.outputs[n][t])
                }
                if let base = e.baseValues?[n * e.outputCount + slot] { line += String(format: ", base value %.4f", base) }
                line += String(format: ", %@ with %d model evaluations in %.2f s", run.method.name, run.evaluations[n], run.seconds[n])
                if let c = run.curves?[n] {
                    line += String(format: "; deletion AUC %.4f (random %.4f), insertion AUC %.4f (random %.4f)",
                                   c.deletionAUC, c.randomDeletionAUC, c.insertionAUC, c.randomInsertionAUC)
                }
                lines.append(line)
                let phi = e.attributions(instance: n, output: slot)
                for j in phi.indices.sorted(by: { abs(phi[$0]) > abs(phi[$1]) }).prefix(max(0, top)) {
                    var entry = String(format: "  %@  %+.5f", featureName(j, of: e), phi[j])
                    if let se = e.standardErrors { entry += String(format: " ± %.5f", se[(n * e.featureCount + j) * e.outputCount + slot]) }
                    lines.append(entry)
                }
            }
        }
        return lines
    }

    /// `example 3` for a test row, the file's name otherwise.
    func exampleLabel(_ n: Int) -> String {
        if let indices = instances.indices { return "example \(indices[n])" }
        return instances.names[n]
    }

    /// `values.npy` and its companions per method (a subfolder per method when there are several),
    /// and `inputs.npy` with the explained inputs.
    func writeNumPy(_ results: ExplainResults, folder: String) throws -> [(String, String)] {
        var files: [(String, String)] = []
        _ = try OutputFolder(path: folder, create: true)
        let inputs = (folder as NSString).appendingPathComponent("inputs.npy")
        try writeNpy(instances.values.map(Double.init), shape: [instances.count] + inputShape, path: inputs)
        files.append((relative(inputs, to: outputs.out), "the explained inputs [examples, \(inputShape.map(String.init).joined(separator: ", "))]"))
        for run in results.runs {
            let sub = methods.count > 1 ? (folder as NSString).appendingPathComponent(run.method.name) : folder
            try run.explanation.writeNumPy(directory: sub)
            files.append((relative((sub as NSString).appendingPathComponent("values.npy"), to: outputs.out),
                          "\(run.method.title): values [examples, features, outputs] for numpy.load"))
        }
        return files
    }

    /// Per example the input and per method the attributions of the explained output as a heatmap and
    /// over the input, as PNG files.
    /// - Returns: per example its pictures (file, caption), and the number of files.
    func writePictures(_ results: ExplainResults, folder png: String) throws -> ([Int: [(String, String)]], Int) {
        guard isImage else { throw ValidationError("--png: pictures need images, the model's input is \(inputShape)") }
        _ = try OutputFolder(path: png, create: true)
        let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        let scale = max(1, 224 / max(h, w))
        var pictures: [Int: [(String, String)]] = [:]
        var count = 0
        let d = elementCount
        for n in 0..<instances.count {
            let stem = pictureStem(n)
            let input = try Heatmap.input(Array(instances.values[(n * d)..<((n + 1) * d)]), channels: c, width: w, height: h)
            let inputName = "\(stem)-input.png"
            try input.upscaled(by: scale).writePNG(path: (png as NSString).appendingPathComponent(inputName))
            var files = [(relative((png as NSString).appendingPathComponent(inputName), to: outputs.out), "input")]
            count += 1
            for run in results.runs {
                let heat = try Heatmap.attribution(try pixelValues(run, example: n), width: w, height: h)
                let names = ["\(stem)-\(run.method.name).png", "\(stem)-\(run.method.name)-overlay.png"]
                try heat.upscaled(by: scale).writePNG(path: (png as NSString).appendingPathComponent(names[0]))
                try Heatmap.blend(input, heat, alpha: 0.6).upscaled(by: scale).writePNG(path: (png as NSString).appendingPathComponent(names[1]))
                files.append((relative((png as NSString).appendingPathComponent(names[0]), to: outputs.out), run.method.title))
                files.append((relative((png as NSString).appendingPathComponent(names[1]), to: outputs.out), "\(run.method.title) over the input"))
                count += 2
            }
            pictures[n] = files
        }
        return (pictures, count)
    }

    /// `example-3` for test row 3, `input-0` for the first file given.
    func pictureStem(_ n: Int) -> String {
        if let indices = instances.indices { return "example-\(indices[n])" }
        return "input-\(n)"
    }

    /// Per-pixel values of example `n` of a run, for pictures: superpixel values spread over their pixels,
    /// pixel values summed over channels.
    func pixelValues(_ run: MethodRun, example n: Int) throws -> [Double] {
        let e = run.explanation
        let phi = e.attributions(instance: n, output: run.outputSlot[n])
        let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        let perElement = e.featureCount == elementCount ? phi : try Heatmap.pixelValues(phi, groups: run.featureGroups ?? groups)
        guard perElement.count == c * h * w else {
            throw ReportError("\(run.method.name): \(e.featureCount) values do not map onto a \(c)×\(h)×\(w) image")
        }
        return (0..<(h * w)).map { p in (0..<c).reduce(0) { $0 + perElement[$1 * h * w + p] } }
    }

    /// `path` relative to the report folder when it lies inside it, else the absolute path (which
    /// the report then does not link).
    func relative(_ path: String, to folder: String?) -> String {
        func absolute(_ p: String) -> String {
            ((p as NSString).isAbsolutePath ? p : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(p) as String)
                .replacingOccurrences(of: "//", with: "/")
        }
        let full = (absolute(path) as NSString).standardizingPath
        guard let folder else { return full }
        let prefix = (absolute(folder) as NSString).standardizingPath + "/"
        return full.hasPrefix(prefix) ? String(full.dropFirst(prefix.count)) : full
    }
}
