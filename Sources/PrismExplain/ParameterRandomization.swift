import Foundation
import Prism

/// The model-parameter randomization sanity check (Adebayo et al. 2018, "Sanity checks for saliency
/// maps"), cascading: the layers with parameters are re-initialized one at a time from the output
/// down — each stage keeps the earlier stages' random weights — and after each stage the method
/// explains the same instances again. An explanation that depends on what the model learned changes:
/// the Spearman rank correlation between the original and the randomized attributions falls
/// towards 0. One that stays high reflects the input more than the model.
///
/// Random weights come from the model's own initializer (PyTorch's defaults) with a different seed;
/// the original model is not modified.
public struct ParameterRandomization {
    /// One stage of the cascade.
    public struct Stage: Equatable, Sendable {
        /// The layer re-initialized at this stage (`Model.activationName`, e.g. `"7.linear"`),
        /// with every layer above it.
        public var layer: String
        /// Mean over instances of the rank correlation of |attributions|.
        public var spearmanAbsolute: Double
        /// Mean over instances of the rank correlation of the signed attributions.
        public var spearman: Double
    }

    public let model: Model
    /// Builds the method on a (randomized) copy of the model.
    public let method: (Model) throws -> AttributionMethod
    public var seed: UInt64

    /// - Parameters:
    ///   - model: the trained model.
    ///   - seed: seed of the random weights.
    ///   - method: the attribution method on a given model, e.g. `{ Saliency(model: DifferentiableModel($0)) }`.
    public init(model: Model, seed: UInt64 = 1, method: @escaping (Model) throws -> AttributionMethod) {
        self.model = model
        self.seed = seed
        self.method = method
    }

    /// Runs the cascade.
    /// - Parameter targets: the classes explained (the same at every stage).
    /// - Returns: one stage per layer with parameters, from the top layer down.
    /// - Throws: `ExplainError` when the model has no parameters, or the method's errors.
    public func run(instances: [Float], targets: AttributionTargets) throws -> [Stage] {
        let original = try method(model).explain(instances: instances, targets: targets)
        let copy = try Model(spec: model.spec, seed: 0, engine: model.engine)
        try copy.loadStateDict(try model.stateDict())
        let random = try Model(spec: model.spec, seed: seed ^ 0x5A17_C4EC_0000_0001, engine: model.engine).stateDict()
        let layers = model.ops.indices.filter { !model.ops[$0].parameters.isEmpty }
        guard !layers.isEmpty else { throw ExplainError("parameter randomization: the model has no parameters") }
        var weights = try model.stateDict()
        var stages: [Stage] = []
        for layer in layers.reversed() {
            for p in model.ops[layer].parameters {
                let name = "\(model.nodeName(layer)).\(p.name)"
                weights[name] = random[name]
            }
            try copy.loadStateDict(weights, source: "randomized model")
            let randomized = try method(copy).explain(instances: instances, targets: targets)
            guard randomized.values.count == original.values.count else {
                throw ExplainError("parameter randomization: the method returned \(randomized.values.count) values after randomizing, \(original.values.count) before")
            }
            var absolute = 0.0, signed = 0.0
            let count = original.instanceCount * original.outputCount
            for i in 0..<original.instanceCount {
                for o in 0..<original.outputCount {
                    let a = original.attributions(instance: i, output: o), b = randomized.attributions(instance: i, output: o)
                    absolute += try Self.spearman(a.map(abs), b.map(abs)) / Double(count)
                    signed += try Self.spearman(a, b) / Double(count)
                }
            }
            stages.append(Stage(layer: model.activationName(layer), spearmanAbsolute: absolute, spearman: signed))
        }
        return stages
    }

    /// Spearman's rank correlation: Pearson's correlation of the ranks, ties taking their mean rank;
    /// 0 when either side is constant.
    /// - Throws: `ExplainError` when the lengths differ or are zero.
    public static func spearman(_ a: [Double], _ b: [Double]) throws -> Double {
        guard a.count == b.count, !a.isEmpty else { throw ExplainError("spearman: \(a.count) and \(b.count) values") }
        let ra = ranks(a), rb = ranks(b)
        let n = Double(a.count)
        let ma = ra.reduce(0, +) / n, mb = rb.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in ra.indices {
            sab += (ra[i] - ma) * (rb[i] - mb)
            saa += (ra[i] - ma) * (ra[i] - ma)
            sbb += (rb[i] - mb) * (rb[i] - mb)
        }
        return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : 0
    }

    /// Ranks 1…n, ties sharing their mean rank.
    static func ranks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var ranks = [Double](repeating: 0, count: values.count)
        var start = 0
        while start < order.count {
            var end = start
            while end + 1 < order.count && values[order[end + 1]] == values[order[start]] { end += 1 }
            let mean = Double(start + end) / 2 + 1
            for k in start...end { ranks[order[k]] = mean }
            start = end + 1
        }
        return ranks
    }
}
