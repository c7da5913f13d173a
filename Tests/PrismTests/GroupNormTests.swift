import Prism
import PrismTestSupport
import Testing

/// `groupnorm` (nn.GroupNorm, and ONNX InstanceNormalization as groups = C) against a plain-Swift
/// reference in Double, its backward against finite differences of that reference.
@Suite struct GroupNormTests {
    /// y of group normalization, x [N, C, rest] flattened, in Double.
    static func reference(_ x: [Double], n: Int, c: Int, rest: Int, groups: Int, weight: [Double]?, bias: [Double]?, eps: Double) -> [Double] {
        var y = [Double](repeating: 0, count: x.count)
        let span = (c / groups) * rest
        for e in 0..<n {
            for g in 0..<groups {
                let base = (e * c + g * (c / groups)) * rest
                let values = x[base..<(base + span)]
                let mean = values.reduce(0, +) / Double(span)
                let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(span)
                for i in 0..<span {
                    let channel = g * (c / groups) + i / rest
                    y[base + i] = (x[base + i] - mean) / (variance + eps).squareRoot() * (weight?[channel] ?? 1) + (bias?[channel] ?? 0)
                }
            }
        }
        return y
    }

    /// [N, C, H, W] and [N, C, L] with group counts from one (a layer norm over [C, *]) to C (an
    /// instance norm), odd sizes; one group of the first case constant (variance 0: y is β).
    static let cases: [(shape: [Int], groups: Int)] = [([3, 6, 5, 7], 2), ([2, 6, 3, 3], 3), ([2, 6, 4, 5], 6), ([3, 5, 2, 3], 1), ([2, 4, 9], 4), ([4, 3], 3)]

    @Test(arguments: cases.indices)
    func forwardMatchesReferenceAndBackwardMatchesFiniteDifferences(_ index: Int) throws {
        let (shape, groups) = Self.cases[index]
        let engine = try testEngine()
        let (n, c) = (shape[0], shape[1]), count = shape.reduce(1, *), rest = count / (n * c)
        var x = seededFloats(count, seed: 70 + UInt64(index), low: -2, high: 3)
        if index == 0 { for i in 0..<((c / groups) * rest) { x[i] = 0.75 } }
        let w = seededFloats(c, seed: 80, low: -1.5, high: 1.5), b = seededFloats(c, seed: 81)
        let dy = seededFloats(count, seed: 82)
        let xt = try Tensor(x, shape: shape, engine: engine, requiresGrad: true)
        let wt = try Tensor(w, shape: [c], engine: engine, requiresGrad: true)
        let bt = try Tensor(b, shape: [c], engine: engine, requiresGrad: true)
        let eps = 1e-3
        let y = try groupNorm(xt, groups: groups, weight: wt, bias: bt, eps: Float(eps))
        #expect(y.shape == shape)
        let ref = Self.reference(doubles(x), n: n, c: c, rest: rest, groups: groups, weight: doubles(w), bias: doubles(b), eps: eps)
        expectClose(try y.toArray(), ref, atol: 1e-4, rtol: 1e-4, "y \(shape) groups \(groups)")

        try y.backward(try Tensor(dy, shape: shape, engine: engine))
        let g = doubles(dy)
        func loss(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double {
            dot(g, Self.reference(x, n: n, c: c, rest: rest, groups: groups, weight: w, bias: b, eps: eps))
        }
        let (xd, wd, bd) = (doubles(x), doubles(w), doubles(b))
        expectClose(try #require(xt.grad).toArray(), finiteDifferences(at: xd) { loss($0, wd, bd) }, atol: 2e-3, rtol: 2e-3, "dx \(shape)")
        expectClose(try #require(wt.grad).toArray(), finiteDifferences(at: wd) { loss(xd, $0, bd) }, atol: 1e-3, rtol: 1e-3, "dweight \(shape)")
        expectClose(try #require(bt.grad).toArray(), finiteDifferences(at: bd) { loss(xd, wd, $0) }, atol: 1e-3, rtol: 1e-3, "dbias \(shape)")
    }

    /// As a graph node: nn.GroupNorm's defaults (affine, eps 1e-5), its parameters under PyTorch's
    /// names, and the checks of its description.
    @Test func graphNodeAndItsChecks() throws {
        let engine = try testEngine()
        let json = """
        {"format": 2, "input_shape": [4, 3, 5], "outputs": 2, "nodes": [
          {"name": "gn", "op": "groupnorm", "num_groups": 2, "num_channels": 4},
          {"name": "flat", "op": "flatten"}, {"name": "fc", "op": "linear", "in_features": 60, "out_features": 2}]}
        """
        let spec = try ModelSpec.decode(json: json, source: "gn.json")
        let model = try Model(spec: spec, seed: 3, engine: engine)
        #expect(model.namedParameters.map(\.name).prefix(2) == ["gn.weight", "gn.bias"])
        let x = seededFloats(2 * 60, seed: 90)
        let captured = try model.forward(try Tensor(x, shape: [2, 4, 3, 5], engine: engine), capture: ["gn"]).activations["gn"]
        let expected = Self.reference(doubles(x), n: 2, c: 4, rest: 15, groups: 2, weight: nil, bias: nil, eps: 1e-5)
        expectClose(try #require(captured).toArray(), expected, atol: 1e-4, rtol: 1e-4, "graph groupnorm")
        for (attributes, message) in [("\"num_groups\": 3, \"num_channels\": 4", "num_groups 3 must be positive and divide num_channels 4"),
                                      ("\"num_groups\": 2, \"num_channels\": 6", "expects [6, *] (channels first)")] {
            let bad = json.replacingOccurrences(of: "\"num_groups\": 2, \"num_channels\": 4", with: attributes)
            #expect(throws: (any Error).self) { try ModelSpec.decode(json: bad, source: "gn.json").validate() }
            do { try ModelSpec.decode(json: bad, source: "gn.json").validate() } catch { #expect("\(error)".contains(message), "\(error)") }
        }
    }
}
