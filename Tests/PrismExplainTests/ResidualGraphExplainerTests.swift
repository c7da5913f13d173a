import Foundation
import Prism
import PrismExplain
import PrismReference
import PrismTestSupport
import Testing

/// Every attribution method on small seeded residual graphs (BatchNorm with running statistics,
/// a skip connection, ceil-mode pooling branches joined by Cat), each against an answer computed
/// without the method's code: the same graph evaluated on the host in Double with PrismReference
/// ops (`HostGraph`), its central differences, and closed forms.
@Suite struct ResidualGraphExplainerTests {
    // MARK: gradient methods

    /// Saliency (signed and absolute) and Gradient × Input against central differences of the host graph.
    @Test func saliencyAndGradientTimesInputMatchHostFiniteDifferences() throws {
        let engine = try testEngine()
        let (net, host) = try ResidualGraphs.build(ResidualGraphs.poolingHead, seed: 1, engine: engine)
        let d = net.spec.inputShape.reduce(1, *)
        let x = seededFloats(2 * d, seed: 101)
        let model = DifferentiableModel(net)
        let signed = try Saliency(model: model, absolute: false, rowsPerChunk: 1).explain(instances: x, targets: .classes([0, 2]))
        let absolute = try Saliency(model: model).explain(instances: x, targets: .classes([0, 2]))
        let gxi = try GradientTimesInput(model: model).explain(instances: x, targets: .perInstance([1, 2]))
        for i in 0..<2 {
            let xi = ResidualGraphs.row(x, i, d)
            let g = host.gradients(xi)
            let f = host.logits(xi, rows: 1)
            for (t, c) in [0, 2].enumerated() {
                expectClose(signed.attributions(instance: i, output: t), g[c], atol: 5e-6, rtol: 5e-5, "saliency \(i) class \(c)")
                expectClose(absolute.attributions(instance: i, output: t), g[c].map(abs), atol: 5e-6, rtol: 5e-5, "|saliency| \(i) class \(c)")
                expectClose([signed.outputs![i * 2 + t]], [f[c]], atol: 1e-5, rtol: 1e-5, "f(x) \(i) class \(c)")
            }
            let c = [1, 2][i]
            expectClose(gxi.attributions(instance: i, output: 0), zip(xi, g[c]).map(*), atol: 5e-6, rtol: 5e-5, "gradient × input \(i)")
        }
        #expect(net.parameters.allSatisfy { $0.requiresGrad && $0.grad == nil })
    }

    /// On this ReLU/LeakyReLU graph LRP-0 (ε → 0) is Gradient × Input: R_v = v ⊙ ∂f/∂v holds at the
    /// output and is kept by Linear and Conv2D with biases, BatchNorm, Add, Cat, max and average
    /// pooling, and the pass-through activations (f is piecewise linear). Compared with x ⊙ the host
    /// graph's central differences.
    @Test func lrpZeroEqualsGradientTimesInput() throws {
        let engine = try testEngine()
        let (net, host) = try ResidualGraphs.build(ResidualGraphs.poolingHead, seed: 2, engine: engine)
        let d = net.spec.inputShape.reduce(1, *)
        let x = seededFloats(3 * d, seed: 102)
        let e = try LRP(model: net, rule: .epsilon(1e-9), rowsPerChunk: 2).explain(instances: x, targets: .classes([0, 1, 2]))
        for i in 0..<3 {
            let xi = ResidualGraphs.row(x, i, d)
            let g = host.gradients(xi)
            let f = host.logits(xi, rows: 1)
            for c in 0..<3 {
                let expected = zip(xi, g[c]).map(*)
                let scale = expected.map(abs).max()!
                expectClose(e.attributions(instance: i, output: c), expected, atol: 2e-5 * scale, rtol: 2e-5, "LRP-0 \(i) class \(c)")
                expectClose([e.outputs![i * 3 + c]], [f[c]], atol: 1e-5, rtol: 1e-5, "f(x) \(i) class \(c)")
            }
        }
    }

