import ArgumentParser
import Foundation
import Prism
import PrismFiles

enum Architecture: String, ExpressibleByArgument, CaseIterable {
    case cnn, mlp, vit
}

/// How `prism train` normalizes image inputs.
enum InputNormalizationChoice: String, ExpressibleByArgument, CaseIterable {
    case dataset, none
}

extension OptimizerKind: ExpressibleByArgument {}
extension ModelTask.Kind: ExpressibleByArgument {}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a classifier or a regression model; write a safetensors model PyTorch can read, a checkpoint after each epoch and a JSON-lines log.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var dataOptions: DataOptions

    @Option(help: "classification (cross-entropy) or regression (mean squared error on a CSV's numeric --label column, standardized for training; the model predicts in the column's units). Default: a CSV column of integers is read as classes, with a note; any other column is refused.")
    var task: ModelTask.Kind?

    @Option(parsing: .unconditional, help: "CSV classification: the most classes an integer label column may make (largest label + 1).")
    var maxClasses: Int = LabelColumnDecision.defaultMaxClasses

    @Option(name: .customLong("arch"), help: "Architecture: cnn or vit (images), or mlp (default cnn; a new run only).")
    var archOption: Architecture?
    var arch: Architecture { archOption ?? .cnn }

    @Option(help: "A model description to train instead of --arch: a JSON file in the README's \"Model files\" format (a graph of named nodes), whose input shape and outputs fit the data (a new run only).")
    var modelSpec: String?

    @Option(name: .customLong("patch"), parsing: .unconditional, help: "vit only: patch side (the image sides must be multiples) (default 7; a new run only).")
    var patchOption: Int?
    var patch: Int { patchOption ?? 7 }

    @Option(name: .customLong("depth"), parsing: .unconditional, help: "vit only: number of transformer blocks (default 4; a new run only).")
    var depthOption: Int?
    var depth: Int { depthOption ?? 4 }

    @Option(name: .customLong("hidden"), help: "mlp only: hidden layer sizes, comma-separated (default 128; a new run only).")
    var hiddenOption: String?
    var hidden: String { hiddenOption ?? "128" }

    @Option(help: "Images (MNIST-format and image folders, .npy arrays [N, C, H, W]): 'dataset' (default) normalizes each channel by the training set's mean and standard deviation inside the model (torchvision's Normalize; the model still takes raw pixels), 'none' feeds raw pixels. CSV columns are standardized instead.")
    var normalize: InputNormalizationChoice?

    @Option(parsing: .unconditional, help: "Number of epochs (the total, also when resuming).")
    var epochs: Int = 3

    @Option(name: .customLong("batch"), parsing: .unconditional, help: "Mini-batch size (default 64; a new run only).")
    var batchOption: Int?
    var batch: Int { batchOption ?? 64 }

    @Option(name: .customLong("lr"), parsing: .unconditional, help: "Learning rate (default 1e-3; a new run only).")
    var lrOption: Float?
    var lr: Float { lrOption ?? 1e-3 }

    @Option(name: .customLong("optimizer"), help: "Optimizer: adam, adamw or sgd (momentum 0.9) (default adam; a new run only).")
    var optimizerOption: OptimizerKind?
    var optimizer: OptimizerKind { optimizerOption ?? .adam }

    @Option(parsing: .unconditional, help: "Clip the gradients' global 2-norm to this before every step (torch.nn.utils.clip_grad_norm_).")
    var clipGradNorm: Float?

    @Option(name: .customLong("seed"), parsing: .unconditional, help: "Seed of the initialization, the shuffling and dropout (default 0; a new run only).")
    var seedOption: UInt64?
    var seed: UInt64 { seedOption ?? 0 }

    @Option(help: "The model file to write (safetensors).")
    var out: String = "model.safetensors"

    @Option(help: "The checkpoint file (default: <out>.ckpt).")
    var checkpoint: String?

    @Option(help: "The JSON-lines log (default: <out>.log.jsonl).")
    var log: String?

    @Flag(help: "Continue from the checkpoint.")
    var resume = false

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number") }
        if let clipGradNorm, !(clipGradNorm > 0 && clipGradNorm.isFinite) { throw ValidationError("--clip-grad-norm must be a positive number") }
        guard patch >= 1, depth >= 1 else { throw ValidationError("--patch and --depth must be at least 1") }
        guard maxClasses >= 1 else { throw ValidationError("--max-classes must be at least 1") }
        if modelSpec != nil {
            let given = [("--arch", archOption != nil), ("--patch", patchOption != nil), ("--depth", depthOption != nil), ("--hidden", hiddenOption != nil)]
                .filter(\.1).map(\.0)
            if !given.isEmpty { throw ValidationError("--model-spec describes the model; drop \(given.joined(separator: ", "))") }
        }

        if resume && clipGradNorm != nil {
            throw ValidationError("--clip-grad-norm applies to a new run; --resume continues with the checkpoint's training settings")
        }
        if resume && normalize != nil {
            throw ValidationError("--normalize applies to a new run; --resume continues with the checkpoint's model and its normalization")
        }
        if resume {
            let given = [("--arch", archOption != nil), ("--model-spec", modelSpec != nil), ("--patch", patchOption != nil), ("--depth", depthOption != nil),
                         ("--hidden", hiddenOption != nil), ("--batch", batchOption != nil), ("--lr", lrOption != nil),
                         ("--optimizer", optimizerOption != nil), ("--seed", seedOption != nil)].filter(\.1).map(\.0)
            if !given.isEmpty {
                throw ValidationError("\(given.joined(separator: ", ")) appl\(given.count == 1 ? "ies" : "y") to a new run; --resume continues with the checkpoint's model and training settings")
            }
        }
    }

    func run() throws {
        try runReportingErrors {
            if dataOptions.isCSV && normalize == .dataset {
                throw ValidationError("--normalize dataset is for images; \(dataOptions.sourceName)'s columns are standardized already")
            }
            let devices = try global.contexts()
            let engine = Engine(context: try devices?.first?.context ?? global.context())
            let checkpointPath = checkpoint ?? out + ".ckpt"
            let logPath = log ?? out + ".log.jsonl"
            // Refuse outputs that cannot be written before loading data or training (under mpirun,
            // rank 0 writes them; every rank reads a checkpoint to resume from).
            let leader = MPIJob.isLeader
            if leader {
                _ = try OutputFile(path: out)
                _ = try OutputFile(path: checkpointPath)
            }
            let logFile = leader ? try OutputFile(path: logPath) : nil
            var resumed: Trainer?
            var standardization: TabularDataset.Standardization?
            var targetStandardization: TabularDataset.Standardization?
            var requestedTask = task
            if resume {
                guard FileManager.default.fileExists(atPath: checkpointPath) else {
                    throw ValidationError("--resume: no checkpoint at \(checkpointPath)")
                }
                let trainer = try Trainer.resume(path: checkpointPath, epochs: epochs, engine: engine)
                if let json = trainer.extraMetadata[ModelFileKey.standardization] {
                    standardization = try JSONDecoder().decode(TabularDataset.Standardization.self, from: Data(json.utf8))
                }
                if let json = trainer.extraMetadata[targetStandardizationKey] {
                    targetStandardization = try JSONDecoder().decode(TabularDataset.Standardization.self, from: Data(json.utf8))
                }
                let saved = trainer.model.spec.resolvedTask.kind
                if let task, task != saved {
                    throw ValidationError("--task \(task.rawValue): the checkpoint \(checkpointPath) holds a \(saved.rawValue) model")
                }
                requestedTask = saved
                guard epochs >= trainer.epochsDone else {
                    throw ValidationError("--epochs \(epochs): the checkpoint \(checkpointPath) has already done \(trainer.epochsDone) epochs (--epochs is the total)")
                }
                if leader { printError("resuming \(checkpointPath) after epoch \(trainer.epochsDone) of \(trainer.config.epochs)") }
                resumed = trainer
            }
            var resumedClasses: [String]?
            if case let .classification(names)? = resumed?.model.spec.resolvedTask { resumedClasses = names }
            let loaded = try dataOptions.loadForTraining(task: requestedTask, maxClasses: maxClasses, standardization: standardization,
                                                         targetStandardization: targetStandardization,
                                                         inputShape: resumed?.model.spec.inputShape, classes: resumedClasses)
            if let note = loaded.note, leader { printError("note: " + note) }
            let train = loaded.train
            if normalize == .dataset && train.exampleShape.count != 3 {
                throw ValidationError("--normalize dataset is for images [channels, height, width]; \(dataOptions.sourceName) has examples of shape \(train.exampleShape)")
            }
            let trainer: Trainer
            if let resumed {
                trainer = resumed
            } else {
                let classes = train.isRegression ? train.targetWidth : max(train.classCount, loaded.test.classCount)
                var spec: ModelSpec
                if let modelSpec {
                    spec = try ModelSpec.decode(json: try String(contentsOfFile: modelSpec, encoding: .utf8), source: modelSpec)
                    guard spec.inputShape == train.exampleShape, spec.classCount == classes else {
                        throw DataError("\(modelSpec): the model takes \(spec.inputShape) and gives \(spec.classCount) outputs; \(dataOptions.sourceName) has examples of shape \(train.exampleShape) and \(classes) \(train.isRegression ? "targets" : "classes")")
                    }
                } else {
                switch arch {
                case .cnn:
                    guard train.exampleShape.count == 3 else {
                        throw ValidationError("--arch cnn needs images [channels, height, width]; \(dataOptions.sourceName) has examples of shape \(train.exampleShape) (use --arch mlp)")
                    }
                    spec = try ModelSpec.cnn(height: train.exampleShape[1], width: train.exampleShape[2], channels: train.exampleShape[0], classes: classes)
                case .vit:
                    guard train.exampleShape.count == 3 else {
                        throw ValidationError("--arch vit needs images [channels, height, width]; \(dataOptions.sourceName) has examples of shape \(train.exampleShape) (use --arch mlp)")
                    }
                    spec = try ModelSpec.vit(height: train.exampleShape[1], width: train.exampleShape[2], channels: train.exampleShape[0],
                                             classes: classes, patch: patch, depth: depth)
                case .mlp:
                    let sizes = hidden.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                    guard !sizes.isEmpty, sizes.allSatisfy({ ($0 ?? 0) > 0 }) else {
                        throw ValidationError("--hidden: '\(hidden)' is not a comma-separated list of positive sizes")
                    }
                    spec = try ModelSpec.mlp(inputShape: train.exampleShape, hidden: sizes.map { $0! }, classes: classes)
                }
                }
                spec.task = loaded.task
                if train.exampleShape.count == 3 {
                    if spec.inputNormalization == nil, (normalize ?? .dataset) == .dataset { spec.inputNormalization = train.channelStatistics() }
                }
                // Weights and gradients, and the optimizer's moments (Adam's two, SGD's momentum), on the device.
                try spec.requireMemory(device: engine.device, copies: optimizer == .sgd ? 3 : 4, source: modelSpec ?? "--arch \(arch.rawValue)")
                let model = try Model(spec: spec, seed: seed, engine: engine)
                trainer = try Trainer(model: model, config: TrainingConfig(epochs: epochs, batchSize: batch, learningRate: lr,
                                                                           optimizer: optimizer, seed: seed, maxGradNorm: clipGradNorm))
                var extra: [String: String] = [ModelFileKey.data: dataOptions.sourceName]
                if let s = loaded.standardization {
                    extra[ModelFileKey.standardization] = String(decoding: try JSONEncoder().encode(s), as: UTF8.self)
                }
                if let names = loaded.featureNames {
                    extra[ModelFileKey.features] = String(decoding: try JSONEncoder().encode(names), as: UTF8.self)
                }
                if let t = loaded.targetStandardization {
                    extra[targetStandardizationKey] = String(decoding: try JSONEncoder().encode(t), as: UTF8.self)
                }
                trainer.extraMetadata = extra
                // A fresh run starts a fresh log.
                try logFile?.write([])
            }
            let model = trainer.model
            let kind = model.spec.isRegression ? "regression " : ""
            if let devices {
                try trainer.replicate(on: devices.dropFirst().map { Engine(context: $0.context) })
            }
            var where_ = devices.map { "devices " + $0.map(\.label).joined(separator: ", ") + " (each step's batch split across them)" }
                ?? "device \(engine.device.name)"
            if let world = MPIJob.world {
                try trainer.join(world)
                where_ = "\(world.size) processes of an mpirun job, one device each (rank 0: \(engine.device.name); each step's batch split across them, gradients summed with MPI_Allreduce)"
            }
            guard leader else {
                // The other ranks train their slices; rank 0 evaluates, writes and prints.
                try trainer.fit(train: train)
                return
            }
            printError("training \(kind)\(model.spec.architecture) (\(model.parameterCount) parameters) on \(dataOptions.sourceName): \(train.count) training, \(loaded.test.count) test examples; \(where_)")
            try fitWithProgress(trainer, train: train, test: loaded.test, out: out, checkpoint: checkpointPath, log: logPath)
            if let devices {
                printLine("examples per device: " + zip(devices, trainer.examplesPerDevice).map { "\($0.label) \($1)" }.joined(separator: ", "))
            }
            if MPIJob.world != nil {
                printLine("examples per rank: " + trainer.examplesPerRank.enumerated().map { "rank \($0) \($1)" }.joined(separator: ", "))
            }
            printLine("wrote \(out) (checkpoint \(checkpointPath), log \(logPath))")
        }
    }
}

