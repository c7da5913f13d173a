import Foundation
import Prism
import PrismExplain
import PrismReference
import PrismTestSupport
import Testing

@Suite struct LRPTests {
    /// Flatten, Linear(4→5), ReLU, Linear(5→3).
    func twoLayerNet(_ engine: Engine, zeroBias: Bool = false) throws -> Model {
        let net = try Model(spec: try ModelSpec.mlp(inputShape: [4], hidden: [5], classes: 3), seed: 71, engine: engine)
        if zeroBias {
            var dict = try net.stateDict()
            for name in ["1.bias", "3.bias"] { dict[name] = HostTensor(shape: dict[name]!.shape, values: [Float](repeating: 0, count: dict[name]!.values.count)) }
            try net.loadStateDict(dict)
        }
        return net
    }

    /// The relevances of `twoLayerNet` by hand, in Double: R₂ = onehot·z₂, R₁ = a₁ ⊙ W₂ᵀ(R₂ / z₂'),
    /// R₀ = x ⊙ W₁ᵀ(R₁ / z₁'), with z' the rule's stabilized pre-activations.
    func handRelevance(_ p: [String: [Double]], x: [Double], target: Int, rules: [LRP.Rule]) -> [Double] {
        func layer(_ w: [Double], _ b: [Double], _ a: [Double], out: Int, _ rule: LRP.Rule) -> (w: [Double], z: [Double], eps: Double) {
            var ww = w, bb = b, eps = 1e-9
            switch rule {
            case let .epsilon(e): eps = e
            case .zPlus: ww = w.map { max($0, 0) }; bb = b.map { _ in 0 }
            case let .gamma(g): ww = w.map { $0 + g * max($0, 0) }; bb = b.map { $0 + g * max($0, 0) }
            }
            let z = (0..<out).map { j in (0..<a.count).reduce(bb[j]) { $0 + ww[j * a.count + $1] * a[$1] } }
            return (ww, z, eps)
        }
        func back(_ r: [Double], _ l: (w: [Double], z: [Double], eps: Double), _ a: [Double]) -> [Double] {
            let s = zip(r, l.z).map { r, z in r / (z + (z >= 0 ? l.eps : -l.eps)) }
            return a.indices.map { i in a[i] * s.indices.reduce(0) { $0 + l.w[$1 * a.count + i] * s[$1] } }
        }
        let plain1 = layer(p["1.weight"]!, p["1.bias"]!, x, out: 5, .epsilon(0))
        let a1 = plain1.z.map { max($0, 0) }
        let plain2 = layer(p["3.weight"]!, p["3.bias"]!, a1, out: 3, .epsilon(0))
        var r2 = [Double](repeating: 0, count: 3)
        r2[target] = plain2.z[target]
        let r1 = back(r2, layer(p["3.weight"]!, p["3.bias"]!, a1, out: 3, rules[1]), a1)
        return back(r1, layer(p["1.weight"]!, p["1.bias"]!, x, out: 5, rules[0]), x)
    }

    @Test(arguments: [[LRP.Rule.epsilon(0.01), .epsilon(0.01)], [.zPlus, .epsilon(0.1)], [.gamma(0.25), .zPlus]])
    func twoLayerReLUNetworkMatchesHandComputation(rules: [LRP.Rule]) throws {
        let engine = try testEngine()
        let net = try twoLayerNet(engine)
        let p = try ReferenceNetwork(net).parameters
        let x = seededFloats(3 * 4, seed: 72)
        let e = try LRP(model: net, rule: rules[1], layerRules: [1: rules[0]], rowsPerChunk: 2).explain(instances: x, targets: .classes([0, 2]))
        for i in 0..<3 {
            for (t, c) in [0, 2].enumerated() {
                let expected = handRelevance(p, x: x[(i * 4)..<((i + 1) * 4)].map(Double.init), target: c, rules: rules)
                let check = closeness(attributionFloats(e, instance: i, output: t), expected, atol: 1e-5, rtol: 1e-4, label: "\(rules) \(i) \(c)")
                #expect(check.passed, Comment(rawValue: check.message))
            }
        }
        #expect(net.parameters.allSatisfy { $0.grad == nil })
    }

