import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

/// Faithfulness correlation and max-sensitivity against quantus 0.6 on an imported PyTorch CNN with
/// the subsets and noise Quantus drew (`Tests/Fixtures/make_quantus_fixture.py`), and their own
/// seeded draws.
@Suite struct FaithfulnessCorrelationTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path

    @Test func equalsQuantusOnTheSameSubsets() throws {
        let engine = try testEngine()
        let file = try SafetensorsFile.read(path: Self.fixtures + "/quantus.safetensors")
        let (net, _) = try Model.load(path: Self.fixtures + "/onnx/quantus_cnn.onnx", engine: engine)
        let x = try file.tensor("x").values, a = try file.tensor("a").values.map(Double.init)
        let y = try file.tensor("y").values.map { Int($0) }, subsets = try file.tensor("subsets").values.map { Int($0) }
        let expected = try file.tensor("scores").values
        let metric = FaithfulnessCorrelation(model: DifferentiableModel(net), runs: 20, subsetSize: 30)
        for i in 0..<2 {
            let given = (0..<20).map { r in Array(subsets[((r * 2 + i) * 30)..<((r * 2 + i + 1) * 30)]) }
            let score = try #require(try metric.score(instance: Array(x[(i * 100)..<((i + 1) * 100)]), attributions: Array(a[(i * 100)..<((i + 1) * 100)]),
                                                      target: y[i], subsets: given))
            #expect(abs(score - Double(expected[i])) <= 1e-4, "instance \(i): \(score) vs quantus \(expected[i])")
        }
    }

    @Test func maxSensitivityEqualsQuantusOnTheSameNoise() throws {
        let engine = try testEngine()
        let file = try SafetensorsFile.read(path: Self.fixtures + "/quantus.safetensors")
        let (net, _) = try Model.load(path: Self.fixtures + "/onnx/quantus_cnn.onnx", engine: engine)
        let x = try file.tensor("x").values, a = try file.tensor("a").values.map(Double.init), y = try file.tensor("y").values.map { Int($0) }
        let method = GradientTimesInput(model: DifferentiableModel(net))
        let metric = MaxSensitivity(method: method, elementCount: 100, samples: 10)
        let scores = try metric.scores(instances: x, attributions: a, targets: y, noise: try file.tensor("noise").values)
        let expected = try file.tensor("max_sensitivity").values
        for i in 0..<2 {
            let score = try #require(scores[i])
            #expect(abs(score - Double(expected[i])) <= 1e-4 * max(1, Double(expected[i])), "instance \(i): \(score) vs quantus \(expected[i])")
        }
        // Its own noise: seeded, within the radius, and a sensitivity of the same order.
        let own = MaxSensitivity(method: method, elementCount: 100, samples: 10, seed: 3)
        #expect(own.noise(instance: 1, sample: 4) == own.noise(instance: 1, sample: 4) && own.noise(instance: 1, sample: 4).allSatisfy { abs($0) <= 0.2 })
        let seeded = try own.scores(instances: x, attributions: a, targets: y)
        for i in 0..<2 { #expect(try #require(seeded[i]) > 0.1 && seeded[i]! < 5) }
    }

    @Test func seededSubsetsAreDistinctAndReproducible() throws {
        let engine = try testEngine()
        let net = try AttributionNetworks.cnn(engine)
        let metric = FaithfulnessCorrelation(model: DifferentiableModel(net), runs: 30, subsetSize: 25, seed: 4)
        let subsets = metric.subsets(instance: 1)
        #expect(subsets.count == 30 && subsets.allSatisfy { Set($0).count == 25 && $0.allSatisfy { (0..<100).contains($0) } })
        #expect(metric.subsets(instance: 1) == subsets && metric.subsets(instance: 2) != subsets)
        let x = seededFloats(100, seed: 5, low: 0, high: 1)
        #expect(try metric.score(instance: x, attributions: [Double](repeating: 0, count: 100), target: 0) == nil)
        #expect(throws: ExplainError.self) { try metric.score(instance: x, attributions: [1, 2], target: 0) }
    }
}
