import Foundation
import Prism
import PrismReference
import PrismTestSupport
import Testing

/// A tiny vision transformer against a Double reference chain built from `PrismReference`: logits and
/// loss, and gradients of the loss (sampled parameter entries and the input) against central finite
/// differences of the reference loss.
@Suite struct TransformerTests {
    static let spec = try! ModelSpec.vit(height: 8, width: 8, channels: 1, classes: 3, patch: 4, dim: 8, depth: 2, heads: 2, mlpDim: 12)

    /// The reference forward: logits [B, classes] from parameters by name.
    static func referenceLogits(_ x: [Double], batch b: Int, _ p: [String: [Double]]) -> [Double] {
        let (patch, d, heads, mlp) = (4, 8, 2, 12)
        let (side, t) = (8 / patch, (8 / patch) * (8 / patch) + 1)
        // Patches: a stride-p convolution, [B, D, 2, 2] → tokens [B, T − 1, D]; class token first, positions added.
        let conv = Reference.conv2d(x: x, xShape: [b, 1, 8, 8], w: p["0.proj.weight"]!, wShape: [d, 1, patch, patch],
                                    bias: p["0.proj.bias"]!, stride: (patch, patch))
        var h = [Double](repeating: 0, count: b * t * d)
        for n in 0..<b {
            for c in 0..<d {
                h[(n * t) * d + c] = p["0.cls_token"]![c] + p["0.pos_embed"]![c]
                for k in 0..<(side * side) { h[(n * t + 1 + k) * d + c] = conv.y[(n * d + c) * side * side + k] + p["0.pos_embed"]![(1 + k) * d + c] }
            }
        }
        for block in 1...2 {
            func w(_ name: String) -> [Double] { p["\(block).\(name)"]! }
            let a = Reference.layerNorm(x: h, weight: w("norm1.weight"), bias: w("norm1.bias"), features: d).y
            let qkv = Reference.linear(x: a, weight: w("attn.qkv.weight"), bias: w("attn.qkv.bias"), rows: b * t, inFeatures: d, outFeatures: 3 * d)
            // [B, T, 3, H, dh] → three [B·H, T, dh].
            let dh = d / heads
            var parts = [[Double]](repeating: [Double](repeating: 0, count: b * t * d), count: 3)
            for n in 0..<b { for i in 0..<t { for s in 0..<3 { for hh in 0..<heads { for c in 0..<dh {
                parts[s][((n * heads + hh) * t + i) * dh + c] = qkv[(n * t + i) * 3 * d + (s * heads + hh) * dh + c]
            } } } } }
            let o = Reference.attention(q: parts[0], k: parts[1], v: parts[2], heads: heads, t: t, d: dh, scale: 1 / Double(Float(dh).squareRoot()))
            var merged = [Double](repeating: 0, count: b * t * d)
            for n in 0..<b { for hh in 0..<heads { for i in 0..<t { for c in 0..<dh {
                merged[(n * t + i) * d + hh * dh + c] = o[((n * heads + hh) * t + i) * dh + c]
            } } } }
            let attn = Reference.linear(x: merged, weight: w("attn.proj.weight"), bias: w("attn.proj.bias"), rows: b * t, inFeatures: d, outFeatures: d)
            h = zip(h, attn).map(+)
            let m = Reference.layerNorm(x: h, weight: w("norm2.weight"), bias: w("norm2.bias"), features: d).y
            let hidden = Reference.unary(1, x: Reference.linear(x: m, weight: w("mlp.fc1.weight"), bias: w("mlp.fc1.bias"), rows: b * t,
                                                                inFeatures: d, outFeatures: mlp))
            let out = Reference.linear(x: hidden, weight: w("mlp.fc2.weight"), bias: w("mlp.fc2.bias"), rows: b * t, inFeatures: mlp, outFeatures: d)
            h = zip(h, out).map(+)
        }
        let normed = Reference.layerNorm(x: h, weight: p["3.weight"]!, bias: p["3.bias"]!, features: d).y
        let cls = (0..<b).flatMap { n in normed[(n * t * d)..<(n * t * d + d)] }
        return Reference.linear(x: cls, weight: p["5.weight"]!, bias: p["5.bias"]!, rows: b, inFeatures: d, outFeatures: 3)
    }