    /// Without biases and with ε → 0 every layer passes on all its relevance: Σ R_input = f_c(x).
    @Test func epsilonRuleConservesRelevanceWithoutBiases() throws {
        let engine = try testEngine()
        let net = try twoLayerNet(engine, zeroBias: true)
        let x = seededFloats(4 * 4, seed: 73)
        let e = try LRP(model: net, rule: .epsilon(1e-9)).explain(instances: x, targets: .classes([0, 1, 2]))
        for i in 0..<4 {
            for t in 0..<3 {
                let f = e.outputs![i * 3 + t]
                #expect(abs(e.additivityGap(instance: i, output: t)!) <= 1e-5 + 1e-4 * abs(f), "instance \(i) class \(t): gap \(e.additivityGap(instance: i, output: t)!) of f = \(f)")
            }
        }
        // With biases, ε-LRP does not conserve: the gap is reported.
        let biased = try LRP(model: try twoLayerNet(engine), rule: .epsilon(1e-9)).explain(instances: x, targets: .classes([0]))
        #expect(biased.settings["conservation_gap"]!.doubleValue! > 1e-3)
    }

    /// z⁺ through the reference CNN (convolutions, max pooling, flatten, linear) with zero biases on
    /// non-negative inputs: relevance is conserved, and the result does not depend on the chunk size.
    @Test func zPlusThroughTheCNNConservesAndIsChunkInvariant() throws {
        let engine = try testEngine()
        let net = try AttributionNetworks.cnn(engine)
        var dict = try net.stateDict()
        for (name, t) in dict where name.hasSuffix("bias") { dict[name] = HostTensor(shape: t.shape, values: [Float](repeating: 0, count: t.values.count)) }
        try net.loadStateDict(dict)
        let x = seededFloats(3 * 100, seed: 74, low: 0, high: 1)
        let whole = try LRP(model: net, rule: .zPlus, rowsPerChunk: 8).explain(instances: x, targets: .perInstance([0, 1, 2]))
        let single = try LRP(model: net, rule: .zPlus, rowsPerChunk: 1).explain(instances: x, targets: .perInstance([0, 1, 2]))
        let check = closeness(single.values.map { Float($0) }, whole.values, atol: 1e-7, rtol: 1e-5)
        #expect(check.passed, Comment(rawValue: check.message))
        for i in 0..<3 {
            let f = whole.outputs![i]
            #expect(abs(whole.additivityGap(instance: i, output: 0)!) <= 1e-4 * max(1, abs(f)), "instance \(i): gap \(whole.additivityGap(instance: i, output: 0)!) of f = \(f)")
        }
    }

    @Test func layersWithoutARuleAreRejected() throws {
        let engine = try testEngine()
        let net = try AttributionNetworks.geluMLP(engine)
        #expect(throws: ExplainError.self) { try LRP(model: net).explain(instances: [Float](repeating: 0, count: 12), targets: .classes([0])) }
    }