    /// On the affine residual graph the gradient is constant: IG = (x − x′) ⊙ ∇f for every rule, and
    /// Σφ = f(x) − f(x′). On the piecewise-linear graph: IG against the same quadrature of the host
    /// graph's central differences, and its completeness gap equals the host quadrature's own.
    @Test func integratedGradientsOnResidualGraphs() throws {
        let engine = try testEngine()
        let (affine, affineHost) = try ResidualGraphs.build(ResidualGraphs.affine, seed: 3, engine: engine)
        let da = affine.spec.inputShape.reduce(1, *)
        let xa = seededFloats(2 * da, seed: 103), baseline = seededFloats(da, seed: 104)
        let gradient = affineHost.gradients([Double](repeating: 0, count: da))
        for rule in [IntegratedGradients.Rule.gaussLegendre, .trapezoid, .left] {
            let e = try IntegratedGradients(model: DifferentiableModel(affine), steps: 3, rule: rule, baseline: .values(baseline), rowsPerChunk: 4)
                .explain(instances: xa, targets: .classes([2, 0]))
            for i in 0..<2 {
                let xi = ResidualGraphs.row(xa, i, da), b = baseline.map(Double.init)
                let fx = affineHost.logits(xi, rows: 1), fb = affineHost.logits(b, rows: 1)
                for (t, c) in [2, 0].enumerated() {
                    let expected = (0..<da).map { (xi[$0] - b[$0]) * gradient[c][$0] }
                    expectClose(e.attributions(instance: i, output: t), expected, atol: 1e-5, rtol: 1e-4, "affine IG \(rule) \(i) class \(c)")
                    let sum = e.attributions(instance: i, output: t).reduce(0, +)
                    expectClose([sum], [fx[c] - fb[c]], atol: 2e-5, rtol: 1e-4, "affine completeness \(rule) \(i) class \(c)")
                }
            }
        }

        let (net, host) = try ResidualGraphs.build(ResidualGraphs.poolingHead, seed: 4, engine: engine)
        let d = net.spec.inputShape.reduce(1, *)
        let x = seededFloats(2 * d, seed: 105)
        let steps = 12
        let e = try IntegratedGradients(model: DifferentiableModel(net), steps: steps, rule: .gaussLegendre, baseline: .constant(0.1))
            .explain(instances: x, targets: .classes([0, 1]))
        let (alphas, weights) = try IntegratedGradients.quadrature(.gaussLegendre, steps: steps)
        for i in 0..<2 {
            let xi = ResidualGraphs.row(x, i, d)
            var integral = [[Double]](repeating: [Double](repeating: 0, count: d), count: 3)
            for (alpha, w) in zip(alphas, weights) {
                let g = host.gradients(xi.map { 0.1 + alpha * ($0 - 0.1) })
                for c in 0..<3 { for k in 0..<d { integral[c][k] += w * g[c][k] } }
            }
            let fx = host.logits(xi, rows: 1), fb = host.logits([Double](repeating: 0.1, count: d), rows: 1)
            for c in 0..<2 {
                let expected = (0..<d).map { (xi[$0] - 0.1) * integral[c][$0] }
                let scale = expected.map(abs).max()!
                expectClose(e.attributions(instance: i, output: c), expected, atol: 1e-5 * scale, rtol: 1e-5, "IG \(i) class \(c)")
                let hostGap = expected.reduce(0, +) - (fx[c] - fb[c])
                let gap = e.attributions(instance: i, output: c).reduce(0, +) - (fx[c] - fb[c])
                #expect(abs(gap - hostGap) <= 1e-4 * max(1, abs(fx[c] - fb[c])),
                        "instance \(i) class \(c): completeness gap \(gap), host quadrature's \(hostGap)")
                #expect(abs(e.additivityGap(instance: i, output: c)! - hostGap) <= 1e-4 * max(1, abs(fx[c] - fb[c])))
            }
        }
    }

    /// SmoothGrad with zero noise is the gradient (its square, zero variance); with noise, each
    /// variant is the mean (of squares, variance) of the host graph's central differences at the same
    /// noisy inputs (`SmoothGrad.noise`, σ = noiseLevel·(max x − min x)).
    @Test func smoothGradMatchesHostGradientsAtTheSameNoise() throws {
        let engine = try testEngine()
        let (net, host) = try ResidualGraphs.build(ResidualGraphs.poolingHead, seed: 5, engine: engine)
        let d = net.spec.inputShape.reduce(1, *)
        let x = seededFloats(2 * d, seed: 106)
        let model = DifferentiableModel(net)
        for (level, samples) in [(0.0, 2), (0.2, 4)] {
            // The host's sums of gradients and of their squares per instance: [instance][class][element].
            var sums: [[[Double]]] = [], squareSums: [[[Double]]] = []
            for i in 0..<2 {
                let xf = Array(x[(i * d)..<((i + 1) * d)])
                let sigma = Float(level) * (xf.max()! - xf.min()!)
                var sum = [[Double]](repeating: [Double](repeating: 0, count: d), count: 3), squares = sum
                for s in 0..<samples {
                    let noise = SmoothGrad.noise(seed: 9, instance: i, sample: s, samples: samples, count: d, sigma: sigma)
                    let g = host.gradients(zip(xf, noise).map { Double($1 + $0) })
                    for c in 0..<3 { for k in 0..<d { sum[c][k] += g[c][k]; squares[c][k] += g[c][k] * g[c][k] } }
                }
                sums.append(sum)
                squareSums.append(squares)
            }
            for variant in SmoothGrad.Variant.allCases {
                let e = try SmoothGrad(model: model, samples: samples, noiseLevel: level, variant: variant, seed: 9, rowsPerChunk: 3)
                    .explain(instances: x, targets: .classes([2, 1]))
                for i in 0..<2 {
                    for (t, c) in [2, 1].enumerated() {
                        let mean = sums[i][c].map { $0 / Double(samples) }, meanSquare = squareSums[i][c].map { $0 / Double(samples) }
                        let expected = switch variant {
                        case .smoothGrad: mean
                        case .squared: meanSquare
                        case .varGrad: zip(meanSquare, mean).map { max(0, $0 - $1 * $1) }
                        }
                        let scale = meanSquare.max()!.squareRoot()
                        let atol = variant == .smoothGrad ? 5e-6 : 1e-5 * scale
                        expectClose(e.attributions(instance: i, output: t), expected, atol: atol, rtol: 5e-5, "\(variant) σ \(level) \(i) class \(c)")
                    }
                }
            }
        }
    }

    /// Grad-CAM at the residual block's output "r2" of a graph whose head is global average pooling
    /// and a Linear: ∂f_c/∂A_k = W[c, k]/(h·w) everywhere, so the map is relu(Σ_k W[c, k]/(h·w)·A_k),
    /// with A from the host graph and W from the state dict; the coarse map is the input's size.
    @Test func gradCAMAtTheResidualOutputHasTheClosedForm() throws {
        let engine = try testEngine()
        let (net, host) = try ResidualGraphs.build(ResidualGraphs.globalPoolHead, seed: 6, engine: engine)
        let (ch, h, w) = (3, 6, 5), d = net.spec.inputShape.reduce(1, *)
        let x = seededFloats(2 * d, seed: 107)
        let weight = host.tensors["fc.weight"]!
        let signed = try GradCAM(model: DifferentiableModel(net), layer: "r2", relu: false, rowsPerChunk: 1)
            .explainWithCoarseMap(instances: x, targets: .classes([0, 2]))
        let cam = try GradCAM(model: DifferentiableModel(net), layer: "r2").explainWithCoarseMap(instances: x, targets: .classes([0, 2]))
        #expect(cam.coarseSize.height == h && cam.coarseSize.width == w)
        var sawNegative = false
        for i in 0..<2 {
            let a = host.activations(ResidualGraphs.row(x, i, d), rows: 1)["r2"]!.values
            for (t, c) in [0, 2].enumerated() {
                var map = [Double](repeating: 0, count: h * w)
                for k in 0..<ch { for q in 0..<(h * w) { map[q] += weight[c * ch + k] / Double(h * w) * a[k * h * w + q] } }
                sawNegative = sawNegative || map.contains { $0 < 0 }
                let scale = map.map(abs).max()!
                let coarse = { (r: GradCAM.Result) in (0..<(h * w)).map { r.coarse[(i * h * w + $0) * 2 + t] } }
                expectClose(coarse(signed), map, atol: 1e-5 * scale, rtol: 1e-4, "signed map \(i) class \(c)")
                expectClose(coarse(cam), map.map { max($0, 0) }, atol: 1e-5 * scale, rtol: 1e-4, "map \(i) class \(c)")
                // One value per pixel; at the same size the bilinear upsampling is the identity.
                #expect(cam.explanation.featureCount == h * w)
                expectClose(cam.explanation.attributions(instance: i, output: t), map.map { max($0, 0) }, atol: 1e-5 * scale, rtol: 1e-4,
                            "upsampled \(i) class \(c)")
            }
        }
        #expect(sawNegative, "the maps should have a negative part for the ReLU to act on")
    }

    // MARK: perturbation methods

    /// 1×1 windows: element (channel, y, x) gets f(x) − f(x with pixel (y, x) set to the baseline in
    /// every channel), both evaluated on the host graph.
    @Test func occlusionWithSinglePixelWindowsIsTheOutputDrop() throws {
        let engine = try testEngine()
        let (net, host) = try ResidualGraphs.build(ResidualGraphs.poolingHead, seed: 7, engine: engine)
        let (ch, h, w) = (2, 6, 5), d = ch * h * w
        let x = seededFloats(2 * d, seed: 108)
        let e = try Occlusion(model: DifferentiableModel(net), window: (1, 1), baseline: .constant(0.25), rowsPerChunk: 7)
            .explain(instances: x, targets: .classes([1, 0]))
        #expect(e.settings["windows"] == .int(h * w))
        for i in 0..<2 {
            let xi = ResidualGraphs.row(x, i, d)
            // Row p: the input with pixel p occluded.
            var occluded: [Double] = []
            for p in 0..<(h * w) {
                var z = xi
                for c in 0..<ch { z[c * h * w + p] = 0.25 }
                occluded += z
            }
            let f = host.logits(xi, rows: 1), fo = host.logits(occluded, rows: h * w)
            for (t, c) in [1, 0].enumerated() {
                let expected = (0..<d).map { f[c] - fo[($0 % (h * w)) * 3 + c] }
                expectClose(e.attributions(instance: i, output: t), expected, atol: 2e-5, rtol: 1e-4, "occlusion \(i) class \(c)")
            }
        }
    }

    /// Overlapping 3×2 windows with stride 2 on the 6×5 image: each pixel gets the mean over the
    /// windows covering it of the host graph's drop f(x) − f(x with the window at the baseline); the
    /// last row and column are never covered and get 0.
    @Test func occlusionWithOverlappingWindowsAveragesTheDrops() throws {
        let engine = try testEngine()
        let (net, host) = try ResidualGraphs.build(ResidualGraphs.poolingHead, seed: 10, engine: engine)
        let (ch, h, w) = (2, 6, 5), d = ch * h * w
        let x = seededFloats(d, seed: 112), baseline = seededFloats(d, seed: 113)
        let e = try Occlusion(model: DifferentiableModel(net), window: (3, 2), stride: (2, 2), baseline: .values(baseline))
            .explain(instances: x, targets: .classes([2]))
        let xi = x.map(Double.init)
        let f = host.logits(xi, rows: 1)[2]
        var total = [Double](repeating: 0, count: h * w), count = total
        for top in stride(from: 0, through: h - 3, by: 2) {
            for left in stride(from: 0, through: w - 2, by: 2) {
                var z = xi
                for c in 0..<ch {
                    for y in top..<(top + 3) { for q in left..<(left + 2) { z[(c * h + y) * w + q] = Double(baseline[(c * h + y) * w + q]) } }
                }
                let drop = f - host.logits(z, rows: 1)[2]
                for y in top..<(top + 3) { for q in left..<(left + 2) { total[y * w + q] += drop; count[y * w + q] += 1 } }
            }
        }
        #expect(count[5 * w + 1] == 0 && count[2 * w + 4] == 0 && count[2 * w + 1] == 2)
        let perPixel = zip(total, count).map { $1 > 0 ? $0 / $1 : 0 }
        expectClose(e.attributions(instance: 0, output: 0), perPixel + perPixel, atol: 2e-5, rtol: 1e-4, "overlapping occlusion")
    }

    /// On the affine residual graph v(z) = f(x′) + Σ_j z_j φ_j exactly, with φ_j = f(x′ with group j
    /// taken from x) − f(x′) on the host graph: a nearly unpenalized LIME surrogate recovers φ and
    /// f(x′) with R² = 1.
    @Test func limeRecoversTheExactEffectsOfAnAffineResidualGraph() throws {
        let engine = try testEngine()
        let (net, host) = try ResidualGraphs.build(ResidualGraphs.affine, seed: 8, engine: engine)
        let d = net.spec.inputShape.reduce(1, *)
        let groups = try FeatureGroups.grid(channels: 1, height: 4, width: 6, cell: 2)
        let x = seededFloats(2 * d, seed: 109)
        let e = try LIME(model: DifferentiableModel(net), groups: groups, samples: 48, ridge: 1e-9, baseline: .constant(-0.2), seed: 3, rowsPerChunk: 16)
            .explain(instances: x, targets: .classes([0, 2]))
        #expect(e.featureCount == 6)
        #expect(e.settings["r2"]!.doubleValue! > 1 - 1e-8)
        let base = [Double](repeating: -0.2, count: d)
        let fBase = host.logits(base, rows: 1)
        for i in 0..<2 {
            let xi = ResidualGraphs.row(x, i, d)
            var single: [Double] = []
            for j in 0..<6 { single += (0..<d).map { groups.elementFeature[$0] == j ? xi[$0] : -0.2 } }
            let f = host.logits(single, rows: 6)
            for (t, c) in [0, 2].enumerated() {
                let phi = (0..<6).map { f[$0 * 3 + c] - fBase[c] }
                expectClose(e.attributions(instance: i, output: t), phi, atol: 2e-5, rtol: 1e-4, "LIME \(i) class \(c)")
                expectClose([e.baseValues![i * 2 + t]], [fBase[c]], atol: 2e-5, rtol: 1e-4, "intercept \(i) class \(c)")
            }
        }
    }

    // MARK: Shapley values

    /// Six superpixels (3 × 2 cells of 2×3 pixels, both channels) against three background rows.
    /// Exact Shapley values come from the host graph: v(S) = mean_b f(x_S, b_S̄) over all 64
    /// coalitions and φ_j = Σ_S |S|!(M−|S|−1)!/M! (v(S ∪ j) − v(S)). Exact and Kernel SHAP with every
    /// coalition must equal them; Permutation SHAP must add up exactly and lie within 5 standard
    /// errors; Sampling SHAP within 5 standard errors.
    @Test func shapleyEstimatorsMatchHostExactValues() throws {
        let engine = try testEngine()
        let (net, host) = try ResidualGraphs.build(ResidualGraphs.poolingHead, seed: 9, engine: engine)
        let (h, w) = (6, 5), d = net.spec.inputShape.reduce(1, *)
        let groups = try FeatureGroups.segments((0..<(h * w)).map { p in (p / w) / 2 * 2 + (p % w) / 3 }, channels: 2, height: h, width: w)
        let m = groups.featureCount
        #expect(m == 6)
        let x = seededFloats(2 * d, seed: 110), background = seededFloats(3 * d, seed: 111, low: -0.5, high: 0.5)
        let targets = [0, 1, 2]
        let estimators: [(ShapleyEstimator, String)] = [
            (ExactShapley(), "exact"), (KernelShap(budget: (1 << m) - 2, seed: 1), "kernel"),
            (PermutationShap(budget: 2 + 100 * PermutationShap.coalitionsPerPermutation(features: m), seed: 2), "permutation"),
            (SamplingShap(budget: 2 + 2 * m * 300, seed: 3), "sampling"),
        ]
        let explanations = try estimators.map { estimator, _ in
            try ShapleyAttribution(model: net, estimator: estimator, background: background, groups: groups, rowsPerChunk: 96)
                .explain(instances: x, targets: .classes(targets))
        }
        for i in 0..<2 {
            let exact = ResidualGraphs.hostShapley(host, x: ResidualGraphs.row(x, i, d), background: background.map(Double.init), groups: groups)
            for c in targets {
                let phi = exact.phi.map { $0[c] }
                let scale = max(1, phi.map(abs).max()!)
                for (e, (_, label)) in zip(explanations, estimators) {
                    #expect(e.featureCount == m && e.outputCount == 3)
                    let values = e.attributions(instance: i, output: c)
                    expectClose([e.outputs![i * 3 + c]], [exact.output[c]], atol: 1e-5, rtol: 1e-5, "\(label) f(x) \(i) class \(c)")
                    expectClose([e.baseValues![i * 3 + c]], [exact.base[c]], atol: 1e-5, rtol: 1e-5, "\(label) E f(b) \(i) class \(c)")
                    switch label {
                    case "exact", "kernel":
                        expectClose(values, phi, atol: 2e-5 * scale, rtol: 1e-4, "\(label) \(i) class \(c)")
                        #expect(abs(e.additivityGap(instance: i, output: c)!) <= 2e-5 * scale, "\(label) efficiency \(i) class \(c)")
                    default:
                        let se = (0..<m).map { e.standardErrors![(i * m + $0) * 3 + c] }
                        #expect(se.allSatisfy { $0 > 0 }, "\(label) standard errors \(se)")
                        for j in 0..<m {
                            #expect(abs(values[j] - phi[j]) <= 5 * se[j] + 1e-5 * scale,
                                    "\(label) instance \(i) class \(c) feature \(j): \(values[j]) vs exact \(phi[j]), SE \(se[j])")
                        }
                        if label == "permutation" {
                            #expect(abs(e.additivityGap(instance: i, output: c)!) <= 2e-5 * scale, "permutation efficiency \(i) class \(c)")
                        }
                    }
                }
            }
        }
        if let kernelSE = explanations[1].standardErrors {
            #expect(kernelSE.allSatisfy { $0 == 0 }, "every coalition enumerated: no sampling error")
        }
    }
}

