import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

@Suite struct IntegratedGradientsTests {
    @Test func quadratureRulesIntegratePolynomials() throws {
        for rule in IntegratedGradients.Rule.allCases {
            let (alphas, weights) = try IntegratedGradients.quadrature(rule, steps: 5)
            #expect(abs(weights.reduce(0, +) - 1) < 1e-14, "\(rule)")
            #expect(alphas.allSatisfy { (0...1).contains($0) })
        }
        // Gauss–Legendre with n points is exact up to degree 2n − 1: ∫₀¹ α⁹ dα = 1/10.
        let (a, w) = try IntegratedGradients.quadrature(.gaussLegendre, steps: 5)
        #expect(abs(zip(a, w).reduce(0) { $0 + $1.1 * pow($1.0, 9) } - 0.1) < 1e-14)
        #expect(throws: ExplainError.self) { try IntegratedGradients.quadrature(.trapezoid, steps: 1) }
    }

    /// On f(x) = W·x + b the gradient is constant, so every rule at any step count gives
    /// (x − x′) ⊙ W exactly, and completeness holds.
    @Test(arguments: IntegratedGradients.Rule.allCases)
    func linearModelIsExactForEveryRule(rule: IntegratedGradients.Rule) throws {
        let engine = try testEngine()
        let linear = AttributionLinearModel(inputShape: [2, 3], classes: 3, seed: 31)
        let model = try linear.model(engine)
        let x = seededFloats(2 * 6, seed: 32)
        let baseline = seededFloats(6, seed: 33)
        for steps in [2, 3, 7] {
            let e = try IntegratedGradients(model: model, steps: steps, rule: rule, baseline: .values(baseline), rowsPerChunk: 4)
                .explain(instances: x, targets: .classes([1, 2]))
            #expect(e.modelEvaluations == 2 * steps * 3 + 4)
            for i in 0..<2 {
                for (t, c) in [1, 2].enumerated() {
                    let expected = (0..<6).map { linear.w(c, $0) * (Double(x[i * 6 + $0]) - Double(baseline[$0])) }
                    let check = closeness(attributionFloats(e, instance: i, output: t), expected, atol: 1e-6, rtol: 1e-5,
                                          label: "\(rule) \(steps) steps")
                    #expect(check.passed, Comment(rawValue: check.message))
                    #expect(abs(e.additivityGap(instance: i, output: t)!) < 1e-5)
                }
            }
            #expect(e.settings["completeness_gap"]!.doubleValue! < 1e-5)
        }
    }

    @Test func resultDoesNotDependOnChunkSize() throws {
        let engine = try testEngine()
        let net = try AttributionNetworks.reluMLP(engine)
        let x = seededFloats(3 * 12, seed: 34)
        func run(_ rows: Int) throws -> Explanation {
            try IntegratedGradients(model: DifferentiableModel(net), steps: 8, rule: .middle, baseline: .constant(0.25), rowsPerChunk: rows)
                .explain(instances: x, targets: .perInstance([0, 1, 2]))
        }
        let whole = try run(1000)
        for rows in [1, 5, 8, 13] {
            let chunked = try run(rows)
            let check = closeness(chunked.values.map { Float($0) }, whole.values, atol: 1e-6, rtol: 1e-5, label: "chunk \(rows)")
            #expect(check.passed, Comment(rawValue: check.message))
        }
    }

    /// Largest completeness gap of IG on `net` with `rule` and `steps`.
    func gap(_ net: Model, _ x: [Float], _ rule: IntegratedGradients.Rule, _ steps: Int) throws -> Double {
        let e = try IntegratedGradients(model: DifferentiableModel(net), steps: steps, rule: rule).explain(instances: x, targets: .classes([0, 1, 2]))
        return e.settings["completeness_gap"]!.doubleValue!
    }

    @Test func completenessGapFallsWithStepsOnASmoothNetwork() throws {
        let engine = try testEngine()
        let net = try AttributionNetworks.geluMLP(engine)
        let x = seededFloats(2 * 12, seed: 35, low: -2, high: 2)
        let left = try [2, 8, 32, 128].map { try gap(net, x, .left, $0) }
        let trapezoid = try [2, 8, 32].map { try gap(net, x, .trapezoid, $0) }
        let gauss = try [2, 4, 8].map { try gap(net, x, .gaussLegendre, $0) }
        // Left Riemann: O(1/n), each 4× more steps at least 3× smaller.
        for k in 1..<left.count { #expect(left[k] < left[k - 1] / 3, "left rule gaps \(left)") }
        // Trapezoid: O(1/n²) until float32 noise.
        #expect(trapezoid[1] < trapezoid[0] / 10 && trapezoid[2] < trapezoid[1], "trapezoid gaps \(trapezoid)")
        // Gauss–Legendre: below the trapezoid at equal steps, at float32 noise from 4 points.
        #expect(gauss[0] < trapezoid[0] / 10 && gauss[1] < trapezoid[2] && gauss[2] < 1e-5, "Gauss–Legendre gaps \(gauss), trapezoid \(trapezoid)")
    }

    @Test func completenessGapFallsWithStepsOnACNN() throws {
        let engine = try testEngine()
        let net = try AttributionNetworks.cnn(engine)
        let x = seededFloats(2 * 100, seed: 36, low: 0, high: 1)
        let trapezoid = try [4, 16, 64, 256].map { try gap(net, x, .trapezoid, $0) }
        let gauss = try [4, 16, 64].map { try gap(net, x, .gaussLegendre, $0) }
        // ReLU networks are piecewise linear along the path: the error falls, though not at a smooth rate.
        for k in 1..<trapezoid.count { #expect(trapezoid[k] < trapezoid[k - 1], "trapezoid gaps \(trapezoid)") }
        #expect(trapezoid.last! < trapezoid[0] / 10 && gauss.last! < gauss[0] / 10, "trapezoid \(trapezoid), Gauss–Legendre \(gauss)")
    }
}
