import Foundation
import PrismFormats
import PrismGraph

// The vision transformer's parts (`prism train --arch vit`) as ONNX ops: the patch embedding, the
// pre-norm blocks (timm's packed QKV: [B, T, 3·D] = [B, T, 3, H, dh]) and the class token.

extension ONNXExporter {
    /// x·Wᵀ + b over the last axis of a value of rank 3 or more (MatMul by the transposed weight, Add).
    mutating func dense(_ x: String, weight: HostTensor, bias: HostTensor?, name: String, output: String? = nil) -> String {
        let w = initializer("\(name).weight_transposed", transpose(weight))
        guard let bias else { return node("MatMul", [x, w], name: name, output: output) }
        let product = node("MatMul", [x, w], name: "\(name).matmul")
        return node("Add", [product, initializer("\(name).bias", bias)], name: name, output: output)
    }

    /// [B, C, H, W] → [B, 1 + T, D]: the patches' convolution as tokens after the class token, plus positions.
    mutating func patchEmbedding(_ n: GraphAnalysis.Node, _ x: String, target: String, site: ExportSite) throws -> String {
        let c = try JSONValue.decode(PatchEmbeddingSchema.Config.self, from: n.spec.attributes)
        let name = n.spec.name, tokens = n.info.output[0] - 1
        let weight = initializer("\(name).proj.weight", try parameter(n, "proj.weight", site: site))
        let bias = initializer("\(name).proj.bias", try parameter(n, "proj.bias", site: site))
        let conv = node("Conv", [x, weight, bias], name: "\(name).proj", [
            Attribute.ints("kernel_shape", [c.patch, c.patch]), Attribute.ints("strides", [c.patch, c.patch]),
        ])
        let flat = node("Reshape", [conv, ints("\(name).flat_shape", [0, c.dim, tokens])], name: "\(name).flatten")
        let patches = node("Transpose", [flat], name: "\(name).transpose", [Attribute.ints("perm", [0, 2, 1])])
        // The class token repeated over the batch: Expand to [B, 1, D], B read from the input's shape.
        let batch = node("Shape", [x], name: "\(name).batch", [Attribute.int("start", 0), Attribute.int("end", 1)])
        let shape = node("Concat", [batch, ints("\(name).token_shape", [1, c.dim])], name: "\(name).cls_shape", [Attribute.int("axis", 0)])
        let cls = node("Expand", [initializer("\(name).cls_token", try parameter(n, "cls_token", site: site)), shape], name: "\(name).cls")
        let joined = node("Concat", [cls, patches], name: "\(name).cat", [Attribute.int("axis", 1)])
        return node("Add", [joined, initializer("\(name).pos_embed", try parameter(n, "pos_embed", site: site))], name: name, output: target)
    }

    /// [B, T, D] → [B, T, D]: x + attn(norm1(x)), then + fc2(GELU(fc1(norm2(·)))).
    mutating func transformerBlock(_ n: GraphAnalysis.Node, _ x: String, target: String, site: ExportSite) throws -> String {
        let c = try JSONValue.decode(TransformerBlockSchema.Config.self, from: n.spec.attributes)
        let name = n.spec.name, (d, heads) = (c.dim, c.heads), dh = c.dim / c.heads
        func p(_ key: String) throws -> HostTensor { try parameter(n, key, site: site) }
        func norm(_ key: String, _ input: String) throws -> String {
            node("LayerNormalization", [input, initializer("\(name).\(key).weight", try p("\(key).weight")),
                                        initializer("\(name).\(key).bias", try p("\(key).bias"))],
                 name: "\(name).\(key)", [Attribute.int("axis", -1), Attribute.float("epsilon", 1e-5)])
        }
        let packed = dense(try norm("norm1", x), weight: try p("attn.qkv.weight"), bias: try p("attn.qkv.bias"), name: "\(name).attn.qkv")
        let split = node("Reshape", [packed, ints("\(name).attn.qkv_shape", [0, 0, 3, heads, dh])], name: "\(name).attn.split")
        let qkv = node("Transpose", [split], name: "\(name).attn.heads", [Attribute.ints("perm", [2, 0, 3, 1, 4])])  // [3, B, H, T, dh]
        func part(_ i: Int, _ label: String) -> String {
            node("Gather", [qkv, ints("\(name).attn.\(label)_index", [i], shape: [])], name: "\(name).attn.\(label)", [Attribute.int("axis", 0)])
        }
        let (q, k, v) = (part(0, "q"), part(1, "k"), part(2, "v"))
        let kt = node("Transpose", [k], name: "\(name).attn.k_t", [Attribute.ints("perm", [0, 1, 3, 2])])
        let scores = node("MatMul", [q, kt], name: "\(name).attn.scores")
        let scaled = node("Mul", [scores, scalar("\(name).attn.scale", 1 / Float(dh).squareRoot())], name: "\(name).attn.scaled")
        let probabilities = node("Softmax", [scaled], name: "\(name).attn.softmax", [Attribute.int("axis", -1)])
        let heads3 = node("MatMul", [probabilities, v], name: "\(name).attn.weighted")                              // [B, H, T, dh]
        let merged = node("Transpose", [heads3], name: "\(name).attn.merge", [Attribute.ints("perm", [0, 2, 1, 3])])
        let joined = node("Reshape", [merged, ints("\(name).attn.out_shape", [0, 0, d])], name: "\(name).attn.join")
        let attended = dense(joined, weight: try p("attn.proj.weight"), bias: try p("attn.proj.bias"), name: "\(name).attn.proj")
        let h = node("Add", [x, attended], name: "\(name).residual1")
        let hidden = dense(try norm("norm2", h), weight: try p("mlp.fc1.weight"), bias: try p("mlp.fc1.bias"), name: "\(name).mlp.fc1")
        let activated = gelu(hidden, name: "\(name).mlp.act")
        let m = dense(activated, weight: try p("mlp.fc2.weight"), bias: try p("mlp.fc2.bias"), name: "\(name).mlp.fc2")
        return node("Add", [h, m], name: name, output: target)
    }

    /// 0.5·x·(1 + erf(x / √2)), as PyTorch exports GELU at opset 17.
    mutating func gelu(_ x: String, name: String, output: String? = nil) -> String {
        let divided = node("Div", [x, scalar("\(name).sqrt_2", Float(2.0.squareRoot()))], name: "\(name).div")
        let e = node("Erf", [divided], name: "\(name).erf")
        let one = node("Add", [e, scalar("\(name).one", 1)], name: "\(name).one_plus")
        let product = node("Mul", [x, one], name: "\(name).mul")
        return node("Mul", [product, scalar("\(name).half", 0.5)], name: name, output: output)
    }
}
