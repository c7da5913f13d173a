import ArgumentParser
import Foundation
import Prism
import PrismFiles
import PrismONNX
import PrismExplain

struct CompressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compress",
        abstract: "Make a model smaller — prune weights or filters, quantize it to int8, distil it into a smaller student — and compare the two models: accuracy, size, speed and whether they explain their decisions alike.",
        subcommands: [PruneCommand.self, QuantizeCommand.self, DistillCommand.self])
}

extension PruningScope: ExpressibleByArgument {}

/// What pruning removes.
enum PruningStructure: String, ExpressibleByArgument, CaseIterable {
    /// Single weights (unstructured; masks).
    case weights
    /// Whole filters (output channels), which leaves a smaller model.
    case filters
}

/// The options every compress command shares: where it writes, and what its comparison report explains.
struct CompressOutputOptions: ParsableArguments {
    @Option(help: "The folder written: model.safetensors (the compressed model), index.html and report.json (the comparison with the original), the pictures, and while training, the checkpoint and log.")
    var out: String

    @Option(parsing: .unconditional, help: "Test examples on which the two models' explanations are compared (Spearman, top-10 overlap, deletion/insertion AUC, heatmaps side by side); 0: none.")
    var agreementExamples: Int = 8

    @Option(help: "The methods compared: ig, kernel-shap or both (kernel-shap with 20 background rows; 4×4 superpixels on images).")
    var agreementMethods: String = "ig,kernel-shap"

    @Option(parsing: .unconditional, help: "The compressed model is flagged in the report when its Integrated Gradients' mean Spearman correlation with the original's falls below this.")
    var agreementTarget: Double = 0.9

    func validate() throws {
        guard agreementExamples >= 0 else { throw ValidationError("--agreement-examples must be at least 0") }
        guard agreementTarget >= -1, agreementTarget <= 1 else { throw ValidationError("--agreement-target \(agreementTarget): give a correlation from -1 to 1") }
        if out.hasSuffix(".safetensors") || out.hasSuffix(".onnx") {
            throw ValidationError("--out \(out): give a folder (the compressed model is written into it as model.safetensors, beside its report)")
        }
        _ = try methods()
    }

    /// The methods of --agreement-methods, checked.
    func methods() throws -> [String] {
        let names = agreementMethods.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty, names.allSatisfy({ ["ig", "kernel-shap"].contains($0) }), Set(names).count == names.count else {
            throw ValidationError("--agreement-methods \(agreementMethods): give ig, kernel-shap or both, comma-separated")
        }
        return names
    }

    /// Whether Kernel SHAP needs background rows from the training data.
    var needsBackground: Bool { agreementExamples > 0 && agreementMethods.contains("kernel-shap") }

    /// The output folder, created, and the model's path in it.
    func folder() throws -> (folder: OutputFolder, model: String) {
        let folder = try OutputFolder(path: out, create: true)
        return (folder, folder.path("model.safetensors"))
    }

