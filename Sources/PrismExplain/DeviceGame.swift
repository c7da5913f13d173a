import Foundation
import Prism
import PrismCL

/// The value function v(S) of one instance evaluated on the device: the perturbation kernel builds
/// the S·N inputs (instance where a feature is present, background row where it is hidden), the
/// model runs on them in inference mode, and the reduction kernel averages its outputs over the
/// background with the background weights — every output class at once.
///
/// Work is cut into chunks of at most `rowsPerChunk` model rows (whole coalitions: a coalition's N
/// rows are never split), so any number of coalitions runs in bounded device memory. Results do not
/// depend on the chunk size.
///
/// Several instances can share one device batch: with I instances the game is their joint game, each
/// coalition evaluated for every instance in the same forward passes, and its outputs are the I
/// instances' outputs side by side ([instance][class], `outputCount` = I·O). Shapley values are linear
/// in the value function, so an estimator run on the joint game gives each instance's values, the same
/// as with a game per instance and the same seed (`ShapleyEstimator.explain(_:instances:)` splits them).
public final class DeviceGame: BackgroundRowsGame {
    public let engine: Engine
    public let featureCount: Int
    /// The game's outputs: `instanceCount` × `classCount`, instance-major.
    public let outputCount: Int
    /// Instances sharing the batch.
    public let instanceCount: Int
    /// The model's output width O.
    public let classCount: Int
    /// The shape of one model input without the batch, e.g. [1, 28, 28].
    public let inputShape: [Int]
    /// Background rows N.
    public let backgroundCount: Int
    /// Model rows per chunk.
    public var rowsPerChunk: Int
    /// Model rows evaluated so far (coalitions × background rows).
    public private(set) var modelEvaluations = 0
    public var rowsPerCoalition: Int { instanceCount * backgroundCount }
    /// The background rows' weights, summing to 1 (equal without `backgroundWeights`).
    public let rowWeights: [Double]

    private let elementCount: Int
    private let instance: Buffer<Float>
    private let background: Buffer<Float>
    private let weights: Buffer<Float>
    private let groups: Buffer<Int32>
    private let model: (Tensor) throws -> Tensor

    /// - Parameters:
    ///   - engine: where to run.
    ///   - instances: the inputs to explain, I × `inputShape.reduce(1, *)` values (one instance or several
    ///     sharing each batch).
    ///   - inputShape: one input's shape without the batch.
    ///   - background: N rows of the same size, row-major.
    ///   - backgroundWeights: optional non-negative weights for the rows (default equal).
    ///   - groups: the features: which input elements each feature covers.
    ///   - outputCount: the model's output width O (the game has I·O outputs).
    ///   - rowsPerChunk: model rows per forward pass (nil: sized from the device's memory).
    ///   - model: the forward pass, [B] + inputShape → [B, O]; called inside `noGrad`.
    /// - Throws: `ExplainError` when sizes disagree (naming both), or device errors.
    public init(engine: Engine, instances: [Float], inputShape: [Int], background: [Float], backgroundWeights: [Float]? = nil,
                groups: FeatureGroups, outputCount: Int, rowsPerChunk: Int? = nil,
                model: @escaping (Tensor) throws -> Tensor) throws {
        let d = inputShape.reduce(1, *)
        guard d > 0, !instances.isEmpty, instances.count % d == 0 else {
            throw ExplainError("explain: \(instances.count) instance values are not a whole number of inputs of shape \(inputShape) (\(d) values each)")
        }
        guard !background.isEmpty, background.count % d == 0 else {
            throw ExplainError("explain: background of \(background.count) values is not a whole number of rows of width \(d) (model input \(inputShape))")
        }
        guard groups.elementFeature.count == d else {
            throw ExplainError("explain: feature groups cover \(groups.elementFeature.count) input elements, the model input has \(d)")
        }
        guard outputCount > 0 else { throw ExplainError("explain: the model must have at least one output") }
        let n = background.count / d
        var w = backgroundWeights ?? [Float](repeating: 1, count: n)
        guard w.count == n else { throw ExplainError("explain: \(w.count) background weights for \(n) background rows") }
        guard w.allSatisfy({ $0 >= 0 && $0.isFinite }) else { throw ExplainError("explain: background weights must be finite and non-negative") }
        let total = w.reduce(0, +)
        guard total > 0 else { throw ExplainError("explain: background weights sum to zero") }
        let exactTotal = w.reduce(0.0) { $0 + Double($1) }
        rowWeights = w.map { Double($0) / exactTotal }
        w = w.map { $0 / total }

        self.engine = engine
        self.inputShape = inputShape
        self.featureCount = groups.featureCount
        self.instanceCount = instances.count / d
        self.classCount = outputCount
        self.outputCount = instanceCount * outputCount
        self.backgroundCount = n
        self.elementCount = d
        self.model = model
        self.instance = try engine.context.buffer(instances)
        self.background = try engine.context.buffer(background)
        self.weights = try engine.context.buffer(w)
        self.groups = try engine.context.buffer(groups.elementFeature)
        if let rowsPerChunk {
            guard rowsPerChunk > 0 else { throw ExplainError("explain: rows per chunk must be positive, got \(rowsPerChunk)") }
            self.rowsPerChunk = rowsPerChunk
        } else {
            self.rowsPerChunk = try DeviceGame.memorySizedChunk(device: engine.device, elementCount: d, outputCount: outputCount,
                                                                instances: instanceCount, backgroundRows: n)
        }
    }

