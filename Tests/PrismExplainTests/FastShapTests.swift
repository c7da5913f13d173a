import Foundation
import Prism
@testable import PrismExplain
import PrismCL
import PrismGraph
import PrismTestSupport
import Testing

/// FastSHAP on a linear model, whose Shapley values under the background game are known in closed
/// form: φ_i,c = W_c,i · (x_i − E[x_i]) over the background rows.
@Suite struct FastShapTests {
    /// nil: every coalition's value averages the background, computed once; K: fresh coalitions every
    /// epoch, each valued by K background rows drawn for it, with the linear control variate (`rows`
    /// masked inputs; exact for a linear model, so one row per coalition learns as well as the whole
    /// background) or the endpoints' alone (noisier targets, the same expected loss; the error of the
    /// learned values falls as 1/√K: 2.3% at K = 1, 1.2% at 4, 0.55% at 16 with these settings).
    @Test(arguments: [(nil, 0), (1, 256), (16, 0)] as [(Int?, Int)])
    func learnsTheExactValuesOfALinearModel(backgroundPerCoalition: Int?, controlRows: Int) throws {
        let engine = try testEngine()
        let features = 6, classes = 2
        let model = try Model(spec: try ModelSpec.mlp(inputShape: [features], hidden: [], classes: classes), seed: 3, engine: engine)
        let explainer = try Model(spec: try ModelSpec.mlp(inputShape: [features], hidden: [], classes: features * classes), seed: 4, engine: engine)
        let background = seededFloats(20 * features, seed: 81)
        let images = seededFloats(256 * features, seed: 82)
        let settings = FastShap.Settings(coalitionsPerImage: 16, epochs: 150, batchSize: 32, learningRate: 1e-2, seed: 5,
                                         backgroundPerCoalition: backgroundPerCoalition, linearControlRows: controlRows)
        let report = try FastShap.train(model: model, explainer: explainer, images: images, background: background,
                                        groups: .elements(features), settings: settings)
        if backgroundPerCoalition == nil {
            #expect(report.losses.count == 150 && report.losses.last! < report.losses.first! * 1e-3, "losses \(report.losses.first!) → \(report.losses.last!)")
            #expect(report.modelEvaluations == 256 * 18 * 20)
        } else {
            // The loss keeps the single rows' spread around v(S); the endpoints are exact (256 images + 20 rows).
            #expect(report.losses.count == 150 && report.losses.last! < report.losses.first!, "losses \(report.losses.first!) → \(report.losses.last!)")
            #expect(report.modelEvaluations == 150 * 256 * 16 * backgroundPerCoalition! + 256 + 20 + controlRows)
            #expect(report.linearControlRows == (controlRows > 0 ? controlRows : nil))
        }

        let held = seededFloats(20 * features, seed: 83)
        let e = try FastShap.explain(model: model, explainer: explainer, instances: held, background: background, features: features)
        let w = try model.namedParameters.first { $0.name.hasSuffix("weight") }!.tensor.toArray()   // [classes, features]
        let mean = (0..<features).map { j in (0..<20).reduce(0.0) { $0 + Double(background[$1 * features + j]) } / 20 }
        var error = 0.0, norm = 0.0
        for i in 0..<20 {
            for j in 0..<features {
                for c in 0..<classes {
                    let exact = Double(w[c * features + j]) * (Double(held[i * features + j]) - mean[j])
                    let got = e.values[(i * features + j) * classes + c]
                    error += (got - exact) * (got - exact)
                    norm += exact * exact
                }
            }
            // Efficiency by construction: Σφ = f(x) − E f(background).
            for c in 0..<classes {
                let sum = (0..<features).reduce(0.0) { $0 + e.values[(i * features + $1) * classes + c] }
                #expect(abs(sum - (e.outputs![i * classes + c] - e.baseValues![i * classes + c])) <= 1e-4)
            }
        }
        // Exact targets (the whole background, or one row with the linear control variate, exact for a
        // linear model) learn the values to 1e-7; noisy ones to 0.55% at K = 16.
        let tolerance = backgroundPerCoalition == nil || controlRows > 0 ? 1e-5 : 1e-2
        #expect((error / norm).squareRoot() <= tolerance, "relative error \((error / norm).squareRoot())")
    }

