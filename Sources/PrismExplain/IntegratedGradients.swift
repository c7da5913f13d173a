import Foundation
import Prism

/// Integrated Gradients (Sundararajan et al. 2017): φ = (x − x′) ⊙ ∫₀¹ ∂f_c/∂x (x′ + α(x − x′)) dα,
/// the integral taken by a quadrature rule over `steps` points. The points of every instance form
/// one steps × instances batch that runs on the device in chunks of at most `rowsPerChunk` rows (a
/// chunk may hold several instances, or part of one); the interpolated inputs are built there. The
/// result does not depend on the chunk size.
///
/// Completeness: Σφ = f(x) − f(x′) up to the quadrature error. `baseValues` holds f(x′) and
/// `outputs` f(x), so `Explanation.additivityGap` is Σφ − (f(x) − f(x′)); its largest magnitude is
/// recorded in `settings["completeness_gap"]`.
public struct IntegratedGradients: AttributionMethod {
    /// How the path integral is approximated.
    public enum Rule: String, CaseIterable, Sendable {
        /// α = k/n, k = 0..<n, weights 1/n.
        case left
        /// α = k/n, k = 1...n, weights 1/n.
        case right
        /// α = (k + ½)/n, weights 1/n.
        case middle
        /// α = k/(n − 1), k = 0..<n; weights 1/(n − 1), halved at both ends (Captum's riemann_trapezoid).
        case trapezoid
        /// Gauss–Legendre nodes and weights mapped to [0, 1].
        case gaussLegendre = "gauss-legendre"
    }

    /// The reference input x′.
    public typealias Baseline = AttributionBaseline

    public let model: DifferentiableModel
    public var steps: Int
    public var rule: Rule
    public var baseline: Baseline
    /// Model rows per device batch (nil: sized from the device's memory).
    public var rowsPerChunk: Int?

    public var name: String { "integrated-gradients" }

    public init(model: DifferentiableModel, steps: Int = 50, rule: Rule = .gaussLegendre, baseline: Baseline = .zeros,
                rowsPerChunk: Int? = nil) {
        self.model = model
        self.steps = steps
        self.rule = rule
        self.baseline = baseline
        self.rowsPerChunk = rowsPerChunk
    }

    /// The quadrature points α ∈ [0, 1] and weights (summing to 1) of `rule` with `steps` points.
    /// - Throws: `ExplainError` for fewer points than the rule needs (1; the trapezoid needs 2).
    public static func quadrature(_ rule: Rule, steps n: Int) throws -> (alphas: [Double], weights: [Double]) {
        guard n >= (rule == .trapezoid ? 2 : 1) else {
            throw ExplainError("integrated gradients: \(n) steps are too few for the \(rule.rawValue) rule")
        }
        // Gauss–Legendre's nodes cost O(n²) to find, and n points integrate polynomials of degree
        // 2n − 1 exactly: past the limit the rule only costs time.
        if rule == .gaussLegendre, n > Self.gaussLegendreLimit {
            throw ExplainError("integrated gradients: \(n) steps are above the gauss-legendre rule's limit of \(Self.gaussLegendreLimit) (its nodes take O(steps²) to compute); use fewer steps or --rule middle")
        }
        // The points and weights.
        try requireHostMemory(HostMemory.product([n, 2 * MemoryLayout<Double>.size]),
                              "integrated gradients: \(n) steps", for: "the quadrature points and weights")
        let uniform = [Double](repeating: 1 / Double(n), count: n)
        switch rule {
        case .left: return ((0..<n).map { Double($0) / Double(n) }, uniform)
        case .right: return ((1...n).map { Double($0) / Double(n) }, uniform)
        case .middle: return ((0..<n).map { (Double($0) + 0.5) / Double(n) }, uniform)
        case .trapezoid:
            var w = [Double](repeating: 1 / Double(n - 1), count: n)
            w[0] /= 2
            w[n - 1] /= 2
            return ((0..<n).map { Double($0) / Double(n - 1) }, w)
        case .gaussLegendre:
            let (x, w) = Self.gaussLegendre(n)
            return (x.map { ($0 + 1) / 2 }, w.map { $0 / 2 })
        }
    }