    /// A grouped convolution and a squeeze-excitation block without biases: the product's signal takes
    /// all the relevance and the gate none, so ε-LRP conserves it; a power of two values has no rule.
    @Test func squeezeExcitationProductsConserveRelevance() throws {
        let engine = try testEngine()
        func model(_ nodes: String) throws -> Model {
            let json = #"{"format": 2, "input_shape": [2, 5, 5], "outputs": 3, "nodes": [{"name": "conv", "op": "conv2d", "in_channels": 2, "out_channels": 4, "kernel_size": 3, "padding": 1, "groups": 2, "bias": false}, {"name": "act", "op": "relu"}, "#
                + nodes + #", {"name": "pool", "op": "adaptiveavgpool2d", "output_size": 1}, {"name": "flat", "op": "flatten"}, {"name": "fc", "op": "linear", "in_features": 4, "out_features": 3, "bias": false}]}"#
            return try Model(spec: try ModelSpec.decode(json: json), seed: 75, engine: engine)
        }
        let se = try model(#"""
            {"name": "squeeze", "op": "adaptiveavgpool2d", "output_size": 1}, {"name": "gate", "op": "hardsigmoid"},
            {"name": "scale", "op": "mul", "inputs": ["act", "gate"]}, {"name": "halve", "op": "div", "other_shape": [], "inputs": ["scale"]}
            """#)
        try se.loadStateDict(try se.stateDict().merging(["halve.other": HostTensor(shape: [], values: [2])]) { $1 })
        let x = seededFloats(3 * 50, seed: 76)
        let e = try LRP(model: se, rule: .epsilon(1e-9)).explain(instances: x, targets: .classes([0, 2]))
        #expect(e.values.contains { $0 != 0 } && e.values.allSatisfy(\.isFinite))
        for i in 0..<3 {
            for t in 0..<2 {
                let f = e.outputs![i * 2 + t], gap = e.additivityGap(instance: i, output: t)!
                #expect(abs(gap) <= 1e-5 + 1e-4 * abs(f), "instance \(i) target \(t): gap \(gap) of f = \(f)")
            }
        }
        let power = try model(#"{"name": "p", "op": "pow", "inputs": ["act", "act"]}"#)
        #expect(throws: ExplainError.self) { try LRP(model: power).explain(instances: x, targets: .classes([0])) }
    }
}

/// LRP through the ops that move, select, repeat, resample and sum values (the layout ops an ONNX
/// import emits): on a bias-free piecewise-linear graph LRP-0 is Gradient × Input, here against
/// x ⊙ central differences of the model's outputs (one batch of perturbed rows), and its relevance
/// is conserved up to what narrow and index_select leave out.
@Suite struct LRPLayoutTests {
    static let json = #"""
    {"format": 2, "input_shape": [2, 4, 6], "outputs": 3, "nodes": [
      {"name": "l1", "op": "linear", "in_features": 6, "out_features": 6, "bias": false},
      {"name": "r1", "op": "relu"},
      {"name": "p", "op": "permute", "dims": [0, 2, 1, 3]},
      {"name": "n", "op": "narrow", "dim": 1, "start": 1, "length": 3},
      {"name": "s", "op": "index_select", "dim": 3, "index": [5, 0, 2, 2]},
      {"name": "u", "op": "upsample", "scale_factor": 2, "mode": "nearest"},
      {"name": "pd", "op": "pad", "pad": [1, 1, 0, 0]},
      {"name": "m", "op": "sum", "dim": 2, "keepdim": true},
      {"name": "b", "op": "broadcast_to", "shape": [3, 2, 10]},
      {"name": "rs", "op": "reshape", "shape": [60]},
      {"name": "fc", "op": "linear", "in_features": 60, "out_features": 3, "bias": false}
    ]}
    """#

    @Test func lrpZeroThroughLayoutOpsEqualsGradientTimesInput() throws {
        let engine = try testEngine()
        let spec = try ModelSpec.decode(json: Self.json, source: "layout.json")
        let model = try Model(spec: spec, seed: 7, engine: engine)
        let d = 48, x = seededFloats(d, seed: 71).map { $0 + 0.25 }
        let e = try LRP(model: model, rule: .epsilon(1e-9)).explain(instances: x, targets: .classes([0, 1, 2]))
        // Central differences: rows x ± h·e_k, one forward pass.
        let h: Float = 1e-2
        var rows: [Float] = []
        for k in 0..<d {
            for sign: Float in [1, -1] {
                var r = x
                r[k] += sign * h
                rows += r
            }
        }
        let f = try engine.noGrad { try model(try Tensor(rows, shape: [2 * d, 2, 4, 6], engine: engine)).toArray() }
        let fx = try engine.noGrad { try model(try Tensor(x, shape: [1, 2, 4, 6], engine: engine)).toArray() }
        for c in 0..<3 {
            let expected = (0..<d).map { k in Double(x[k]) * Double(f[(2 * k) * 3 + c] - f[(2 * k + 1) * 3 + c]) / Double(2 * h) }
            let scale = expected.map(abs).max() ?? 0
            #expect(scale > 0)
            expectClose(e.attributions(instance: 0, output: c), expected, atol: 2e-3 * scale, rtol: 2e-3, "LRP-0 class \(c)")
            // The graph is positively homogeneous of degree 1 without biases: Σ x ⊙ ∇f = f(x).
            let total = e.attributions(instance: 0, output: c).reduce(0, +)
            #expect(abs(total - Double(fx[c])) <= 1e-4 * max(1, abs(Double(fx[c]))), "class \(c): Σ R \(total) vs f(x) \(fx[c])")
        }
    }
}
