import Foundation

/// A classifier's scores on a labelled set.
public struct EvaluationResult: Codable, Sendable {
    public var count: Int
    /// Mean cross-entropy.
    public var loss: Double
    public var accuracy: Double
    /// confusion[true class][predicted class] counts.
    public var confusion: [[Int]]
}

/// Evaluates `model` on `data` in batches without recording gradients.
/// - Throws: `DataError` when the examples do not have the model's input shape.
public func evaluate(_ model: Sequential, on data: LabeledData, batchSize: Int = 256) throws -> EvaluationResult {
    guard data.exampleShape == model.spec.inputShape else {
        throw DataError("data: examples have shape \(data.exampleShape), the model expects \(model.spec.inputShape)")
    }
    guard data.classCount <= model.spec.classCount else {
        throw DataError("data: \(data.classCount) classes, the model has \(model.spec.classCount) outputs")
    }
    let classes = model.spec.classCount
    var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
    var lossSum = 0.0
    var features: [Float] = [], labels: [Int32] = []
    let batch = max(1, batchSize)
    try model.engine.noGrad {
        for start in stride(from: 0, to: data.count, by: batch) {
            data.gather(Array(start..<min(start + batch, data.count))[...], into: &features, labels: &labels)
            let x = try Tensor(features, shape: [labels.count] + data.exampleShape, engine: model.engine)
            let logits = try model(x)
            lossSum += Double(try crossEntropy(logits, labels: labels).item()) * Double(labels.count)
            let values = try logits.toArray()
            for (row, label) in labels.enumerated() {
                confusion[Int(label)][argmax(values[(row * classes)..<((row + 1) * classes)])] += 1
            }
        }
    }
    let correct = (0..<classes).reduce(0) { $0 + confusion[$1][$1] }
    let n = max(data.count, 1)
    return EvaluationResult(count: data.count, loss: lossSum / Double(n), accuracy: Double(correct) / Double(n), confusion: confusion)
}

/// Class probabilities (softmax of the logits) for a batch of examples.
/// - Parameter x: [batch] + the model's input shape.
/// - Returns: [batch][classes].
public func predictProbabilities(_ model: Sequential, _ x: Tensor) throws -> [[Float]] {
    try model.engine.noGrad {
        let probabilities = try model(x).softmax()
        let values = try probabilities.toArray()
        let classes = probabilities.shape[1]
        return (0..<probabilities.shape[0]).map { Array(values[($0 * classes)..<(($0 + 1) * classes)]) }
    }
}
