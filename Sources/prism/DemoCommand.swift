import ArgumentParser
import Foundation
import Prism
import PrismFiles
import PrismExplain
import PrismReport

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The main job: train the cnn on Fashion-MNIST (or reuse a cached model), explain test images with Kernel SHAP, Integrated Gradients and Grad-CAM (attention rollout for --arch vit), and write a report.",
        discussion: """
            The model is cached under --cache (default: Prism's cache folder, ~/.cache/prism), keyed by \
            architecture, data, epochs and seed; a later run reuses it. The report lands in --out with every \
            picture, the explanations as JSON and NumPy arrays, deletion/insertion curves and the training log.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "An MNIST-format folder (default: Fashion-MNIST from Debian's dataset-fashion-mnist).")
    var data: String?

    @Option(help: "Architecture: cnn, or vit (explained with attention rollout instead of Grad-CAM).")
    var arch: Architecture = .cnn

    @Option(help: "The report folder.")
    var out: String = "out/demo"

    @Option(parsing: .unconditional, help: "How many test images to explain (the first ones).")
    var examples: Int = 8

    @Option(parsing: .unconditional, help: "Training epochs when no cached model exists.")
    var epochs: Int = 1

    @Option(parsing: .unconditional, help: "Seed of training, the background draw and the sampling.")
    var seed: UInt64 = 0

    @Option(parsing: .unconditional, help: "Training rows drawn as the SHAP background.")
    var background: Int = 50

    @Option(parsing: .unconditional, help: "Use only the first N training examples (for a quick look).")
    var limit: Int?

    @Option(help: "The model cache folder.")
    var cache: String?

    @Flag(help: "Train even when a cached model exists (and replace it).")
    var retrain = false

    func validate() throws {
        guard examples >= 1 else { throw ValidationError("--examples must be at least 1") }
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
        guard background >= 1 else { throw ValidationError("--background must be at least 1") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        guard arch != .mlp else { throw ValidationError("--arch: cnn or vit") }
    }

    /// The cache folder: --cache, else Prism's cache folder (PRISM_CACHE_DIR, $XDG_CACHE_HOME/prism or
    /// $HOME/.cache/prism, where compiled kernels are kept too).
    var cacheDirectory: String { cache ?? global.settings.cacheDirectory }

    func run() throws {
        try runReportingErrors {
            let start = DispatchTime.now()
            let dataOptions = try DataOptions.parse(data.map { ["--data", $0] } ?? [])
            guard dataOptions.kind == .mnist else { throw ValidationError("demo: --data must be an MNIST-format folder of images; prism train, eval and explain take the other kinds") }
            let destination = ExplainOutputs(json: nil, npy: nil, png: nil, out: out)
            try destination.check()
            let engine = Engine(context: try global.context())
            printLine("device: \(engine.device.name)")

            var loadedData = try dataOptions.loadImages(needTrain: true)
            if let limit, let train = loadedData.train { loadedData.train = try train.prefix(limit) }
            guard let train = loadedData.train else { throw DataError("demo: no training data") }
            let test = loadedData.test
            guard test.exampleShape.count == 3, test.count >= examples else {
                throw DataError("demo: \(dataOptions.sourceName) has \(test.count) test examples of shape \(test.exampleShape); need \(examples) images")
            }

            // The model: cached, or trained now and cached.
            let source = data.map { ($0 as NSString).lastPathComponent } ?? "fashion-mnist"
            let key = "\(arch.rawValue)-\(source)\(limit.map { "-limit\($0)" } ?? "")-\(epochs)ep-seed\(seed)-normalized"
                .map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" }
            let modelPath = (cacheDirectory as NSString).appendingPathComponent(String(key) + ".safetensors")
            let logPath = modelPath + ".log.jsonl"
            var loaded: LoadedModel?
            if !retrain && FileManager.default.fileExists(atPath: modelPath) {
                do {
                    loaded = try LoadedModel(path: modelPath, engine: engine)
                    printLine("using the cached model \(modelPath)")
                } catch {
                    printError("the cached model \(modelPath) does not load (\(error)); training a new one")
                }
            }
            if loaded == nil {
                try FileManager.default.createDirectory(atPath: cacheDirectory, withIntermediateDirectories: true)
                let (h, w, c, classes) = (train.exampleShape[1], train.exampleShape[2], train.exampleShape[0], max(train.classCount, test.classCount))
                var spec = arch == .vit ? try ModelSpec.vit(height: h, width: w, channels: c, classes: classes)
                    : try ModelSpec.cnn(height: h, width: w, channels: c, classes: classes)
                spec.inputNormalization = train.channelStatistics()  // as prism train does for images
                spec.task = .classification(classes: dataOptions.classNames)
                let trainer = try Trainer(model: try Model(spec: spec, seed: seed, engine: engine),
                                          config: TrainingConfig(epochs: epochs, batchSize: 64, learningRate: 1e-3, optimizer: .adam, seed: seed))
                trainer.extraMetadata = [ModelFileKey.data: dataOptions.sourceName]
                printLine("training \(arch.rawValue) (\(trainer.model.parameterCount) parameters) for \(epochs) epoch\(epochs == 1 ? "" : "s") on \(train.count) images of \(dataOptions.sourceName)")
                try? FileManager.default.removeItem(atPath: logPath)
                let partial = modelPath + ".partial"
                try fitWithProgress(trainer, train: train, test: test, out: partial, checkpoint: modelPath + ".ckpt", log: logPath)
                // The cached file appears only once training has finished.
                try? FileManager.default.removeItem(atPath: modelPath)
                try FileManager.default.moveItem(atPath: partial, toPath: modelPath)
                try? FileManager.default.removeItem(atPath: modelPath + ".ckpt")
                loaded = try LoadedModel(path: modelPath, engine: engine)
            }
            let model = loaded!
            let accuracy = try evaluate(model.model, on: test).accuracy
            printLine(String(format: "test accuracy %.4f on %d images", accuracy, test.count))

            // Explanations.
            let drawn = try sampleBackground(train, count: background, seed: seed)
            let shape = test.exampleShape
            let groups = try FeatureGroups.grid(channels: shape[0], height: shape[1], width: shape[2], cell: 4)
            var options = try MethodOptions.defaults()
            options.seed = seed
            let rows = Array(0..<examples)
            let instances = try ExplainInstances(testRows: rows, of: test, source: dataOptions.sourceName)
            var plan = ExplainPlan(engine: engine, loaded: model, modelPath: modelPath, instances: instances,
                                   methods: try MethodRegistry.shared.parse(arch == .vit ? ["kernel-shap", "ig", "deepshap", "attention-rollout"] : ["kernel-shap", "ig", "gradcam", "deepshap", "gradient-shap", "layer-ig"]),
                                   options: options, background: drawn.values,
                                   backgroundNote: "\(background) training rows of \(dataOptions.sourceName) drawn with seed \(seed)",
                                   groups: groups, featureNames: (0..<groups.featureCount).map { "superpixel \($0)" }, superpixel: 4,
                                   outputs: destination)
            plan.backgroundIndices = drawn.indices
            plan.metrics = true
            // Kernel SHAP's max-sensitivity would explain every example ten times more: left out here.
            plan.shapleySensitivity = false
            var line = ProgressLine()
            var methodStart = DispatchTime.now()
            let results = try plan.run { method, done, total in
                if done == 0 { methodStart = DispatchTime.now() }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - methodStart.uptimeNanoseconds) / 1e9
                if done == total {
                    line.clear()
                    printLine(String(format: "%@: %d images in %.1f s", method.title, total, seconds))
                } else if done > 0 {
                    let rate = Double(done) / seconds
                    line.show(String(format: "%@: image %d/%d  %.2f images/s  ETA %@", method.title, done + 1, total, rate,
                                     formatDuration(Double(total - done) / rate)))
                } else {
                    line.show("\(method.title): image 1/\(total)")
                }
            }

            // Report.
            var extras = ReportExtras()
            extras.title = "Prism demo: why the \(arch.rawValue) classifies Fashion-MNIST images as it does"
            extras.summary = [String(format: "Model: the \(arch.rawValue) (%d parameters), trained %d epoch%@ (Adam 1e-3, batch 64, seed %d) on %d images; test accuracy %.4f on %d images. Device: %@.",
                                     model.model.parameterCount, epochs, epochs == 1 ? "" : "s", seed, train.count, accuracy, test.count, engine.device.name)]
            // Inside the model: the embedding of the whole test set, activation maximization, feature maps.
            let insideStart = DispatchTime.now()
            let testExamples = try (0..<test.count).map { try test.example($0) }
            let classNames = (0..<model.model.spec.classCount).map { model.className($0) }
            let embedding = try Inspection.pca(model.model, layer: try ActivationPCA.defaultLayer(of: model.model), examples: testExamples.map(\.features),
                                               labels: testExamples.map { Int($0.label) }, names: classNames, components: 2, folder: out)
            extras.inside.append(embedding.figure)
            extras.inside += try Inspection.maximized(model.model, names: classNames, steps: 100, folder: out).figures
            if let layer = firstChannelActivation(model.model) {
                extras.inside += try Inspection.featureMaps(model.model, layer: layer, examples: testExamples.map(\.features), index: 0, top: 6, folder: out).figures
            }
            printLine(String(format: "inside the model: the embedding of %d test images, activation maximization%@ in %.1f s", test.count,
                             firstChannelActivation(model.model) == nil ? "" : ", feature maps",
                             Double(DispatchTime.now().uptimeNanoseconds - insideStart.uptimeNanoseconds) / 1e9))
            let logCopy = (out as NSString).appendingPathComponent("training-log.jsonl")
            if let log = FileManager.default.contents(atPath: logPath) {
                try OutputFile(path: logCopy).write(log)
                extras.files.append(("training-log.jsonl", "the training run's log, one JSON object per epoch"))
                let epochs = String(decoding: log, as: UTF8.self).split(separator: "\n")
                    .compactMap { try? JSONDecoder().decode(EpochReport.self, from: Data($0.utf8)) }
                if !epochs.isEmpty {
                    let x: [Double] = epochs.map { Double($0.epoch) }
                    var series: [LinePlot.Series] = [.init(name: "train loss", x: x, y: epochs.map(\.trainLoss))]
                    let trainAccuracy: [Double] = epochs.compactMap(\.trainAccuracy)
                    if trainAccuracy.count == x.count { series.append(.init(name: "train accuracy", x: x, y: trainAccuracy, dashed: true)) }
                    let testLoss: [Double] = epochs.compactMap(\.testLoss), testAccuracy: [Double] = epochs.compactMap(\.testAccuracy)
                    if testLoss.count == x.count { series.insert(.init(name: "test loss", x: x, y: testLoss), at: 1) }
                    if testAccuracy.count == x.count { series.append(.init(name: "test accuracy", x: x, y: testAccuracy, dashed: true)) }
                    let plot = LinePlot(series: series, title: "Training", xLabel: "epoch", yLabel: "loss, accuracy")
                    try plot.write(to: URL(fileURLWithPath: (out as NSString).appendingPathComponent("training.svg")))
                    extras.figures.append(("training.svg", "Training: loss and accuracy per epoch (from training-log.jsonl)"))
                }
            }
            for line in try plan.writeAll(results, extras: extras) { printLine(line) }
            let correct = zip(rows, results.predicted).filter { (try? test.example($0.0).label).map { Int($0) } == $0.1 }.count
            printLine(String(format: "explained %d test images (%d classified correctly) in %.0f s in all; open %@",
                             examples, correct, Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9,
                             (out as NSString).appendingPathComponent("index.html")))
        }
    }
}

/// The first ReLU whose output has channels of maps ([C, H, W] per example), the demo's feature maps.
func firstChannelActivation(_ model: Model) -> String? {
    model.ops.indices.first { model.ops[$0] is ReLU && model.graph.nodes[$0].info.output.count == 3 }.map { model.activationName($0) }
}
