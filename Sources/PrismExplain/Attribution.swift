import Foundation
import Prism

/// An attribution method over input elements (saliency, Integrated Gradients, occlusion…): one
/// value per input element (or per feature group) of each instance for each target class.
public protocol AttributionMethod {
    /// The method's name as recorded in `Explanation.method` (`saliency`, `integrated-gradients`…).
    var name: String { get }
    /// Explains `instances`, row-major [count] + the model's input shape.
    /// - Parameter targets: the classes to explain.
    /// - Throws: `ExplainError` when sizes disagree, or device errors.
    func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation
}

/// Which output classes an attribution explains: the same classes for every instance, or one class
/// per instance (typically the predicted or true label). `Explanation.outputCount` is the number of
/// classes per instance.
public struct AttributionTargets: Equatable, Sendable {
    /// Per instance, its classes; a single entry applies to every instance.
    private let rows: [[Int]]

    /// The same classes for every instance.
    public static func classes(_ classes: [Int]) -> AttributionTargets { AttributionTargets(rows: [classes]) }

    /// One class per instance.
    public static func perInstance(_ labels: [Int]) -> AttributionTargets { AttributionTargets(rows: labels.map { [$0] }) }

    /// Classes per instance.
    public var outputCount: Int { rows.first?.count ?? 0 }

    /// The classes of instance `i`.
    public func classes(instance i: Int) -> [Int] { rows.count == 1 ? rows[0] : rows[i] }

    /// A short description for `Explanation.settings`.
    var description: String {
        rows.count == 1 ? rows[0].map(String.init).joined(separator: ",") : "per-instance"
    }

    /// - Throws: `ExplainError` when the targets do not fit `instanceCount` instances of a model with `classCount` outputs.
    func validate(instanceCount: Int, classCount: Int) throws {
        guard outputCount > 0 else { throw ExplainError("attribution: no target classes given") }
        guard rows.count == 1 || rows.count == instanceCount else {
            throw ExplainError("attribution: \(rows.count) per-instance targets for \(instanceCount) instances")
        }
        for row in rows {
            if let bad = row.first(where: { $0 < 0 || $0 >= classCount }) {
                throw ExplainError("attribution: target class \(bad) is outside 0..<\(classCount)")
            }
        }
    }
}

/// The reference input x′ of a method that compares with one (Integrated Gradients, occlusion).
public enum AttributionBaseline: Sendable {
    /// x′ = 0.
    case zeros
    /// Every element of x′ equals the value.
    case constant(Float)
    /// One input for every instance, or one per instance (row-major).
    case values([Float])

    /// For `Explanation.settings`.
    var description: String {
        switch self {
        case .zeros: "zeros"
        case let .constant(v): "constant \(v)"
        case .values: "given"
        }
    }

    /// x′ for every instance: [instances][elements].
    /// - Throws: `ExplainError` (naming `method`) when given values are neither one input nor one per instance.
    func rows(instanceCount n: Int, elementCount d: Int, method: String) throws -> [Float] {
        switch self {
        case .zeros: return [Float](repeating: 0, count: n * d)
        case let .constant(v): return [Float](repeating: v, count: n * d)
        case let .values(v):
            if v.count == d { return [[Float]](repeating: v, count: n).flatMap { $0 } }
            guard v.count == n * d else {
                throw ExplainError("\(method): baseline of \(v.count) values is neither one input (\(d)) nor one per instance (\(n * d))")
            }
            return v
        }
    }
}

/// A differentiable model for attribution: the forward pass [B] + `inputShape` → [B, classCount],
/// with named activations where the model is a `Model` (Grad-CAM needs them).
///
/// While an attribution runs, the model's parameters stop requiring gradients, so a backward pass
/// computes only what the attribution reads (no weight gradients, and none left behind on the
/// parameters); they are restored afterwards.
public final class DifferentiableModel {
    public let engine: Engine
    /// One input's shape without the batch.
    public let inputShape: [Int]
    /// Width of the model's output.
    public let classCount: Int
    private let run: (Tensor, Set<String>) throws -> (output: Tensor, activations: [String: Tensor])
    private let parameters: [Tensor]
    /// Floats per example of the largest pair of activations, when the model is a `Model`.
    let activationElements: Int

    /// A `Model` model, with its activations available by name (`Model.activationName`).
    public init(_ model: Model) {
        engine = model.engine
        inputShape = model.spec.inputShape
        classCount = model.spec.classCount
        parameters = model.parameters
        activationElements = model.spec.peakActivationElements
        run = { x, capture in try model.forward(x, capture: capture) }
    }

    /// Any differentiable function; it has no named activations.
    /// - Parameters:
    ///   - parameters: tensors that require gradients for training, frozen while explaining.
    ///   - forward: [B] + inputShape → [B, classCount], built from recording Prism ops.
    public init(engine: Engine, inputShape: [Int], classCount: Int, parameters: [Tensor] = [],
                forward: @escaping (Tensor) throws -> Tensor) {
        self.engine = engine
        self.inputShape = inputShape
        self.classCount = classCount
        self.parameters = parameters
        activationElements = 0
        run = { x, capture in
            if let name = capture.first { throw ExplainError("attribution: the model has no named activations (asked for '\(name)')") }
            return (try forward(x), [:])
        }
    }

    /// Elements of one input.
    public var elementCount: Int { inputShape.reduce(1, *) }