/// The residual test graphs, their seeded parameters and the host evaluation built from them.
enum ResidualGraphs {
    static func node(_ name: String, _ op: String, _ inputs: [String]? = nil, _ attributes: [String: JSONValue] = [:]) -> NodeSpec {
        NodeSpec(name: name, op: op, inputs: inputs, attributes: attributes)
    }

    /// [2, 6, 5] → conv(2→3, 3, pad 1) → BatchNorm2d → ReLU "r1" → conv(3→3, 3, pad 1) → add(r1, ·)
    /// → LeakyReLU(0.1) "r2".
    static let trunk: [NodeSpec] = [
        node("c1", "conv2d", ["input"], ["in_channels": .int(2), "out_channels": .int(3), "kernel_size": .int(3), "padding": .int(1)]),
        node("bn", "batchnorm2d", nil, ["num_features": .int(3)]),
        node("r1", "relu"),
        node("c2", "conv2d", nil, ["in_channels": .int(3), "out_channels": .int(3), "kernel_size": .int(3), "padding": .int(1)]),
        node("sum", "add", ["r1", "c2"]),
        node("r2", "leakyrelu", nil, ["negative_slope": .double(0.1)]),
    ]

    /// The trunk, then ceil-mode 2×2 max and average pooling of r2 (3×3 from 6×5), Cat, Flatten,
    /// Linear(54→3).
    static let poolingHead = ModelSpec(architecture: "custom", inputShape: [2, 6, 5], classCount: 3, nodes: trunk + [
        node("mp", "maxpool2d", ["r2"], ["kernel_size": .int(2), "ceil_mode": .bool(true)]),
        node("ap", "avgpool2d", ["r2"], ["kernel_size": .int(2), "ceil_mode": .bool(true)]),
        node("both", "cat", ["mp", "ap"]),
        node("flat", "flatten"),
        node("fc", "linear", nil, ["in_features": .int(54), "out_features": .int(3)]),
    ])

