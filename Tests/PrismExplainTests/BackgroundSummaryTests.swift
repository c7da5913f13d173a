import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

/// k-means and sampled background summaries against closed forms.
@Suite struct BackgroundSummaryTests {
    /// Three well-separated groups of 5, 7 and 9 points: k-means finds them, the centroids are the
    /// groups' means and the weights their sizes.
    @Test func kMeansRecoversSeparatedClusters() throws {
        var rng = SeededRandom(seed: 4)
        var data: [Float] = [], groups: [[Float]] = [[], [], []]
        for (g, (cx, cy, size)) in [(0.0, 0.0, 5), (10.0, 0.0, 7), (0.0, 10.0, 9)].enumerated() {
            for _ in 0..<size {
                let p = [Float(cx + rng.uniform(-1, 1)), Float(cy + rng.uniform(-1, 1))]
                data += p
                groups[g] += p
            }
        }
        let summary = try BackgroundSummary.kMeans(data, width: 2, k: 3, seed: 1)
        #expect(summary.count == 3 && summary.weights.reduce(0, +) == 21)
        for (g, points) in groups.enumerated() {
            let n = points.count / 2
            let mean = [(0..<n).reduce(0.0) { $0 + Double(points[2 * $1]) } / Double(n), (0..<n).reduce(0.0) { $0 + Double(points[2 * $1 + 1]) } / Double(n)]
            let c = try #require((0..<3).first { abs(Double(summary.rows[2 * $0]) - mean[0]) < 1e-4 && abs(Double(summary.rows[2 * $0 + 1]) - mean[1]) < 1e-4 },
                                 "group \(g): no centroid at \(mean) in \(summary.rows)")
            #expect(summary.weights[c] == Float(n))
        }
    }

    /// The weighted centroids keep the data's mean, so a linear model's Shapley values and base value
    /// against the summary equal those against the whole background: w_j (x_j − mean_j).
    @Test func weightedCentroidsKeepTheMeanAndLinearShapleyValues() throws {
        let width = 6, n = 40
        let data = seededFloats(n * width, seed: 9)
        let summary = try BackgroundSummary.kMeans(data, width: width, k: 5, seed: 2)
        for j in 0..<width {
            let mean = (0..<n).reduce(0.0) { $0 + Double(data[$1 * width + j]) } / Double(n)
            let weighted = (0..<summary.count).reduce(0.0) { $0 + Double(summary.weights[$1]) * Double(summary.rows[$1 * width + j]) } / Double(n)
            #expect(abs(weighted - mean) <= 1e-5, "column \(j)")
        }
        let engine = try testEngine()
        let model = try Model(spec: try ModelSpec.mlp(inputShape: [width], hidden: [], classes: 2), seed: 3, engine: engine)
        let x = seededFloats(width, seed: 10)
        let full = try ExactShapley().explain(try DeviceGame(model: model, instance: x, background: data))
        let small = try ExactShapley().explain(try DeviceGame(model: model, instance: x, background: summary.rows, backgroundWeights: summary.weights))
        for (a, b) in zip(full.values, small.values) { #expect(abs(a - b) <= 1e-4) }
        for (a, b) in zip(full.baseValues!, small.baseValues!) { #expect(abs(a - b) <= 1e-4) }
        #expect(small.modelEvaluations < full.modelEvaluations)
    }

    @Test func roundingSampleAndBadInput() throws {
        let data: [Float] = [0, 1, 0, 2, 1, 1, 5, 7, 6, 7, 5, 9]
        let rounded = try BackgroundSummary.kMeans(data, width: 2, k: 2, seed: 0, roundToData: true)
        for c in 0..<rounded.count {
            #expect([0, 1, 5, 6].contains(rounded.rows[2 * c]) && [1, 2, 7, 9].contains(rounded.rows[2 * c + 1]), "\(rounded.rows)")
        }
        let sample = try BackgroundSummary.sample(data, width: 2, k: 3, seed: 5)
        let again = try BackgroundSummary.sample(data, width: 2, k: 3, seed: 5)
        #expect(sample.weights == [1, 1, 1])
        #expect(sample == again)
        let rows = Set((0..<6).map { [data[2 * $0], data[2 * $0 + 1]] })
        let picked = (0..<3).map { [sample.rows[2 * $0], sample.rows[2 * $0 + 1]] }
        #expect(picked.allSatisfy { rows.contains($0) } && Set(picked).count == 3)
        #expect(throws: ExplainError.self) { try BackgroundSummary.kMeans(data, width: 2, k: 7) }
        #expect(throws: ExplainError.self) { try BackgroundSummary.sample(data, width: 5, k: 1) }
    }
}