    /// Runs the forward pass and checks its output shape.
    func forward(_ x: Tensor, capture: Set<String> = []) throws -> (output: Tensor, activations: [String: Tensor]) {
        let result = try run(x, capture)
        let rows = x.shape[0]
        guard result.output.shape == [rows, classCount] else {
            throw ExplainError("attribution: the model returned shape \(result.output.shape) for \(rows) inputs; expected [\(rows), \(classCount)]")
        }
        return result
    }

    /// The outputs [rows, classCount] for `rows` inputs, without recording.
    func outputs(_ inputs: [Float], rows: Int) throws -> [Float] {
        let x = try Tensor(inputs, shape: [rows] + inputShape, engine: engine)
        return try engine.noGrad { try forward(x).output.toArray() }
    }

    /// Runs `body` with the parameters frozen.
    func frozen<T>(_ body: () throws -> T) throws -> T {
        let saved = parameters.map(\.requiresGrad)
        for p in parameters { p.requiresGrad = false }
        defer { for (p, r) in zip(parameters, saved) { p.requiresGrad = r } }
        return try body()
    }

    /// Checks `instances` against the input shape. - Returns: the number of instances.
    func instanceCount(_ instances: [Float]) throws -> Int {
        let d = elementCount
        guard d > 0, !instances.isEmpty, instances.count % d == 0 else {
            throw ExplainError("attribution: \(instances.count) values are not a whole number of inputs of shape \(inputShape)")
        }
        return instances.count / d
    }

    /// Model rows per chunk from device memory: a quarter of what a forward-only evaluation takes
    /// (`DeviceGame.defaultRowsPerChunk`), since a backward pass keeps every activation alive.
    func defaultRowsPerChunk() -> Int {
        // A quarter of the inference size: the backward pass keeps every activation alive.
        max(1, DeviceGame.defaultRowsPerChunk(device: engine.device, elementCount: elementCount, outputCount: classCount,
                                              activationElements: activationElements) / 4)
    }
}

/// The gradients of one batch: the outputs and, for each target slot, the gradient of that target's
/// output with respect to the input (and to a captured activation).
struct BatchGradients {
    /// [rows, classCount].
    var outputs: [Float]
    /// Per target slot: [rows, elementCount].
    var input: [[Float]]
    /// The captured activation [rows] + shape, when one was asked for.
    var activation: [Float]?
    var activationShape: [Int]?
    /// Per target slot: the activation's gradient, same layout.
    var activationGradients: [[Float]]
}

extension DifferentiableModel {
    /// Forward and one backward per target slot over a batch that is already on the device.
    /// - Parameters:
    ///   - batch: [rows] + inputShape (its values are read; it becomes a leaf that requires gradients).
    ///   - classes: per row, the classes of its target slots (equal counts).
    ///   - capture: an activation whose value and gradients are wanted.
    func gradients(batch: Tensor, classes: [[Int]], capture: String? = nil) throws -> BatchGradients {
        let rows = batch.shape[0], slots = classes.first?.count ?? 0
        let x = try Tensor(engine: engine, shape: batch.shape, storage: batch.storage, requiresGrad: true)
        return try frozen {
            let (output, activations) = try forward(x, capture: capture.map { [$0] } ?? [])
            let activation = capture.flatMap { activations[$0] }
            var result = BatchGradients(outputs: try output.toArray(), input: [], activation: try activation?.toArray(),
                                        activationShape: activation?.shape, activationGradients: [])
            for t in 0..<slots {
                var seed = [Float](repeating: 0, count: rows * classCount)
                for r in 0..<rows { seed[r * classCount + classes[r][t]] = 1 }
                x.zeroGrad()
                activation?.zeroGrad()
                try output.backward(try Tensor(seed, shape: output.shape, engine: engine), retainGraph: t + 1 < slots)
                guard let g = x.grad else { throw ExplainError("attribution: the model's output does not depend on its input") }
                result.input.append(try g.toArray())
                if let activation {
                    guard let ga = activation.grad else {
                        throw ExplainError("attribution: the output does not depend on activation '\(capture ?? "")'")
                    }
                    result.activationGradients.append(try ga.toArray())
                }
            }
            return result
        }
    }
}

/// The shared checks and bookkeeping of the gradient methods.
struct AttributionSetup {
    let model: DifferentiableModel
    let instanceCount: Int
    let targets: AttributionTargets
    let rowsPerChunk: Int

    init(model: DifferentiableModel, instances: [Float], targets: AttributionTargets, rowsPerChunk: Int?) throws {
        self.model = model
        self.instanceCount = try model.instanceCount(instances)
        try targets.validate(instanceCount: instanceCount, classCount: model.classCount)
        self.targets = targets
        if let rowsPerChunk, rowsPerChunk <= 0 {
            throw ExplainError("attribution: rows per chunk must be positive, got \(rowsPerChunk)")
        }
        self.rowsPerChunk = rowsPerChunk ?? model.defaultRowsPerChunk()
    }

    /// Wall-clock seconds since `start`.
    static func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }

    /// The target outputs [instances][slots] picked from full outputs [instances, classCount].
    func targetOutputs(_ outputs: [Float]) -> [Double] {
        let c = model.classCount
        return (0..<instanceCount).flatMap { i in targets.classes(instance: i).map { Double(outputs[i * c + $0]) } }
    }
}

