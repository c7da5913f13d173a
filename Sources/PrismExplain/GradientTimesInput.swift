import Foundation
import Prism

/// Gradient × Input (Shrikumar et al. 2016): x ⊙ ∂f_c/∂x, the first-order Taylor contribution of
/// each input element relative to a zero input (exact for a linear model without bias). Batched as
/// `Saliency`.
public struct GradientTimesInput: AttributionMethod {
    public let model: DifferentiableModel
    /// Instances per device batch (nil: sized from the device's memory).
    public var rowsPerChunk: Int?

    public var name: String { "gradient-x-input" }

    public init(model: DifferentiableModel, rowsPerChunk: Int? = nil) {
        self.model = model
        self.rowsPerChunk = rowsPerChunk
    }

    /// - Returns: values [instances][input elements][targets]; `outputs` holds f(x) for the targets.
    public func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation {
        let start = DispatchTime.now()
        let setup = try AttributionSetup(model: model, instances: instances, targets: targets, rowsPerChunk: rowsPerChunk)
        let d = model.elementCount
        let (values, outputs, evaluations) = try setup.inputGradients(instances: instances) { i, e, g in
            g * Double(instances[i * d + e])
        }
        return try Explanation(method: name, instanceCount: setup.instanceCount, featureCount: d,
                               outputCount: targets.outputCount, values: values, outputs: setup.targetOutputs(outputs),
                               modelEvaluations: evaluations, seconds: AttributionSetup.seconds(since: start),
                               settings: ["targets": .string(targets.description), "rows_per_chunk": .int(setup.rowsPerChunk)])
    }
}
