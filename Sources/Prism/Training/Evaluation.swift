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
public func evaluate(_ model: Model, on data: LabeledData, batchSize: Int = 256) throws -> EvaluationResult {
    try evaluate([model], on: data, batchSize: batchSize)
}

/// Evaluates copies of one model on several devices: the batches are dealt out in contiguous runs,
/// one run per copy, evaluated at the same time, and their sums added in batch order — the batches
/// are the one-device batches, so the result equals `evaluate(models[0], …)` exactly on alike devices.
/// - Throws: `DataError` when the examples do not fit the model; the first device's error.
public func evaluate(_ models: [Model], on data: LabeledData, batchSize: Int = 256) throws -> EvaluationResult {
    try evaluate(models, on: data, batchSize: batchSize) { copy, x in try copy(x) }
}

/// `evaluate` with the logits of each batch from `forward` (a quantized runtime of the model, say).
func evaluate(_ models: [Model], on data: LabeledData, batchSize: Int, forward: (Model, Tensor) throws -> Tensor) throws -> EvaluationResult {
    guard let model = models.first else { throw DataError("evaluate: no model") }
    guard !model.spec.isRegression, !data.isRegression else {
        throw DataError("evaluate: accuracy is for a classifier on class labels; the \(model.spec.isRegression ? "model predicts values" : "data has numeric targets") (use evaluateRegression)")
    }
    guard data.exampleShape == model.spec.inputShape else {
        throw DataError("data: examples have shape \(data.exampleShape), the model expects \(model.spec.inputShape)")
    }
    guard data.classCount <= model.spec.classCount else {
        throw DataError("data: \(data.classCount) classes, the model has \(model.spec.classCount) outputs")
    }
    let classes = model.spec.classCount
    let runs = try onEveryBatchRun(models, data: data, batchSize: batchSize) { copy, rows -> (loss: Double, confusion: [[Int]]) in
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        var features: [Float] = [], labels: [Int32] = []
        data.gather(rows, into: &features, labels: &labels)
        let x = try Tensor(features, shape: [labels.count] + data.exampleShape, engine: copy.engine)
        let logits = try forward(copy, x)
        guard logits.shape == [labels.count, classes] else {
            throw TensorError("evaluate: the model outputs \(logits.shape) for \(labels.count) examples, expected [\(labels.count), \(classes)] (classCount)")
        }
        let loss = Double(try crossEntropy(logits, labels: labels).item()) * Double(labels.count)
        let values = try logits.toArray()
        for (row, label) in labels.enumerated() {
            confusion[Int(label)][argmax(values[(row * classes)..<((row + 1) * classes)])] += 1
        }
        return (loss, confusion)
    }
    var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
    var lossSum = 0.0
    for batch in runs {
        lossSum += batch.loss
        for i in 0..<classes { for j in 0..<classes { confusion[i][j] += batch.confusion[i][j] } }
    }
    let correct = (0..<classes).reduce(0) { $0 + confusion[$1][$1] }
    let n = max(data.count, 1)
    return EvaluationResult(count: data.count, loss: lossSum / Double(n), accuracy: Double(correct) / Double(n), confusion: confusion)
}

/// `body(copy, rows)` for every batch of `batchSize` rows of `data`, without recording gradients: the
/// batches dealt out in contiguous runs, one per model copy (each on its own device), run at the same
/// time; the results in batch order.
func onEveryBatchRun<T>(_ models: [Model], data: LabeledData, batchSize: Int, _ body: (Model, ArraySlice<Int>) throws -> T) throws -> [T] {
    let batch = max(1, batchSize), batches = (data.count + batch - 1) / batch, k = models.count
    let perDevice = try onEveryDevice(k) { j -> [T] in
        let copy = models[j]
        return try copy.engine.noGrad {
            try ((j * batches / k)..<((j + 1) * batches / k)).map { b in
                try body(copy, Array((b * batch)..<min((b + 1) * batch, data.count))[...])
            }
        }
    }
    return perDevice.flatMap { $0 }
}

/// Class probabilities (softmax of the logits) for a batch of examples.
/// - Parameter x: [batch] + the model's input shape.
/// - Returns: [batch][classes].
/// - Throws: `DataError` for a regression model (its outputs are values, not logits).
public func predictProbabilities(_ model: Model, _ x: Tensor) throws -> [[Float]] {
    guard !model.spec.isRegression else { throw DataError("predictProbabilities: the model predicts values, not class scores") }
    return try model.engine.noGrad {
        let probabilities = try model(x).softmax()
        let values = try probabilities.toArray()
        let classes = probabilities.shape[1]
        return (0..<probabilities.shape[0]).map { Array(values[($0 * classes)..<(($0 + 1) * classes)]) }
    }
}

