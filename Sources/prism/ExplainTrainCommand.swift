import ArgumentParser
import Foundation
import Prism
import PrismCL
import PrismExplain
import PrismFormats
import PrismFiles

/// The metadata key of an explainer file's settings (JSON `FastShapFile.Settings`).
let fastShapMetadataKey = "prism.fastshap"
/// The tensor of an explainer file holding its background rows.
let fastShapBackgroundTensor = "fastshap.background"

/// An explainer file: the explainer network, the background it was trained with and its settings.
struct FastShapFile {
    struct Settings: Codable {
        /// The explained model's input shape and output count.
        var inputShape: [Int]
        var classes: Int
        /// Images: the superpixel side the features are cells of (nil: tabular, one feature per column).
        var superpixel: Int?
        var features: Int
        var images: Int
        var coalitionsPerImage: Int
        var backgroundRows: Int
        /// Background rows drawn per coalition (fresh coalitions every epoch); nil: each value averages all rows.
        var backgroundPerCoalition: Int?
        /// With backgroundPerCoalition: masked inputs the linear control variate was fitted to, and its R² (nil: not used).
        var linearControlRows: Int?
        var linearControlRSquared: Double?
        var epochs: Int
        var losses: [Double]
        var modelEvaluations: Int
        var seconds: Double
        var model: String
    }

    var explainer: Model
    var background: [Float]
    var settings: Settings

    /// Reads an explainer file written by `prism explain-train`.
    /// - Throws: `DataError` naming the file when it is not one.
    init(path: String, engine: Engine) throws {
        let file = try SafetensorsFile.read(path: path)
        guard let json = file.metadata[fastShapMetadataKey], let settings = try? JSONDecoder().decode(Settings.self, from: Data(json.utf8)),
              let background = file.tensors[fastShapBackgroundTensor] else {
            throw DataError("\(path): not an explainer written by prism explain-train (no '\(fastShapMetadataKey)' metadata or background)")
        }
        guard let specJSON = file.metadata[Model.specMetadataKey] else { throw DataError("\(path): no '\(Model.specMetadataKey)' metadata") }
        let spec = try ModelSpec.decode(json: specJSON, source: path)
        let explainer = try Model(spec: spec, seed: 0, engine: engine)
        try explainer.loadStateDict(file.tensors.filter { $0.key != fastShapBackgroundTensor }, source: path)
        (self.explainer, self.background, self.settings) = (explainer, background.values, settings)
    }
}