    /// Rows per chunk from device memory: a chunk's perturbed inputs, its largest pair of model
    /// activations (`activationElements` floats per row, when known) and outputs take at most 1/32 of
    /// the device's memory, and no single buffer more than a quarter of the largest allocation.
    public static func defaultRowsPerChunk(device: DeviceInfo, elementCount: Int, outputCount: Int, activationElements: Int = 0) -> Int {
        let budget = min(device.globalMemoryBytes / 32, device.maxAllocationBytes / 4)
        let perRow = 4 * (elementCount + outputCount + activationElements)
        return max(1, min(65_536, budget / max(perRow, 1)))
    }

    /// `defaultRowsPerChunk`, refusing a game whose coalitions do not fit in it: a coalition's
    /// instances × background rows are never split across chunks.
    /// - Throws: `ExplainError` with the sizes.
    static func memorySizedChunk(device: DeviceInfo, elementCount: Int, outputCount: Int, activationElements: Int = 0,
                                 instances: Int, backgroundRows: Int) throws -> Int {
        let rows = defaultRowsPerChunk(device: device, elementCount: elementCount, outputCount: outputCount, activationElements: activationElements)
        let perCoalition = instances * backgroundRows
        guard perCoalition <= rows else {
            throw ExplainError("explain: a coalition needs \(instances) instances × \(backgroundRows) background rows = \(perCoalition) model rows, more than the \(rows) that fit the device's memory in one pass; explain fewer instances per batch or use a smaller background")
        }
        return rows
    }