    @Test func forwardAndGradientsMatchTheReferenceChain() throws {
        let engine = try testEngine()
        let model = try Model(spec: Self.spec, seed: 5, engine: engine)
        #expect(model.namedParameters.map(\.name).contains("1.attn.qkv.weight"))
        // Random non-trivial LayerNorm affine parameters and positions (the defaults are 1, 0 and tiny).
        var rng = SeededRandom(seed: 17)
        for (name, tensor) in model.namedParameters where name.contains("norm") || name.contains("embed") || name.contains("token") || name.hasPrefix("3.") {
            try tensor.storage.write(rng.floats(tensor.count, -1, 1).map { name.hasSuffix("weight") ? 1 + 0.5 * $0 : $0 })
        }
        let b = 2
        let x = seededFloats(b * 64, seed: 3, low: 0, high: 1)
        let labels = [2, 0]
        let xt = try Tensor(x, shape: [b, 1, 8, 8], engine: engine, requiresGrad: true)
        let logits = try model(xt)
        var p = try Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.name, doubles(try $0.tensor.toArray())) })
        let reference = Self.referenceLogits(doubles(x), batch: b, p)
        expectClose(try logits.toArray(), reference, atol: 1e-5, rtol: 1e-4, "logits")
        let loss = try crossEntropy(logits, labels: labels.map(Int32.init))
        try loss.backward()
        func referenceLoss(_ p: [String: [Double]], _ x: [Double]) -> Double {
            Reference.crossEntropy(x: Self.referenceLogits(x, batch: b, p), labels: labels, classes: 3)
        }
        #expect(abs(Double(try loss.item()) - referenceLoss(p, doubles(x))) <= 1e-5)
        // Sampled entries of every parameter's gradient, by central differences of the Double chain.
        for (name, tensor) in model.namedParameters {
            let grad = try #require(tensor.grad, "\(name) has no gradient").toArray()
            for e in Set((0..<3).map { _ in Int(rng.next() % UInt64(tensor.count)) }) {
                let saved = p[name]![e], h = 1e-5
                p[name]![e] = saved + h
                let up = referenceLoss(p, doubles(x))
                p[name]![e] = saved - h
                let down = referenceLoss(p, doubles(x))
                p[name]![e] = saved
                let expected = (up - down) / (2 * h)
                #expect(abs(Double(grad[e]) - expected) <= 2e-5 + 2e-3 * abs(expected), "\(name)[\(e)]: \(grad[e]) vs \(expected)")
            }
        }
        let dx = try #require(xt.grad).toArray()
        for e in [0, 17, 63, 64 + 40] {
            var up = doubles(x), down = doubles(x)
            up[e] += 1e-5
            down[e] -= 1e-5
            let expected = (referenceLoss(p, up) - referenceLoss(p, down)) / 2e-5
            #expect(abs(Double(dx[e]) - expected) <= 2e-5 + 2e-3 * abs(expected), "dx[\(e)]")
        }
    }

    /// The spec describes the layers' shapes and the state dict has timm's names.
    @Test func specShapesAndNames() throws {
        #expect(try Self.spec.layerOutputShapes() == [[5, 8], [5, 8], [5, 8], [5, 8], [8], [3]])
        let engine = try testEngine()
        let model = try Model(spec: Self.spec, seed: 1, engine: engine)
        let names = Set(model.namedParameters.map(\.name))
        for name in ["0.proj.weight", "0.cls_token", "0.pos_embed", "2.norm1.bias", "2.attn.proj.weight", "2.mlp.fc2.bias", "3.weight", "5.bias"] {
            #expect(names.contains(name), "\(name)")
        }
        let graph = try Self.spec.analysis()
        for (i, node) in graph.nodes.enumerated() {
            let shapes = Dictionary(uniqueKeysWithValues: node.info.parameters.map { ($0.name, $0.shape) })
            for (name, tensor) in model.namedParameters where name.hasPrefix("\(i).") {
                #expect(shapes[String(name.dropFirst("\(i).".count))] == tensor.shape, "\(name)")
            }
        }
        #expect(throws: TensorError.self) { try ModelSpec.vit(patch: 5) }
    }
}