/// Trains with a progress line on a terminal and one line per epoch; after each epoch writes the
/// model to `out` and appends the epoch's report to the JSON-lines `log` (the trainer writes the checkpoint).
/// A regression model trained on standardized targets (`targetStandardizationKey` in the trainer's
/// metadata) is written with that standardization undone in its last layer, so it predicts in the
/// targets' units; its losses are mean squared errors of standardized targets.
func fitWithProgress(_ trainer: Trainer, train: LabeledData, test: LabeledData, out: String, checkpoint: String, log: String) throws {
    let model = trainer.model
    var line = ProgressLine()
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    var metadata = trainer.extraMetadata
    var affine: (scale: [Float], shift: [Float])?
    if let json = metadata.removeValue(forKey: targetStandardizationKey) {
        let t = try JSONDecoder().decode(TabularDataset.Standardization.self, from: Data(json.utf8))
        affine = (t.std, t.mean)
    }
    let regression = model.spec.isRegression
    // A resumed run's log is rebuilt from its checkpoint's reports before it goes on.
    if !trainer.reports.isEmpty { try writeLog(trainer.reports, to: log, encoder: encoder) }
    try trainer.fit(train: train, test: test, checkpoint: checkpoint, progress: { p in
        let accuracy = p.accuracy.map { String(format: "  acc %.4f", $0) } ?? ""
        line.show(String(format: "epoch %d/%d  step %d/%d  loss %.4f%@  %.0f ex/s  ETA %@", p.epoch, trainer.config.epochs, p.step, p.steps,
                         p.loss, accuracy, p.examplesPerSecond, formatDuration(p.secondsLeft)))
    }, epochEnd: { report in
        line.clear()
        try model.save(path: out, metadata: metadata, outputAffine: affine)
        try writeLog(trainer.reports, to: log, encoder: encoder)
        if regression {
            printLine(String(format: "epoch %d/%d  train MSE %.4f  test MSE %.4f (standardized targets)  test R² %.4f  %.0f ex/s  %.1f s",
                             report.epoch, trainer.config.epochs, report.trainLoss, report.testLoss ?? .nan, report.testR2 ?? .nan,
                             report.examplesPerSecond, report.seconds))
        } else {
            printLine(String(format: "epoch %d/%d  train loss %.4f  train acc %.4f  test loss %.4f  test acc %.4f  %.0f ex/s  %.1f s",
                             report.epoch, trainer.config.epochs, report.trainLoss, report.trainAccuracy ?? .nan, report.testLoss ?? .nan,
                             report.testAccuracy ?? .nan, report.examplesPerSecond, report.seconds))
        }
    })
}

/// Writes the JSON-lines log: one line per finished epoch, from the trainer's reports (which the
/// checkpoint holds too), through `OutputFile`, so a reader never sees half a line, a failed write
/// leaves the previous log whole, and a run killed between its checkpoint and its log gets the
/// missing line back when it resumes.
func writeLog(_ reports: [EpochReport], to path: String, encoder: JSONEncoder) throws {
    let lines = try reports.map { String(decoding: try encoder.encode($0), as: UTF8.self) + "\n" }
    try OutputFile(path: path).write(lines.joined())
}