    public func values(coalitions: [UInt8], count: Int) throws -> [Double] {
        let m = featureCount, n = backgroundCount, o = classCount, d = elementCount, instances = instanceCount
        guard coalitions.count == count * m else {
            throw ExplainError("explain: \(coalitions.count) mask entries for \(count) coalitions of \(m) features")
        }
        // Per coalition: I·N model rows, I·O values ([instance][class]).
        var result = [Double](repeating: 0, count: count * instances * o)
        let perChunk = max(1, rowsPerChunk / (n * instances))
        var start = 0
        while start < count {
            let s = min(perChunk, count - start)
            let rows = s * instances * n
            let mask = try engine.context.buffer(Array(coalitions[(start * m)..<((start + s) * m)]))
            let inputs = try Tensor.empty([rows] + inputShape, engine: engine)
            try engine.launch("shap.cl", "shap_perturb", global: [d, n, s * instances],
                              [mask, instance, background, groups, inputs.storage, Int32(s), Int32(n), Int32(d), Int32(m), Int32(instances)])
            let outputs = try engine.noGrad { try model(inputs) }
            guard outputs.shape == [rows, o] else {
                throw ExplainError("explain: the model returned shape \(outputs.shape) for \(rows) inputs; expected [\(rows), \(o)]")
            }
            let v = try engine.buffer(count: s * instances * o)
            try engine.launch("shap.cl", "shap_reduce", global: [o, s * instances],
                              [outputs.storage, weights, v, Int32(s * instances), Int32(n), Int32(o)])
            let values = try v.read()
            for i in 0..<(s * instances * o) { result[start * instances * o + i] = Double(values[i]) }
            modelEvaluations += rows
            start += s
        }
        return result
    }
}

extension DeviceGame {
    /// One draw of the game per row instead of its average over the background: row r is f of
    /// instance `instances[r]` where `coalitions` row r has the feature present and background row
    /// `backgroundRows[r]` where it is hidden — v(S) of a single background row. With the rows drawn
    /// from the background weights this is an unbiased estimate of v(S) (the stochastic cooperative
    /// game of Covert & Lee, AISTATS 2021, §5), at one model row per value instead of N.
    /// - Parameters:
    ///   - coalitions: [rows, featureCount] 0/1.
    ///   - instances: per row, which of the game's instances (0..<instanceCount).
    ///   - backgroundRows: per row, which background row (0..<backgroundCount).
    /// - Returns: [rows, classCount] model outputs, row-major.
    /// - Throws: `ExplainError` when the counts disagree or an index is out of range; device errors.
    public func sampledValues(coalitions: [UInt8], instances: [Int32], backgroundRows: [Int32]) throws -> [Double] {
        let m = featureCount, o = classCount, d = elementCount, count = instances.count
        guard coalitions.count == count * m, backgroundRows.count == count else {
            throw ExplainError("explain: \(coalitions.count) mask entries, \(instances.count) instance and \(backgroundRows.count) background indices for rows of \(m) features")
        }
        guard instances.allSatisfy({ $0 >= 0 && Int($0) < instanceCount }), backgroundRows.allSatisfy({ $0 >= 0 && Int($0) < backgroundCount }) else {
            throw ExplainError("explain: an instance index outside 0..<\(instanceCount) or a background row outside 0..<\(backgroundCount)")
        }
        var result = [Double](repeating: 0, count: count * o)
        var start = 0
        while start < count {
            let rows = min(rowsPerChunk, count - start)
            let mask = try engine.context.buffer(Array(coalitions[(start * m)..<((start + rows) * m)]))
            let which = try engine.context.buffer(Array(instances[start..<(start + rows)]))
            let from = try engine.context.buffer(Array(backgroundRows[start..<(start + rows)]))
            let inputs = try Tensor.empty([rows] + inputShape, engine: engine)
            try engine.launch("shap.cl", "shap_perturb_rows", global: [d, rows],
                              [mask, which, from, instance, background, groups, inputs.storage, Int32(rows), Int32(d), Int32(m)])
            let outputs = try engine.noGrad { try model(inputs) }
            guard outputs.shape == [rows, o] else {
                throw ExplainError("explain: the model returned shape \(outputs.shape) for \(rows) inputs; expected [\(rows), \(o)]")
            }
            let values = try outputs.toArray()
            for i in 0..<(rows * o) { result[start * o + i] = Double(values[i]) }
            modelEvaluations += rows
            start += rows
        }
        return result
    }
}

