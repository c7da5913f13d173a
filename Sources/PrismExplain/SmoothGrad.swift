import Foundation
import PrismCL
import Prism

/// SmoothGrad (Smilkov et al. 2017) and its relatives: the gradient of each target output averaged
/// over noisy copies x + ε, ε ~ N(0, σ²), with σ a fraction of the instance's value range.
/// SmoothGrad² averages the squared gradients and VarGrad (Adebayo et al. 2018) takes their variance.
///
/// Noise is drawn on the host from a generator seeded by (seed, instance, sample), so the result
/// depends only on the seed, never on the chunk size; the noisy copies (x added on the device) run as
/// device batches of at most `rowsPerChunk` rows.
public struct SmoothGrad: AttributionMethod {
    /// How the noisy gradients are combined.
    public enum Variant: String, CaseIterable, Sendable {
        /// Mean of ∂f/∂x; the standard errors of that mean are reported.
        case smoothGrad = "smoothgrad"
        /// Mean of (∂f/∂x)².
        case squared = "smoothgrad-squared"
        /// Variance of ∂f/∂x over the samples (mean of squares minus squared mean).
        case varGrad = "vargrad"
    }

    public let model: DifferentiableModel
    public var samples: Int
    /// σ as a fraction of max(x) − min(x) of each instance.
    public var noiseLevel: Double
    public var variant: Variant
    public var seed: UInt64
    /// The number of the first instance given in a longer run: instance i's noise is that of
    /// instance `firstInstance + i`, so a run cut into parts draws what it draws in one go.
    public var firstInstance = 0
    /// Model rows per device batch (nil: sized from the device's memory).
    public var rowsPerChunk: Int?

    public var name: String { variant.rawValue }

    public init(model: DifferentiableModel, samples: Int = 50, noiseLevel: Double = 0.15, variant: Variant = .smoothGrad,
                seed: UInt64 = 0, rowsPerChunk: Int? = nil) {
        self.model = model
        self.samples = samples
        self.noiseLevel = noiseLevel
        self.variant = variant
        self.seed = seed
        self.rowsPerChunk = rowsPerChunk
    }

    /// The noise of sample `s` of instance `i`: `count` normal values with standard deviation `sigma`.
    public static func noise(seed: UInt64, instance i: Int, sample s: Int, samples: Int, count: Int, sigma: Float) -> [Float] {
        var mixer = SplitMix64(seed: seed ^ (UInt64(i * samples + s) &* 0xD1B5_4A32_D192_ED03))
        var rng = SplitMix64(seed: mixer.next())
        return (0..<count).map { _ in sigma * rng.nextNormal() }
    }

    /// - Returns: values [instances][input elements][targets]; `outputs` holds f(x) (without noise);
    ///   `standardErrors` for the SmoothGrad variant.
    public func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation {
        let start = DispatchTime.now()
        guard samples >= 1 else { throw ExplainError("smoothgrad: needs at least one sample, got \(samples)") }
        guard noiseLevel >= 0, noiseLevel.isFinite else { throw ExplainError("smoothgrad: noise level \(noiseLevel) must be finite and non-negative") }
        guard HostMemory.product([instances.count, samples]) != nil else {
            throw ExplainError("smoothgrad: \(samples) samples × \(instances.count) input values overflow a 64-bit count")
        }
        let setup = try AttributionSetup(model: model, instances: instances, targets: targets, rowsPerChunk: rowsPerChunk)
        let engine = model.engine, d = model.elementCount, n = setup.instanceCount, slots = targets.outputCount
        let sigmas = (0..<n).map { i -> Float in
            let row = instances[(i * d)..<((i + 1) * d)]
            return Float(noiseLevel) * (row.max()! - row.min()!)
        }
        var sum = [Double](repeating: 0, count: n * d * slots), squares = sum
        var evaluations = 0
        let x = try Tensor(instances, shape: [n, d], engine: engine)
        let total = n * samples
        var row = 0
        while row < total {
            let rows = min(setup.rowsPerChunk, total - row)
            var segments: [Tensor] = []
            var classes: [[Int]] = []
            var r = row
            while r < row + rows {
                let i = r / samples, s0 = r % samples, s1 = min(samples, s0 + (row + rows - r))
                let noise = (s0..<s1).flatMap {
                    Self.noise(seed: seed, instance: firstInstance + i, sample: $0, samples: samples, count: d, sigma: sigmas[i])
                }
                segments.append(try Tensor(noise, shape: [s1 - s0, d], engine: engine) + x.sliced(axis: 0, range: i..<(i + 1)))
                classes += [[Int]](repeating: targets.classes(instance: i), count: s1 - s0)
                r += s1 - s0
            }
            let batch = try (segments.count == 1 ? segments[0] : concat(segments, axis: 0)).reshaped([rows] + model.inputShape)
            let result = try model.gradients(batch: batch, classes: classes)
            for j in 0..<rows {
                let i = (row + j) / samples
                for t in 0..<slots {
                    let g = result.input[t]
                    for e in 0..<d {
                        let v = Double(g[j * d + e]), k = (i * d + e) * slots + t
                        sum[k] += v
                        squares[k] += v * v
                    }
                }
            }
            evaluations += rows * (1 + slots)
            row += rows
        }
        let m = Double(samples)
        let mean = sum.map { $0 / m }
        let variance = zip(squares, mean).map { Swift.max(0, $0 / m - $1 * $1) }
        let values: [Double]
        var standardErrors: [Double]?
        switch variant {
        case .smoothGrad:
            values = mean
            standardErrors = samples > 1 ? variance.map { ($0 * m / (m - 1) / m).squareRoot() } : nil
        case .squared: values = squares.map { $0 / m }
        case .varGrad: values = variance
        }
        let outputs = try model.outputs(instances, rows: n)
        evaluations += n
        return try Explanation(method: name, instanceCount: n, featureCount: d, outputCount: slots, values: values,
                               outputs: setup.targetOutputs(outputs), standardErrors: standardErrors,
                               modelEvaluations: evaluations, seconds: AttributionSetup.seconds(since: start),
                               settings: ["samples": .int(samples), "noise_level": .double(noiseLevel), "seed": .unsigned(seed),
                                          "targets": .string(targets.description), "rows_per_chunk": .int(setup.rowsPerChunk)])
    }
}
