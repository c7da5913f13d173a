import ArgumentParser
import Foundation
import Prism
import PrismFiles
import PrismONNX

struct CompressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compress",
        abstract: "Make a model smaller: prune its weights.",
        subcommands: [PruneCommand.self])
}

extension PruningScope: ExpressibleByArgument {}

/// What pruning removes.
enum PruningStructure: String, ExpressibleByArgument, CaseIterable {
    /// Single weights (unstructured).
    case weights
}

struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Magnitude (L1) pruning of every Linear and convolution weight, over all of them or per layer, with optional fine-tuning that keeps the pruned weights at zero; the test set's accuracy before and after. The model file keeps the masks as torch.nn.utils.prune does (NAME_orig, NAME_mask) unless --finalize.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var dataOptions: DataOptions

    @Option(help: "The model file: safetensors written by prism, or an ONNX export (.onnx).")
    var model: String

    @Option(parsing: .unconditional, help: "The fraction of the weights to prune (the sparsity afterwards), 0 to 1.")
    var amount: Double

    @Option(help: "global: rank all weights together (layers end with different sparsities, as prune.global_unstructured); layer: each weight tensor alone (prune.l1_unstructured).")
    var scope: PruningScope = .global

    @Option(help: "What is pruned: weights (single weights).")
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

    @Flag(help: "Drop the masks (torch.nn.utils.prune.remove): the file holds plain weights, zero where pruned.")
    var finalize = false

    @Option(help: "The pruned model file to write (safetensors).")
    var out: String

    func validate() throws {
        guard amount >= 0, amount <= 1, amount.isFinite else { throw ValidationError("--amount \(amount): give a fraction from 0 to 1") }
        guard finetuneEpochs >= 0 else { throw ValidationError("--finetune-epochs must be at least 0") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number") }
    }

    func run() throws {
        try runReportingErrors {
            let engine = Engine(context: try global.context())
            _ = try OutputFile(path: out)
            let loaded = try LoadedModel(path: model, engine: engine)
            let net = loaded.model
            // The file's metadata (data source, classes, standardization) goes with the pruned model.
            var metadata: [String: String] = [:]
            if !ONNXModel.isONNX(path: model) {
                metadata = try SafetensorsFile.read(path: model).metadata.filter { $0.key != Model.specMetadataKey && $0.key != Trainer.stateMetadataKey }
            }
            let data = try dataOptions.load(for: loaded, needTrain: finetuneEpochs > 0)
            let regression = loaded.task.kind == .regression
            func score() throws -> String {
                if regression {
                    let r = try evaluateRegression(net, on: data.test)
                    return String(format: "RMSE %.4f, R² %.4f", r.rmse, r.r2)
                }
                let r = try evaluate(net, on: data.test)
                return String(format: "accuracy %.4f, loss %.4f", r.accuracy, r.loss)
            }
            let before = try score()
            let pruned = try net.prune(amount: amount, scope: scope)
            let total = pruned.reduce(0) { $0 + $1.count }, zeros = pruned.reduce(0) { $0 + $1.zeros }
            printLine(String(format: "pruned %d of %d weights (%.1f%%, %@ scope, L1 magnitude) in %d tensors; %d of %d parameters remain nonzero",
                             zeros, total, 100 * Double(zeros) / Double(max(total, 1)), scope.rawValue, pruned.count,
                             net.parameterCount - zeros, net.parameterCount))
            for t in pruned {
                printLine(String(format: "  %@: %d of %d pruned (%.1f%%)", t.name, t.zeros, t.count, 100 * t.sparsity))
            }
            printLine("\(dataOptions.sourceName) test set: before \(before); pruned \(try score())")
            if finetuneEpochs > 0 {
                guard let train = data.train else { throw ValidationError("--finetune-epochs: no training data") }
                let trainer = try Trainer(model: net, config: TrainingConfig(epochs: finetuneEpochs, batchSize: batch, learningRate: lr,
                                                                             optimizer: optimizer, seed: seed))
                trainer.extraMetadata = metadata
                printError("fine-tuning for \(finetuneEpochs) epoch\(finetuneEpochs == 1 ? "" : "s") on \(train.count) training examples (pruned weights stay zero)")
                try fitWithProgress(trainer, train: train, test: data.test, out: out, checkpoint: out + ".ckpt", log: out + ".log.jsonl")
                printLine("fine-tuned: \(try score())")
            }
            if finalize { net.finalizePruning() }
            try net.save(path: out, metadata: metadata)
            printLine("wrote \(out)" + (finalize ? " (masks folded away)" : " (masks kept as NAME_orig and NAME_mask)"))
        }
    }
}