/// A regression model's errors on a labelled set, pooled over every output of every example.
public struct RegressionResult: Codable, Equatable, Sendable {
    public var count: Int
    /// Mean squared error.
    public var mse: Double
    /// Root mean squared error.
    public var rmse: Double
    /// Mean absolute error.
    public var mae: Double
    /// Coefficient of determination: 1 − Σ(y − ŷ)² / Σ(y − ȳ)², with ȳ each output's mean over the
    /// examples (NaN when every target of an output is the same, as scikit-learn's `r2_score` leaves undefined).
    public var r2: Double

    enum CodingKeys: String, CodingKey { case count, mse, rmse, mae, r2 }

    /// Encodes a NaN R² as null (JSON has no NaN).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(count, forKey: .count)
        try c.encode(mse, forKey: .mse)
        try c.encode(rmse, forKey: .rmse)
        try c.encode(mae, forKey: .mae)
        try c.encode(r2.isFinite ? r2 : nil, forKey: .r2)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        count = try c.decode(Int.self, forKey: .count)
        mse = try c.decode(Double.self, forKey: .mse)
        rmse = try c.decode(Double.self, forKey: .rmse)
        mae = try c.decode(Double.self, forKey: .mae)
        r2 = try c.decodeIfPresent(Double.self, forKey: .r2) ?? .nan
    }

    /// The metrics of `predictions` against `targets`, both row-major [count, width] (Double accumulation).
    /// - Throws: `DataError` when the two differ in length or do not make whole rows of `width`.
    public init(predictions: [Float], targets: [Float], width: Int) throws {
        guard width > 0, predictions.count == targets.count, targets.count % width == 0 else {
            throw DataError("regression metrics: \(predictions.count) predictions and \(targets.count) targets do not make rows of \(width)")
        }
        let n = targets.count / width
        var mean = [Double](repeating: 0, count: width)
        for (i, t) in targets.enumerated() { mean[i % width] += Double(t) / Double(max(n, 1)) }
        var squares = 0.0, absolute = 0.0, total = 0.0
        for i in targets.indices {
            let e = Double(predictions[i]) - Double(targets[i])
            squares += e * e
            absolute += abs(e)
            let d = Double(targets[i]) - mean[i % width]
            total += d * d
        }
        let m = Double(max(targets.count, 1))
        count = n
        mse = squares / m
        rmse = (squares / m).squareRoot()
        mae = absolute / m
        r2 = total > 0 ? 1 - squares / total : .nan
    }
}

/// Evaluates a regression model on `data` in batches without recording gradients.
/// - Throws: `DataError` when the model is a classifier, the data has class labels, or the shapes or
///   output counts do not match.
public func evaluateRegression(_ model: Model, on data: LabeledData, batchSize: Int = 256) throws -> RegressionResult {
    try evaluateRegression([model], on: data, batchSize: batchSize)
}

/// `evaluateRegression` with copies of the model on several devices (see `evaluate(_:on:batchSize:)`
/// for how the batches are shared); equal to one device's result on alike devices.
public func evaluateRegression(_ models: [Model], on data: LabeledData, batchSize: Int = 256) throws -> RegressionResult {
    guard let model = models.first else { throw DataError("evaluateRegression: no model") }
    guard model.spec.isRegression, data.isRegression else {
        throw DataError("evaluateRegression: needs a regression model and numeric targets; the \(model.spec.isRegression ? "data has class labels" : "model is a classifier")")
    }
    guard data.exampleShape == model.spec.inputShape else {
        throw DataError("data: examples have shape \(data.exampleShape), the model expects \(model.spec.inputShape)")
    }
    guard data.targetWidth == model.spec.classCount else {
        throw DataError("data: \(data.targetWidth) targets per example, the model has \(model.spec.classCount) outputs")
    }
    return try RegressionResult(predictions: try predictValues(models, data, batchSize: batchSize), targets: data.targets, width: data.targetWidth)
}

/// The model's outputs for every example of `data`, row-major [count, outputs], in batches without gradients.
/// - Throws: `DataError` when the examples do not have the model's input shape.
public func predictValues(_ model: Model, _ data: LabeledData, batchSize: Int = 256) throws -> [Float] {
    try predictValues([model], data, batchSize: batchSize)
}

/// `predictValues` with copies of the model on several devices, each taking a contiguous run of the
/// batches; the outputs in example order.
public func predictValues(_ models: [Model], _ data: LabeledData, batchSize: Int = 256) throws -> [Float] {
    guard let model = models.first else { throw DataError("predictValues: no model") }
    guard data.exampleShape == model.spec.inputShape else {
        throw DataError("data: examples have shape \(data.exampleShape), the model expects \(model.spec.inputShape)")
    }
    return try onEveryBatchRun(models, data: data, batchSize: batchSize) { copy, rows -> [Float] in
        var features: [Float] = [], labels: [Int32] = []
        data.gather(rows, into: &features, labels: &labels)
        return try copy(try Tensor(features, shape: [rows.count] + data.exampleShape, engine: copy.engine)).toArray()
    }.flatMap { $0 }
}
