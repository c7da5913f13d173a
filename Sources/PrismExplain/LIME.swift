import Foundation
import PrismCL
import Prism

/// LIME (Ribeiro et al. 2016) for one model input split into feature groups (superpixels):
/// seeded random on/off masks over the groups, hidden groups set to the baseline, the model's
/// outputs for all masks evaluated as one `DeviceGame` batch on the device, then a weighted ridge
/// regression in Double of each target output on the masks, weighted by the exponential kernel
/// exp(−d²/width²) of the cosine distance d between the mask and the all-on mask.
///
/// `values` are the surrogate's coefficients, `baseValues` its intercepts, `outputs` f(x); the
/// smallest weighted R² of the surrogates is recorded in `settings["r2"]`.
public struct LIME: AttributionMethod {
    public let model: DifferentiableModel
    public var groups: FeatureGroups
    /// Perturbed samples per instance (the first is the unperturbed input).
    public var samples: Int
    /// Width of the exponential kernel on the cosine distance.
    public var kernelWidth: Double
    /// Ridge penalty λ (the intercept is not penalized).
    public var ridge: Double
    /// What hidden groups are set to.
    public var baseline: AttributionBaseline
    public var seed: UInt64
    /// The number of the first instance given in a longer run: instance i's masks are those of
    /// instance `firstInstance + i`, so a run cut into parts draws what it draws in one go.
    public var firstInstance = 0
    /// Model rows per device batch (nil: sized from the device's memory).
    public var rowsPerChunk: Int?
    /// Copies of the model on further devices: every instance's masks are split between `model`'s
    /// device and theirs (`SplitGame`), with the values of one device.
    public var deviceCopies: [DifferentiableModel] = []

    public var name: String { "lime" }

    public init(model: DifferentiableModel, groups: FeatureGroups, samples: Int = 1000, kernelWidth: Double = 0.25, ridge: Double = 1,
                baseline: AttributionBaseline = .zeros, seed: UInt64 = 0, rowsPerChunk: Int? = nil) {
        self.model = model
        self.groups = groups
        self.samples = samples
        self.kernelWidth = kernelWidth
        self.ridge = ridge
        self.baseline = baseline
        self.seed = seed
        self.rowsPerChunk = rowsPerChunk
    }

    /// - Returns: values [instances][groups][targets].
    public func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation {
        let start = DispatchTime.now()
        let d = model.elementCount, m = groups.featureCount, c = model.classCount
        guard groups.elementFeature.count == d else {
            throw ExplainError("lime: feature groups cover \(groups.elementFeature.count) input elements, the model input has \(d)")
        }
        guard samples >= 2 else { throw ExplainError("lime: needs at least 2 samples, got \(samples)") }
        guard kernelWidth > 0, ridge >= 0 else { throw ExplainError("lime: kernel width \(kernelWidth) must be positive and ridge \(ridge) non-negative") }
        // Per sample: its mask, its weight, its values and the regression's target.
        try requireHostMemory(HostMemory.product([samples, m + 8 * (c + 2)]),
                              "lime: \(samples) samples × \(m) features", for: "the perturbation matrix")
        let setup = try AttributionSetup(model: model, instances: instances, targets: targets, rowsPerChunk: rowsPerChunk)
        let n = setup.instanceCount, slots = targets.outputCount
        let baselines = try baseline.rows(instanceCount: n, elementCount: d, method: "lime")
        var values = [Double](repeating: 0, count: n * m * slots)
        var intercepts = [Double](repeating: 0, count: n * slots), outputs = intercepts
        var evaluations = 0
        var worstR2 = 1.0
        for i in 0..<n {
            var rng = SplitMix64(seed: seed &+ UInt64(firstInstance + i) &* 0xD1B5_4A32_D192_ED03)
            var masks = [UInt8](repeating: 1, count: m)
            for _ in 1..<samples { masks += (0..<m).map { _ in UInt8(rng.next() >> 63) } }
            let weights = (0..<samples).map { s -> Double in
                let on = Double(masks[(s * m)..<((s + 1) * m)].reduce(0) { $0 + Int($1) })
                let distance = on == 0 ? 1 : 1 - on / (on.squareRoot() * Double(m).squareRoot())
                return Foundation.exp(-distance * distance / (kernelWidth * kernelWidth))
            }
            let game = try SplitGame(([model] + deviceCopies).map { copy in
                try DeviceGame(engine: copy.engine, instance: Array(instances[(i * d)..<((i + 1) * d)]), inputShape: copy.inputShape,
                               background: Array(baselines[(i * d)..<((i + 1) * d)]), groups: groups, outputCount: c,
                               rowsPerChunk: setup.rowsPerChunk) { x in try copy.forward(x).output }
            })
            let v = try game.values(coalitions: masks, count: samples)
            evaluations += game.modelEvaluations
            for (t, cls) in targets.classes(instance: i).enumerated() {
                let y = (0..<samples).map { v[$0 * c + cls] }
                let fit = try Self.weightedRidge(masks: masks, features: m, y: y, weights: weights, lambda: ridge)
                for j in 0..<m { values[(i * m + j) * slots + t] = fit.coefficients[j] }
                intercepts[i * slots + t] = fit.intercept
                outputs[i * slots + t] = y[0]
                worstR2 = Swift.min(worstR2, fit.r2)
            }
        }
        return try Explanation(method: name, instanceCount: n, featureCount: m, outputCount: slots, values: values,
                               baseValues: intercepts, outputs: outputs, modelEvaluations: evaluations, seconds: AttributionSetup.seconds(since: start),
                               settings: ["samples": .int(samples), "kernel_width": .double(kernelWidth), "ridge": .double(ridge), "seed": .unsigned(seed),
                                          "baseline": .string(baseline.description), "r2": .double(worstR2), "targets": .string(targets.description),
                                          "rows_per_chunk": .int(setup.rowsPerChunk)])
    }

