import Foundation
import PrismCL
import Prism

/// Deletion and insertion curves (Petsiuk et al. 2018): features are removed (deletion, from the
/// input towards the baseline) or restored (insertion, from the baseline towards the input) in the
/// order of an attribution, most relevant first, and the target's output is recorded after each
/// step. A faithful attribution makes the deletion curve fall fast (small area) and the insertion
/// curve rise fast (large area). The same curves for a seeded random order are computed alongside.
///
/// Every point of all four curves is one coalition of a single `DeviceGame` batch on the device.
public struct DeletionInsertion {
    /// The curves of one instance and target, at fractions 0, 1/steps, …, 1 of the features.
    public struct Curves: Codable, Equatable, Sendable {
        public var fractions: [Double]
        public var deletion: [Double]
        public var insertion: [Double]
        public var randomDeletion: [Double]
        public var randomInsertion: [Double]
        /// Trapezoid areas under the curves over the fraction of features, in [0, 1] × output.
        public var deletionAUC: Double { Self.area(fractions, deletion) }
        public var insertionAUC: Double { Self.area(fractions, insertion) }
        public var randomDeletionAUC: Double { Self.area(fractions, randomDeletion) }
        public var randomInsertionAUC: Double { Self.area(fractions, randomInsertion) }

        static func area(_ x: [Double], _ y: [Double]) -> Double {
            var total = 0.0
            for k in 1..<x.count {
                let width = x[k] - x[k - 1], height = (y[k] + y[k - 1]) / 2
                total += width * height
            }
            return total
        }
    }

    public let model: DifferentiableModel
    /// The features removed together (pixels: `FeatureGroups.elements`; superpixels: `grid`).
    public var groups: FeatureGroups
    /// Points per curve after the first: step j removes round(j·features/steps) features.
    public var steps: Int
    /// What removed features are set to.
    public var baseline: AttributionBaseline
    /// Record softmax probabilities (true) or raw outputs.
    public var probabilities: Bool
    /// Seed of the random order.
    public var seed: UInt64
    /// Model rows per device batch (nil: sized from the device's memory).
    public var rowsPerChunk: Int?

    public init(model: DifferentiableModel, groups: FeatureGroups, steps: Int = 20, baseline: AttributionBaseline = .zeros,
                probabilities: Bool = true, seed: UInt64 = 0, rowsPerChunk: Int? = nil) {
        self.model = model
        self.groups = groups
        self.steps = steps
        self.baseline = baseline
        self.probabilities = probabilities
        self.seed = seed
        self.rowsPerChunk = rowsPerChunk
    }

    /// The curves for instance `i` and output `o` of an explanation whose features are input
    /// elements or are `groups` (element attributions are summed over each group).
    /// - Parameter target: the class the explanation's output `o` explains.
    public func curves(explanation e: Explanation, instance i: Int, output o: Int, target: Int, instances: [Float]) throws -> Curves {
        let d = model.elementCount
        guard instances.count >= (i + 1) * d else { throw ExplainError("deletion/insertion: instance \(i) is not in the \(instances.count / max(d, 1)) given") }
        let x = Array(instances[(i * d)..<((i + 1) * d)])
        let scores: [Double]
        if e.featureCount == groups.featureCount {
            scores = e.attributions(instance: i, output: o)
        } else if e.featureCount == d {
            var s = [Double](repeating: 0, count: groups.featureCount)
            for (element, f) in groups.elementFeature.enumerated() where f >= 0 { s[Int(f)] += e.value(instance: i, feature: element, output: o) }
            scores = s
        } else {
            throw ExplainError("deletion/insertion: the explanation has \(e.featureCount) features, neither \(groups.featureCount) groups nor \(d) input elements")
        }
        return try curves(instance: x, scores: scores, target: target)
    }

    /// The curves for one input and one score per feature group.
    public func curves(instance x: [Float], scores: [Double], target: Int) throws -> Curves {
        let m = groups.featureCount, c = model.classCount
        guard scores.count == m else { throw ExplainError("deletion/insertion: \(scores.count) scores for \(m) features") }
        guard steps >= 1 else { throw ExplainError("deletion/insertion: needs at least one step, got \(steps)") }
        guard (0..<c).contains(target) else { throw ExplainError("deletion/insertion: target class \(target) is outside 0..<\(c)") }
        // Most relevant first; ties keep feature order.
        let order = (0..<m).sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
        var rng = SplitMix64(seed: seed)
        var random = Array(0..<m)
        for k in stride(from: m - 1, to: 0, by: -1) { random.swapAt(k, Int(rng.next() % UInt64(k + 1))) }
        let counts = (0...steps).map { Int((Double($0) * Double(m) / Double(steps)).rounded()) }
        // Coalitions: deletion and insertion for the attribution order, then for the random order.
        var masks: [UInt8] = []
        for ranking in [order, random] {
            for insert in [false, true] {
                for k in counts {
                    var mask = [UInt8](repeating: insert ? 0 : 1, count: m)
                    for f in ranking.prefix(k) { mask[f] = insert ? 1 : 0 }
                    masks += mask
                }
            }
        }
        let base = try baseline.rows(instanceCount: 1, elementCount: model.elementCount, method: "deletion/insertion")
        let game = try DeviceGame(engine: model.engine, instance: x, inputShape: model.inputShape, background: base, groups: groups,
                                  outputCount: c, rowsPerChunk: rowsPerChunk) { t in try model.forward(t).output }
        let v = try game.values(coalitions: masks, count: masks.count / m)
        let points = counts.count
        let curve = { (block: Int) -> [Double] in
            (0..<points).map { p in
                let row = Array(v[((block * points + p) * c)..<((block * points + p + 1) * c)])
                guard probabilities else { return row[target] }
                let top = row.max()!
                let total = row.reduce(0) { $0 + Foundation.exp($1 - top) }
                return Foundation.exp(row[target] - top) / total
            }
        }
        return Curves(fractions: counts.map { Double($0) / Double(m) }, deletion: curve(0), insertion: curve(1),
                      randomDeletion: curve(2), randomInsertion: curve(3))
    }
}