    /// The trunk, then AdaptiveAvgPool2d(1), Flatten, Linear(3→3) (Grad-CAM's closed form).
    static let globalPoolHead = ModelSpec(architecture: "custom", inputShape: [2, 6, 5], classCount: 3, nodes: trunk + [
        node("gap", "adaptiveavgpool2d", nil, ["output_size": .int(1)]),
        node("flat", "flatten"),
        node("fc", "linear", nil, ["in_features": .int(3), "out_features": .int(3)]),
    ])

    /// An affine residual graph on [1, 4, 6]: conv → BatchNorm → conv, add(bn, ·), 2×2 average
    /// pooling, Flatten, Linear(12→5) → Linear(5→5), add, Linear(5→3).
    static let affine = ModelSpec(architecture: "custom", inputShape: [1, 4, 6], classCount: 3, nodes: [
        node("c1", "conv2d", nil, ["in_channels": .int(1), "out_channels": .int(2), "kernel_size": .int(3), "padding": .int(1)]),
        node("bn", "batchnorm2d", nil, ["num_features": .int(2)]),
        node("c2", "conv2d", nil, ["in_channels": .int(2), "out_channels": .int(2), "kernel_size": .int(3), "padding": .int(1)]),
        node("sum", "add", ["bn", "c2"]),
        node("ap", "avgpool2d", nil, ["kernel_size": .int(2)]),
        node("flat", "flatten"),
        node("l1", "linear", nil, ["in_features": .int(12), "out_features": .int(5)]),
        node("l2", "linear", nil, ["in_features": .int(5), "out_features": .int(5)]),
        node("sum2", "add", ["l1", "l2"]),
        node("fc", "linear", nil, ["in_features": .int(5), "out_features": .int(3)]),
    ])