struct ExplainTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain-train",
        abstract: "Train a FastSHAP explainer: a network that gives a model's Shapley values in one forward pass.",
        discussion: """
            The explainer learns the values of Kernel SHAP's game (hidden features take --background training rows' values, \
            images explained by --superpixel cells, tables by column) from --images training examples with --coalitions \
            coalitions each (Jethani et al., ICLR 2022). Explain with prism explain --method fastshap --explainer FILE \
            (--check N compares with Kernel SHAP).
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var dataOptions: DataOptions

    @Option(help: "The model to explain: safetensors written by prism train, or an ONNX export (.onnx).")
    var model: String

    @Option(help: "Where to write the explainer (safetensors).")
    var out: String

    @Option(parsing: .unconditional, help: "Training examples the explainer learns from (the first N of the training set).")
    var images: Int = 5000

    @Option(parsing: .unconditional, help: "Coalitions per example (an even number: complementary pairs).")
    var coalitions: Int = 32

    @Option(parsing: .unconditional, help: "Background rows drawn from the training set with the seed.")
    var background: Int = 50

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Value each coalition by K background rows drawn for it, with fresh coalitions every epoch (default: every coalition averages all --background rows, computed once).",
        valueName: "K"))
    var backgroundPerCoalition: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "With --background-per-coalition: masked inputs a linear model of the network is fitted to before training, a control variate of mean zero that removes most of the single rows' spread from the targets (0: only the rows' endpoints; inputs of more than 2,048 values go without it).",
        valueName: "N"))
    var controlRows: Int = 16_384

    @Option(parsing: .unconditional, help: "Passes over the examples.")
    var epochs: Int = 20

    @Option(parsing: .unconditional, help: "Hidden width of the explainer (a two-layer perceptron).")
    var hidden: Int = 256

    @Option(help: "The explainer: 'mlp' (a two-layer perceptron of --hidden units) or 'model' (the explained model's own layers, started from its weights, its output Linear widened to features × outputs).")
    var architecture: String = "mlp"

    @Option(parsing: .unconditional, help: "Images: superpixels of K×K pixels (as prism explain's --superpixel).")
    var superpixel: Int = 4

    @Option(parsing: .unconditional, help: "Adam's learning rate.")
    var learningRate: Float = 1e-3

    @Option(parsing: .unconditional, help: "Seed of the background draw, the coalitions and the explainer's initialization.")
    var seed: UInt64 = 0

    func validate() throws {
        guard images >= 1, background >= 1, epochs >= 1, hidden >= 1, superpixel >= 1 else {
            throw ValidationError("--images, --background, --epochs, --hidden and --superpixel must be at least 1")
        }
        guard coalitions >= 2, coalitions % 2 == 0 else { throw ValidationError("--coalitions must be an even number of at least 2 (complementary pairs)") }
        guard ["mlp", "model"].contains(architecture) else { throw ValidationError("--architecture must be 'mlp' or 'model', got '\(architecture)'") }
        if let k = backgroundPerCoalition, k < 1 { throw ValidationError("--background-per-coalition must be at least 1") }
        guard controlRows >= 0 else { throw ValidationError("--control-rows must be 0 (no linear control variate) or more") }
        guard learningRate > 0 else { throw ValidationError("--learning-rate must be positive") }
    }

    func run() throws {
        try runReportingErrors {
            let output = try OutputFile(path: out)
            let engine = Engine(context: try global.context())
            let loaded = try LoadedModel(path: model, engine: engine)
            let spec = loaded.model.spec
            guard spec.inputType == nil || spec.inputType == .float32, loaded.model.extraInputs.isEmpty else {
                throw ValidationError("explain-train: \(model) takes token ids or several inputs; FastSHAP here explains float inputs of one tensor")
            }
            guard let train = try dataOptions.load(for: loaded, needTrain: true).train else {
                throw ValidationError("explain-train: \(dataOptions.sourceName) has no training set")
            }
            guard train.exampleShape == spec.inputShape else {
                throw DataError("data: the examples of \(dataOptions.sourceName) have shape \(train.exampleShape), the model expects \(spec.inputShape)")
            }
            let count = min(images, train.count), d = train.exampleSize
            let groups: FeatureGroups
            if spec.inputShape.count == 3 {
                guard superpixel <= min(spec.inputShape[1], spec.inputShape[2]) else { throw ValidationError("--superpixel \(superpixel) is larger than the image") }
                groups = try FeatureGroups.grid(channels: spec.inputShape[0], height: spec.inputShape[1], width: spec.inputShape[2], cell: superpixel)
            } else {
                groups = .elements(d)
            }
            let m = groups.featureCount, c = spec.classCount
            let drawn = try sampleBackground(train, count: min(background, train.count), seed: seed)
            let explainer = architecture == "model"
                ? try FastShap.explainer(from: loaded.model, features: m, seed: seed &+ 1)
                : try Model(spec: try ModelSpec.mlp(inputShape: spec.inputShape, hidden: [hidden], classes: m * c), seed: seed &+ 1, engine: engine)
            let explainerSpec = explainer.spec
            let settings = FastShap.Settings(coalitionsPerImage: coalitions, epochs: epochs, learningRate: learningRate, seed: seed,
                                             backgroundPerCoalition: backgroundPerCoalition, linearControlRows: controlRows)
            if let k = backgroundPerCoalition {
                printError("explain-train: \(epochs) epochs × \(count) examples × \(coalitions) fresh coalitions × \(k) of \(drawn.indices.count) background rows = \(epochs * count * coalitions * k) model evaluations\(controlRows > 0 && d <= FastShap.largestLinearControlInput ? ", and \(controlRows) to fit the linear control variate" : "") (\(m) features × \(c) outputs)")
            } else {
                printError("explain-train: \(count) examples × (\(coalitions) coalitions + the empty and the full one) × \(drawn.indices.count) background rows = \(count * (coalitions + 2) * drawn.indices.count) model evaluations, then \(epochs) epochs (\(m) features × \(c) outputs)")
            }
            var line = ProgressLine()
            let started = DispatchTime.now()
            func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9 }
            var epochsStarted = 0.0   // when the first epoch began (after the game values, if computed first)
            let report = try FastShap.train(model: loaded.model, explainer: explainer, images: Array(train.features[0..<(count * d)]),
                                            background: drawn.values, groups: groups, settings: settings, valuesProgress: { done, total in
                let rate = Double(done) / max(elapsed(), 1e-9)
                line.show(String(format: "explain-train: game values of %d/%d examples, %.0f examples/s, %@ left", done, total, rate,
                                 formatDuration(Double(total - done) / max(rate, 1e-9))))
                if done == total { epochsStarted = elapsed() }
            }) { epoch, loss in
                let perEpoch = (elapsed() - epochsStarted) / Double(epoch)
                line.show(String(format: "explain-train: epoch %d/%d, loss %.4g, %@ elapsed, %@ left", epoch, epochs, loss, formatDuration(elapsed()),
                                 formatDuration(perEpoch * Double(epochs - epoch))))
            }
            line.clear()
            let file = FastShapFile.Settings(inputShape: spec.inputShape, classes: c, superpixel: spec.inputShape.count == 3 ? superpixel : nil,
                                             features: m, images: count, coalitionsPerImage: coalitions, backgroundRows: drawn.indices.count,
                                             backgroundPerCoalition: backgroundPerCoalition,
                                             linearControlRows: report.linearControlRows, linearControlRSquared: report.linearControlRSquared,
                                             epochs: epochs, losses: report.losses, modelEvaluations: report.modelEvaluations,
                                             seconds: report.seconds, model: (model as NSString).lastPathComponent)
            var tensors = try explainer.stateDict()
            tensors[fastShapBackgroundTensor] = HostTensor(shape: [drawn.indices.count] + spec.inputShape, values: drawn.values)
            let metadata = [Model.specMetadataKey: try explainerSpec.json(),
                            fastShapMetadataKey: String(decoding: try JSONEncoder().encode(file), as: UTF8.self)]
            try SafetensorsFile(tensors: tensors, metadata: metadata).write(to: output)
            if let rows = report.linearControlRows, let r2 = report.linearControlRSquared {
                printLine(String(format: "explain-train: the linear control variate, fitted to %d masked inputs, has R² %.3f", rows, r2))
            } else if backgroundPerCoalition != nil {
                printLine("explain-train: control variate of the rows' endpoints only (\(controlRows == 0 ? "--control-rows 0" : "inputs of \(d) values are above the linear one's \(FastShap.largestLinearControlInput)"))")
            }
            printLine(String(format: "wrote %@: loss %.4g → %.4g over %d epochs, %d model evaluations, %.1f s", out,
                             report.losses.first ?? 0, report.losses.last ?? 0, epochs, report.modelEvaluations, report.seconds))
        }
    }
}

/// `--method fastshap`: a trained explainer's values of the targeted outputs, in one forward pass;
/// with `--check N`, its relative error against Kernel SHAP (the same game) on the first N examples.
struct FastShapMethod: AttributionMethod {
    let model: Model
    let file: FastShapFile
    let groups: FeatureGroups
    let check: Int?
    let seed: UInt64
    var name: String { "fastshap" }

    /// - Throws: `ValidationError` without `--explainer`, or when the explainer was trained for
    ///   another input, output count or features than this run explains.
    init(context c: MethodContext) throws {
        guard let path = c.options.explainer else { throw ValidationError("--method fastshap needs --explainer FILE (written by prism explain-train)") }
        let file = try FastShapFile(path: path, engine: c.model.engine)
        let s = file.settings
        guard s.inputShape == c.model.spec.inputShape, s.classes == c.model.spec.classCount else {
            throw ValidationError("--explainer \(path) explains inputs \(s.inputShape) with \(s.classes) outputs; the model has \(c.model.spec.inputShape) and \(c.model.spec.classCount)")
        }
        guard s.features == c.groups.featureCount, s.superpixel == c.superpixel || s.superpixel == nil else {
            throw ValidationError("--explainer \(path) was trained on \(s.features) features\(s.superpixel.map { " (superpixels of \($0))" } ?? ""); this run has \(c.groups.featureCount)\(c.superpixel.map { " (--superpixel \($0))" } ?? "")")
        }
        (model, self.file, groups, check, seed) = (c.model, file, c.groups, c.options.check, c.options.seed)
    }

    func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation {
        let m = groups.featureCount, c = model.spec.classCount, d = model.spec.inputShape.reduce(1, *)
        let all = try FastShap.explain(model: model, explainer: file.explainer, instances: instances, background: file.background, features: m)
        let n = all.instanceCount, slots = targets.outputCount
        var values: [Double] = [], base: [Double] = [], outputs: [Double] = []
        for i in 0..<n {
            let classes = targets.classes(instance: i)
            for j in 0..<m { for k in classes { values.append(all.values[(i * m + j) * c + k]) } }
            for k in classes { base.append(all.baseValues![i * c + k]); outputs.append(all.outputs![i * c + k]) }
        }
        var settings = all.settings
        settings["explainer_images"] = .int(file.settings.images)
        settings["explainer_coalitions_per_image"] = .int(file.settings.coalitionsPerImage)
        settings["explainer_epochs"] = .int(file.settings.epochs)
        var evaluations = all.modelEvaluations
        if let check {
            // Kernel SHAP at its default budget on the same game: the relative L2 error of each checked example.
            let count = min(check, n)
            var errors: [Double] = []
            for i in 0..<count {
                let game = try DeviceGame(model: model, instance: Array(instances[(i * d)..<((i + 1) * d)]), background: file.background, groups: groups)
                let reference = try KernelShap(seed: seed).explain(game)
                evaluations += reference.modelEvaluations
                var error = 0.0, norm = 0.0
                for k in targets.classes(instance: i) {
                    for j in 0..<m {
                        let r = reference.values[j * c + k], f = all.values[(i * m + j) * c + k]
                        error += (f - r) * (f - r)
                        norm += r * r
                    }
                }
                errors.append(norm > 0 ? (error / norm).squareRoot() : 0)
            }
            settings["check_instances"] = .int(count)
            settings["check_error_mean"] = .double(errors.reduce(0, +) / Double(count))
            settings["check_error_max"] = .double(errors.max() ?? 0)
        }
        return try Explanation(method: "fastshap", instanceCount: n, featureCount: m, outputCount: slots, values: values, baseValues: base,
                               outputs: outputs, modelEvaluations: evaluations, seconds: all.seconds, settings: settings)
    }
}
