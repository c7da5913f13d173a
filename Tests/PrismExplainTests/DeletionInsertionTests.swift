import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

@Suite struct DeletionInsertionTests {
    /// A linear model that reads 6 of 36 pixels: the curves of its gradient × input attribution are
    /// exact partial sums, deletion falls below and insertion rises above the random order.
    @Test(arguments: [1, 1000])
    func trueAttributionBeatsRandomOnAKnownModel(rowsPerChunk: Int) throws {
        let engine = try testEngine()
        var weight = [Float](repeating: 0, count: 2 * 36)
        let relevant = [3, 8, 14, 20, 27, 33]
        for (k, p) in relevant.enumerated() { weight[36 + p] = Float(k + 1) }  // class 1 reads them
        let wt = try Tensor(weight, shape: [2, 36], engine: engine)
        let model = DifferentiableModel(engine: engine, inputShape: [1, 6, 6], classCount: 2) { x in
            try linear(x.reshaped([x.shape[0], 36]), weight: wt, bias: nil)
        }
        let x = seededFloats(36, seed: 81, low: 0.5, high: 1)
        let e = try GradientTimesInput(model: model).explain(instances: x, targets: .classes([1]))
        let metric = DeletionInsertion(model: model, groups: .elements(36), steps: 36, probabilities: false, seed: 0, rowsPerChunk: rowsPerChunk)
        let curves = try metric.curves(explanation: e, instance: 0, output: 0, target: 1, instances: x)
        // Exact curves: the k most relevant pixels removed (deletion) or kept (insertion).
        let contributions = relevant.map { Double(weight[36 + $0]) * Double(x[$0]) }.sorted(by: >)
        let total = contributions.reduce(0, +)
        for k in 0...36 {
            let top = contributions.prefix(k).reduce(0, +)
            #expect(abs(curves.deletion[k] - (total - top)) < 1e-5, "deletion at \(k)")
            #expect(abs(curves.insertion[k] - top) < 1e-5, "insertion at \(k)")
        }
        #expect(abs(curves.randomDeletion[0] - total) < 1e-5 && abs(curves.randomDeletion[36]) < 1e-5)
        // With positive contributions the attribution order is the best possible, so it beats any
        // random order (here strictly: the random order does not start with the six pixels).
        #expect(curves.deletionAUC < curves.randomDeletionAUC, "deletion \(curves.deletionAUC) vs random \(curves.randomDeletionAUC)")
        #expect(curves.insertionAUC > curves.randomInsertionAUC, "insertion \(curves.insertionAUC) vs random \(curves.randomInsertionAUC)")
    }

    /// Superpixel groups and softmax probabilities: element attributions are summed per cell, and
    /// the end points are the probabilities of the input and of the baseline.
    @Test func superpixelsAndProbabilities() throws {
        let engine = try testEngine()
        let linear = AttributionLinearModel(inputShape: [1, 4, 4], classes: 3, seed: 82)
        let model = try linear.model(engine)
        let x = seededFloats(16, seed: 83)
        let e = try Saliency(model: model, absolute: false).explain(instances: x, targets: .classes([2]))
        let groups = try FeatureGroups.grid(channels: 1, height: 4, width: 4, cell: 2)
        let curves = try DeletionInsertion(model: model, groups: groups, steps: 2, baseline: .constant(0.1))
            .curves(explanation: e, instance: 0, output: 0, target: 2, instances: x)
        #expect(curves.fractions == [0, 0.5, 1])
        func probability(_ z: [Float]) -> Double {
            let logits = (0..<3).map { linear.output(z, $0) }
            return exp(logits[2]) / logits.reduce(0) { $0 + exp($1) }
        }
        let base = [Float](repeating: 0.1, count: 16)
        #expect(abs(curves.deletion[0] - probability(x)) < 1e-5 && abs(curves.deletion[2] - probability(base)) < 1e-5)
        #expect(abs(curves.insertion[0] - probability(base)) < 1e-5 && abs(curves.insertion[2] - probability(x)) < 1e-5)
    }
}
