import Foundation
import Prism
import PrismTestSupport
import Testing

/// The committed Fashion-MNIST subset: 600 training and 200 test images.
func fixtureImages() throws -> (train: LabeledData, test: LabeledData) {
    let folder = fixture("fashion-mnist-subset")
    return (try LabeledData(try ImageDataset.loadMNISTFormat(directory: folder, split: .train)),
            try LabeledData(try ImageDataset.loadMNISTFormat(directory: folder, split: .test)))
}

func temporaryPath(_ name: String) -> String {
    NSTemporaryDirectory() + "prism-\(getpid())-\(UUID().uuidString.prefix(8))-\(name)"
}

@Suite(.serialized) struct TrainingTests {
    /// One epoch of the reference CNN over 600 Fashion-MNIST images: well above chance (10%) on the
    /// 200 test images. The bar, 55%, is stated in the README; this configuration reaches 64.5%.
    @Test func oneEpochOnTheFixtureSubsetReachesSanityAccuracy() throws {
        let engine = try testEngine()
        let (train, test) = try fixtureImages()
        let model = try Model(spec: try ModelSpec.cnn(), seed: 1, engine: engine)
        let trainer = try Trainer(model: model, config: TrainingConfig(epochs: 1, batchSize: 32, learningRate: 2e-3, seed: 1))
        var reports: [EpochReport] = []
        try trainer.fit(train: train, test: test, epochEnd: { reports.append($0) })
        let report = try #require(reports.first)
        #expect(reports.count == 1)
        #expect(try #require(report.testAccuracy) >= 0.55, "test accuracy \(report.testAccuracy ?? 0)")
        #expect(report.trainLoss < 2.2)
    }

    /// Tabular data: an MLP separates the three Gaussian classes of tabular.csv.
    @Test func mlpLearnsTheTabularFixture() throws {
        let engine = try testEngine()
        let table = try TabularDataset.loadCSV(path: fixture("tabular.csv"), label: "species")
        let data = try LabeledData(try table.standardized(with: table.standardization()))
        let model = try Model(spec: try ModelSpec.mlp(inputShape: [4], hidden: [16], classes: 3), seed: 3, engine: engine)
        let trainer = try Trainer(model: model, config: TrainingConfig(epochs: 30, batchSize: 16, learningRate: 1e-2, seed: 3))
        try trainer.fit(train: data)
        #expect(try evaluate(model, on: data).accuracy >= 0.9)
    }

    /// `maxGradNorm`: one plain SGD step moves every weight by the unclipped step × limit / ‖g‖, where
    /// ‖g‖ is read off the unclipped step (Δw = −lr·g), and a limit above ‖g‖ changes nothing.
    @Test func gradientClippingScalesTheStepByTheGlobalNorm() throws {
        let engine = try testEngine()
        let table = try TabularDataset.loadCSV(path: fixture("tabular.csv"), label: "species")
        let data = try LabeledData(try table.standardized(with: table.standardization()))
        let spec = try ModelSpec.mlp(inputShape: [4], hidden: [8], classes: 3)
        func step(_ limit: Float?) throws -> [Double] {
            let model = try Model(spec: spec, seed: 5, engine: engine)
            let before = try model.namedParameters.flatMap { try $0.1.toArray() }
            let config = TrainingConfig(epochs: 1, batchSize: data.count, learningRate: 0.1, optimizer: .sgd, seed: 5, momentum: 0,
                                        weightDecay: 0, maxGradNorm: limit)
            try Trainer(model: model, config: config).fit(train: data)
            let after = try model.namedParameters.flatMap { try $0.1.toArray() }
            return zip(after, before).map { Double($0) - Double($1) }
        }
        let free = try step(nil)
        let norm = free.reduce(0) { $0 + $1 * $1 }.squareRoot() / 0.1
        #expect(norm > 0.05)
        let limit = Float(norm / 4)
        let clipped = try step(limit)
        let scale = Double(limit) / (norm + 1e-6)
        for (c, f) in zip(clipped, free) { #expect(abs(c - f * scale) <= 1e-6 + 1e-3 * abs(f * scale)) }
        #expect(try step(Float(norm * 2)) == free)
        #expect(throws: TrainingError.self) { try Trainer(model: try Model(spec: spec, seed: 5, engine: engine), config: TrainingConfig(maxGradNorm: 0)) }
    }

    /// Two epochs straight, or one epoch, a stop, and a resume from the checkpoint: the same weights.
    @Test func resumedRunEndsWithTheSameWeights() throws {
        let engine = try testEngine()
        let (fullTrain, _) = try fixtureImages()
        let train = try fullTrain.prefix(160)
        let spec = try ModelSpec.mlp(inputShape: [1, 28, 28], hidden: [32], classes: 10)
        let config = TrainingConfig(epochs: 2, batchSize: 32, learningRate: 1e-3, optimizer: .adam, seed: 9)

        let straight = try Trainer(model: try Model(spec: spec, seed: 9, engine: engine), config: config)
        try straight.fit(train: train)

        let checkpoint = temporaryPath("resume.ckpt")
        defer { try? FileManager.default.removeItem(atPath: checkpoint) }
        var firstConfig = config
        firstConfig.epochs = 1
        let first = try Trainer(model: try Model(spec: spec, seed: 9, engine: engine), config: firstConfig)
        try first.fit(train: train, checkpoint: checkpoint)
        let resumed = try Trainer.resume(path: checkpoint, epochs: 2, engine: engine)
        #expect(resumed.epochsDone == 1)
        try resumed.fit(train: train, checkpoint: checkpoint)
        #expect(resumed.epochsDone == 2)
        for ((name, a), (_, b)) in zip(straight.model.namedParameters, resumed.model.namedParameters) {
            #expect(try a.toArray() == b.toArray(), "parameter \(name) differs after resume")
        }
    }

    /// A NaN loss stops the run, names epoch and step, and leaves the last checkpoint as it was.
    @Test func nonFiniteLossStopsAndKeepsTheCheckpoint() throws {
        let engine = try testEngine()
        let (fullTrain, _) = try fixtureImages()
        var train = try fullTrain.prefix(64)
        let spec = try ModelSpec.mlp(inputShape: [1, 28, 28], hidden: [8], classes: 10)
        let checkpoint = temporaryPath("nan.ckpt")
        defer { try? FileManager.default.removeItem(atPath: checkpoint) }
        let trainer = try Trainer(model: try Model(spec: spec, seed: 1, engine: engine),
                                  config: TrainingConfig(epochs: 1, batchSize: 16, seed: 1))
        try trainer.fit(train: train, checkpoint: checkpoint)
        let saved = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        // Every example poisoned: the first step of epoch 2 fails.
        train.features = train.features.map { _ in Float.nan }
        let again = try Trainer.resume(path: checkpoint, epochs: 2, engine: engine)
        #expect(throws: TrainingError("training: loss is nan at epoch 2, step 1 of 4; stopped (the last checkpoint is kept)")) {
            try again.fit(train: train, checkpoint: checkpoint)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: checkpoint)) == saved)
    }

    @Test func dataThatDoesNotFitTheModelIsRejected() throws {
        let engine = try testEngine()
        let data = try LabeledData(features: [Float](repeating: 0, count: 20), labels: [0, 1, 0, 1], exampleShape: [5], classCount: 2)
        let model = try Model(spec: try ModelSpec.mlp(inputShape: [4], classes: 2), seed: 1, engine: engine)
        let trainer = try Trainer(model: model, config: TrainingConfig(epochs: 1))
        #expect(throws: DataError("training data: examples have shape [5], the model expects [4]")) {
            try trainer.fit(train: data)
        }
    }
}