    /// The model of `spec` with every parameter and buffer replaced by seeded values (BatchNorm:
    /// running means ±0.3, variances 0.5…2, scales 0.5…1.5), and its host evaluation.
    static func build(_ spec: ModelSpec, seed: UInt64, engine: Engine) throws -> (Model, HostGraph) {
        let model = try Model(spec: spec, seed: seed, engine: engine)
        var dict = try model.stateDict()
        for (k, name) in dict.keys.sorted().enumerated() {
            let count = dict[name]!.values.count
            let (low, high): (Double, Double) = switch name {
            case _ where name.hasSuffix("running_mean"): (-0.3, 0.3)
            case _ where name.hasSuffix("running_var"): (0.5, 2)
            case "bn.weight": (0.5, 1.5)
            case _ where name.hasSuffix("bias"): (-0.2, 0.2)
            default: (-0.5, 0.5)
            }
            dict[name] = HostTensor(shape: dict[name]!.shape, values: seededFloats(count, seed: seed &* 1000 &+ UInt64(k), low: low, high: high))
        }
        try model.loadStateDict(dict)
        return (model, try HostGraph(model))
    }

    /// Instance `i` of `d` elements, in Double.
    static func row(_ x: [Float], _ i: Int, _ d: Int) -> [Double] { x[(i * d)..<((i + 1) * d)].map(Double.init) }

