import Foundation
import PrismFiles

/// Which optimizer `Trainer` builds.
public enum OptimizerKind: String, Codable, Sendable, CaseIterable {
    case adam, adamw, sgd
}

/// The settings of one training run (saved with checkpoints, so `resume` continues the same run).
public struct TrainingConfig: Codable, Equatable, Sendable {
    public var epochs: Int
    public var batchSize: Int
    public var learningRate: Float
    public var optimizer: OptimizerKind
    public var seed: UInt64
    /// SGD momentum (ignored by Adam).
    public var momentum: Float
    /// L2 (Adam, SGD) or decoupled (AdamW) weight decay; nil means the optimizer's default.
    public var weightDecay: Float?
    /// Clip the gradients' global 2-norm to this before every step (`torch.nn.utils.clip_grad_norm_`); nil: no clipping.
    public var maxGradNorm: Float?

    public init(epochs: Int = 3, batchSize: Int = 64, learningRate: Float = 1e-3, optimizer: OptimizerKind = .adam,
                seed: UInt64 = 0, momentum: Float = 0.9, weightDecay: Float? = nil, maxGradNorm: Float? = nil) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.optimizer = optimizer
        self.seed = seed
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.maxGradNorm = maxGradNorm
    }

    func validate() throws {
        guard epochs >= 1 else { throw TrainingError("training: epochs must be at least 1, got \(epochs)") }
        guard batchSize >= 1 else { throw TrainingError("training: batch size must be at least 1, got \(batchSize)") }
        guard learningRate > 0, learningRate.isFinite else { throw TrainingError("training: learning rate must be positive, got \(learningRate)") }
        if let maxGradNorm, !(maxGradNorm > 0 && maxGradNorm.isFinite) {
            throw TrainingError("training: the gradient-norm limit must be positive, got \(maxGradNorm)")
        }
    }
}

/// A training run that cannot go on (a non-finite loss, a checkpoint that does not fit).
public struct TrainingError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Where an epoch stands, reported after every step.
public struct StepProgress: Sendable {
    public var epoch: Int
    public var step: Int
    public var steps: Int
    /// Mean loss and accuracy over the epoch so far (no accuracy for a regression model).
    public var loss: Double
    public var accuracy: Double?
    public var examplesPerSecond: Double
    /// Seconds left in the epoch at the current rate.
    public var secondsLeft: Double
}

/// One finished epoch.
public struct EpochReport: Codable, Sendable {
    public var epoch: Int
    /// Mean cross-entropy (classifier) or mean squared error (regression model) over the epoch.
    public var trainLoss: Double
    /// Classifiers only.
    public var trainAccuracy: Double?
    public var testLoss: Double?
    /// Classifiers only.
    public var testAccuracy: Double?
    /// Regression models only: the test set's coefficient of determination.
    public var testR2: Double?
    public var examplesPerSecond: Double
    public var seconds: Double
    /// Data-parallel training only: the examples each device trained on in this epoch (first device first).
    public var examplesPerDevice: [Int]?
    /// Training over several processes only: the examples each process trained on in this epoch, by rank.
    public var examplesPerRank: [Int]?
    /// Training over several processes only: this process's seconds in the gradient sums of this epoch
    /// (waiting for the slowest process included), and the bytes it gave them.
    public var allreduceSeconds: Double?
    public var allreduceBytes: Int?

    enum CodingKeys: String, CodingKey {
        case epoch, seconds
        case examplesPerDevice = "examples_per_device", examplesPerRank = "examples_per_rank"
        case allreduceSeconds = "allreduce_seconds", allreduceBytes = "allreduce_bytes"
        case trainLoss = "train_loss", trainAccuracy = "train_accuracy", testLoss = "test_loss"
        case testAccuracy = "test_accuracy", examplesPerSecond = "examples_per_second", testR2 = "test_r2"
    }
}

/// Training a student on a teacher's outputs as well as the labels (`Trainer.distillation`).
public struct Distillation {
    /// The model whose outputs the student learns; on the student's engine, same input and output shapes.
    public var teacher: Model
    /// T of `distillationLoss`.
    public var temperature: Float
    /// The weight of the teacher's term.
    public var alpha: Float
    public init(teacher: Model, temperature: Float = 4, alpha: Float = 0.7) {
        (self.teacher, self.temperature, self.alpha) = (teacher, temperature, alpha)
    }
}

