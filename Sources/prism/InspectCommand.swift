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
        abstract: "The embedding view: PCA of a layer's activations over the test set, as an SVG scatter coloured by class and .npy arrays.",
        discussion: """
            Writes into --out: pca.svg (every example on the first two components, coloured by its true class, \
            with the components' shares of the variance; --test-limit N takes the first N test examples), pca_projections.npy [examples, components], \
            pca_components.npy [components, features], pca_mean.npy [features] and pca.json (the layer, the \
            counts, the explained variances and their ratios).
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

    func validate() throws {
        if components < 2 { throw ValidationError("--components must be at least 2 (the scatter shows the first two)") }
    }

    func run() throws {
        try runReportingErrors {
            let start = DispatchTime.now()
            let paths = ["pca.svg", "pca_projections.npy", "pca_components.npy", "pca_mean.npy", "pca.json"].map { (out as NSString).appendingPathComponent($0) }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            for path in paths { _ = try OutputFile(path: path) }
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
            let layer = try self.layer ?? ActivationPCA.defaultLayer(of: net)
            let activations = try ActivationPCA.activations(of: net, layer: layer, inputs: examples.flatMap(\.features))
            let d = activations.shape[1]
            guard components <= d else { throw ValidationError("--components \(components): layer '\(layer)' has \(d) features") }
            let pca = try ActivationPCA.fit(activations, components: components)
            let k = pca.componentCount
            let labels = examples.map { Int($0.label) }
            let names = (0..<net.spec.classCount).map { loaded.className($0) }
            let ratio = pca.explainedVarianceRatio
            try ScatterPlot(x: (0..<count).map { Double(pca.projections[$0 * k]) }, y: (0..<count).map { Double(pca.projections[$0 * k + 1]) },
                            classes: labels, classNames: names,
                            title: "PCA of '\(layer)' over \(count) test examples",
                            xLabel: String(format: "component 1 (%.1f%% of the variance)", 100 * ratio[0]),
                            yLabel: String(format: "component 2 (%.1f%% of the variance)", 100 * ratio[1])).write(to: URL(fileURLWithPath: paths[0]))
            try writeNpy(pca.projections.map(Double.init), shape: [count, k], path: paths[1])
            try writeNpy(pca.components.map(Double.init), shape: [k, d], path: paths[2])
            try writeNpy(pca.mean.map(Double.init), shape: [d], path: paths[3])
            let summary: [String: Any] = ["layer": layer, "examples": count, "features": d, "components": k,
                                          "explained_variance": pca.explainedVariance, "explained_variance_ratio": ratio,
                                          "source": dataOptions.sourceName]
            try OutputFile(path: paths[4]).write(Array(try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys])))
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            printLine(String(format: "PCA of '%@' (%d features) over %d test examples: components 1 and 2 hold %.1f%% and %.1f%% of the variance (%.1f s)",
                             layer, d, count, 100 * ratio[0], 100 * ratio[1], seconds))
            printLine("wrote \(paths[0]) and the arrays beside it")
        }
    }
}