    /// Weighted ridge regression of y on 0/1 masks [samples, features] with an unpenalized intercept:
    /// centre by the weighted means, solve (ZᵀWZ + λI)β = ZᵀWy by Cholesky, intercept ȳ − β·z̄.
    /// - Returns: β, the intercept and the weighted R² (1 when y is constant and fitted).
    /// - Throws: `ExplainError` when the system is singular (λ = 0 with collinear masks).
    public static func weightedRidge(masks: [UInt8], features m: Int, y: [Double], weights: [Double], lambda: Double) throws
        -> (coefficients: [Double], intercept: Double, r2: Double) {
        let s = y.count, total = weights.reduce(0, +)
        var zMean = [Double](repeating: 0, count: m)
        var yMean = 0.0
        for k in 0..<s {
            yMean += weights[k] * y[k]
            for j in 0..<m where masks[k * m + j] != 0 { zMean[j] += weights[k] }
        }
        yMean /= total
        zMean = zMean.map { $0 / total }
        var a = [Double](repeating: 0, count: m * m), b = [Double](repeating: 0, count: m)
        var row = [Double](repeating: 0, count: m)
        for k in 0..<s {
            for j in 0..<m { row[j] = Double(masks[k * m + j]) - zMean[j] }
            let w = weights[k], dy = y[k] - yMean
            for p in 0..<m {
                b[p] += w * row[p] * dy
                for q in 0...p { a[p * m + q] += w * row[p] * row[q] }
            }
        }
        for p in 0..<m { a[p * m + p] += lambda }
        // Cholesky: a = L Lᵀ (lower triangle), then two triangular solves.
        for p in 0..<m {
            for q in 0...p {
                var sum = a[p * m + q]
                for k in 0..<q { sum -= a[p * m + k] * a[q * m + k] }
                if p == q {
                    guard sum > 1e-12 * Swift.max(1, abs(a[p * m + p])) else {
                        throw ExplainError("lime: the regression is singular (feature \(p)); use a positive ridge penalty or more samples")
                    }
                    a[p * m + p] = sum.squareRoot()
                } else {
                    a[p * m + q] = sum / a[q * m + q]
                }
            }
        }
        var beta = b
        for p in 0..<m {
            for k in 0..<p { beta[p] -= a[p * m + k] * beta[k] }
            beta[p] /= a[p * m + p]
        }
        for p in stride(from: m - 1, through: 0, by: -1) {
            for k in (p + 1)..<m { beta[p] -= a[k * m + p] * beta[k] }
            beta[p] /= a[p * m + p]
        }
        let intercept = yMean - zip(beta, zMean).reduce(0) { $0 + $1.0 * $1.1 }
        var residual = 0.0, spread = 0.0
        for k in 0..<s {
            var fit = intercept
            for j in 0..<m where masks[k * m + j] != 0 { fit += beta[j] }
            residual += weights[k] * (y[k] - fit) * (y[k] - fit)
            spread += weights[k] * (y[k] - yMean) * (y[k] - yMean)
        }
        return (beta, intercept, spread > 0 ? 1 - residual / spread : (residual == 0 ? 1 : 0))
    }
}
