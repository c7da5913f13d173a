import Foundation
import Prism
import PrismCL

/// GradientSHAP, or expected gradients (Erion et al. 2021; Captum's `GradientShap`, shap's
/// `GradientExplainer`): φ = E over a reference r drawn from the background, α ~ U(0, 1) and noise
/// ε ~ N(0, σ²) of (x̃ − r) ⊙ ∂f_c/∂x at r + α (x̃ − r), with x̃ = x + ε. Without noise its sum is
/// f(x) − E f(r) in expectation (the path integral of each reference, averaged), so it approximates
/// the SHAP values of the model's linearization along the way; `baseValues` hold E f(r) over the
/// background and `outputs` f(x).
///
/// Each sample is one row of a device batch: its point is built on the host from a generator seeded
/// by (seed, instance, sample), so the result depends only on the seed, not on the chunk size or on
/// how many instances run together. Samples are drawn in rounds; the standard error of each value
/// is the sample standard deviation over √samples, and with `stopThreshold` T an instance stops
/// once its largest standard error is below T × (max φ − min φ) of its values (the rule of the
/// SHAP estimators' `--stop-threshold`), else at `samples`.
public struct GradientShap: AttributionMethod {
    public let model: DifferentiableModel
    /// Background rows (the references), [rows][elements].
    public var background: [Float]
    /// Their weights (k-means cluster sizes), one per row; nil for equal weights.
    public var weights: [Float]?
    /// The most samples per instance.
    public var samples: Int
    /// σ of the input noise as a fraction of each instance's value range (0: none, shap's default).
    public var noiseLevel: Double
    public var stopThreshold: Double?
    public var seed: UInt64
    /// The number of the first instance given in a longer run (its draws are those of instance
    /// `firstInstance + i`).
    public var firstInstance = 0
    /// Model rows per device batch (nil: sized from the device's memory).
    public var rowsPerChunk: Int?

    public var name: String { "gradient-shap" }

    public init(model: DifferentiableModel, background: [Float], weights: [Float]? = nil, samples: Int = 200, noiseLevel: Double = 0,
                stopThreshold: Double? = nil, seed: UInt64 = 0, rowsPerChunk: Int? = nil) {
        self.model = model
        self.background = background
        self.weights = weights
        self.samples = samples
        self.noiseLevel = noiseLevel
        self.stopThreshold = stopThreshold
        self.seed = seed
        self.rowsPerChunk = rowsPerChunk
    }

    /// Samples added to every unfinished instance per round.
    static func roundSize(_ samples: Int) -> Int { Swift.max(16, samples / 8) }