    /// Compares `original` (read from `originalPath`) with `compressed` (written at `compressedPath`),
    /// prints the agreement, writes the report into `folder`.
    func report(command: String, settings: [String: String], details: [String], original: Model, originalPath: String,
                compressed: Model, compressedPath: String, data: (train: LabeledData?, test: LabeledData), engine: Engine,
                folder: OutputFolder, compressedForward: ((Tensor) throws -> Tensor)? = nil, compressedEvaluation: EvaluationResult? = nil) throws {
        let background = try data.train.map { try sampleBackground($0, count: min(20, $0.count), seed: 0).values } ?? []
        let comparison = ModelComparison(engine: engine, test: data.test, background: background, methods: try methods(),
                                         examples: agreementExamples, target: agreementTarget)
        let (methods, count, rows) = try comparison.compare(original, compressed, folder: folder)
        for m in methods {
            printLine(String(format: "explanation agreement, %@ on %d test examples (the original's predicted class): Spearman %.3f (of |φ| %.3f), top-%d overlap %.3f; deletion AUC %.3f → %.3f, insertion AUC %.3f → %.3f",
                             m.method, count, m.agreement.spearman, m.agreement.spearmanAbsolute, m.agreement.k, m.agreement.topKOverlap,
                             m.deletionAUC[0], m.deletionAUC[1], m.insertionAUC[0], m.insertionAUC[1]))
        }
        let ig = methods.first { $0.method == "ig" }
        let below = ig.map { $0.agreement.spearman < agreementTarget }
        if below == true {
            printLine(String(format: "below target: Integrated Gradients' Spearman %.3f < %.2f (flagged in the report)", ig!.agreement.spearman, agreementTarget))
        }
        let (a, b) = (try comparison.facts(original, file: originalPath),
                      try comparison.facts(compressed, file: compressedPath, forward: compressedForward, evaluation: compressedEvaluation))
        printLine(String(format: "original: %@, %d parameters (%d nonzero), %d bytes, %.0f evaluations/s; compressed: %@, %d parameters (%d nonzero), %d bytes, %.0f evaluations/s",
                         a.score, a.parameters, a.nonzeroParameters, a.fileBytes, a.evaluationsPerSecond,
                         b.score, b.parameters, b.nonzeroParameters, b.fileBytes, b.evaluationsPerSecond))
        let report = ComparisonReport(command: command, device: engine.device.name, settings: settings, original: a, compressed: b,
                                      examples: count, methods: methods, targetSpearmanIG: agreementTarget, belowTarget: below, details: details)
        try report.write(folder: folder, rows: rows)
        printLine("wrote \(folder.path("index.html")) and \(folder.path("report.json"))")
    }
}

/// A model file's metadata that goes with a compressed model (data source, classes, standardization):
/// not its architecture or training state. None for ONNX files.
func carriedMetadata(_ path: String) throws -> [String: String] {
    guard !ONNXModel.isONNX(path: path) else { return [:] }
    return try SafetensorsFile.read(path: path).metadata.filter { $0.key != Model.specMetadataKey && $0.key != Trainer.stateMetadataKey }
}

/// The test score of `model` as one phrase.
func scoreText(_ model: Model, on test: LabeledData) throws -> String {
    if model.spec.isRegression {
        let r = try evaluateRegression(model, on: test)
        return String(format: "RMSE %.4f, R² %.4f", r.rmse, r.r2)
    }
    let r = try evaluate(model, on: test)
    return String(format: "accuracy %.4f, loss %.4f", r.accuracy, r.loss)
}

struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Prune a model: single weights by magnitude (L1; masks kept as torch.nn.utils.prune keeps them, unless --finalize) or whole filters by L2 norm (channels tied through residual connections together; a smaller model); optional fine-tuning; the comparison report.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var output: CompressOutputOptions

    @Option(help: "The model file: safetensors written by prism, or an ONNX export (.onnx).")
    var model: String

    @Option(parsing: .unconditional, help: "The fraction pruned: of the weights (the sparsity afterwards), or of each channel group's filters.")
    var amount: Double

    @Option(help: "Weights only — global: rank all weights together (layers end with different sparsities, as prune.global_unstructured); layer: each weight tensor alone (prune.l1_unstructured). Default global.")
    var scope: PruningScope?

    @Option(help: "What is pruned: weights (single weights) or filters (output channels of convolutions and hidden Linear layers, each channel group losing --amount of its channels).")
    var structure: PruningStructure = .weights

    @Option(parsing: .unconditional, help: "Epochs of fine-tuning on the training data after pruning (pruned weights stay zero).")
    var finetuneEpochs: Int = 0

    @Option(name: .customLong("batch"), parsing: .unconditional, help: "Fine-tuning: mini-batch size.")
    var batch: Int = 64

    @Option(name: .customLong("lr"), parsing: .unconditional, help: "Fine-tuning: learning rate.")
    var lr: Float = 1e-4

    @Option(help: "Fine-tuning: adam, adamw or sgd.")
    var optimizer: OptimizerKind = .adam

    @Option(parsing: .unconditional, help: "Fine-tuning: seed of the shuffling and dropout.")
    var seed: UInt64 = 0

    @Flag(help: "Weights only: drop the masks (torch.nn.utils.prune.remove): the file holds plain weights, zero where pruned.")
    var finalize = false

    func validate() throws {
        guard amount >= 0, amount <= 1, amount.isFinite else { throw ValidationError("--amount \(amount): give a fraction from 0 to 1") }
        guard finetuneEpochs >= 0 else { throw ValidationError("--finetune-epochs must be at least 0") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number") }
        if structure == .filters {
            guard amount < 1 else { throw ValidationError("--amount \(amount): filter pruning keeps at least one channel of each group; give a fraction below 1") }
            if scope != nil { throw ValidationError("--scope applies to --structure weights; --structure filters prunes --amount of each channel group") }
            if finalize { throw ValidationError("--finalize applies to --structure weights; filter pruning writes plain, smaller weights") }
        }
    }

    func run() throws {
        try runReportingErrors {
            let engine = Engine(context: try global.context())
            let (folder, out) = try output.folder()
            let loaded = try LoadedModel(path: model, engine: engine)
            let net = loaded.model
            let metadata = try carriedMetadata(model)
            let data = try dataOptions.load(for: loaded, needTrain: finetuneEpochs > 0 || output.needsBackground)
            let before = try scoreText(net, on: data.test)
            var settings = ["amount": "\(amount)", "structure": structure.rawValue, "finetune_epochs": "\(finetuneEpochs)"]
            var details: [String] = []
            let compressed: Model
            switch structure {
            case .weights:
                let scope = scope ?? .global
                settings["scope"] = scope.rawValue
                let pruned = try net.prune(amount: amount, scope: scope)
                let total = pruned.reduce(0) { $0 + $1.count }, zeros = pruned.reduce(0) { $0 + $1.zeros }
                details.append(String(format: "pruned %d of %d weights (%.1f%%, %@ scope, L1 magnitude) in %d tensors; %d of %d parameters remain nonzero",
                                      zeros, total, 100 * Double(zeros) / Double(max(total, 1)), scope.rawValue, pruned.count,
                                      net.parameterCount - zeros, net.parameterCount))
                details += pruned.map { String(format: "  %@: %d of %d pruned (%.1f%%)", $0.name, $0.zeros, $0.count, 100 * $0.sparsity) }
                compressed = net
            case .filters:
                let (smaller, groups) = try net.pruneFilters(amount: amount)
                let channels = groups.reduce(0) { $0 + $1.channels }, kept = groups.reduce(0) { $0 + $1.kept }
                details.append(String(format: "removed %d of %d channels (L2 norm of the filters) in %d channel groups; %d of %d parameters remain",
                                      channels - kept, channels, groups.count, smaller.parameterCount, net.parameterCount))
                details += groups.map { "  \($0.sources.joined(separator: " + ")): \($0.kept) of \($0.channels) channels kept" + ($0.sources.count > 1 ? " (tied)" : "") }
                compressed = smaller
            }
            details.forEach(printLine)
            let prunedScore = try scoreText(compressed, on: data.test)
            printLine("\(dataOptions.sourceName) test set: before \(before); pruned \(prunedScore)")
            details.append("test set: before \(before); pruned \(prunedScore)")
            if finetuneEpochs > 0 {
                guard let train = data.train else { throw ValidationError("--finetune-epochs: no training data") }
                let trainer = try Trainer(model: compressed, config: TrainingConfig(epochs: finetuneEpochs, batchSize: batch, learningRate: lr,
                                                                                    optimizer: optimizer, seed: seed))
                trainer.extraMetadata = metadata
                printError("fine-tuning for \(finetuneEpochs) epoch\(finetuneEpochs == 1 ? "" : "s") on \(train.count) training examples"
                           + (structure == .weights ? " (pruned weights stay zero)" : ""))
                try fitWithProgress(trainer, train: train, test: data.test, out: out, checkpoint: out + ".ckpt", log: out + ".log.jsonl")
                let tuned = try scoreText(compressed, on: data.test)
                printLine("fine-tuned: \(tuned)")
                details.append("fine-tuned \(finetuneEpochs) epoch\(finetuneEpochs == 1 ? "" : "s") (\(optimizer.rawValue), lr \(lr), batch \(batch)): \(tuned)")
            }
            if finalize { compressed.finalizePruning() }
            try compressed.save(path: out, metadata: metadata)
            printLine("wrote \(out)" + (structure == .filters ? "" : finalize ? " (masks folded away)" : " (masks kept as NAME_orig and NAME_mask)"))
            let original = try LoadedModel(path: model, engine: engine).model
            try output.report(command: "prune", settings: settings, details: details, original: original, originalPath: model,
                              compressed: compressed, compressedPath: out, data: data, engine: engine, folder: folder)
        }
    }
}