    /// - Returns: values [instances][input elements][targets], `baseValues` f(x′) and `outputs` f(x).
    public func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation {
        let start = DispatchTime.now()
        let setup = try AttributionSetup(model: model, instances: instances, targets: targets, rowsPerChunk: rowsPerChunk)
        let engine = model.engine, d = model.elementCount, n = setup.instanceCount, slots = targets.outputCount
        guard HostMemory.product([n, steps]) != nil else {
            throw ExplainError("integrated gradients: \(steps) steps × \(n) instances overflow a 64-bit count")
        }
        let (alphas, weights) = try Self.quadrature(rule, steps: steps)
        let baselines = try baselineRows(instanceCount: n)

        // Σ_k w_k ∂f/∂x at the path points, accumulated in Double: [instances][elements][slots].
        var integral = [Double](repeating: 0, count: n * d * slots)
        var evaluations = 0
        do {
            // Neither x nor x′ requires gradients, so building the path points records nothing.
            let x = try Tensor(instances, shape: [n, d], engine: engine)
            let base = try Tensor(baselines, shape: [n, d], engine: engine)
            let delta = try x - base
            let total = n * steps
            var row = 0
            while row < total {
                let rows = min(setup.rowsPerChunk, total - row)
                // The chunk as segments of consecutive steps of one instance: x′ + α (x − x′) on the device.
                var segments: [Tensor] = []
                var classes: [[Int]] = []
                var r = row
                while r < row + rows {
                    let i = r / steps, k0 = r % steps, k1 = min(steps, k0 + (row + rows - r))
                    let a = try Tensor(alphas[k0..<k1].map { Float($0) }, shape: [k1 - k0, 1], engine: engine)
                    let line = try Tensor.zeros([k1 - k0, d], engine: engine) + delta.sliced(axis: 0, range: i..<(i + 1))
                    segments.append(try line * a + base.sliced(axis: 0, range: i..<(i + 1)))
                    classes += [[Int]](repeating: targets.classes(instance: i), count: k1 - k0)
                    r += k1 - k0
                }
                let batch = try (segments.count == 1 ? segments[0] : concat(segments, axis: 0)).reshaped([rows] + model.inputShape)
                let result = try model.gradients(batch: batch, classes: classes)
                for j in 0..<rows {
                    let i = (row + j) / steps, w = weights[(row + j) % steps]
                    for t in 0..<slots {
                        let g = result.input[t]
                        for e in 0..<d { integral[(i * d + e) * slots + t] += w * Double(g[j * d + e]) }
                    }
                }
                evaluations += rows * (1 + slots)
                row += rows
            }
        }
        var values = integral
        for i in 0..<n {
            for e in 0..<d {
                let dx = Double(instances[i * d + e]) - Double(baselines[i * d + e])
                for t in 0..<slots { values[(i * d + e) * slots + t] *= dx }
            }
        }
        let ends = try model.outputs(instances + baselines, rows: 2 * n)
        evaluations += 2 * n
        let c = model.classCount
        let outputs = setup.targetOutputs(Array(ends[..<(n * c)]))
        let baseValues = setup.targetOutputs(Array(ends[(n * c)...]))
        var explanation = try Explanation(method: name, instanceCount: n, featureCount: d, outputCount: slots, values: values,
                                          baseValues: baseValues, outputs: outputs, modelEvaluations: evaluations,
                                          seconds: 0, settings: ["steps": .int(steps), "rule": .string(rule.rawValue),
                                                                 "baseline": .string(baseline.description), "targets": .string(targets.description),
                                                                 "rows_per_chunk": .int(setup.rowsPerChunk)])
        var gap = 0.0
        for i in 0..<n {
            for t in 0..<slots { gap = Swift.max(gap, abs(explanation.additivityGap(instance: i, output: t) ?? 0)) }
        }
        explanation.settings["completeness_gap"] = .double(gap)
        explanation.seconds = AttributionSetup.seconds(since: start)
        return explanation
    }

    /// x′ for every instance: [instances][elements].
    private func baselineRows(instanceCount n: Int) throws -> [Float] {
        try baseline.rows(instanceCount: n, elementCount: model.elementCount, method: "integrated gradients")
    }

    /// The most steps the Gauss–Legendre rule accepts.
    public static let gaussLegendreLimit = 10_000

    /// Gauss–Legendre nodes and weights on [−1, 1] (Newton's method on Pₙ, as in Numerical Recipes'
    /// `gauleg`), nodes ascending.
    static func gaussLegendre(_ n: Int) -> (nodes: [Double], weights: [Double]) {
        var x = [Double](repeating: 0, count: n), w = [Double](repeating: 0, count: n)
        for i in 0..<((n + 1) / 2) {
            var z = cos(Double.pi * (Double(i) + 0.75) / (Double(n) + 0.5))
            var derivative = 0.0
            for _ in 0..<100 {
                var p1 = 1.0, p2 = 0.0
                for j in 0..<n {
                    let p3 = p2
                    p2 = p1
                    p1 = ((2 * Double(j) + 1) * z * p2 - Double(j) * p3) / Double(j + 1)
                }
                derivative = Double(n) * (z * p1 - p2) / (z * z - 1)
                let previous = z
                z = previous - p1 / derivative
                if abs(z - previous) < 1e-15 { break }
            }
            x[i] = -z
            x[n - 1 - i] = z
            w[i] = 2 / ((1 - z * z) * derivative * derivative)
            w[n - 1 - i] = w[i]
        }
        return (x, w)
    }
}