extension DeviceGame {
    /// v_b(S) of coalition r on background row `rows[r]` for every instance, through `sampledValues`:
    /// [count][instance][class].
    public func rowValues(coalitions: [UInt8], rows: [Int32]) throws -> [Double] {
        let m = featureCount, instances = instanceCount, count = rows.count
        guard coalitions.count == count * m else {
            throw ExplainError("explain: \(coalitions.count) mask entries for \(count) coalitions of \(m) features")
        }
        // Model row c·I + i is coalition c for instance i, so the outputs read [coalition][instance][class].
        var masks = coalitions, from = rows
        if instances > 1 {
            masks = []
            masks.reserveCapacity(count * instances * m)
            for c in 0..<count { for _ in 0..<instances { masks += coalitions[(c * m)..<((c + 1) * m)] } }
            from = rows.flatMap { [Int32](repeating: $0, count: instances) }
        }
        let which = (0..<(count * instances)).map { Int32($0 % instances) }
        return try sampledValues(coalitions: masks, instances: which, backgroundRows: from)
    }
}

extension DeviceGame {
    /// The game of one instance of a Prism model: inputs of the model's shape, outputs its classes.
    /// - Parameters:
    ///   - model: the network; it runs in inference mode (no tape, dropout off).
    ///   - instances: the inputs to explain, I × `model.spec.inputShape` values (several share each batch).
    ///   - background: N rows of the same size, row-major.
    ///   - backgroundWeights: optional non-negative weights for the rows (default equal).
    ///   - groups: the features (default: every input element is one).
    ///   - rowsPerChunk: model rows per forward pass (nil: sized from the device's memory).
    /// - Throws: `ExplainError` when sizes disagree or, with the memory-sized chunk, when one
    ///   coalition's I × N rows would not fit in it; device errors.
    public convenience init(model: Model, instances: [Float], background: [Float], backgroundWeights: [Float]? = nil,
                            groups: FeatureGroups? = nil, rowsPerChunk: Int? = nil) throws {
        let shape = model.spec.inputShape, d = shape.reduce(1, *)
        let rows = try rowsPerChunk ?? DeviceGame.memorySizedChunk(device: model.engine.device, elementCount: d, outputCount: model.spec.classCount,
                                                                   activationElements: model.spec.peakActivationElements,
                                                                   instances: instances.count / max(d, 1), backgroundRows: background.count / max(d, 1))
        try self.init(engine: model.engine, instances: instances, inputShape: shape, background: background,
                      backgroundWeights: backgroundWeights, groups: groups ?? .elements(shape.reduce(1, *)),
                      outputCount: model.spec.classCount, rowsPerChunk: rows) { try model($0) }
    }
}

extension DeviceGame {
    /// The game of one instance (see the designated initializer).
    public convenience init(engine: Engine, instance: [Float], inputShape: [Int], background: [Float], backgroundWeights: [Float]? = nil,
                            groups: FeatureGroups, outputCount: Int, rowsPerChunk: Int? = nil,
                            model: @escaping (Tensor) throws -> Tensor) throws {
        let d = inputShape.reduce(1, *)
        guard instance.count == d else {
            throw ExplainError("explain: instance has \(instance.count) values, the model input \(inputShape) needs \(d)")
        }
        try self.init(engine: engine, instances: instance, inputShape: inputShape, background: background, backgroundWeights: backgroundWeights,
                      groups: groups, outputCount: outputCount, rowsPerChunk: rowsPerChunk, model: model)
    }

    /// The game of one instance of a Prism model (see `init(model:instances:…)`).
    public convenience init(model: Model, instance: [Float], background: [Float], backgroundWeights: [Float]? = nil,
                            groups: FeatureGroups? = nil, rowsPerChunk: Int? = nil) throws {
        let d = model.spec.inputShape.reduce(1, *)
        guard instance.count == d else {
            throw ExplainError("explain: instance has \(instance.count) values, the model input \(model.spec.inputShape) needs \(d)")
        }
        try self.init(model: model, instances: instance, background: background, backgroundWeights: backgroundWeights, groups: groups,
                      rowsPerChunk: rowsPerChunk)
    }
}
