import Foundation
import PrismCL

/// Examples and their integer labels (classification) or numeric targets (regression) on the host,
/// each example of shape `exampleShape`: what the trainer and the evaluator read, whether the data
/// came from IDX images or a CSV file.
public struct LabeledData: Sendable {
    public var features: [Float]
    /// Class labels; empty for regression data.
    public var labels: [Int32]
    public var exampleShape: [Int]
    /// Number of classes; 0 for regression data.
    public var classCount: Int
    /// Regression targets, row-major [count, targetWidth]; empty for classification data.
    public private(set) var targets: [Float] = []
    /// Values per example in `targets`; 0 for classification data.
    public private(set) var targetWidth = 0

    public var count: Int { targetWidth > 0 ? targets.count / targetWidth : labels.count }
    public var exampleSize: Int { exampleShape.reduce(1, *) }
    /// Whether the examples carry numeric targets rather than class labels.
    public var isRegression: Bool { targetWidth > 0 }

    public init(features: [Float], labels: [Int32], exampleShape: [Int], classCount: Int) throws {
        let size = exampleShape.reduce(1, *)
        guard size > 0, features.count == labels.count * size else {
            throw DataError("data: \(features.count) values do not make \(labels.count) examples of shape \(exampleShape)")
        }
        if let i = labels.firstIndex(where: { $0 < 0 || Int($0) >= classCount }) {
            throw DataError("data: label \(labels[i]) at index \(i) outside 0..<\(classCount)")
        }
        self.features = features
        self.labels = labels
        self.exampleShape = exampleShape
        self.classCount = classCount
    }

    /// Mean and (population) standard deviation of the features per channel of the first axis of
    /// `exampleShape`, over every example — the constants of `ModelSpec.InputNormalization`. A
    /// channel with no spread gets standard deviation 1.
    public func channelStatistics() -> ModelSpec.InputNormalization {
        let channels = exampleShape.first ?? 1
        let inner = exampleSize / max(channels, 1)
        var sum = [Double](repeating: 0, count: channels), squares = sum
        for e in 0..<count {
            for c in 0..<channels {
                let start = e * exampleSize + c * inner
                var s = 0.0, q = 0.0
                for v in features[start..<(start + inner)] {
                    let d = Double(v)
                    s += d
                    q += d * d
                }
                sum[c] += s
                squares[c] += q
            }
        }
        let n = Double(max(count * inner, 1))
        let mean = sum.map { $0 / n }
        let std = zip(squares, mean).map { q, m in
            let variance = max(q / n - m * m, 0)
            return variance > 0 ? variance.squareRoot() : 1
        }
        return ModelSpec.InputNormalization(mean: mean.map(Float.init), std: std.map(Float.init))
    }

    /// Regression data: `targetWidth` numeric targets per example.
    /// - Throws: `DataError` when the counts do not make whole examples or a target is not finite.
    public init(features: [Float], targets: [Float], targetWidth: Int, exampleShape: [Int]) throws {
        let size = exampleShape.reduce(1, *)
        guard size > 0, targetWidth > 0, targets.count % targetWidth == 0, features.count == targets.count / targetWidth * size else {
            throw DataError("data: \(features.count) values and \(targets.count) targets do not make examples of shape \(exampleShape) with \(targetWidth) targets each")
        }
        if let i = targets.firstIndex(where: { !$0.isFinite }) {
            throw DataError("data: target \(targets[i]) at index \(i) is not finite")
        }
        self.features = features
        self.labels = []
        self.exampleShape = exampleShape
        self.classCount = 0
        self.targets = targets
        self.targetWidth = targetWidth
    }

    public init(_ images: ImageDataset) throws {
        try self.init(features: images.pixels, labels: images.labels, exampleShape: images.imageShape, classCount: images.classCount)
    }

    /// A table's examples: regression data when it holds numeric `targets`, classification data otherwise.
    public init(_ table: TabularDataset) throws {
        if let targets = table.targets {
            try self.init(features: table.features, targets: targets, targetWidth: 1, exampleShape: [table.featureCount])
        } else {
            try self.init(features: table.features, labels: table.labels, exampleShape: [table.featureCount], classCount: table.classCount)
        }
    }

    /// Gathers the examples at `indices` into `features` and `labels` (row-major, in that order);
    /// `labels` stays empty for regression data (see `gatherTargets`).
    public func gather(_ indices: ArraySlice<Int>, into features: inout [Float], labels: inout [Int32]) {
        let size = exampleSize
        features.removeAll(keepingCapacity: true)
        labels.removeAll(keepingCapacity: true)
        for i in indices {
            features.append(contentsOf: self.features[(i * size)..<((i + 1) * size)])
            if !isRegression { labels.append(self.labels[i]) }
        }
    }

    /// Gathers the regression targets of the examples at `indices` into `targets` ([indices.count, targetWidth]).
    public func gatherTargets(_ indices: ArraySlice<Int>, into targets: inout [Float]) {
        targets.removeAll(keepingCapacity: true)
        for i in indices { targets.append(contentsOf: self.targets[(i * targetWidth)..<((i + 1) * targetWidth)]) }
    }

    /// The example at `index` as a batch of one; its label is -1 for regression data (see `target(_:)`).
    public func example(_ index: Int) throws -> (features: [Float], label: Int32) {
        guard (0..<count).contains(index) else { throw DataError("data: index \(index) outside 0..<\(count)") }
        return (Array(features[(index * exampleSize)..<((index + 1) * exampleSize)]), isRegression ? -1 : labels[index])
    }

    /// The regression targets of the example at `index` (empty for classification data).
    public func target(_ index: Int) throws -> [Float] {
        guard (0..<count).contains(index) else { throw DataError("data: index \(index) outside 0..<\(count)") }
        return Array(targets[(index * targetWidth)..<((index + 1) * targetWidth)])
    }

    /// The first `n` examples.
    public func prefix(_ n: Int) throws -> LabeledData {
        let k = min(n, count)
        if isRegression {
            return try LabeledData(features: Array(features[0..<(k * exampleSize)]), targets: Array(targets[0..<(k * targetWidth)]),
                                   targetWidth: targetWidth, exampleShape: exampleShape)
        }
        return try LabeledData(features: Array(features[0..<(k * exampleSize)]), labels: Array(labels[0..<k]),
                               exampleShape: exampleShape, classCount: classCount)
    }
}

/// A seeded permutation of 0..<count (Fisher–Yates over SplitMix64): the same on every machine.
public func seededPermutation(_ count: Int, seed: UInt64) -> [Int] {
    var rng = SplitMix64(seed: seed)
    var order = Array(0..<count)
    if count > 1 {
        for i in stride(from: count - 1, to: 0, by: -1) {
            order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
    }
    return order
}