    /// Exact Shapley values of one instance against equally weighted background rows, on the host.
    /// - Returns: phi [feature][class], the base value E_b f(b) and f(x) per class.
    static func hostShapley(_ host: HostGraph, x: [Double], background: [Double], groups: FeatureGroups)
        -> (phi: [[Double]], base: [Double], output: [Double]) {
        let d = x.count, n = background.count / d, m = groups.featureCount, c = host.spec.classCount
        var rows: [Double] = []
        for s in 0..<(1 << m) {
            for b in 0..<n {
                rows += (0..<d).map { e in s & (1 << Int(groups.elementFeature[e])) != 0 ? x[e] : background[b * d + e] }
            }
        }
        let out = host.logits(rows, rows: rows.count / d)
        let v = (0..<(1 << m)).map { s in (0..<c).map { k in (0..<n).reduce(0.0) { $0 + out[(s * n + $1) * c + k] } / Double(n) } }
        func factorial(_ k: Int) -> Double { (0..<k).reduce(1.0) { $0 * Double($1 + 1) } }
        var phi = [[Double]](repeating: [Double](repeating: 0, count: c), count: m)
        for j in 0..<m {
            for s in 0..<(1 << m) where s & (1 << j) == 0 {
                let size = s.nonzeroBitCount
                let weight = factorial(size) * factorial(m - size - 1) / factorial(m)
                for k in 0..<c { phi[j][k] += weight * (v[s | (1 << j)][k] - v[s][k]) }
            }
        }
        return (phi, v[0], v[(1 << m) - 1])
    }
}

