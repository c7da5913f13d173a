import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

@Suite struct LIMETests {
    /// On a linear model v(z) = f(x′) + Σ_j z_j φ_j exactly, with φ_j = Σ_{e∈j} w_e (x_e − x′_e): a
    /// nearly unpenalized surrogate recovers φ and f(x′) with R² = 1, at any chunk size.
    @Test(arguments: [7, 10_000])
    func linearModelIsRecoveredExactly(rowsPerChunk: Int) throws {
        let engine = try testEngine()
        let linear = AttributionLinearModel(inputShape: [1, 4, 6], classes: 2, seed: 91)
        let groups = try FeatureGroups.grid(channels: 1, height: 4, width: 6, cell: 2)  // 2 × 3 = 6 superpixels
        let x = seededFloats(2 * 24, seed: 92)
        let e = try LIME(model: linear.model(engine), groups: groups, samples: 64, ridge: 1e-9, baseline: .constant(0.2), seed: 4,
                         rowsPerChunk: rowsPerChunk).explain(instances: x, targets: .classes([1, 0]))
        #expect(e.featureCount == 6 && e.modelEvaluations == 2 * 64)
        #expect(e.settings["r2"]!.doubleValue! > 1 - 1e-9)
        for i in 0..<2 {
            for (t, c) in [1, 0].enumerated() {
                var phi = [Double](repeating: 0, count: 6)
                for el in 0..<24 { phi[Int(groups.elementFeature[el])] += linear.w(c, el) * (Double(x[i * 24 + el]) - 0.2) }
                let check = closeness(attributionFloats(e, instance: i, output: t), phi, atol: 1e-5, rtol: 1e-4, label: "instance \(i) class \(c)")
                #expect(check.passed, Comment(rawValue: check.message))
                let fBase = linear.output([Float](repeating: 0.2, count: 24), c)
                #expect(abs(e.baseValues![i * 2 + t] - fBase) < 1e-5)
                #expect(abs(e.additivityGap(instance: i, output: t)!) < 1e-4)  // exact surrogate: φ sums to f(x) − f(x′)
            }
        }
    }

    /// The ridge solver against the normal equations solved by hand on a 2-feature problem.
    @Test func weightedRidgeMatchesTheNormalEquations() throws {
        let masks: [UInt8] = [1, 1, 1, 0, 0, 1, 0, 0, 1, 1]
        let y = [3.0, 1.0, 2.5, -0.5, 3.2]
        let w = [1.0, 0.5, 2.0, 1.0, 0.25]
        let lambda = 0.3
        let fit = try LIME.weightedRidge(masks: masks, features: 2, y: y, weights: w, lambda: lambda)
        // Centred weighted normal equations, 2 × 2, solved by Cramer's rule.
        let tw = w.reduce(0, +)
        let z = (0..<5).map { [Double(masks[2 * $0]), Double(masks[2 * $0 + 1])] }
        let zm = (0..<2).map { j in (0..<5).reduce(0) { $0 + w[$1] * z[$1][j] } / tw }
        let ym = (0..<5).reduce(0) { $0 + w[$1] * y[$1] } / tw
        func s(_ p: Int, _ q: Int) -> Double { (0..<5).reduce(0) { $0 + w[$1] * (z[$1][p] - zm[p]) * (z[$1][q] - zm[q]) } }
        func r(_ p: Int) -> Double { (0..<5).reduce(0) { $0 + w[$1] * (z[$1][p] - zm[p]) * (y[$1] - ym) } }
        let (a, b, c, d) = (s(0, 0) + lambda, s(0, 1), s(1, 0), s(1, 1) + lambda)
        let det = a * d - b * c
        let beta = [(r(0) * d - b * r(1)) / det, (a * r(1) - c * r(0)) / det]
        #expect(abs(fit.coefficients[0] - beta[0]) < 1e-12 && abs(fit.coefficients[1] - beta[1]) < 1e-12)
        #expect(abs(fit.intercept - (ym - beta[0] * zm[0] - beta[1] * zm[1])) < 1e-12)
        #expect(fit.r2 > 0 && fit.r2 < 1)
    }

    @Test func seedDeterminesTheSamples() throws {
        let engine = try testEngine()
        let net = try AttributionNetworks.reluMLP(engine)
        let groups = try FeatureGroups.grid(channels: 1, height: 3, width: 4, cell: 2)
        let x = seededFloats(12, seed: 93)
        func run(_ seed: UInt64) throws -> [Double] {
            try LIME(model: DifferentiableModel(net), groups: groups, samples: 40, seed: seed).explain(instances: x, targets: .classes([0])).values
        }
        #expect(try run(1) == run(1))
        #expect(try run(1) != run(2))
    }
}
