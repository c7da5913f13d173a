import ArgumentParser
import Foundation
import PrismCL
import Prism
import PrismFiles
import PrismONNX
import PrismExplain
import PrismReport

struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain a model's predictions for test examples: Shapley values, gradients, LRP, occlusion, LIME.",
        discussion: """
            The examples are the files of --input (PNG or JPEG images, .npy arrays, CSV rows without a label column) \
            or rows --index of the test set of --data; each method explains the predicted class (--target for another output). \
            Several --method values (repeated or comma-separated) run side by side and the report shows them in \
            columns. SHAP methods hide features by taking the values of background rows: --background N draws N \
            training rows with the seed, --background-data uses every row of a CSV file (columns matched by name, \
            the label column ignored) or of an MNIST-format folder's training images. Images are explained by \
            --superpixel K×K cells (default 4) for the SHAP methods and LIME and by pixel for the gradient \
            methods, tabular data by column. --metrics adds deletion and insertion curves.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var dataOptions: DataOptions

    @Option(help: "The model file: safetensors written by prism train, or an ONNX export (.onnx).")
    var model: String

    @Option(parsing: .unconditional, help: "Test-set examples to explain: I, I,J,…, or a whole-data-set run over ranges A-B (inclusive) mixed with rows (0-9,20,30-39) or all: streamed in shards into --out DIR, resumable.")
    var index: String?

    @OptionGroup var wholeSet: WholeSetOptions

    @OptionGroup var inputOptions: InputOptions

    @OptionGroup var modelInputs: ModelInputOptions

    @Option(help: ArgumentHelp("Method(s), repeated or comma-separated: \(MethodRegistry.shared.help).", valueName: "method"))
    var method: [String] = ["kernel-shap"]

    @Option(help: "The output to explain: predicted (the largest output, default for classifiers), an output index, or a class or output name (a one-output regression model: its output).")
    var target: String = "predicted"

    @OptionGroup var methodOptions: MethodOptions

    @Option(parsing: .unconditional, help: "Background: this many training rows drawn with the seed.")
    var background: Int?

    @Option(help: "Background: every row of this file (CSV rows matched by column name, .npy, PNG or JPEG) or the training images of an MNIST-format folder.")
    var backgroundData: String?

    @Option(parsing: .unconditional, help: "Summarize the background into K weighted k-means centroids (shap.kmeans): fewer model evaluations per coalition.")
    var kmeans: Int?

    @Option(parsing: .unconditional, help: "Images: superpixels of K×K pixels.")
    var superpixel: Int = 4

    @Option(help: "Images: features from a segmentation map instead of the superpixel grid: a .npy or JSON array of one integer label per pixel (height × width).")
    var segments: String?

    @Option(help: "Tabular: features from groups of columns, a JSON array of {\"name\": …, \"columns\": [column names or 0-based indices]}; columns in no group stay features of their own.")
    var groups: String?

    @Flag(help: "Add deletion and insertion curves (most relevant features first, replaced by the baseline) and their areas, faithfulness correlation and max-sensitivity.")
    var metrics = false

    @Option(help: "--metrics: noisy copies of each example explained again for max-sensitivity, by every method (a SHAP estimator runs again that many times; 0: not computed).")
    var sensitivitySamples: Int = ExplainPlan.defaultSensitivitySamples

    @Flag(help: "Add the model-parameter randomization check: re-initialize the layers from the top down, explain again after each, report the rank correlation with the original attributions.")
    var randomization = false

    @Option(help: "Write every method's explanation, the inputs, features and background as one JSON document to this file (- for standard output).")
    var json: String?

    @Option(help: "Write inputs.npy and, per method, values.npy, base_values.npy, outputs.npy (and standard_errors.npy) into this folder.")
    var npy: String?

    @Option(help: "Write a report into this folder: index.html with the pictures (images) or the top features, explanation.json and the .npy files.")
    var out: String?

    @Option(help: "Images only: write, per example, the input and per method the attributions of the explained output as a heatmap (red raises, blue lowers the output) and the heatmap over the input, as PNG files into this folder.")
    var png: String?

    @Option(parsing: .unconditional, help: "How many features to print per example.")
    var top: Int = 5

    func validate() throws {
        if background != nil && backgroundData != nil { throw ValidationError("give --background or --background-data, not both") }
        if let background, background < 1 { throw ValidationError("--background must be at least 1") }
        if superpixel < 1 { throw ValidationError("--superpixel must be at least 1") }
        if let kmeans, kmeans < 1 { throw ValidationError("--kmeans must be at least 1") }
        if try index != nil && !inputOptions.input.isEmpty && !indexSelection().isWholeSet {
            throw ValidationError("give --input or --index I,J, not both (with --input, --index all or ranges such as 0-999 select the inputs' examples for a whole-data-set run)")
        }
        try wholeSet.check(selection: try indexSelection(), command: self)
    }

    /// The rows `--index` names (default: row 0), syntax checked.
    func indexSelection() throws -> IndexSelection {
        try IndexSelection(parsing: index ?? "0")
    }

    func run() throws {
        try runReportingErrors(explain)
    }

    /// Plan (every check), run, write.
    func explain() throws {
        let methods = try MethodRegistry.shared.parse(method)
        let destination = ExplainOutputs(json: json, npy: npy, png: png, out: out)
        if let world = MPIJob.world, !(try indexSelection().isWholeSet) || out == nil {
            throw ValidationError("under mpirun (\(world.size) processes), explain shares the shards of a whole-data-set run among the ranks: give --index all or ranges such as 0-999, with --out DIR")
        }
        // Only rank 0 of an mpirun job writes.
        if MPIJob.isLeader { try destination.check() }
        let contexts = try global.contexts()
        let engine = Engine(context: try contexts?.first?.context ?? global.context())
        var plan = try makePlan(engine: engine, methods: methods, outputs: destination)
        if let contexts, !(try indexSelection().isWholeSet) {
            // Not a whole-data-set run: every example's coalitions (masks) are split among the devices.
            guard methods.contains(where: \.splitsAcrossDevices) else {
                throw ValidationError("--device \(global.device ?? ""): several devices share a whole-data-set run's shards (--index all or ranges, with --out DIR) or the coalitions of the SHAP methods, LIME and occlusion; \(methods.map(\.name).joined(separator: ", ")) run\(methods.count == 1 ? "s" : "") on one device: name one")
            }
            guard plan.extraInputs.isEmpty else {
                throw ValidationError("--device \(global.device ?? ""): a model of several inputs explains on one device outside whole-data-set runs; name one device")
            }
            for (label, context) in contexts.dropFirst() {
                let other = Engine(context: context)
                plan.coalitionDevices.append((label, try LoadedModel(path: model, engine: other, input: modelInputs.explainInput).model))
            }
            let others = methods.filter { !$0.splitsAcrossDevices }.map(\.name)
            plan.notes.append("note: \(methods.filter(\.splitsAcrossDevices).map(\.name).joined(separator: ", ")) split every example's coalitions among devices \(contexts.map(\.label).joined(separator: ", "))"
                              + (others.isEmpty ? "" : "; \(others.joined(separator: ", ")) run\(others.count == 1 ? "s" : "") on \(contexts[0].label) alone"))
        }
        // With the JSON on standard output, everything else goes to standard error.
        let toStandardError = destination.jsonToStandardOutput
        let say = { (line: String) in
            guard MPIJob.isLeader else { return }
            toStandardError ? printError(line) : printLine(line)
        }
        for note in plan.notes where MPIJob.isLeader { printError(note) }
        if try indexSelection().isWholeSet {
            // Each further device gets its own engine and its own copy of the model, loaded from the file.
            var devices: [(label: String, plan: ExplainPlan)] = [("#\(engine.device.index) \(engine.device.name)", plan)]
            for (label, context) in contexts?.dropFirst() ?? [] {
                let other = Engine(context: context)
                devices.append((label, plan.on(engine: other, loaded: try LoadedModel(path: model, engine: other, input: modelInputs.explainInput))))
            }
            if let contexts { devices[0].label = contexts[0].label }
            if devices.count > 1 { say("sharing the shards among \(devices.count) devices: \(devices.map(\.label).joined(separator: ", "))") }
            try WholeSetRun(plan: plan, shardSize: wholeSet.shardSize, devices: devices).run(top: top, say: say)
            return
        }
        let results = try plan.run()
        for line in plan.summaryLines(results, top: top) { say(line) }
        for run in results.runs {
            let s = run.explanation.settings
            if let n = s["check_instances"]?.intValue, let mean = s["check_error_mean"]?.doubleValue, let worst = s["check_error_max"]?.doubleValue {
                say(String(format: "%@ against Kernel SHAP on %d example%@: relative error mean %.1f%%, max %.1f%%", run.method.name, n, n == 1 ? "" : "s",
                           100 * mean, 100 * worst))
            }
        }
        for line in try plan.writeAll(results) { say(line) }
    }

    /// Every check before the work: options, the model, the examples, the background, the features.
    func makePlan(engine: Engine, methods: [ExplainMethod], outputs: ExplainOutputs) throws -> ExplainPlan {
        var (options, optionNotes) = methodOptions.resolvingOldSpellings(for: methods)
        let loaded = try LoadedModel(path: model, engine: engine, input: modelInputs.explainInput)
        let spec = loaded.model.spec
        let width = spec.inputShape.reduce(1, *)
        // The test set is read for --index; the training set for a --background draw.
        let shap = methods.contains(where: \.isShapley)
        let tokens = try tokenInput(spec: spec, methods: methods, options: options)
        if tokens == nil, shap, options.shapBaseline == nil, backgroundData == nil, dataOptions.data == nil, !inputOptions.input.isEmpty,
           ONNXModel.isONNX(path: model) {
            // An imported model comes without its training data: there is no background to draw.
            guard spec.inputShape.count == 3 else {
                throw ValidationError("\(model) is an ONNX model, which carries no training data to draw a SHAP background from: give --background-data FILE (the rows that hide features) or --shap-baseline zeros")
            }
            options.shapBaseline = .blur
            optionNotes.append("note: \(model) is an ONNX model without training data to draw a background from: the SHAP methods hide superpixels with the image blurred (--shap-baseline blur; give --background-data DIR or --shap-baseline zeros for another reference)")
        }
        let needsBackground = (shap && (options.shapBaseline == nil || options.shapBaseline == .mean)) || methods.contains(where: \.usesBackground)
            || ((methods.contains(where: \.usesBaseline) || metrics) && options.baseline == .mean)
        let needTrain = backgroundData == nil && needsBackground && tokens == nil
        let needTest = inputOptions.input.isEmpty
        let data: (train: LabeledData?, test: LabeledData)? = needTrain || needTest ? try dataOptions.load(for: loaded, needTrain: needTrain) : nil
        if let test = data?.test, test.exampleShape != spec.inputShape {
            throw DataError("data: the examples of \(dataOptions.sourceName) have shape \(test.exampleShape), the model expects \(spec.inputShape) (give --data, or --input files\(needTrain ? " with --background-data or --shap-baseline" : ""))")
        }
        let columnNames = try dataOptions.featureNames(of: loaded)
        var notes = optionNotes
        if tokens != nil || !loaded.model.extraInputs.isEmpty, inputOptions.input.isEmpty {
            throw ValidationError("\(model) takes \(tokens != nil ? "token ids" : "several inputs"): give the examples with --input FILE.npy\(loaded.model.extraInputs.isEmpty ? "" : " and the other inputs with --extra-input NAME=FILE.npy")")
        }
        var instances: ExplainInstances
        if inputOptions.input.isEmpty {
            let test = data!.test
            let rows = try indexSelection().resolve(count: test.count, source: dataOptions.sourceName)
            instances = try ExplainInstances(testRows: rows, of: test, source: dataOptions.sourceName)
        } else {
            let batch = try inputOptions.read(inputOptions.input, loaded: loaded, featureNames: columnNames, label: dataOptions.label)
            notes += batch.notes.map { "note: " + $0 }
            instances = ExplainInstances(values: batch.values, count: batch.count, names: batch.sources, source: "the files given with --input")
            if index != nil {
                // A whole-data-set run over the inputs' examples (all, or ranges of them in order).
                let rows = try indexSelection().resolve(count: batch.count, source: "the examples of --input")
                if rows != Array(0..<batch.count) {
                    instances.values = rows.flatMap { batch.values[($0 * width)..<(($0 + 1) * width)] }
                    instances.names = rows.map { batch.sources[$0] }
                    instances.count = rows.count
                }
            }
        }

        let extraInputs = try modelInputs.extraInputs(of: loaded.model, count: instances.count)
        if let tokens {
            // Token ids arrive as floats: exact below 2^24.
            if let bad = instances.values.firstIndex(where: { $0.rounded() != $0 || abs($0) >= 16_777_216 }) {
                throw DataError("\(instances.names[bad / max(width, 1)]): value \(instances.values[bad]) at position \(bad % max(width, 1)) is not a token id (a whole number below 2^24) for '\(tokens.name)'")
            }
        }

        // Background rows.
        var backgroundValues: [Float], backgroundNote: String, backgroundIndices: [Int]?
        if let tokens, backgroundData == nil {
            (backgroundValues, backgroundIndices) = ([Float](repeating: Float(tokens.baseline), count: width), [0])
            backgroundNote = "token id \(tokens.baseline) at every position (--baseline-token): a hidden token takes that id"
        } else if let backgroundData {
            backgroundValues = try loadBackground(path: backgroundData, loaded: loaded, featureNames: columnNames)
            backgroundNote = "all \(backgroundValues.count / width) rows of \(backgroundData)"
            backgroundIndices = Array(0..<(backgroundValues.count / width))
        } else if !needsBackground {
            (backgroundValues, backgroundNote, backgroundIndices) = ([], "none (no method here uses one)", nil)
        } else {
            guard let train = data?.train else { throw ValidationError("--background: no training data to draw from") }
            let count = background ?? min(100, train.count)
            guard count <= train.count else {
                throw ValidationError("--background \(count) is more than the \(train.count) training rows of \(dataOptions.sourceName)")
            }
            let drawn = try sampleBackground(train, count: count, seed: methodOptions.seed)
            (backgroundValues, backgroundIndices) = (drawn.values, drawn.indices)
            backgroundNote = "\(count) training rows of \(dataOptions.sourceName) drawn with seed \(methodOptions.seed)"
        }
        var backgroundWeights: [Float]?
        if let kmeans {
            let rowsIn = backgroundValues.count / width
            guard kmeans <= rowsIn else { throw ValidationError("--kmeans \(kmeans) is more than the \(rowsIn) background rows") }
            let summary = try BackgroundSummary.kMeans(backgroundValues, width: width, k: kmeans, seed: methodOptions.seed)
            (backgroundValues, backgroundWeights) = (summary.rows, summary.weights)
            backgroundNote = "\(summary.count) k-means centroids weighted by cluster size, of " + backgroundNote
            backgroundIndices = nil
        }

        // Features.
        let groups: FeatureGroups
        let names: [String]
        if spec.inputShape.count == 3 {
            guard self.groups == nil else { throw ValidationError("--groups is for tabular data; images take --segments or --superpixel") }
            let (c, h, w) = (spec.inputShape[0], spec.inputShape[1], spec.inputShape[2])
            if let segments {
                groups = try FeatureGroups.segments(file: segments, channels: c, height: h, width: w)
                names = (0..<groups.featureCount).map { "segment \($0)" }
            } else {
                guard superpixel <= min(h, w) else {
                    throw ValidationError("--superpixel \(superpixel) is larger than the \(h)×\(w) image")
                }
                groups = try FeatureGroups.grid(channels: c, height: h, width: w, cell: superpixel)
                names = (0..<groups.featureCount).map { "superpixel \($0)" }
            }
        } else {
            guard segments == nil else { throw ValidationError("--segments is for images; tabular data takes --groups") }
            let columnNames = columnNames ?? (0..<width).map { tokens != nil ? "position \($0)" : "feature \($0)" }
            if let path = self.groups {
                (groups, names) = try FeatureGroups.columns(try readColumnGroups(path: path, columnNames: columnNames), columnNames: columnNames)
            } else {
                (groups, names) = (.elements(width), columnNames)
            }
        }
        var plan = ExplainPlan(engine: engine, loaded: loaded, modelPath: model, instances: instances, methods: methods, options: options,
                               background: backgroundValues, backgroundNote: backgroundNote, groups: groups, featureNames: names,
                               superpixel: spec.inputShape.count == 3 && segments == nil ? superpixel : nil, outputs: outputs)
        plan.target = try ExplainTarget.parse(target, outputNames: loaded.outputNames, outputCount: spec.classCount)
        if loaded.task.kind == .regression && plan.target == .predicted {
            // A regression model has no predicted class: its one output is explained (several need --target).
            guard spec.classCount == 1 else {
                throw ValidationError("--target: the regression model has \(spec.classCount) outputs (\(loaded.outputNames.joined(separator: ", "))); name the one to explain")
            }
            plan.target = .output(0)
        }
        plan.backgroundIndices = backgroundIndices
        plan.segmentation = segments
        plan.backgroundWeights = backgroundWeights
        plan.metrics = metrics
        guard sensitivitySamples >= 0 else { throw ValidationError("--sensitivity-samples must not be negative") }
        plan.sensitivitySamples = sensitivitySamples
        plan.extraInputs = extraInputs
        plan.baselineToken = tokens?.baseline
        plan.randomization = randomization
        if let png = outputs.png, spec.inputShape.count != 3 {
            throw ValidationError("--png \(png): pictures need images, the model's input is \(spec.inputShape)")
        }
        plan.notes = notes + (try plan.check())
        return plan
    }

    /// The gradient methods that explain token ids at their embedding (`EmbeddingAttribution`).
    static let embeddingMethods = ["saliency", "gradxinput", "ig", "smoothgrad"]

    /// For a model whose input is integer (token ids): its name and the id that hides a token.
    /// - Throws: `ValidationError` for a method that needs gradients or float reference values, or
    ///   when neither --baseline-token nor --background-data says what a hidden token becomes.
    func tokenInput(spec: ModelSpec, methods: [ExplainMethod], options: MethodOptions) throws -> (name: String, baseline: Int)? {
        guard let type = spec.inputType, type.isInteger else {
            if modelInputs.baselineToken != nil { throw ValidationError("--baseline-token is for models whose input is token ids; \(model) takes float32 values") }
            return nil
        }
        let name = spec.inputName ?? "input"
        let atEmbedding = Self.embeddingMethods
        if let other = methods.first(where: { !$0.isShapley && !atEmbedding.contains($0.name) }) {
            throw ValidationError("--method \(other.name): '\(name)' holds \(type.rawValue) token ids; they are explained by the SHAP methods (\(MethodRegistry.shared.all.filter(\.isShapley).map(\.name).joined(separator: ", "))) and, at the token embeddings, by \(atEmbedding.joined(separator: ", "))")
        }
        if methods.contains(where: { atEmbedding.contains($0.name) }), !spec.nodes.contains(where: { $0.op == "embedding" && ($0.inputs ?? []) == ["input"] }) {
            throw ValidationError("--method: '\(name)' holds token ids and no embedding reads them, so there is no layer for gradient methods; use the SHAP methods")
        }
        if metrics || randomization { throw ValidationError("--metrics and --randomization replace features by float baselines; '\(name)' holds token ids") }
        if options.shapBaseline != nil { throw ValidationError("--shap-baseline: '\(name)' holds token ids; a hidden token takes --baseline-token's id") }
        if kmeans != nil { throw ValidationError("--kmeans averages rows; '\(name)' holds token ids") }
        guard backgroundData == nil else { return (name, modelInputs.baselineToken ?? 0) }
        guard let token = modelInputs.baselineToken else {
            throw ValidationError("'\(name)' holds token ids: give --baseline-token ID (the padding or mask token a hidden token becomes) or --background-data FILE.npy")
        }
        return (name, token)
    }

    /// Background rows from `--background-data`: an MNIST-format folder's training images, or a PNG,
    /// JPEG, .npy or CSV file read as `--input` files are (a CSV's columns matched by name, its label
    /// column ignored, values standardized like the training data).
    func loadBackground(path: String, loaded: LoadedModel, featureNames: [String]?) throws -> [Float] {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            let images = try LabeledData(try ImageDataset.loadMNISTFormat(directory: path, split: .train))
            guard images.exampleShape == loaded.model.spec.inputShape else {
                throw DataError("\(path): background images have shape \(images.exampleShape), the model's inputs \(loaded.model.spec.inputShape)")
            }
            return images.features
        }
        let batch = try inputOptions.read([path], loaded: loaded, featureNames: featureNames, label: dataOptions.label)
        guard batch.count > 0 else { throw DataError("\(path): no data rows") }
        return batch.values
    }
}

/// `count` training rows drawn without replacement with the seed, and their indices.
func sampleBackground(_ train: LabeledData, count: Int, seed: UInt64) throws -> (values: [Float], indices: [Int]) {
    let n = min(count, train.count), width = train.exampleSize
    var rng = SplitMix64(seed: seed ^ 0xBAC6_0000)
    var order = Array(0..<train.count)
    for i in 0..<n { order.swapAt(i, i + Int(rng.next() % UInt64(train.count - i))) }
    let chosen = Array(order[0..<n])
    var values: [Float] = []
    values.reserveCapacity(n * width)
    for r in chosen { values += train.features[(r * width)..<((r + 1) * width)] }
    return (values, chosen)
}

/// The column groups of a `--groups` file: [{"name": …, "columns": [names or 0-based indices]}, …]
/// (read by `ColumnGroups.parse`).
/// - Throws: `DataError` naming the file and the group for malformed JSON or an unknown column.
func readColumnGroups(path: String, columnNames: [String]) throws -> [(name: String, columns: [Int])] {
    guard let data = FileManager.default.contents(atPath: path) else { throw DataError("\(path): cannot read the groups file") }
    return try ColumnGroups.parse(Array(data), path: path, columnNames: columnNames)
}