/// A graph evaluated on the host in Double with PrismReference ops, from a model's spec and state
/// dict: an evaluation that shares no code with the device's ops or autograd.
struct HostGraph {
    let spec: ModelSpec
    let tensors: [String: [Double]]

    init(_ model: Model) throws {
        spec = model.spec
        tensors = try model.stateDict().mapValues { $0.values.map(Double.init) }
    }

    /// Every value of the graph for `rows` inputs, by node name ("input" too).
    func activations(_ x: [Double], rows: Int) -> [String: (values: [Double], shape: [Int])] {
        var env: [String: (values: [Double], shape: [Int])] = ["input": (x, [rows] + spec.inputShape)]
        var previous = "input"
        for node in spec.nodes {
            env[node.name] = apply(node, (node.inputs ?? [previous]).map { env[$0]! })
            previous = node.name
        }
        return env
    }

    /// The outputs [rows, classes].
    func logits(_ x: [Double], rows: Int) -> [Double] {
        activations(x, rows: rows)[spec.output ?? spec.nodes.last!.name]!.values
    }

    /// ∂f_c/∂x for every class c ([class][element]) of one input, by central differences.
    func gradients(_ x: [Double], step: Double = 1e-5) -> [[Double]] {
        let d = x.count, c = spec.classCount
        var rows: [Double] = []
        rows.reserveCapacity(2 * d * d)
        for e in 0..<d {
            for sign in [1.0, -1.0] {
                var p = x
                p[e] += sign * step
                rows += p
            }
        }
        let out = logits(rows, rows: 2 * d)
        return (0..<c).map { k in (0..<d).map { e in (out[2 * e * c + k] - out[(2 * e + 1) * c + k]) / (2 * step) } }
    }

