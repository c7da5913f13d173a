import Foundation
import Prism

/// A Shapley estimator as an `AttributionMethod`: each instance's game runs on the device against the
/// background (`DeviceGame`), and the explanation keeps the target classes' values, so SHAP takes
/// part wherever an attribution method does (the parameter-randomization check, metrics).
public struct ShapleyAttribution: AttributionMethod {
    public let model: Model
    public var estimator: ShapleyEstimator
    /// Background rows [N] + the model's input shape.
    public var background: [Float]
    /// Optional weights of the background rows (e.g. `BackgroundSummary.weights`).
    public var backgroundWeights: [Float]?
    public var groups: FeatureGroups?
    /// Optional reference rows, one per instance ([instances] + the input shape): instance i's hidden
    /// features take row i's values instead of the background's (one reference input per instance,
    /// as shap with a single baseline row). `background` and its weights are then unused.
    public var references: [Float]?
    /// Model rows per device batch (nil: sized from the device's memory).
    public var rowsPerChunk: Int?

    public var name: String { estimator.method }

    public init(model: Model, estimator: ShapleyEstimator, background: [Float], backgroundWeights: [Float]? = nil,
                groups: FeatureGroups? = nil, references: [Float]? = nil, rowsPerChunk: Int? = nil) {
        self.model = model
        self.references = references
        self.estimator = estimator
        self.background = background
        self.backgroundWeights = backgroundWeights
        self.groups = groups
        self.rowsPerChunk = rowsPerChunk
    }

    /// - Returns: values [instances][features][targets] with base values and f(x) of the targets.
    public func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation {
        let d = model.spec.inputShape.reduce(1, *), classes = model.spec.classCount
        guard d > 0, !instances.isEmpty, instances.count % d == 0 else {
            throw ExplainError("\(name): \(instances.count) values are not a whole number of inputs of shape \(model.spec.inputShape)")
        }
        let n = instances.count / d
        try targets.validate(instanceCount: n, classCount: classes)
        if let references, references.count != instances.count {
            throw ExplainError("\(name): \(references.count / d) reference rows for \(n) instances")
        }
        var parts: [Explanation] = []
        for i in 0..<n {
            let hidden = references.map { Array($0[(i * d)..<((i + 1) * d)]) } ?? background
            let game = try DeviceGame(model: model, instance: Array(instances[(i * d)..<((i + 1) * d)]), background: hidden,
                                      backgroundWeights: references == nil ? backgroundWeights : nil, groups: groups, rowsPerChunk: rowsPerChunk)
            let full = try estimator.explain(game)
            let picked = targets.classes(instance: i)
            let m = full.featureCount
            func pick(_ values: [Double]?, features: Int) -> [Double]? {
                values.map { v in (0..<features).flatMap { j in picked.map { v[j * classes + $0] } } }
            }
            parts.append(try Explanation(method: full.method, instanceCount: 1, featureCount: m, outputCount: picked.count,
                                         values: pick(full.values, features: m)!, baseValues: pick(full.baseValues, features: 1),
                                         outputs: pick(full.outputs, features: 1), standardErrors: pick(full.standardErrors, features: m),
                                         featureNames: full.featureNames, modelEvaluations: full.modelEvaluations, seconds: full.seconds,
                                         settings: full.settings))
        }
        var explanation = try Explanation(stacking: parts)
        explanation.settings["targets"] = .string(targets.description)
        return explanation
    }
}
