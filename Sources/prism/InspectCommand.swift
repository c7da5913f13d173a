import ArgumentParser
import Foundation
import Prism
import PrismExplain
import PrismFiles
import PrismReport

/// `prism inspect`: views of what a model has learned over a data set. The embedding view: a layer's
/// activations over the test set reduced by PCA (on the device), plotted coloured by class.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "What a model has learned: PCA of a layer's activations over the test set (an SVG scatter by class and .npy arrays), and with --maximize the input that maximizes each class's logit.",
        discussion: """
            Writes into --out: pca.svg (every example on the first two components, coloured by its true class, \
            with the components' shares of the variance; --test-limit N takes the first N test examples), pca_projections.npy [examples, components], \
            pca_components.npy [components, features], pca_mean.npy [features] and pca.json (the layer, the \
            counts, the explained variances and their ratios). With --maximize (image models): maximize.png, for \
            each output in order the input that gradient ascent finds to maximize its logit (L2 decay 10⁻³, \
            jitter of 1 pixel, a Gaussian blur of σ 0.5 every 4 steps, pixels clipped to [0, 1]; all outputs \
            in one device batch), and maximize.json with each logit before and after.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var dataOptions: DataOptions

    @Option(help: "The model file: safetensors written by prism train, or an ONNX export (.onnx).")
    var model: String

    @Option(help: "The node whose output is reduced (default: the input of the last Linear node).")
    var layer: String?

    @Option(parsing: .unconditional, help: "Principal components to keep (at least 2).")
    var components: Int = 2

    @Option(help: "The folder to write into.")
    var out: String

    @Option(help: "Also the feature maps of this node (a [C, H, W] output, e.g. 1.relu): feature_maps.png for the test example --index, top_examples.png with each channel's most activating test examples.")
    var featureMaps: String?

    @Option(parsing: .unconditional, help: "--feature-maps: the test example whose maps are drawn.")
    var index: Int = 0

    @Option(parsing: .unconditional, help: "--feature-maps: test examples per channel in top_examples.png.")
    var top: Int = 6

    @Flag(help: "Also maximize each output's logit by gradient ascent on the input (image models), written as maximize.png.")
    var maximize = false

    @Option(parsing: .unconditional, help: "--maximize: ascent steps.")
    var maximizeSteps: Int = 100

    func validate() throws {
        if components < 2 { throw ValidationError("--components must be at least 2 (the scatter shows the first two)") }
        if maximizeSteps < 1 { throw ValidationError("--maximize-steps must be at least 1") }
        if index < 0 { throw ValidationError("--index must be at least 0") }
        if top < 1 { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        try runReportingErrors {
            let start = DispatchTime.now()
            let paths = ["pca.svg", "pca_projections.npy", "pca_components.npy", "pca_mean.npy", "pca.json"].map { (out as NSString).appendingPathComponent($0) }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let extra = (maximize ? ["maximize.png", "maximize.json"] : []) + (featureMaps != nil ? ["feature_maps.png", "top_examples.png", "feature_maps.json"] : [])
            for path in paths + extra.map({ (out as NSString).appendingPathComponent($0) }) {
                _ = try OutputFile(path: path)
            }
            let engine = Engine(context: try global.context())
            let loaded = try LoadedModel(path: model, engine: engine)
            let net = loaded.model
            guard loaded.task.kind != .regression else {
                throw ValidationError("inspect: the embedding view colours examples by class; \(model) is a regression model")
            }
            let test = try dataOptions.load(for: loaded).test
            guard test.exampleShape == net.spec.inputShape else {
                throw DataError("data: examples have shape \(test.exampleShape), the model expects \(net.spec.inputShape)")
            }
            let count = test.count  // --test-limit cuts it
            guard count >= 2 else { throw ValidationError("inspect: \(dataOptions.sourceName) has \(test.count) test examples; PCA needs 2") }
            let examples = try (0..<count).map { try test.example($0) }
            let names = (0..<net.spec.classCount).map { loaded.className($0) }
            let pca = try Inspection.pca(net, layer: try layer ?? ActivationPCA.defaultLayer(of: net), examples: examples.map(\.features), labels: examples.map { Int($0.label) }, names: names,
                                         components: components, folder: out)
            if maximize { printLine(try Inspection.maximized(net, names: names, steps: maximizeSteps, folder: out).line) }
            if let featureMaps {
                printLine(try Inspection.featureMaps(net, layer: featureMaps, examples: examples.map(\.features), index: index, top: top, folder: out).line)
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            printLine(pca.line + String(format: " (%.1f s)", seconds))
            printLine("wrote \(paths[0]) and the arrays beside it")
        }
    }
}

/// The views of `prism inspect`, written into a folder; `prism demo` adds them to its report.
enum Inspection {
    /// pca.svg, pca_projections.npy, pca_components.npy, pca_mean.npy and pca.json for node `layer`
    /// over `examples`. - Returns: the figure (file, caption) and a line for the terminal.
    static func pca(_ net: Model, layer: String, examples: [[Float]], labels: [Int], names: [String], components: Int,
                    folder out: String) throws -> (figure: (String, String), line: String) {
        let count = examples.count
        let activations = try ActivationPCA.activations(of: net, layer: layer, inputs: examples.flatMap { $0 })
        let d = activations.shape[1]
        guard components <= d else { throw ValidationError("--components \(components): layer '\(layer)' has \(d) features") }
        let pca = try ActivationPCA.fit(activations, components: components)
        let k = pca.componentCount, ratio = pca.explainedVarianceRatio
        func path(_ name: String) -> String { (out as NSString).appendingPathComponent(name) }
        try ScatterPlot(x: (0..<count).map { Double(pca.projections[$0 * k]) }, y: (0..<count).map { Double(pca.projections[$0 * k + 1]) },
                        classes: labels, classNames: names,
                        title: "PCA of '\(layer)' over \(count) test examples",
                        xLabel: String(format: "component 1 (%.1f%% of the variance)", 100 * ratio[0]),
                        yLabel: String(format: "component 2 (%.1f%% of the variance)", 100 * ratio[1])).write(to: URL(fileURLWithPath: path("pca.svg")))
        try writeNpy(pca.projections.map(Double.init), shape: [count, k], path: path("pca_projections.npy"))
        try writeNpy(pca.components.map(Double.init), shape: [k, d], path: path("pca_components.npy"))
        try writeNpy(pca.mean.map(Double.init), shape: [d], path: path("pca_mean.npy"))
        let summary: [String: Any] = ["layer": layer, "examples": count, "features": d, "components": k,
                                      "explained_variance": pca.explainedVariance, "explained_variance_ratio": ratio]
        try OutputFile(path: path("pca.json")).write(Array(try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys])))
        let line = String(format: "PCA of '%@' (%d features) over %d test examples: components 1 and 2 hold %.1f%% and %.1f%% of the variance",
                          layer, d, count, 100 * ratio[0], 100 * ratio[1])
        return (("pca.svg", "Embedding view: " + line + " (pca_projections.npy)"), line)
    }

    /// feature_maps.png (every channel of `layer` for test example `index`, 8 to a row, each scaled to
    /// its own range), top_examples.png (a row per channel, up to 32: its `top` most activating test
    /// examples) and feature_maps.json (per channel, those examples' indices and mean activations).
    static func featureMaps(_ net: Model, layer: String, examples: [[Float]], index: Int, top: Int, folder out: String) throws -> (figures: [(String, String)], line: String) {
        let shape = net.spec.inputShape
        guard shape.count == 3 else { throw ValidationError("--feature-maps needs an image model ([C, H, W] inputs), the model takes \(shape)") }
        guard index < examples.count else { throw ValidationError("--index \(index) outside 0..<\(examples.count) (the test examples)") }
        let (maps, mapShape) = try FeatureMaps.maps(of: net, layer: layer, input: examples[index])
        let channels = mapShape[0], h = mapShape[mapShape.count - 2], w = mapShape[mapShape.count - 1], plane = maps.count / channels
        guard plane == h * w else { throw ValidationError("--feature-maps: '\(layer)' gives \(mapShape) per example, not [C, H, W]") }
        let gap = 2, columns = min(8, channels), rows = (channels + columns - 1) / columns
        var grid = RGBImage(width: columns * (w + gap) - gap, height: rows * (h + gap) - gap)
        for ch in 0..<channels {
            let picture = try Heatmap.image(Array(maps[(ch * plane)..<((ch + 1) * plane)]), width: w, height: h)
            for y in 0..<h { for x in 0..<w { grid[(ch % columns) * (w + gap) + x, (ch / columns) * (h + gap) + y] = picture[x, y] } }
        }
        try grid.upscaled(by: 3).writePNG(path: (out as NSString).appendingPathComponent("feature_maps.png"))

        let best = try FeatureMaps.topExamples(of: net, layer: layer, inputs: examples.flatMap { $0 }, k: min(top, examples.count))
        let (c, ih, iw) = (shape[0], shape[1], shape[2]), shown = min(channels, 32), k = best[0].indices.count
        var table = RGBImage(width: k * (iw + gap) - gap, height: shown * (ih + gap) - gap)
        for ch in 0..<shown {
            for (j, e) in best[ch].indices.enumerated() {
                let picture = try Heatmap.input(examples[e], channels: c, width: iw, height: ih)
                for y in 0..<ih { for x in 0..<iw { table[j * (iw + gap) + x, ch * (ih + gap) + y] = picture[x, y] } }
            }
        }
        try table.upscaled(by: 2).writePNG(path: (out as NSString).appendingPathComponent("top_examples.png"))
        let summary: [String: Any] = ["layer": layer, "index": index, "shape": mapShape,
                                      "channels": best.enumerated().map { ["channel": $0.offset, "top_examples": $0.element.indices,
                                                                           "mean_activations": $0.element.means.map(Double.init)] }]
        try OutputFile(path: (out as NSString).appendingPathComponent("feature_maps.json"))
            .write(Array(try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys])))
        return ([("feature_maps.png", "Feature maps: every channel of '\(layer)' \(mapShape) for test example \(index), each scaled to its own range"),
                 ("top_examples.png", "The \(k) test examples that activate each channel of '\(layer)' most (a row per channel, by mean activation)")],
                "feature maps of '\(layer)' \(mapShape) for test example \(index), and each channel's top \(k) test examples")
    }

    /// maximize.png (the outputs' maximizing inputs side by side, 4× upscaled) and maximize.json.
    static func maximized(_ net: Model, names: [String], steps maximizeSteps: Int, folder out: String) throws -> (figures: [(String, String)], line: String) {
        let shape = net.spec.inputShape
        guard shape.count == 3 else { throw ValidationError("--maximize needs an image model ([C, H, W] inputs), the model takes \(shape)") }
        let (c, h, w) = (shape[0], shape[1], shape[2]), outputs = net.spec.classCount
        var method = ActivationMaximization(model: net)
        (method.steps, method.l2, method.jitter, method.blurSigma, method.blurEvery, method.range) = (maximizeSteps, 1e-3, 1, 0.5, 4, 0...1)
        let result = try method.run((0..<outputs).map { .output($0) })
        let gap = 2
        var grid = RGBImage(width: outputs * (w + gap) - gap, height: h)
        for k in 0..<outputs {
            let picture = try Heatmap.input(Array(result.images[(k * c * h * w)..<((k + 1) * c * h * w)]), channels: c, width: w, height: h)
            for y in 0..<h { for x in 0..<w { grid[k * (w + gap) + x, y] = picture[x, y] } }
        }
        try grid.upscaled(by: 4).writePNG(path: (out as NSString).appendingPathComponent("maximize.png"))
        let summary: [[String: Any]] = (0..<outputs).map { ["output": names[$0], "logit_start": result.history[$0].first!, "logit_end": result.history[$0].last!] }
        try OutputFile(path: (out as NSString).appendingPathComponent("maximize.json"))
            .write(Array(try JSONSerialization.data(withJSONObject: ["steps": maximizeSteps, "outputs": summary], options: [.prettyPrinted, .sortedKeys])))
        let rises = (0..<outputs).map { result.history[$0].last! - result.history[$0].first! }
        let line = String(format: "maximized %d outputs in %d steps: logits rose by %.1f to %.1f", outputs, maximizeSteps, rises.min()!, rises.max()!)
        return ([("maximize.png", "Activation maximization: for each class in order (\(names.joined(separator: ", "))) the input gradient ascent finds; " + line)], line)
    }
}