    private func apply(_ node: NodeSpec, _ inputs: [(values: [Double], shape: [Int])]) -> (values: [Double], shape: [Int]) {
        func int(_ key: String, _ fallback: Int? = nil) -> Int {
            if case let .int(v)? = node.attributes[key] { return v }
            guard let fallback else { preconditionFailure("node \(node) has no integer '\(key)'") }
            return fallback
        }
        func double(_ key: String, _ fallback: Double) -> Double {
            switch node.attributes[key] {
            case let .double(v)?: v
            case let .int(v)?: Double(v)
            default: fallback
            }
        }
        func bool(_ key: String, _ fallback: Bool) -> Bool {
            if case let .bool(v)? = node.attributes[key] { return v }
            return fallback
        }
        func param(_ name: String) -> [Double]? { tensors["\(node.name).\(name)"] }
        let (x, shape) = inputs[0]
        switch node.op {
        case "conv2d":
            let k = int("kernel_size"), s = int("stride", 1), p = int("padding", 0)
            let y = Reference.conv2d(x: x, xShape: shape, w: param("weight")!, wShape: [int("out_channels"), int("in_channels"), k, k],
                                     bias: param("bias"), stride: (s, s), padding: (p, p))
            return (y.y, y.shape)
        case "batchnorm2d":
            return (Reference.batchNorm(x: x, shape: shape, mean: param("running_mean")!, variance: param("running_var")!,
                                        weight: param("weight"), bias: param("bias"), eps: double("eps", 1e-5)), shape)
        case "relu": return (x.map { max($0, 0) }, shape)
        case "leakyrelu": return (Reference.leakyRelu(x: x, negativeSlope: double("negative_slope", 0.01)), shape)
        case "add":
            precondition(inputs[1].shape == shape, "host add: shapes \(shape) and \(inputs[1].shape)")
            return (zip(x, inputs[1].values).map(+), shape)
        case "cat":
            let shapes = inputs.map(\.shape)
            return (Reference.concat(inputs.map(\.values), shapes: shapes, axis: 1), Reference.concatShape(shapes, axis: 1))
        case "maxpool2d":
            let k = int("kernel_size"), s = int("stride", k)
            let y = Reference.maxPool2d(x: x, shape: shape, kernel: (k, k), stride: (s, s), ceilMode: bool("ceil_mode", false))
            return (y.y, y.shape)
        case "avgpool2d":
            let k = int("kernel_size"), s = int("stride", k)
            let y = Reference.avgPool2d(x: x, shape: shape, kernel: (k, k), stride: (s, s), ceilMode: bool("ceil_mode", false),
                                        countIncludePad: bool("count_include_pad", true))
            return (y.y, y.shape)
        case "adaptiveavgpool2d":
            let o = int("output_size")
            let y = Reference.adaptiveAvgPool2d(x: x, shape: shape, outputSize: (o, o))
            return (y.y, y.shape)
        case "flatten": return (x, [shape[0], shape.dropFirst().reduce(1, *)])
        case "linear":
            let inF = int("in_features"), outF = int("out_features")
            return (Reference.linear(x: x, weight: param("weight")!, bias: param("bias"), rows: shape[0], inFeatures: inF, outFeatures: outF),
                    [shape[0], outF])
        default: preconditionFailure("the host graph has no op '\(node.op)'")
        }
    }
}