    /// The control variates have mean zero over the rows whatever the linear fit: for every coalition
    /// of a nonlinear model, the corrected single-row targets average (with the rows' weights) to the
    /// exact v(S) − v(∅), equal it at ∅ and the full coalition for every row, and for a linear model
    /// (where the fit is exact) equal it for every row.
    @Test(arguments: [true, false])
    func controlVariatesHaveMeanZeroOverTheRows(linear: Bool) throws {
        let engine = try testEngine()
        let d = 6, c = 3, rows = 7, m = 4
        let model = try Model(spec: try ModelSpec.mlp(inputShape: [d], hidden: linear ? [] : [8], classes: c), seed: 21, engine: engine)
        let groups = try FeatureGroups(elementFeature: [0, 1, 1, 2, 3, 3], featureCount: m)
        let background = seededFloats(rows * d, seed: 22), images = seededFloats(40 * d, seed: 23), x = Array(images[0..<d])
        var rng = SplitMix64(seed: 24)
        let fit = try engine.noGrad { try FastShapControl.fitLinear(model: model, images: images, background: background, groups: groups, rows: 256, rng: &rng) }
        if linear { #expect(fit.rSquared > 0.999_999, "R² \(fit.rSquared)") } else { #expect(fit.rSquared > 0 && fit.rSquared < 0.999, "R² \(fit.rSquared)") }
        let fb = try engine.noGrad { try FastShap.outputs(model: model, rows: background, chunk: 4) }
        let base = (0..<c).map { o in (0..<rows).reduce(0.0) { $0 + Double(fb[$1 * c + o]) } / Double(rows) }
        let control = FastShapControl(base: base, rowOutputs: fb, delta: fit.delta, deltaTotal: fit.deltaTotal, features: m, classes: c)
        let fx = try engine.noGrad { try FastShap.outputs(model: model, rows: x, chunk: 1) }
        // A row's empty coalition is the row itself only when every element belongs to a feature.
        let partial = try FeatureGroups(elementFeature: [0, 1, 1, 2, -1, 3], featureCount: m)
        let explainer = try Model(spec: try ModelSpec.mlp(inputShape: [d], hidden: [], classes: m * c), seed: 25, engine: engine)
        #expect(throws: ExplainError.self) {
            try FastShap.train(model: model, explainer: explainer, images: images, background: background, groups: partial,
                               settings: FastShap.Settings(backgroundPerCoalition: 1))
        }
        for coalition in 0..<(1 << m) {
            let mask = (0..<m).map { UInt8((coalition >> $0) & 1) }, size = mask.reduce(0) { $0 + Int($1) }
            let inputs = (0..<rows).flatMap { b in
                (0..<d).map { p in groups.elementFeature[p] < 0 || mask[Int(groups.elementFeature[p])] != 0 ? x[p] : background[b * d + p] }
            }
            let v = try engine.noGrad { try FastShap.outputs(model: model, rows: inputs, chunk: rows) }
            for o in 0..<c {
                let exact = (0..<rows).reduce(0.0) { $0 + Double(v[$1 * c + o]) } / Double(rows) - base[o]
                let targets = (0..<rows).map { b in
                    Double(v[b * c + o]) - base[o] + control.correction(row: b, mask: mask[...], inCoalition: size, output: o)
                }
                let mean = targets.reduce(0, +) / Double(rows)
                #expect(abs(mean - exact) <= 1e-9 * max(1, abs(exact)), "coalition \(mask) class \(o): mean \(mean), exact \(exact)")
                if size == 0 { #expect(targets.allSatisfy { abs($0) <= 1e-6 }, "∅: \(targets)") }
                if size == m { #expect(targets.allSatisfy { abs($0 - (Double(fx[o]) - base[o])) <= 1e-5 }, "full: \(targets)") }
                if linear { #expect(targets.allSatisfy { abs($0 - exact) <= 1e-4 }, "coalition \(mask) class \(o): \(targets) vs \(exact)") }
            }
        }
    }

    /// An explainer from the model: the same graph with the output Linear widened to features ×
    /// classes, every other parameter the model's; refused for a model whose output is not a Linear.
    @Test func explainerFromTheModelKeepsItsLayers() throws {
        let engine = try testEngine()
        let model = try Model(spec: try ModelSpec.cnn(height: 12, width: 12, classes: 3), seed: 7, engine: engine)
        let explainer = try FastShap.explainer(from: model, features: 9, seed: 8)
        #expect(explainer.spec.classCount == 27 && explainer.spec.nodes.count == model.spec.nodes.count)
        let original = try model.stateDict(), started = try explainer.stateDict()
        let output = model.spec.nodes.last!.name + "."
        #expect(Set(original.keys) == Set(started.keys))
        for (name, tensor) in original {
            if name.hasPrefix(output) {
                #expect(started[name]!.shape[0] == 27 * tensor.shape[0] / 3, "\(name) \(started[name]!.shape)")
            } else {
                #expect(started[name] == tensor, "\(name) differs from the model's")
            }
        }
        let x = seededFloats(2 * 144, seed: 9)
        let phi = try engine.noGrad { try explainer(try Tensor(x, shape: [2, 1, 12, 12], engine: engine)) }
        #expect(phi.shape == [2, 27])

        let noLinear = try Model(spec: ModelSpec(architecture: "custom", inputShape: [4], classCount: 4, layers: [.relu]), seed: 1, engine: engine)
        #expect(throws: ExplainError.self) { try FastShap.explainer(from: noLinear, features: 4, seed: 1) }
    }

    /// Coalitions come in complementary pairs, sizes from the Shapley kernel: p(k) ∝ 1 / (k (m − k)).
    @Test func coalitionSizesFollowTheShapleyKernel() throws {
        let m = 8, pairs = 20_000
        let masks = FastShapSampling.coalitions(features: m, count: 2 * pairs, seed: 9)
        var counts = [Double](repeating: 0, count: m + 1)
        for p in 0..<pairs {
            let a = masks[(2 * p * m)..<((2 * p + 1) * m)], b = masks[((2 * p + 1) * m)..<((2 * p + 2) * m)]
            #expect(zip(a, b).allSatisfy { $0 + $1 == 1 })
            counts[a.reduce(0) { $0 + Int($1) }] += 1
        }
        let weights = (1..<m).map { 1.0 / Double($0 * (m - $0)) }, total = weights.reduce(0, +)
        var chi = 0.0
        for k in 1..<m {
            let expected = Double(pairs) * weights[k - 1] / total
            chi += (counts[k] - expected) * (counts[k] - expected) / expected
        }
        // 6 degrees of freedom: the 99.9% point is 22.5.
        #expect(counts[0] == 0 && counts[m] == 0 && chi < 22.5, "chi-square \(chi)")
    }
}
