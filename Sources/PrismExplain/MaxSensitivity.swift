import Foundation
import Prism
import PrismCL

/// Max-sensitivity (Yeh et al., NeurIPS 2019, eq. 2; Quantus's `MaxSensitivity` with its defaults):
/// the largest relative change ‖φ(x) − φ(x + δ)‖ / ‖φ(x)‖ (Frobenius norms) over `samples` inputs
/// perturbed by uniform noise δ ∈ [−radius, radius] per element; lower is more robust. The method
/// explains every perturbed copy of every instance in one call (its own device batches).
public struct MaxSensitivity {
    /// Explains instances ([count] + input shape, row-major) for per-instance targets: values
    /// [count][features] (one output each; features: input elements or the method's feature groups).
    public let explain: ([Float], [Int]) throws -> [Double]
    public let elementCount: Int
    public var samples: Int
    public var radius: Float
    public var seed: UInt64
    /// The number of the first instance given in a longer run (its noise is that of instance
    /// `firstInstance + i`, so a run cut into parts draws what it draws in one go).
    public var firstInstance = 0

    public init(elementCount: Int, samples: Int = 200, radius: Float = 0.2, seed: UInt64 = 0, explain: @escaping ([Float], [Int]) throws -> [Double]) {
        self.elementCount = elementCount
        self.samples = samples
        self.radius = radius
        self.seed = seed
        self.explain = explain
    }

    /// Max-sensitivity with an attribution method's values for output slot 0.
    public init(method: AttributionMethod, elementCount: Int, samples: Int = 200, radius: Float = 0.2, seed: UInt64 = 0) {
        self.init(elementCount: elementCount, samples: samples, radius: radius, seed: seed) { x, targets in
            let e = try method.explain(instances: x, targets: .perInstance(targets))
            return (0..<e.instanceCount).flatMap { e.attributions(instance: $0, output: 0) }
        }
    }

    /// The seeded noise of sample `s` of instance `i`: `elementCount` values uniform in [−radius, radius].
    public func noise(instance i: Int, sample s: Int) -> [Float] {
        var rng = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: i) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(truncatingIfNeeded: s) &* 0xD1B5_4A32_D192_ED03))
        return (0..<elementCount).map { _ in radius * (2 * rng.nextFloat() - 1) }
    }

    /// Per instance, the max-sensitivity of its attributions `phi` ([instances][features]) of `targets`;
    /// nil where ‖φ(x)‖ = 0. `noise`, when given, is [samples][instances][elements] (for parity checks).
    /// - Throws: `ExplainError` for sizes that disagree.
    public func scores(instances x: [Float], attributions phi: [Double], targets: [Int], noise given: [Float]? = nil) throws -> [Double?] {
        let d = elementCount, n = targets.count
        guard d > 0, n > 0, x.count == n * d, !phi.isEmpty, phi.count % n == 0 else {
            throw ExplainError("max-sensitivity: \(x.count) inputs and \(phi.count) attributions for \(n) instances of \(d) elements")
        }
        let w = phi.count / n
        guard samples >= 1 else { throw ExplainError("max-sensitivity: needs at least one sample, got \(samples)") }
        if let given, given.count != samples * n * d {
            throw ExplainError("max-sensitivity: \(given.count) noise values for \(samples) samples × \(n) instances × \(d) elements")
        }
        var perturbed = [Float]()
        perturbed.reserveCapacity(samples * n * d)
        for s in 0..<samples {
            for i in 0..<n {
                let delta = given.map { Array($0[((s * n + i) * d)..<((s * n + i + 1) * d)]) } ?? noise(instance: firstInstance + i, sample: s)
                for e in 0..<d { perturbed.append(x[i * d + e] + delta[e]) }
            }
        }
        let explained = try explain(perturbed, (0..<samples).flatMap { _ in targets })
        guard explained.count == samples * n * w else { throw ExplainError("max-sensitivity: the method gave \(explained.count) values for \(samples * n) inputs of \(w) features") }
        return (0..<n).map { i in
            let norm = (0..<w).reduce(0.0) { $0 + phi[i * w + $1] * phi[i * w + $1] }.squareRoot()
            guard norm > 0 else { return nil }
            var worst = 0.0
            for s in 0..<samples {
                let base = (s * n + i) * w
                let change = (0..<w).reduce(0.0) { t, e in let v = phi[i * w + e] - explained[base + e]; return t + v * v }.squareRoot()
                worst = Swift.max(worst, change / norm)
            }
            return worst
        }
    }
}
