import Foundation
import Prism

/// Saliency (Simonyan et al. 2014): the gradient of each target output with respect to the input,
/// ∂f_c/∂x, as an absolute value (the classic map) or signed. Instances run as device batches of at
/// most `rowsPerChunk` rows: one forward and one backward per target class.
public struct Saliency: AttributionMethod {
    public let model: DifferentiableModel
    /// |∂f/∂x| (true) or ∂f/∂x (false).
    public var absolute: Bool
    /// Instances per device batch (nil: sized from the device's memory).
    public var rowsPerChunk: Int?

    public var name: String { "saliency" }

    public init(model: DifferentiableModel, absolute: Bool = true, rowsPerChunk: Int? = nil) {
        self.model = model
        self.absolute = absolute
        self.rowsPerChunk = rowsPerChunk
    }

    /// - Returns: values [instances][input elements][targets]; `outputs` holds f(x) for the targets.
    public func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation {
        let start = DispatchTime.now()
        let setup = try AttributionSetup(model: model, instances: instances, targets: targets, rowsPerChunk: rowsPerChunk)
        let (values, outputs, evaluations) = try setup.inputGradients(instances: instances) { _, _, g in
            absolute ? abs(g) : g
        }
        return try Explanation(method: name, instanceCount: setup.instanceCount, featureCount: model.elementCount,
                               outputCount: targets.outputCount, values: values, outputs: setup.targetOutputs(outputs),
                               modelEvaluations: evaluations, seconds: AttributionSetup.seconds(since: start),
                               settings: ["absolute": .bool(absolute), "targets": .string(targets.description),
                                          "rows_per_chunk": .int(setup.rowsPerChunk)])
    }
}

extension AttributionSetup {
    /// The gradient of every target output with respect to every instance, batched in chunks, mapped
    /// element by element to an attribution.
    /// - Parameter map: (instance, element, gradient) → attribution.
    /// - Returns: values [instances][elements][slots], the full outputs [instances, classCount], and the
    ///   model evaluations (one per forward row and one per backward row).
    func inputGradients(instances: [Float], map: (Int, Int, Double) -> Double) throws -> (values: [Double], outputs: [Float], evaluations: Int) {
        let model = self.model, d = model.elementCount, c = model.classCount
        let n = instanceCount, slots = targets.outputCount
        var values = [Double](repeating: 0, count: n * d * slots)
        var outputs = [Float](repeating: 0, count: n * c)
        var evaluations = 0
        var first = 0
        while first < n {
            let rows = min(rowsPerChunk, n - first)
            let batch = try Tensor(Array(instances[(first * d)..<((first + rows) * d)]), shape: [rows] + model.inputShape, engine: model.engine)
            let classes = (first..<(first + rows)).map { targets.classes(instance: $0) }
            let result = try model.gradients(batch: batch, classes: classes)
            for r in 0..<rows {
                let i = first + r
                for t in 0..<slots {
                    let g = result.input[t]
                    for e in 0..<d {
                        values[(i * d + e) * slots + t] = map(i, e, Double(g[r * d + e]))
                    }
                }
            }
            outputs.replaceSubrange((first * c)..<((first + rows) * c), with: result.outputs)
            evaluations += rows * (1 + slots)
            first += rows
        }
        return (values, outputs, evaluations)
    }
}