    /// Sample `s` of instance `i`: the background row, α, and the noise (`count` values, σ `sigma`).
    static func draw(seed: UInt64, instance i: Int, sample s: Int, cumulative: [Double], count: Int, sigma: Float) -> (row: Int, alpha: Float, noise: [Float]?) {
        var mixer = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: i) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(truncatingIfNeeded: s) &* 0xD1B5_4A32_D192_ED03))
        var rng = SplitMix64(seed: mixer.next())
        let u = Double(rng.next() >> 11) * 0x1p-53 * cumulative.last!
        let row = Swift.min(cumulative.firstIndex { u < $0 } ?? cumulative.count - 1, cumulative.count - 1)
        let alpha = Float(Double(rng.next() >> 11) * 0x1p-53)
        return (row, alpha, sigma > 0 ? (0..<count).map { _ in sigma * rng.nextNormal() } : nil)
    }

    /// - Returns: values [instances][input elements][targets] with their standard errors; `outputs`
    ///   f(x), `baseValues` E f(r) over the (weighted) background.
    /// - Throws: `ExplainError` for an empty or misshapen background, bad weights or settings.
    public func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation {
        let start = DispatchTime.now()
        guard samples >= 2 else { throw ExplainError("gradient-shap: needs at least 2 samples (for a standard error), got \(samples)") }
        guard noiseLevel >= 0, noiseLevel.isFinite else { throw ExplainError("gradient-shap: noise level \(noiseLevel) must be finite and non-negative") }
        if let stopThreshold, !(stopThreshold > 0) { throw ExplainError("gradient-shap: stop threshold \(stopThreshold) must be positive") }
        let setup = try AttributionSetup(model: model, instances: instances, targets: targets, rowsPerChunk: rowsPerChunk)
        let engine = model.engine, d = model.elementCount, n = setup.instanceCount, slots = targets.outputCount
        guard !background.isEmpty, background.count % d == 0 else {
            throw ExplainError("gradient-shap: the background's \(background.count) values are not a whole number of inputs of \(d) elements")
        }
        let references = background.count / d
        let weights = self.weights ?? [Float](repeating: 1, count: references)
        guard weights.count == references, weights.allSatisfy({ $0.isFinite && $0 >= 0 }), weights.contains(where: { $0 > 0 }) else {
            throw ExplainError("gradient-shap: \(weights.count) background weights for \(references) rows, or some negative or all zero")
        }
        guard HostMemory.product([n, samples, d]) != nil else {
            throw ExplainError("gradient-shap: \(samples) samples × \(n) instances × \(d) elements overflow a 64-bit count")
        }
        var cumulative: [Double] = []
        var running = 0.0
        for w in weights { running += Double(w); cumulative.append(running) }
        let sigmas = (0..<n).map { i -> Float in
            let row = instances[(i * d)..<((i + 1) * d)]
            return Float(noiseLevel) * (row.max()! - row.min()!)
        }

        var sum = [Double](repeating: 0, count: n * d * slots), squares = sum
        var drawn = [Int](repeating: 0, count: n)
        var active = Array(0..<n)
        var evaluations = 0
        while !active.isEmpty {
            // This round's samples: (instance, sample number) pairs, run in device batches.
            var work: [(Int, Int)] = []
            for i in active {
                let count = Swift.min(Self.roundSize(samples), samples - drawn[i])
                work += (drawn[i]..<(drawn[i] + count)).map { (i, $0) }
                drawn[i] += count
            }
            var first = 0
            while first < work.count {
                let rows = Swift.min(setup.rowsPerChunk, work.count - first)
                var points = [Float](), deltas = [Float]()
                points.reserveCapacity(rows * d)
                deltas.reserveCapacity(rows * d)
                for (i, s) in work[first..<(first + rows)] {
                    let (row, alpha, noise) = Self.draw(seed: seed, instance: firstInstance + i, sample: s, cumulative: cumulative, count: d,
                                                        sigma: sigmas[i])
                    for e in 0..<d {
                        let x = instances[i * d + e] + (noise?[e] ?? 0), r = background[row * d + e]
                        points.append(r + alpha * (x - r))
                        deltas.append(x - r)
                    }
                }
                let classes = work[first..<(first + rows)].map { targets.classes(instance: $0.0) }
                let result = try model.gradients(batch: try Tensor(points, shape: [rows] + model.inputShape, engine: engine), classes: classes)
                for (j, (i, _)) in work[first..<(first + rows)].enumerated() {
                    for t in 0..<slots {
                        let g = result.input[t]
                        for e in 0..<d {
                            let v = Double(g[j * d + e]) * Double(deltas[j * d + e]), k = (i * d + e) * slots + t
                            sum[k] += v
                            squares[k] += v * v
                        }
                    }
                }
                evaluations += rows * (1 + slots)
                first += rows
            }
            active = active.filter { i in
                guard drawn[i] < samples else { return false }
                guard let stopThreshold else { return true }
                let (mean, errors) = Self.moments(sum, squares, instance: i, count: drawn[i], width: d * slots)
                return errors.max()! >= stopThreshold * (mean.max()! - mean.min()!)
            }
        }
        var values = [Double](repeating: 0, count: n * d * slots), standardErrors = values
        for i in 0..<n {
            let (mean, errors) = Self.moments(sum, squares, instance: i, count: drawn[i], width: d * slots)
            values.replaceSubrange((i * d * slots)..<((i + 1) * d * slots), with: mean)
            standardErrors.replaceSubrange((i * d * slots)..<((i + 1) * d * slots), with: errors)
        }
        // f(x) and E f(r) over the weighted background.
        let outputs = try model.outputs(instances, rows: n)
        let referenceOutputs = try model.outputs(background, rows: references)
        evaluations += n + references
        let c = model.classCount
        let expected = (0..<c).map { k in
            Float(zip(weights, 0..<references).reduce(0.0) { $0 + Double($1.0) * Double(referenceOutputs[$1.1 * c + k]) } / running)
        }
        let baseValues = setup.targetOutputs([[Float]](repeating: expected, count: n).flatMap { $0 })
        var explanation = try Explanation(method: name, instanceCount: n, featureCount: d, outputCount: slots, values: values,
                                          baseValues: baseValues, outputs: setup.targetOutputs(outputs), standardErrors: standardErrors,
                                          modelEvaluations: evaluations, seconds: 0,
                                          settings: ["samples": .int(samples), "samples_drawn": .int(drawn.reduce(0, +)),
                                                     "references": .int(references), "noise_level": .double(noiseLevel),
                                                     "seed": .unsigned(seed), "targets": .string(targets.description),
                                                     "rows_per_chunk": .int(setup.rowsPerChunk)])
        if let stopThreshold { explanation.settings["stop_threshold"] = .double(stopThreshold) }
        explanation.seconds = AttributionSetup.seconds(since: start)
        return explanation
    }

    /// The means and standard errors of instance `i`'s values after `count` samples.
    static func moments(_ sum: [Double], _ squares: [Double], instance i: Int, count: Int, width: Int) -> ([Double], [Double]) {
        let m = Double(count)
        var mean = [Double](repeating: 0, count: width), errors = mean
        for k in 0..<width {
            let s = sum[i * width + k], q = squares[i * width + k]
            mean[k] = s / m
            let variance = Swift.max(0, (q - s * s / m) / (m - 1))
            errors[k] = (variance / m).squareRoot()
        }
        return (mean, errors)
    }
}
