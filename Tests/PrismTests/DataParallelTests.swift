import Foundation
import Prism
import PrismCL
import PrismGraph
import PrismTestSupport
import Testing

/// Data-parallel training (`Trainer.replicate(on:)`) against one-device training at the same batch:
/// two engines (two contexts of the test device; the CLI tests run two PoCL devices), 20 steps. The copies stay bit-identical to each other and equal the one-device weights up
/// to the order of summation (1e-5 with SGD, 1e-4 with Adam, as the scale-out issue asks).
@Suite struct DataParallelTests {
    /// With `dropout`, a Dropout layer after the hidden ReLU: each copy must draw the whole batch's masks.
    static func spec(dropout: Bool = false) -> ModelSpec {
        ModelSpec(architecture: "custom", inputShape: [12], classCount: 3, layers: [.linear(inFeatures: 12, outFeatures: 16), .relu]
                  + (dropout ? [.dropout(probability: 0.3)] : []) + [.linear(inFeatures: 16, outFeatures: 3)])
    }

    static func data() throws -> LabeledData {
        let n = 330   // 20 full steps of 16 and one of 10: slices of 8/8 and 5/5
        return try LabeledData(features: seededFloats(n * 12, seed: 61), labels: (0..<n).map { Int32(($0 * 7) % 3) },
                               exampleShape: [12], classCount: 3)
    }

    @Test(arguments: [(OptimizerKind.sgd, 1e-5, false), (.adam, 1e-4, false), (.sgd, 1e-5, true), (.adam, 1e-4, true)] as [(OptimizerKind, Double, Bool)])
    func twoDevicesTrainAsOne(optimizer: OptimizerKind, tolerance: Double, dropout: Bool) throws {
        let engine = try testEngine()
        var settings = Settings.current
        settings.device = settings.device ?? "cpu"
        let second = try Engine(settings: settings)
        let config = TrainingConfig(epochs: 1, batchSize: 16, learningRate: optimizer == .sgd ? 0.1 : 0.01, optimizer: optimizer, seed: 5)
        let train = try Self.data()

        let alone = try Trainer(model: try Model(spec: Self.spec(dropout: dropout), seed: 5, engine: engine), config: config)
        try alone.fit(train: train)
        let shared = try Trainer(model: try Model(spec: Self.spec(dropout: dropout), seed: 5, engine: engine), config: config)
        try shared.replicate(on: [second])
        var losses: [Double] = []
        try shared.fit(train: train, epochEnd: { losses.append($0.trainLoss) })

        #expect(shared.examplesPerDevice == [165, 165])
        let one = try alone.model.stateDict(), first = try shared.model.stateDict(), copy = try shared.replicas[0].model.stateDict()
        for (name, tensor) in one {
            #expect(first[name] == copy[name], "\(name): the two copies differ")
            let difference = zip(tensor.values, first[name]!.values).map { Double(abs($0 - $1)) }.max() ?? 0
            #expect(difference <= tolerance, "\(name): one device vs two differ by \(difference)")
        }
        #expect(abs(losses[0] - alone.reports[0].trainLoss) <= 1e-5, "loss \(losses[0]) vs \(alone.reports[0].trainLoss)")
    }

    /// Evaluation on two copies takes contiguous runs of the same batches: exactly one device's
    /// result (loss, accuracy, confusion; regression outputs too), here 21 batches split 10/11.
    @Test func evaluationOnTwoDevicesEqualsOne() throws {
        let engine = try testEngine()
        var settings = Settings.current
        settings.device = settings.device ?? "cpu"
        let second = try Engine(settings: settings)
        let model = try Model(spec: Self.spec(), seed: 9, engine: engine)
        let copy = try Model(spec: Self.spec(), seed: 9, engine: second)
        let data = try Self.data()
        let one = try evaluate(model, on: data, batchSize: 16), two = try evaluate([model, copy], on: data, batchSize: 16)
        #expect(one.loss == two.loss && one.accuracy == two.accuracy && one.confusion == two.confusion && two.count == 330)
        #expect(try predictValues([model, copy], data, batchSize: 16) == predictValues(model, data, batchSize: 16))
        #expect(try predictValues([model, copy], data, batchSize: 16).count == 330 * 3)
    }

    @Test func batchNormIsRefused() throws {
        let engine = try testEngine()
        let spec = ModelSpec(architecture: "custom", inputShape: [4], classCount: 2, nodes: [
            NodeSpec(name: "norm", op: "batchnorm1d", attributes: ["num_features": .int(4)]),
            NodeSpec(name: "head", op: "linear", attributes: ["in_features": .int(4), "out_features": .int(2)]),
        ])
        let trainer = try Trainer(model: try Model(spec: spec, seed: 1, engine: engine), config: TrainingConfig())
        do {
            try trainer.replicate(on: [engine])
            Issue.record("BatchNorm should be refused")
        } catch let error as TrainingError {
            #expect(error.message.contains("does not synchronize BatchNorm statistics"), "\(error)")
        }
    }
}