/// How the student of `compress distill` is made.
enum StudentArchitecture: String, ExpressibleByArgument, CaseIterable {
    case cnn, mlp
}

struct DistillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Knowledge distillation: train a smaller student on the teacher's softened outputs and the labels (Hinton's loss, α·T²·KL(p_teacher ‖ p_student) + (1 − α)·cross-entropy); the comparison report.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var output: CompressOutputOptions

    @Option(help: "The teacher: safetensors written by prism, or an ONNX export (.onnx).")
    var teacher: String

    @Option(parsing: .unconditional, help: "The student is the teacher's graph with every convolution and hidden Linear layer at this fraction of its width (channels tied by residual connections together).")
    var width: Double?

    @Option(help: "The student is a new network of this architecture for the teacher's inputs and outputs: cnn or mlp (with --hidden).")
    var arch: StudentArchitecture?

    @Option(help: "mlp student: hidden layer sizes, comma-separated.")
    var hidden: String = "128"

    @Option(help: "The student is the model description in this JSON file (the format of the README's \"Model files\"); it must take the teacher's inputs and give its outputs.")
    var modelSpec: String?

    @Option(parsing: .unconditional, help: "T: both models' logits are divided by it before the softmax of the teacher's term.")
    var temperature: Float = 4

    @Option(parsing: .unconditional, help: "α: the weight of the teacher's term (0: the labels alone, the student trained without the teacher).")
    var alpha: Float = 0.7

    @Option(parsing: .unconditional, help: "Training epochs of the student.")
    var epochs: Int = 5

    @Option(name: .customLong("batch"), parsing: .unconditional, help: "Mini-batch size.")
    var batch: Int = 64

    @Option(name: .customLong("lr"), parsing: .unconditional, help: "Learning rate.")
    var lr: Float = 1e-3

    @Option(help: "adam, adamw or sgd.")
    var optimizer: OptimizerKind = .adam

    @Option(parsing: .unconditional, help: "Seed of the student's initialization, the shuffling and dropout.")
    var seed: UInt64 = 0

    func validate() throws {
        let given = [width != nil, arch != nil, modelSpec != nil].filter { $0 }.count
        guard given == 1 else { throw ValidationError("give the student as one of --width, --arch or --model-spec") }
        if let width { guard width > 0, width <= 1 else { throw ValidationError("--width \(width): give a fraction in (0, 1]") } }
        guard temperature > 0, temperature.isFinite else { throw ValidationError("--temperature must be a positive number") }
        guard alpha >= 0, alpha <= 1 else { throw ValidationError("--alpha \(alpha): give a weight from 0 to 1") }
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number") }
    }

    /// The student's description for `teacher`.
    func studentSpec(_ teacher: ModelSpec) throws -> (spec: ModelSpec, description: String) {
        var spec: ModelSpec
        let description: String
        if let width {
            spec = try teacher.scaledWidth(width)
            description = "the teacher's graph at width \(width)"
        } else if let modelSpec {
            let text = try String(contentsOfFile: modelSpec, encoding: .utf8)
            spec = try ModelSpec.decode(json: text, source: modelSpec)
            guard spec.inputShape == teacher.inputShape, spec.classCount == teacher.classCount else {
                throw DataError("\(modelSpec): the student takes \(spec.inputShape) and gives \(spec.classCount) outputs; the teacher takes \(teacher.inputShape) and gives \(teacher.classCount)")
            }
            description = "the description in \(modelSpec)"
            if spec.inputNormalization == nil, teacher.inputNormalization != nil {
                printError("note: \(modelSpec) has no input normalization; the student takes the teacher's, so both read the same raw inputs")
                spec.inputNormalization = teacher.inputNormalization
            }
        } else {
            let shape = teacher.inputShape
            switch arch! {
            case .cnn:
                guard shape.count == 3 else { throw ValidationError("--arch cnn needs images [channels, height, width]; the teacher takes \(shape)") }
                spec = try ModelSpec.cnn(height: shape[1], width: shape[2], channels: shape[0], classes: teacher.classCount)
            case .mlp:
                let sizes = hidden.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard !sizes.isEmpty, sizes.allSatisfy({ ($0 ?? 0) > 0 }) else {
                    throw ValidationError("--hidden: '\(hidden)' is not a comma-separated list of positive sizes")
                }
                spec = try ModelSpec.mlp(inputShape: shape, hidden: sizes.map { $0! }, classes: teacher.classCount)
            }
            spec.inputNormalization = teacher.inputNormalization
            description = "a new \(arch!.rawValue)"
        }
        spec.task = teacher.task
        try spec.validate()
        return (spec, description)
    }

    func run() throws {
        try runReportingErrors {
            let engine = Engine(context: try global.context())
            let (folder, out) = try output.folder()
            let loaded = try LoadedModel(path: teacher, engine: engine)
            guard loaded.task.kind != .regression else { throw ValidationError("\(teacher) is a regression model; distillation here is for classifiers") }
            let (spec, description) = try studentSpec(loaded.model.spec)
            let data = try dataOptions.load(for: loaded, needTrain: true)
            guard let train = data.train else { throw ValidationError("distill: no training data") }
            try spec.requireMemory(device: engine.device, copies: optimizer == .sgd ? 3 : 4, source: "the student")
            let student = try Model(spec: spec, seed: seed, engine: engine)
            let trainer = try Trainer(model: student, config: TrainingConfig(epochs: epochs, batchSize: batch, learningRate: lr, optimizer: optimizer, seed: seed))
            if alpha > 0 { trainer.distillation = Distillation(teacher: loaded.model, temperature: temperature, alpha: alpha) }
            let metadata = try carriedMetadata(teacher)
            trainer.extraMetadata = metadata
            let teacherScore = try scoreText(loaded.model, on: data.test)
            var details = [String(format: "teacher: %@ (%d parameters), test %@; student: %@ (%d parameters, %.1f%% of the teacher's)",
                                  loaded.model.spec.architecture, loaded.model.parameterCount, teacherScore, description, student.parameterCount,
                                  100 * Double(student.parameterCount) / Double(max(loaded.model.parameterCount, 1)))]
            printLine(details[0])
            printError("training the student for \(epochs) epoch\(epochs == 1 ? "" : "s") on \(train.count) training examples: "
                       + (alpha > 0 ? "α·T²·KL(teacher ‖ student) + (1 − α)·CE with T = \(temperature), α = \(alpha)" : "cross-entropy alone (α = 0, no teacher)"))
            try fitWithProgress(trainer, train: train, test: data.test, out: out, checkpoint: out + ".ckpt", log: out + ".log.jsonl")
            let studentScore = try scoreText(student, on: data.test)
            printLine("student: \(studentScore)")
            details.append("student after \(epochs) epoch\(epochs == 1 ? "" : "s") (\(optimizer.rawValue), lr \(lr), batch \(batch), seed \(seed)): \(studentScore)")
            printLine("wrote \(out)")
            try output.report(command: "distill", settings: ["temperature": "\(temperature)", "alpha": "\(alpha)", "epochs": "\(epochs)",
                                                             "student": description],
                              details: details, original: loaded.model, originalPath: teacher, compressed: student, compressedPath: out,
                              data: data, engine: engine, folder: folder)
        }
    }
}

