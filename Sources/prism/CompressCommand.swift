import ArgumentParser
import Foundation
import Prism
import PrismFiles
import PrismONNX
import PrismExplain

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

    @Option(parsing: .unconditional, help: "Test examples on which the original and the pruned model's explanations are compared (Spearman, top-10 overlap); 0: none.")
    var agreementExamples: Int = 8

    @Option(help: "The methods compared: ig, kernel-shap or both (kernel-shap with 20 background rows; 4×4 superpixels on images).")
    var agreementMethods: String = "ig,kernel-shap"

    @Option(help: "Write what was measured (sparsity, scores, agreement) as JSON here.")
    var json: String?

    @Option(help: "The pruned model file to write (safetensors).")
    var out: String

    func validate() throws {
        guard amount >= 0, amount <= 1, amount.isFinite else { throw ValidationError("--amount \(amount): give a fraction from 0 to 1") }
        guard finetuneEpochs >= 0 else { throw ValidationError("--finetune-epochs must be at least 0") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number") }
        guard agreementExamples >= 0 else { throw ValidationError("--agreement-examples must be at least 0") }
        _ = try agreementMethodList()
    }

    /// The methods of --agreement-methods, checked.
    func agreementMethodList() throws -> [String] {
        let names = agreementMethods.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty, names.allSatisfy({ ["ig", "kernel-shap"].contains($0) }), Set(names).count == names.count else {
            throw ValidationError("--agreement-methods \(agreementMethods): give ig, kernel-shap or both, comma-separated")
        }
        return names
    }

    /// What the command measured, for --json.
    struct Summary: Codable {
        var model: String
        var out: String
        var amount: Double
        var scope: String
        var tensors: [PrunedTensor]
        var before: String
        var pruned: String
        var fineTuned: String?
        var agreement: [String: ExplanationAgreement]
    }

    /// IG and Kernel SHAP of `first` and `second` on `x` (`count` examples) for the classes `targets`:
    /// their agreement per method.
    func agreement(_ first: Model, _ second: Model, x: [Float], count: Int, targets: [Int], background: [Float]) throws -> [String: ExplanationAgreement] {
        let shape = first.spec.inputShape
        let groups: FeatureGroups? = shape.count == 3 ? try FeatureGroups.grid(channels: shape[0], height: shape[1], width: shape[2], cell: min(4, shape[1], shape[2])) : nil
        var result: [String: ExplanationAgreement] = [:]
        for method in try agreementMethodList() {
            func explain(_ m: Model) throws -> Explanation {
                switch method {
                case "ig": try IntegratedGradients(model: DifferentiableModel(m), steps: 32).explain(instances: x, targets: .perInstance(targets))
                default: try ShapleyAttribution(model: m, estimator: KernelShap(seed: 0), background: background, groups: groups)
                    .explain(instances: x, targets: .perInstance(targets))
                }
            }
            result[method] = try ExplanationAgreement(try explain(first), try explain(second), k: 10)
        }
        return result
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
            let compare = agreementExamples > 0 && loaded.task.kind != .regression
            let data = try dataOptions.load(for: loaded, needTrain: finetuneEpochs > 0 || (compare && agreementMethods.contains("kernel-shap")))
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
            let prunedScore = try score()
            printLine("\(dataOptions.sourceName) test set: before \(before); pruned \(prunedScore)")
            var fineTuned: String?
            if finetuneEpochs > 0 {
                guard let train = data.train else { throw ValidationError("--finetune-epochs: no training data") }
                let trainer = try Trainer(model: net, config: TrainingConfig(epochs: finetuneEpochs, batchSize: batch, learningRate: lr,
                                                                             optimizer: optimizer, seed: seed))
                trainer.extraMetadata = metadata
                printError("fine-tuning for \(finetuneEpochs) epoch\(finetuneEpochs == 1 ? "" : "s") on \(train.count) training examples (pruned weights stay zero)")
                try fitWithProgress(trainer, train: train, test: data.test, out: out, checkpoint: out + ".ckpt", log: out + ".log.jsonl")
                fineTuned = try score()
                printLine("fine-tuned: \(fineTuned!)")
            }
            var summary = Summary(model: model, out: out, amount: amount, scope: scope.rawValue, tensors: pruned, before: before,
                                  pruned: prunedScore, fineTuned: fineTuned, agreement: [:])
            if compare {
                // The original model again, and both explaining the original's predicted class.
                let original = try LoadedModel(path: model, engine: engine).model
                let count = min(agreementExamples, data.test.count)
                let examples = try (0..<count).map { try data.test.example($0) }
                let x = examples.flatMap(\.features)
                let logits = try engine.noGrad { try original(try Tensor(x, shape: [count] + original.spec.inputShape, engine: engine)).toArray() }
                let classes = original.spec.classCount
                let targets = (0..<count).map { i in (0..<classes).max { logits[i * classes + $0] < logits[i * classes + $1] } ?? 0 }
                let background = try data.train.map { try sampleBackground($0, count: min(20, $0.count), seed: 0).values } ?? []
                summary.agreement = try agreement(original, net, x: x, count: count, targets: targets, background: background)
                for (method, a) in summary.agreement.sorted(by: { $0.key < $1.key }) {
                    printLine(String(format: "explanation agreement, %@ on %d test examples (the original's predicted class): Spearman %.3f (of |φ| %.3f), top-%d overlap %.3f",
                                     method, count, a.spearman, a.spearmanAbsolute, a.k, a.topKOverlap))
                }
            }
            if finalize { net.finalizePruning() }
            try net.save(path: out, metadata: metadata)
            printLine("wrote \(out)" + (finalize ? " (masks folded away)" : " (masks kept as NAME_orig and NAME_mask)"))
            if let json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try OutputFile(path: json, allowStandardOutput: true).write(try encoder.encode(summary) + Data("\n".utf8))
            }
        }
    }
}