/// Mini-batch training of a `Model` model, with cross-entropy for a classifier and mean squared
/// error for a regression model (`ModelSpec.task`), seeded end to end: the same
/// seed gives the same weights, and a run resumed from a checkpoint ends where an uninterrupted one does.
///
/// Checkpoints are safetensors files holding the parameters (PyTorch names), the optimizer state
/// (`optimizer.<key>`) and, in the metadata, the spec, the config and the number of finished epochs.
public final class Trainer {
    public let model: Model
    public let config: TrainingConfig
    public let optimizer: Optimizer
    /// Epochs finished so far.
    public private(set) var epochsDone = 0
    /// The report of every finished epoch, kept in the checkpoint with the weights, so that a log
    /// written from them after each checkpoint can be rebuilt from the checkpoint alone.
    public private(set) var reports: [EpochReport] = []
    /// Metadata written into every checkpoint and kept across `resume` (data source, class names,
    /// standardization).
    public var extraMetadata: [String: String] = [:]
    /// When set, every step's loss is `distillationLoss` of the model's outputs against the teacher's
    /// (computed on the device per batch) and the labels, instead of the cross-entropy: knowledge
    /// distillation. One device, classifiers only; not kept in checkpoints.
    public var distillation: Distillation?

    /// Copies of `model` on further devices for data-parallel training (`replicate(on:)`); empty: one device.
    public internal(set) var replicas: [(model: Model, optimizer: Optimizer)] = []
    /// Examples each device trained on in this process: `model`'s device first, then the replicas'.
    public internal(set) var examplesPerDevice: [Int] = [0]
    /// The processes this one trains with (`join(_:)`), each taking its slice of every batch; nil: this process alone.
    public internal(set) var processGroup: ProcessGroup?
    /// With a process group: the examples each process trained on, by rank (every process knows them all).
    public internal(set) var examplesPerRank: [Int] = []
    /// With a process group: seconds spent in its sums, and bytes given to them, so far.
    public internal(set) var allreduceSeconds = 0.0, allreduceBytes = 0

    public static let stateMetadataKey = "prism.training"
    /// The name prefix of a checkpoint's optimizer-state tensors (`optimizer.<key>`).
    public static let optimizerTensorPrefix = "optimizer."

    struct SavedState: Codable {
        var epochsDone: Int
        var config: TrainingConfig
        var dropoutCalls: [UInt64]
        /// Every finished epoch's report (absent in checkpoints written before it was kept).
        var reports: [EpochReport]?
    }

    public init(model: Model, config: TrainingConfig) throws {
        try config.validate()
        self.model = model
        self.config = config
        let parameters = model.parameters
        switch config.optimizer {
        case .adam: optimizer = try Adam(parameters, lr: config.learningRate, weightDecay: config.weightDecay ?? 0)
        case .adamw: optimizer = try Adam.adamW(parameters, lr: config.learningRate, weightDecay: config.weightDecay ?? 0.01)
        case .sgd: optimizer = try SGD(parameters, lr: config.learningRate, momentum: config.momentum, weightDecay: config.weightDecay ?? 0)
        }
    }