/// Static (calibrated activation ranges, integer all the way) or dynamic (weights only; each layer's input quantized at run time).
enum QuantizationMode: String, ExpressibleByArgument, CaseIterable {
    case `static`, dynamic
}

/// How `compress quantize` picks each activation's range.
enum ObserverChoice: String, ExpressibleByArgument, CaseIterable {
    case minmax, percentile
}

struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Post-training int8 quantization — static (int8 weights per output channel, uint8 activations per tensor from calibration examples, Conv/Linear+ReLU fused) or dynamic (weights only, each layer's input quantized at run time) — on integer kernels; the comparison report.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var output: CompressOutputOptions

    @Option(help: "The model file: safetensors written by prism, or an ONNX export (.onnx).")
    var model: String

    @Option(help: "static: activations quantized with ranges from calibration, integer from input to logits; dynamic: int8 weights, each convolution's and Linear layer's input quantized over its own range at run time, outputs in float (PyTorch's quantize_dynamic).")
    var mode: QuantizationMode = .static

    @Option(parsing: .unconditional, help: "static: training examples that calibrate the activations' ranges (a seeded random sample).")
    var calibration: Int = 256

    @Option(help: "minmax: each activation's smallest and largest value seen; percentile: its --percentile and 100 − --percentile percentiles (outliers clipped).")
    var observer: ObserverChoice = .minmax

    @Option(parsing: .unconditional, help: "The percentile observer's upper percentile.")
    var percentile: Double = 99.99

    func validate() throws {
        guard calibration >= 1 else { throw ValidationError("--calibration must be at least 1") }
        guard percentile > 50, percentile <= 100 else { throw ValidationError("--percentile \(percentile): give a value in (50, 100]") }
    }

    func run() throws {
        try runReportingErrors {
            let engine = Engine(context: try global.context())
            let (folder, out) = try output.folder()
            let loaded = try LoadedModel(path: model, engine: engine)
            guard loaded.task.kind != .regression else { throw ValidationError("\(model) is a regression model; int8 quantization here is for classifiers") }
            try QuantizedModel.requireCovered(loaded.model)
            let data = try dataOptions.load(for: loaded, needTrain: true)
            if mode == .dynamic {
                try dynamic(loaded, data: data, engine: engine, folder: folder, out: out)
                return
            }
            guard let train = data.train else { throw ValidationError("quantize: no training data to calibrate with") }
            let count = min(calibration, train.count)
            let sample = try sampleBackground(train, count: count, seed: 0)
            let observerValue: QuantizationObserver = observer == .minmax ? .minMax : .percentile(percentile)
            let quantized = try QuantizedModel(loaded.model, calibration: sample.values, count: count, observer: observerValue)
            let (spec, tensors, weights) = try quantized.simulation()
            // The file: the float simulation's description, the int8 weights as I8 with their scales.
            try writeInt8Model(spec: spec, tensors: tensors, weights: weights, out: out,
                               note: "int8 static: observer \(observer == .minmax ? "minmax" : "percentile \(percentile)"), \(count) calibration examples")
            let simulated = try LoadedModel(path: out, engine: engine).model
            let integer = try quantized.evaluate(on: data.test)
            let float = try evaluate(simulated, on: data.test)
            let before = try scoreText(loaded.model, on: data.test)
            // The integer kernels against their float simulation, in steps of the output's quantization.
            let rows = min(256, data.test.count)
            let x = try Tensor(try (0..<rows).flatMap { try data.test.example($0).features }, shape: [rows] + spec.inputShape, engine: engine)
            let (a, b) = try engine.noGrad { (try quantized(x).toArray(), try simulated(x).toArray()) }
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            let difference = quantized.outputQuantization.map { String(format: "%.2f output steps", worst / $0.scale) } ?? String(format: "%.3g (the output is float)", worst)
            let integerSteps = quantized.steps.filter { $0.kind != .float }.count
            var details = [String(format: "int8 static quantization: %d weight tensors int8 per output channel%@, activations uint8 per tensor (%@ observer, %d calibration examples); %d steps in integers",
                                  weights.count, quantized.folded.isEmpty ? "" : " (\(quantized.folded.count) BatchNorm folded in)", observer.rawValue, count, integerSteps)]
            let floats = quantized.floatNodes
            if !floats.isEmpty {
                details.append("in float between dequantization and quantization (no integer kernel here): " + floats.joined(separator: ", "))
            }
            details.append(String(format: "test set: float %@; int8 kernels accuracy %.4f, loss %.4f; its float simulation (QDQ) accuracy %.4f; logits of the two differ by at most %@ on %d examples",
                                   before, integer.accuracy, integer.loss, float.accuracy, difference, rows))
            details.forEach(printLine)
            printLine("wrote \(out) (int8 weights as I8 with per-channel scales; every command reads it as its float simulation)")
            try output.report(command: "quantize", settings: ["calibration": "\(count)", "observer": observer.rawValue], details: details,
                              original: loaded.model, originalPath: model, compressed: simulated, compressedPath: out, data: data, engine: engine,
                              folder: folder, compressedForward: { try quantized($0) }, compressedEvaluation: integer)
        }
    }

    /// Writes a quantized model: `spec` and `tensors` (float), the `weights` of each node (by name) as
    /// I8 `NAME.weight` with `NAME.weight_scale`, the original file's metadata and `note`.
    func writeInt8Model(spec: ModelSpec, tensors: [String: HostTensor], weights: [String: QuantizedWeights], out: String, note: String) throws {
        var floats = tensors, integers: [String: IntegerTensor] = [:]
        for (name, w) in weights {
            floats[name + ".weight"] = nil
            integers[name + ".weight"] = IntegerTensor(dtype: "I8", shape: w.shape, values: w.values.map(Int64.init))
            floats[name + ".weight" + Model.int8ScaleSuffix] = HostTensor(shape: [w.scales.count], values: w.scales)
        }
        var metadata = try carriedMetadata(model)
        metadata[Model.specMetadataKey] = try spec.json()
        metadata["prism.quantization"] = note
        var file = SafetensorsFile(tensors: floats, metadata: metadata)
        file.integerTensors = integers
        try file.write(path: out)
    }

    /// `--mode dynamic`: the original graph with int8 weights; the report runs the dynamic integer kernels.
    func dynamic(_ loaded: LoadedModel, data: (train: LabeledData?, test: LabeledData), engine: Engine, folder: OutputFolder, out: String) throws {
        let quantized = try DynamicQuantizedModel(loaded.model)
        try writeInt8Model(spec: loaded.model.spec, tensors: try quantized.simulation(), weights: quantized.weights, out: out,
                           note: "int8 dynamic: weights per output channel; inputs of convolutions and Linear layers quantized at run time")
        let weightsOnly = try LoadedModel(path: out, engine: engine).model
        let integer = try quantized.evaluate(on: data.test)
        let before = try scoreText(loaded.model, on: data.test)
        let details = [String(format: "int8 dynamic quantization: %d weight tensors int8 per output channel; each convolution's and Linear layer's input quantized to uint8 over its own range at run time, sums dequantized to float",
                              quantized.weights.count),
                       String(format: "test set: float %@; int8 kernels (dynamic) accuracy %.4f, loss %.4f", before, integer.accuracy, integer.loss)]
        details.forEach(printLine)
        printLine("wrote \(out) (int8 weights as I8 with per-channel scales; every command reads it with the weights dequantized)")
        try output.report(command: "quantize", settings: ["mode": "dynamic"], details: details, original: loaded.model, originalPath: model,
                          compressed: weightsOnly, compressedPath: out, data: data, engine: engine, folder: folder,
                          compressedForward: { try quantized($0) }, compressedEvaluation: integer)
    }
}
