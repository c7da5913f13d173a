import Foundation
import Prism
import PrismExplain
import PrismONNX
import PrismTestSupport
import Testing

/// DeepLIFT and DeepSHAP against closed forms: a linear model (w · (x − r)), a ReLU network's
/// rescale multipliers by hand, shap's max-pooling rule on hand-built windows; and conservation
/// (summation to delta, node by node) on the CNN and on graphs with products, quotients and
/// residual sums.
@Suite struct DeepLiftTests {
    func model(_ json: String, seed: UInt64 = 81, _ engine: Engine) throws -> Model {
        try Model(spec: try ModelSpec.decode(json: json), seed: seed, engine: engine)
    }

    /// The attribution's largest summation-to-delta error relative to max(1, |f(x)|).
    func expectSummation(_ e: Explanation, tolerance: Double = 1e-4, _ label: String) {
        for i in 0..<e.instanceCount {
            for t in 0..<e.outputCount {
                let f = e.outputs![i * e.outputCount + t], gap = e.additivityGap(instance: i, output: t)!
                #expect(abs(gap) <= tolerance * max(1, abs(f)), "\(label) instance \(i) target \(t): Σφ − (f(x) − E f(r)) = \(gap), f = \(f)")
            }
        }
    }

    @Test func linearModelGivesWeightsTimesDifference() throws {
        let engine = try testEngine()
        let net = try model(#"{"format": 2, "input_shape": [5], "outputs": 3, "nodes": [{"name": "fc", "op": "linear", "in_features": 5, "out_features": 3}]}"#, engine)
        let w = try net.stateDict()["fc.weight"]!.values
        let x = seededFloats(2 * 5, seed: 1), r = seededFloats(2 * 5, seed: 2), background = seededFloats(4 * 5, seed: 3)
        let lift = try DeepLift(model: net, references: .baseline(.values(r))).explain(instances: x, targets: .classes([0, 2]))
        let shap = try DeepLift(model: net, references: .background(background)).explain(instances: x, targets: .classes([0, 2]))
        #expect(lift.method == "deeplift" && shap.method == "deepshap")
        for i in 0..<2 {
            for (t, k) in [0, 2].enumerated() {
                for e in 0..<5 {
                    let mean = (0..<4).reduce(0.0) { $0 + Double(background[$1 * 5 + e]) } / 4
                    let exact = Double(w[k * 5 + e]) * (Double(x[i * 5 + e]) - Double(r[i * 5 + e]))
                    let exactShap = Double(w[k * 5 + e]) * (Double(x[i * 5 + e]) - mean)
                    #expect(abs(lift.attributions(instance: i, output: t)[e] - exact) <= 1e-6 * max(1, abs(exact)))
                    #expect(abs(shap.attributions(instance: i, output: t)[e] - exactShap) <= 1e-6 * max(1, abs(exactShap)))
                }
            }
        }
        expectSummation(lift, "linear deeplift")
        expectSummation(shap, "linear deepshap")
    }

    /// Linear(4→5), ReLU, Linear(5→3): m_x = W₁ᵀ(W₂[k] ⊙ (relu(h) − relu(h_r)) / (h − h_r)), φ = m_x ⊙ (x − r).
    @Test func reluNetworkMatchesTheRescaleRuleByHand() throws {
        let engine = try testEngine()
        let net = try Model(spec: try ModelSpec.mlp(inputShape: [4], hidden: [5], classes: 3), seed: 71, engine: engine)
        let p = try net.stateDict().mapValues { $0.values.map(Double.init) }
        let (w1, b1, w2) = (p["1.weight"]!, p["1.bias"]!, p["3.weight"]!)
        let x = seededFloats(3 * 4, seed: 4), r = seededFloats(3 * 4, seed: 5)
        let e = try DeepLift(model: net, references: .baseline(.values(r))).explain(instances: x, targets: .classes([0, 1, 2]))
        func affine(_ v: [Double], _ j: Int) -> Double {
            var sum = b1[j]
            for el in 0..<4 { sum += w1[j * 4 + el] * v[el] }
            return sum
        }
        for i in 0..<3 {
            let xi: [Double] = (0..<4).map { Double(x[i * 4 + $0]) }
            let ri: [Double] = (0..<4).map { Double(r[i * 4 + $0]) }
            var slope = [Double](repeating: 0, count: 5)
            for j in 0..<5 {
                let (h, hr) = (affine(xi, j), affine(ri, j))
                slope[j] = abs(h - hr) > 1e-6 ? (max(h, 0) - max(hr, 0)) / (h - hr) : (h > 0 ? 1 : 0)
            }
            for k in 0..<3 {
                for el in 0..<4 {
                    var m = 0.0
                    for j in 0..<5 { m += w1[j * 4 + el] * w2[k * 5 + j] * slope[j] }
                    let exact = m * (xi[el] - ri[el])
                    let got = e.attributions(instance: i, output: k)[el]
                    #expect(abs(got - exact) <= 1e-5 * max(1, abs(exact)), "instance \(i) class \(k) element \(el): \(got) vs \(exact)")
                }
            }
        }
        expectSummation(e, "relu mlp")
    }

    /// MaxPool2D(2) on one 2×2 window, then a Linear(1→1) of weight 2: the window's Δy goes to x's
    /// maximum when y > y_r and to r's maximum when y < y_r (shap's rule).
    @Test func maxPoolingHandsTheWindowsChangeToTheMaxima() throws {
        let engine = try testEngine()
        let net = try model(#"{"format": 2, "input_shape": [1, 2, 2], "outputs": 1, "nodes": [{"name": "pool", "op": "maxpool2d", "kernel_size": 2}, {"name": "flat", "op": "flatten"}, {"name": "fc", "op": "linear", "in_features": 1, "out_features": 1, "bias": false}]}"#, engine)
        try net.loadStateDict(["fc.weight": HostTensor(shape: [1, 1], values: [2])])
        let x: [Float] = [1, 3, 0, 2, /* second instance */ 1, 0, 0, 0.5]
        let r: [Float] = [2, 0, 1, 1, /* */ 0, 3, 0, 0]
        let e = try DeepLift(model: net, references: .baseline(.values(r))).explain(instances: x, targets: .classes([0]))
        // y = 3 at x's (0, 1) against y_r = 2: Δ = 1 there, times 2. y = 1 against y_r = 3 at r's (0, 1): Δ = −2 there, times 2.
        #expect(e.attributions(instance: 0, output: 0) == [0, 2, 0, 0])
        #expect(e.attributions(instance: 1, output: 0) == [0, -4, 0, 0])
        expectSummation(e, "maxpool")
    }

    /// The reference CNN (convolutions, ReLU, max pooling, linear layers): DeepSHAP sums to
    /// f(x) − E f(background) for every class, every node conserves, and the result does not depend
    /// on how pairs are split into device batches.
    @Test func cnnSumsToDeltaAndConservesNodeByNode() throws {
        let engine = try testEngine()
        let net = try AttributionNetworks.cnn(engine)
        let x = seededFloats(2 * 100, seed: 6, low: 0, high: 1), background = seededFloats(5 * 100, seed: 7, low: 0, high: 1)
        let whole = try DeepLift(model: net, references: .background(background), rowsPerChunk: 64).explain(instances: x, targets: .classes([0, 1, 2]))
        let split = try DeepLift(model: net, references: .background(background), rowsPerChunk: 3).explain(instances: x, targets: .classes([0, 1, 2]))
        expectSummation(whole, "cnn deepshap")
        if case let .double(gap)? = whole.settings["conservation_gap"] { #expect(gap <= 1e-4, "largest node gap \(gap)") } else { Issue.record("no conservation_gap") }
        let check = closeness(split.values.map { Float($0) }, whole.values, atol: 1e-6, rtol: 1e-4)
        #expect(check.passed, Comment(rawValue: check.message))
        // Weighted references: weight 3 on the first row equals that row repeated three times.
        let weighted = try DeepLift(model: net, references: .background(Array(background[0..<200]), weights: [3, 1])).explain(instances: x, targets: .classes([1]))
        let repeated = try DeepLift(model: net, references: .background(Array(background[0..<100] + background[0..<100] + background[0..<200]))).explain(instances: x, targets: .classes([1]))
        let same = closeness(weighted.values.map { Float($0) }, repeated.values, atol: 1e-6, rtol: 1e-4)
        #expect(same.passed, Comment(rawValue: same.message))
    }

    /// A grouped convolution, a squeeze-excitation product of two values, a quotient of two values,
    /// overlapping max pooling, ELU and a residual sum: Σφ = f(x) − f(r) to float32 rounding.
    @Test func productsQuotientsAndResidualsConserve() throws {
        let engine = try testEngine()
        let net = try model(#"""
            {"format": 2, "input_shape": [2, 6, 6], "outputs": 3, "nodes": [
              {"name": "conv", "op": "conv2d", "in_channels": 2, "out_channels": 4, "kernel_size": 3, "padding": 1, "groups": 2},
              {"name": "act", "op": "elu"},
              {"name": "squeeze", "op": "adaptiveavgpool2d", "output_size": 1},
              {"name": "gate", "op": "sigmoid"},
              {"name": "scale", "op": "mul", "inputs": ["act", "gate"]},
              {"name": "den", "op": "exp", "inputs": ["squeeze"]},
              {"name": "ratio", "op": "div", "inputs": ["scale", "den"]},
              {"name": "res", "op": "add", "inputs": ["ratio", "act"]},
              {"name": "pool", "op": "maxpool2d", "kernel_size": 3, "stride": 1},
              {"name": "flat", "op": "flatten"},
              {"name": "fc", "op": "linear", "in_features": 64, "out_features": 3}
            ]}
            """#, engine)
        let x = seededFloats(3 * 72, seed: 8), r = seededFloats(3 * 72, seed: 9)
        let e = try DeepLift(model: net, references: .baseline(.values(r))).explain(instances: x, targets: .classes([0, 1, 2]))
        #expect(e.values.contains { $0 != 0 } && e.values.allSatisfy(\.isFinite))
        expectSummation(e, "graph")
        if case let .double(gap)? = e.settings["conservation_gap"] { #expect(gap <= 1e-4, "largest node gap \(gap)") }
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/onnx").path

    /// DeepSHAP on a PyTorch CNN imported from ONNX against shap 0.51's DeepExplainer on the PyTorch
    /// network, same instances and 20 background rows (`Tests/Fixtures/make_deepshap_fixture.py`).
    @Test func deepShapMatchesShapsDeepExplainer() throws {
        let engine = try testEngine()
        let file = try SafetensorsFile.read(path: Self.fixtures + "/deepshap.safetensors")
        let (net, _) = try Model.load(path: Self.fixtures + "/deepshap_cnn.onnx", engine: engine)
        let instances = try file.tensor("instances").values, background = try file.tensor("background").values
        let logits = try engine.noGrad { try net(try Tensor(instances, shape: [2, 1, 10, 10], engine: engine)).toArray() }
        expectClose(logits.map(Double.init), try file.tensor("cnn_logits").values.map(Double.init), atol: 1e-5, rtol: 1e-4, "logits vs PyTorch")
        let e = try DeepLift(model: net, references: .background(background)).explain(instances: instances, targets: .classes([0, 1, 2]))
        let shap = try file.tensor("cnn_shap").values.map(Double.init)
        let scale = shap.map(abs).max()!
        let worst = zip(e.values, shap).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-4 * scale, "max |φ_prism − φ_shap| = \(worst), max |φ_shap| = \(scale)")
        expectClose(e.baseValues!, try file.tensor("cnn_expected").values.map(Double.init) + file.tensor("cnn_expected").values.map(Double.init),
                    atol: 1e-5, rtol: 1e-4, "base values vs shap's expected_value")
        expectSummation(e, "imported cnn")
    }

    /// A network that calls one ReLU module twice: shap's DeepExplainer and Captum fail on it (the
    /// fixture records how), Prism's DeepSHAP sums to f(x) − E f(background) as on any graph.
    @Test func deepShapHoldsWhereShapsHooksBreak() throws {
        let engine = try testEngine()
        let file = try SafetensorsFile.read(path: Self.fixtures + "/deepshap.safetensors")
        #expect(file.metadata["shap_twice"]?.isEmpty == false && file.metadata["captum_twice"]?.isEmpty == false)
        let (net, _) = try Model.load(path: Self.fixtures + "/deepshap_twice.onnx", engine: engine)
        let instances = try file.tensor("instances").values, background = try file.tensor("background").values
        let e = try DeepLift(model: net, references: .background(background)).explain(instances: instances, targets: .classes([0, 1, 2]))
        expectClose(e.outputs!, try file.tensor("twice_logits").values.map(Double.init), atol: 1e-5, rtol: 1e-4, "logits vs PyTorch")
        let expected = try file.tensor("twice_expected").values.map(Double.init)
        expectClose(e.baseValues!, expected + expected, atol: 1e-5, rtol: 1e-4, "base values vs PyTorch's mean over the background")
        expectSummation(e, "relu used twice")
    }

    /// Self-attention written with the graph's ops (LayerNorm, Q·Kᵀ, Softmax, P·V, a residual sum):
    /// the products split exactly and the normalizations rescale, so DeepSHAP sums to delta.
    @Test func attentionFromGraphOpsConserves() throws {
        let engine = try testEngine()
        let net = try model(#"""
            {"format": 2, "input_shape": [5, 6], "outputs": 3, "nodes": [
              {"name": "ln", "op": "layernorm", "normalized_shape": 6},
              {"name": "q", "op": "linear", "in_features": 6, "out_features": 6, "inputs": ["ln"]},
              {"name": "k", "op": "linear", "in_features": 6, "out_features": 6, "inputs": ["ln"]},
              {"name": "v", "op": "linear", "in_features": 6, "out_features": 6, "inputs": ["ln"]},
              {"name": "kt", "op": "permute", "dims": [0, 2, 1], "inputs": ["k"]},
              {"name": "s", "op": "matmul", "inputs": ["q", "kt"]},
              {"name": "p", "op": "softmax", "dim": -1},
              {"name": "o", "op": "matmul", "inputs": ["p", "v"]},
              {"name": "res", "op": "add", "inputs": ["o", "input"]},
              {"name": "m", "op": "mean", "dim": 1},
              {"name": "fc", "op": "linear", "in_features": 6, "out_features": 3}
            ]}
            """#, engine)
        let x = seededFloats(2 * 30, seed: 10), background = seededFloats(4 * 30, seed: 11)
        let e = try DeepLift(model: net, references: .background(background)).explain(instances: x, targets: .classes([0, 1, 2]))
        #expect(e.values.contains { $0 != 0 } && e.values.allSatisfy(\.isFinite))
        expectSummation(e, "attention")
        if case let .double(gap)? = e.settings["conservation_gap"] { #expect(gap <= 1e-4, "largest node gap \(gap)") }
    }

    /// The imported transformer encoder (PyTorch's nn.TransformerEncoder exported to ONNX: LayerNorm,
    /// attention as MatMul and Softmax, GELU): DeepSHAP sums to delta there too.
    @Test func importedTransformerSumsToDelta() throws {
        let engine = try testEngine()
        let (net, _) = try Model.load(path: Self.fixtures + "/transformer_torchscript.onnx", engine: engine)
        let d = net.spec.inputShape.reduce(1, *)
        let x = seededFloats(2 * d, seed: 12, low: -1, high: 1), background = seededFloats(3 * d, seed: 13, low: -1, high: 1)
        let e = try DeepLift(model: net, references: .background(background)).explain(instances: x, targets: .classes([0, 1]))
        #expect(e.values.contains { $0 != 0 } && e.values.allSatisfy(\.isFinite))
        expectSummation(e, "imported transformer")
        if case let .double(gap)? = e.settings["conservation_gap"] { #expect(gap <= 1e-4, "largest node gap \(gap)") }
    }

    /// The built-in vision transformer (patch embedding, pre-norm blocks with fused attention, class
    /// token): DeepSHAP sums to delta and conserves through each block's steps, and equals DeepSHAP on
    /// the same network exported to ONNX and imported as primitive nodes (LayerNormalization, MatMul,
    /// Softmax, GELU as Erf and products), whose rules it shares.
    @Test func builtInVisionTransformerConservesAndMatchesItsPrimitiveGraph() throws {
        let engine = try testEngine()
        let net = try Model(spec: try ModelSpec.vit(height: 8, width: 8, channels: 1, classes: 3, patch: 4, dim: 16, depth: 2, heads: 2, mlpDim: 24),
                            seed: 5, engine: engine)
        let x = seededFloats(2 * 64, seed: 14, low: 0, high: 1), background = seededFloats(4 * 64, seed: 15, low: 0, high: 1)
        let e = try DeepLift(model: net, references: .background(background)).explain(instances: x, targets: .classes([0, 2]))
        #expect(e.values.contains { $0 != 0 } && e.values.allSatisfy(\.isFinite))
        expectSummation(e, "built-in vit")
        if case let .double(gap)? = e.settings["conservation_gap"] { #expect(gap <= 1e-4, "largest node gap \(gap)") } else { Issue.record("no conservation_gap") }

        let path = NSTemporaryDirectory() + "prism-vit-\(getpid())-\(UUID().uuidString.prefix(8)).onnx"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ONNXExport.write(spec: net.spec, tensors: try net.stateDict(), source: "vit", to: path)
        let (imported, _) = try Model.load(path: path, engine: engine)
        #expect(imported.ops.contains { $0 is Softmax } && !imported.ops.contains { $0 is TransformerBlock })
        let primitive = try DeepLift(model: imported, references: .background(background)).explain(instances: x, targets: .classes([0, 2]))
        let scale = primitive.values.map(abs).max()!, worst = zip(e.values, primitive.values).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-4 * scale, "built-in against primitive nodes: largest difference \(worst), largest value \(scale)")
    }

    /// Layer normalization's rule (the split of c·s) tends to the gradient as the reference nears the
    /// instance: φ ≈ ∇f ⊙ (x − r) for a reference one small step away.
    @Test func layerNormRuleTendsToTheGradient() throws {
        let engine = try testEngine()
        let net = try model(#"{"format": 2, "input_shape": [3, 8], "outputs": 2, "nodes": [{"name": "ln", "op": "layernorm", "normalized_shape": 8}, {"name": "act", "op": "tanh"}, {"name": "flat", "op": "flatten"}, {"name": "fc", "op": "linear", "in_features": 24, "out_features": 2}]}"#, engine)
        let x = seededFloats(24, seed: 17, low: -1, high: 1), direction = seededFloats(24, seed: 18, low: -1, high: 1)
        let step: Float = 1e-3
        let near = try DeepLift(model: net, references: .baseline(.values(zip(x, direction).map { $0 - step * $1 }))).explain(instances: x, targets: .classes([1]))
        let gradient = try Saliency(model: DifferentiableModel(net), absolute: false).explain(instances: x, targets: .classes([1]))
        let expected = zip(gradient.values, direction).map { $0 * Double(step * $1) }
        let scale = expected.map(abs).max()!, worst = zip(near.values, expected).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-2 * scale, "φ against ∇f ⊙ Δ: largest difference \(worst), largest term \(scale)")
        #expect(try #require(near.settings["conservation_gap"]?.doubleValue) <= 1e-4)
    }

    /// Rows where the rules' old denominators vanished: a softmax row whose moving scores go up and
    /// down by the same step while the others stay (the linearized change is about 0), and a layer
    /// norm whose reference row is a permutation of the instance's (equal deviations). Both conserve
    /// and stay finite.
    @Test func softmaxAndLayerNormRowsWithoutCancellingDenominators() throws {
        let engine = try testEngine()
        let soft = try model(#"{"format": 2, "input_shape": [4], "outputs": 2, "nodes": [{"name": "p", "op": "softmax", "dim": -1}, {"name": "fc", "op": "linear", "in_features": 4, "out_features": 2}]}"#, engine)
        let e = try DeepLift(model: soft, references: .baseline(.values([0, 1.001, 0.999, 0.5]))).explain(instances: [0, 1, 1, 0.5], targets: .classes([0, 1]))
        #expect(e.values.allSatisfy { $0.isFinite && abs($0) < 1 }, "\(e.values)")
        expectSummation(e, "softmax ±δ")
        let gap = try #require(e.settings["conservation_gap"]?.doubleValue)
        #expect(gap <= 1e-4)

        let norm = try model(#"{"format": 2, "input_shape": [6], "outputs": 2, "nodes": [{"name": "ln", "op": "layernorm", "normalized_shape": 6}, {"name": "fc", "op": "linear", "in_features": 6, "out_features": 2}]}"#, engine)
        let x: [Float] = [0.3, -1.2, 2.0, 0.7, -0.4, 1.1]
        let permuted: [Float] = [x[2], x[0], x[1], x[5], x[3], x[4]]
        let l = try DeepLift(model: norm, references: .baseline(.values(permuted))).explain(instances: x, targets: .classes([0, 1]))
        #expect(l.values.allSatisfy { $0.isFinite && abs($0) < 100 }, "\(l.values)")
        expectSummation(l, "layer norm, permuted row")
        #expect(try #require(l.settings["conservation_gap"]?.doubleValue) <= 1e-4)
    }

    /// amax under shap's rule for maxima: all of a row's Δ goes to the maxima of x and of r. A power
    /// of two values: the two-player Shapley split of its Δ, by hand.
    @Test func amaxAndPowerOfTwoValues() throws {
        let engine = try testEngine()
        let top = try model(#"{"format": 2, "input_shape": [4], "outputs": 1, "nodes": [{"name": "top", "op": "amax", "dim": 1, "keepdim": true}]}"#, engine)
        // max x = 5 at index 2, max r = 3 at index 0: Δ = 2 = (5 − 3) all to index 2 (c − y_r), nothing back (y − c = 0).
        let maxima = try DeepLift(model: top, references: .baseline(.values([3, 1, 0, 2]))).explain(instances: [1, 4, 5, 0], targets: .classes([0]))
        expectValues(maxima.values, [0, 0, 2, 0], "amax, x above r")
        // max x = 1 at index 3, max r = 3 at index 0: Δ = −2 all to r's maximum, index 0 (y − c).
        let down = try DeepLift(model: top, references: .baseline(.values([3, 1, 0, 2]))).explain(instances: [-1, 0, 0.5, 1], targets: .classes([0]))
        expectValues(down.values, [-2, 0, 0, 0], "amax, x below r")

        let power = try model(#"""
            {"format": 2, "input_shape": [2], "outputs": 1, "nodes": [
              {"name": "a", "op": "narrow", "dim": 1, "start": 0, "length": 1, "inputs": ["input"]},
              {"name": "b", "op": "narrow", "dim": 1, "start": 1, "length": 1, "inputs": ["input"]},
              {"name": "base", "op": "exp", "inputs": ["a"]},
              {"name": "p", "op": "pow", "inputs": ["base", "b"]}
            ]}
            """#, engine)
        let (x, r): ([Float], [Float]) = ([0.5, 2], [-0.3, 0.5])
        let e = try DeepLift(model: power, references: .baseline(.values(r))).explain(instances: x, targets: .classes([0]))
        let f = { (a: Double, b: Double) in Foundation.pow(Foundation.exp(a), b) }
        let (a, b, ar, br) = (Double(x[0]), Double(x[1]), Double(r[0]), Double(r[1]))
        let ca = 0.5 * ((f(a, br) - f(ar, br)) + (f(a, b) - f(ar, b)))
        expectValues(e.values, [ca, f(a, b) - f(ar, br) - ca], "pow of two values", tolerance: 1e-5)
    }

    func expectValues(_ got: [Double], _ expected: [Double], _ label: String, tolerance: Double = 1e-6) {
        #expect(got.count == expected.count && zip(got, expected).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }, "\(label): \(got) against \(expected)")
    }

    @Test func opsWithoutARuleAreRefusedByName() throws {
        let engine = try testEngine()
        let net = try model(#"{"format": 2, "input_shape": [4], "outputs": 3, "nodes": [{"name": "fc", "op": "linear", "in_features": 4, "out_features": 3}, {"name": "top", "op": "gt", "other": 0}, {"name": "back", "op": "cast", "dtype": "float32"}, {"name": "out", "op": "linear", "in_features": 3, "out_features": 3}]}"#, engine)
        #expect(throws: ExplainError("deeplift: no rule for node 1 'top' (gt); DeepLIFT has rules for \(DeepLift.supportedOps.joined(separator: ", "))")) {
            try DeepLift(model: net).explain(instances: [Float](repeating: 0, count: 4), targets: .classes([0]))
        }
        #expect(throws: ExplainError.self) {
            try DeepLift(model: net, references: .background([1, 2, 3])).explain(instances: [Float](repeating: 0, count: 4), targets: .classes([0]))
        }
    }
}