    /// Trains epochs `epochsDone + 1 … config.epochs`.
    /// - Parameters:
    ///   - train: the training examples (their shape must be the model's input shape).
    ///   - test: evaluated after each epoch when given.
    ///   - checkpoint: written atomically after each epoch when given.
    ///   - progress: called after every step.
    ///   - epochEnd: called after every epoch, after the checkpoint is written.
    /// - Throws: `TrainingError` on a non-finite loss (naming epoch and step; the last checkpoint stays
    ///   as it was), `TensorError`/`DataError` when the data does not fit the model.
    public func fit(train: LabeledData, test: LabeledData? = nil, checkpoint: String? = nil,
                    progress: (StepProgress) -> Void = { _ in }, epochEnd: (EpochReport) throws -> Void = { _ in }) throws {
        try checkFits(train, "training data")
        if let test { try checkFits(test, "test data") }
        guard train.count > 0 else { throw TrainingError("training: no training examples") }
        if let distillation { try check(distillation) }
        let engine = model.engine
        let batch = config.batchSize
        let steps = (train.count + batch - 1) / batch
        let regression = model.spec.isRegression
        var features: [Float] = [], labels: [Int32] = [], targets: [Float] = []
        while epochsDone < config.epochs {
            let epoch = epochsDone + 1
            let order = seededPermutation(train.count, seed: config.seed &+ UInt64(epoch) &* 0x9E37_79B9)
            let start = DispatchTime.now().uptimeNanoseconds
            let examplesBefore = examplesPerDevice
            var lossSum = 0.0, correct = 0, seen = 0
            // The next batch is gathered on the host and its upload enqueued while the device still
            // computes the current step (the queue is in order, so it lands after the step's kernels).
            func upload(_ step: Int) throws -> (x: Tensor, labels: [Int32], targets: Tensor?) {
                let indices = order[(step * batch)..<min((step + 1) * batch, train.count)]
                train.gather(indices, into: &features, labels: &labels)
                let storage = try engine.buffer(count: features.count)
                try storage.writeAsync(features)
                var y: Tensor?
                if regression {
                    train.gatherTargets(indices, into: &targets)
                    y = try Tensor(targets, shape: [indices.count, train.targetWidth], engine: engine)
                }
                return (try Tensor(engine: engine, shape: [indices.count] + train.exampleShape, storage: storage), labels, y)
            }
            let split = !replicas.isEmpty || processGroup != nil
            let ranksBefore = examplesPerRank, sumsBefore = (allreduceSeconds, allreduceBytes)
            var next = split ? nil : try upload(0)
            for step in 0..<steps where split {
                let (value, rows, right) = try dataParallelStep(order[(step * batch)..<min((step + 1) * batch, train.count)], train: train)
                guard value.isFinite else {
                    throw TrainingError("training: loss is \(value) at epoch \(epoch), step \(step + 1) of \(steps); stopped (the last checkpoint is kept)")
                }
                correct += right
                lossSum += value * Double(rows)
                seen += rows
                let rate = Double(seen) / max(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9, 1e-9)
                progress(StepProgress(epoch: epoch, step: step + 1, steps: steps, loss: lossSum / Double(seen),
                                      accuracy: regression ? nil : Double(correct) / Double(seen), examplesPerSecond: rate,
                                      secondsLeft: Double(train.count - seen) / rate))
            }
            for step in 0..<steps where !split {
                let (x, batchLabels, batchTargets) = next!
                let logits = try model(x, training: true)
                let loss: Tensor
                if let batchTargets {
                    loss = try mseLoss(logits, batchTargets)
                } else if let distillation {
                    let teacher = try engine.noGrad { try distillation.teacher(x) }
                    loss = try distillationLoss(logits, teacher: teacher, labels: batchLabels, temperature: distillation.temperature, alpha: distillation.alpha)
                } else {
                    loss = try crossEntropy(logits, labels: batchLabels)
                }
                optimizer.zeroGrad()
                try loss.backward()
                if let maxGradNorm = config.maxGradNorm { try clipGradNorm(model.parameters, maxNorm: maxGradNorm) }
                try optimizer.step()
                // A pruned model's pruned weights stay zero.
                try model.applyMasks()
                if step + 1 < steps { next = try upload(step + 1) }
                let value = Double(try loss.item())
                guard value.isFinite else {
                    throw TrainingError("training: loss is \(value) at epoch \(epoch), step \(step + 1) of \(steps); stopped (the last checkpoint is kept)")
                }
                let rows = x.shape[0]
                if !regression { correct += try countCorrect(logits, batchLabels) }
                lossSum += value * Double(rows)
                seen += rows
                examplesPerDevice[0] += rows
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
                let rate = Double(seen) / max(elapsed, 1e-9)
                progress(StepProgress(epoch: epoch, step: step + 1, steps: steps, loss: lossSum / Double(seen),
                                      accuracy: regression ? nil : Double(correct) / Double(seen), examplesPerSecond: rate,
                                      secondsLeft: Double(train.count - seen) / rate))
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
            var report = EpochReport(epoch: epoch, trainLoss: lossSum / Double(seen),
                                     trainAccuracy: regression ? nil : Double(correct) / Double(seen),
                                     examplesPerSecond: Double(seen) / seconds, seconds: seconds,
                                     examplesPerDevice: replicas.isEmpty ? nil : zip(examplesPerDevice, examplesBefore).map { $0 - $1 })
            if processGroup != nil {
                report.examplesPerRank = zip(examplesPerRank, ranksBefore).map { $0 - $1 }
                (report.allreduceSeconds, report.allreduceBytes) = (allreduceSeconds - sumsBefore.0, allreduceBytes - sumsBefore.1)
            }
            if let test, regression {
                let result = try evaluateRegression(model, on: test, batchSize: max(batch, 256))
                report.testLoss = result.mse
                report.testR2 = result.r2.isFinite ? result.r2 : nil
            } else if let test {
                let result = try evaluate(model, on: test, batchSize: max(batch, 256))
                report.testLoss = result.loss
                report.testAccuracy = result.accuracy
            }
            epochsDone = epoch
            reports.append(report)
            if let checkpoint { try saveCheckpoint(path: checkpoint) }
            try epochEnd(report)
        }
    }

    private func check(_ d: Distillation) throws {
        guard replicas.isEmpty, processGroup == nil else { throw TrainingError("distillation: trains on one device in one process") }
        guard !model.spec.isRegression, !d.teacher.spec.isRegression else { throw TrainingError("distillation: the student and the teacher must be classifiers") }
        guard d.teacher.engine === model.engine else { throw TrainingError("distillation: the teacher must be on the student's device") }
        guard d.teacher.spec.inputShape == model.spec.inputShape, d.teacher.spec.classCount == model.spec.classCount else {
            throw TrainingError("distillation: the teacher takes \(d.teacher.spec.inputShape) and gives \(d.teacher.spec.classCount) outputs; the student takes \(model.spec.inputShape) and gives \(model.spec.classCount)")
        }
        guard d.temperature > 0, d.temperature.isFinite, d.alpha >= 0, d.alpha <= 1 else {
            throw TrainingError("distillation: temperature \(d.temperature) must be positive and alpha \(d.alpha) in [0, 1]")
        }
    }

    private func checkFits(_ data: LabeledData, _ what: String) throws {
        guard data.exampleShape == model.spec.inputShape else {
            throw DataError("\(what): examples have shape \(data.exampleShape), the model expects \(model.spec.inputShape)")
        }
        if model.spec.isRegression {
            guard data.isRegression else { throw DataError("\(what): class labels, but the model is a regression model (it needs numeric targets)") }
            guard data.targetWidth == model.spec.classCount else {
                throw DataError("\(what): \(data.targetWidth) targets per example, the model has \(model.spec.classCount) outputs")
            }
            return
        }
        guard !data.isRegression else { throw DataError("\(what): numeric targets, but the model is a classifier (it needs class labels)") }
        guard data.classCount <= model.spec.classCount else {
            throw DataError("\(what): \(data.classCount) classes, the model has \(model.spec.classCount) outputs")
        }
    }

    // MARK: checkpoints

    /// Writes parameters, optimizer state and progress to `path` atomically.
    public func saveCheckpoint(path: String) throws {
        var tensors = try model.stateDict()
        for (key, values) in try optimizer.state() {
            tensors[Self.optimizerTensorPrefix + key] = HostTensor(shape: [values.count], values: values)
        }
        let dropoutCalls = model.ops.compactMap { ($0 as? Dropout)?.calls }
        let state = SavedState(epochsDone: epochsDone, config: config, dropoutCalls: dropoutCalls, reports: reports)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var metadata = extraMetadata
        metadata[Model.specMetadataKey] = try model.spec.json()
        metadata[Self.stateMetadataKey] = String(decoding: try encoder.encode(state), as: UTF8.self)
        try SafetensorsFile(tensors: tensors, metadata: metadata).write(to: OutputFile(path: path, sync: true))
    }

    /// A trainer that continues the run saved at `path` (its spec, config, weights and optimizer state).
    /// - Parameter epochs: a new total number of epochs (nil keeps the saved one).
    /// - Throws: `DataError` naming the file when it is not a Prism checkpoint.
    public static func resume(path: String, epochs: Int? = nil, engine: Engine) throws -> Trainer {
        let (model, file) = try Model.load(path: path, engine: engine)
        guard let json = file.metadata[stateMetadataKey],
              let state = try? JSONDecoder().decode(SavedState.self, from: Data(json.utf8)) else {
            throw DataError("\(path): not a Prism training checkpoint (no '\(stateMetadataKey)' metadata)")
        }
        var config = state.config
        if let epochs { config.epochs = epochs }
        let trainer = try Trainer(model: model, config: config)
        var optimizerState: [String: [Float]] = [:]
        for (name, tensor) in file.tensors where name.hasPrefix(optimizerTensorPrefix) {
            guard tensor.values.allSatisfy(\.isFinite) else {
                throw DataError("\(path): optimizer tensor \(displayed(name)) holds NaN or infinite values")
            }
            optimizerState[String(name.dropFirst(optimizerTensorPrefix.count))] = tensor.values
        }
        do {
            try trainer.optimizer.load(state: optimizerState)
        } catch {
            throw DataError("\(path): \(error)")
        }
        let dropouts = model.ops.compactMap { $0 as? Dropout }
        for (layer, calls) in zip(dropouts, state.dropoutCalls) { layer.calls = calls }
        trainer.epochsDone = state.epochsDone
        trainer.reports = state.reports ?? []
        trainer.extraMetadata = file.metadata.filter { $0.key != Model.specMetadataKey && $0.key != stateMetadataKey }
        return trainer
    }
}

/// The number of rows of `logits` whose largest entry (first on ties) is the label.
func countCorrect(_ logits: Tensor, _ labels: [Int32]) throws -> Int {
    let values = try logits.toArray()
    let classes = logits.shape[1]
    var correct = 0
    for (row, label) in labels.enumerated() where argmax(values[(row * classes)..<((row + 1) * classes)]) == Int(label) {
        correct += 1
    }
    return correct
}

func argmax(_ values: ArraySlice<Float>) -> Int {
    var best = values.startIndex
    for i in values.indices where values[i] > values[best] { best = i }
    return best - values.startIndex
}
