import Foundation

// The layers of a vision transformer (Dosovitskiy et al. 2021) in pre-norm form, as timm's
// `VisionTransformer` builds it: patch embedding with a class token and learned positions,
// transformer blocks (x + attn(norm1(x)); x + mlp(norm2(x))), a final LayerNorm, the class token's
// features, a Linear head. Parameter names follow timm (`proj.weight`, `cls_token`, `attn.qkv.weight`,
// `mlp.fc1.weight`…) under the block's `nn.Sequential` index, so a state dict moves to the PyTorch
// modules of `Benchmarks/peers/torch_load_model.py` unchanged.

/// LayerNorm over the last axis with an elementwise affine transform, like `nn.LayerNorm(dim)`.
public final class LayerNormLayer: Op {
    public struct Config: OpConfig {
        public var normalized_shape: Int
        public var eps: Double?
        public static let attributes = ["normalized_shape", "eps"]
    }
    public static let kind = "layernorm"
    public let weight: Tensor
    public let bias: Tensor
    public let eps: Float

    public convenience init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        try self.init(dim: config.normalized_shape, eps: Float(config.eps ?? 1e-5), engine: engine)
    }

    public var config: Config { Config(normalized_shape: weight.count, eps: Double(String(describing: eps))) }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard config.normalized_shape > 0, inputs[0].last == config.normalized_shape else {
            throw TensorError("expects a last axis of \(config.normalized_shape)")
        }
        guard (config.eps ?? 1e-5) > 0 else { throw TensorError("eps must be positive") }
        return inputs[0]
    }

    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] {
        [("weight", [config.normalized_shape]), ("bias", [config.normalized_shape])]
    }

    /// γ = 1, β = 0 (PyTorch's initialization).
    public init(dim: Int, eps: Float = 1e-5, engine: Engine) throws {
        guard dim > 0 else { throw TensorError("layernorm: dimension must be positive, got \(dim)") }
        weight = try Tensor.ones([dim], engine: engine, requiresGrad: true)
        bias = try Tensor.zeros([dim], engine: engine, requiresGrad: true)
        self.eps = eps
    }

    public var parameters: [(name: String, tensor: Tensor)] { [("weight", weight), ("bias", bias)] }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try layerNorm(inputs[0], weight: weight, bias: bias, eps: eps)
    }

    /// Applies the norm to one tensor.
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try layerNorm(x, weight: weight, bias: bias, eps: eps) }
}

/// [B, C, H, W] → [B, 1 + T, D]: non-overlapping p×p patches embedded by a strided convolution
/// (`proj`, D×C×p×p), a learned class token in front and learned positions added.
public final class PatchEmbedding: Op {
    public struct Config: OpConfig {
        public var channels: Int, height: Int, width: Int, patch: Int, dim: Int
        public static let attributes = ["channels", "height", "width", "patch", "dim"]
    }
    public static let kind = "patch_embed"
    public let proj: Conv2DLayer
    /// [1, 1, D].
    public let classToken: Tensor
    /// [1, 1 + T, D].
    public let positions: Tensor
    public let patch: Int
    public let config: Config

    public convenience init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        try self.init(channels: config.channels, height: config.height, width: config.width, patch: config.patch, dim: config.dim, seed: seed, engine: engine)
    }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let (c, h, w, p, d) = (config.channels, config.height, config.width, config.patch, config.dim)
        guard inputs[0] == [c, h, w] else { throw TensorError("expects [\(c), \(h), \(w)]") }
        guard p > 0, d > 0, h >= p, w >= p, h % p == 0, w % p == 0 else {
            throw TensorError("needs a positive patch that splits the image and a positive width")
        }
        guard let tokens = HostMemory.product([h / p, w / p]) else { throw TensorError("has more patches than an Int can count") }
        return [tokens + 1, d]
    }

    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] {
        let (c, h, w, p, d) = (config.channels, config.height, config.width, config.patch, config.dim)
        return [("proj.weight", [d, c, p, p]), ("proj.bias", [d]), ("cls_token", [1, 1, d]), ("pos_embed", [1, (h / max(p, 1)) * (w / max(p, 1)) + 1, d])]
    }

    public static func flops(_ config: Config, inputs: Shapes, output: [Int]) -> Double {
        2 * Double(config.dim * config.channels * config.patch * config.patch) * Double(output[0] - 1)
    }

    /// Convolution initialized like `nn.Conv2d`; class token and positions normal with σ = 0.02.
    /// - Throws: `TensorError` when the image does not split into whole patches.
    public init(channels: Int, height: Int, width: Int, patch: Int, dim: Int, seed: UInt64, engine: Engine) throws {
        guard patch > 0, dim > 0, height % patch == 0, width % patch == 0 else {
            throw TensorError("patch embedding: a \(height)×\(width) image does not split into \(patch)×\(patch) patches")
        }
        proj = try Conv2DLayer(inChannels: channels, outChannels: dim, kernel: patch, stride: patch, seed: seed, engine: engine)
        let tokens = (height / patch) * (width / patch) + 1
        classToken = try Tensor.randn([1, 1, dim], std: 0.02, seed: seed &+ 2, engine: engine, requiresGrad: true)
        positions = try Tensor.randn([1, tokens, dim], std: 0.02, seed: seed &+ 3, engine: engine, requiresGrad: true)
        self.patch = patch
        config = Config(channels: channels, height: height, width: width, patch: patch, dim: dim)
    }

    public var parameters: [(name: String, tensor: Tensor)] {
        [("proj.weight", proj.weight)] + (proj.bias.map { [("proj.bias", $0)] } ?? []) + [("cls_token", classToken), ("pos_embed", positions)]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        let y = try proj.forward([x], training: training)                    // [B, D, h, w]
        let (b, d) = (y.shape[0], y.shape[1])
        let patches = try y.reshaped([b, d, y.shape[2] * y.shape[3]]).permuted([0, 2, 1])  // [B, T, D]
        let cls = try Tensor.zeros([b, 1, d], engine: x.engine).add(classToken)
        return try concat([cls, patches], axis: 1).add(positions)
    }
}

/// Multi-head self-attention: one Linear to Q, K, V for all heads (`qkv`, [3D, D]), scaled dot-product
/// attention per head, a Linear back (`proj`).
///
/// Training and inference run the fused attention kernel. With `keepsProbabilities` set, a forward
/// pass instead builds the attention from matmul and softmax and keeps the probabilities
/// [B, heads, T, T] in `probabilities` (with their gradient after a backward pass) — the explicit
/// mode attention explanations use.
public final class MultiHeadAttention {
    public let qkv: Linear
    public let proj: Linear
    public let heads: Int
    /// Materialize and keep the attention probabilities on the next forward passes.
    public var keepsProbabilities = false
    /// The probabilities of the last forward pass in that mode.
    public private(set) var probabilities: Tensor?

    public init(dim: Int, heads: Int, seed: UInt64, engine: Engine) throws {
        guard heads > 0, dim % heads == 0 else { throw TensorError("attention: width \(dim) does not split into \(heads) heads") }
        qkv = try Linear(inFeatures: dim, outFeatures: 3 * dim, seed: seed, engine: engine)
        proj = try Linear(inFeatures: dim, outFeatures: dim, seed: seed &+ 2, engine: engine)
        self.heads = heads
    }

    public var parameters: [(name: String, tensor: Tensor)] {
        qkv.parameters.map { ("qkv." + $0.name, $0.tensor) } + proj.parameters.map { ("proj." + $0.name, $0.tensor) }
    }

    /// [B, T, D] → [B, T, D].
    public func forward(_ x: Tensor) throws -> Tensor {
        let (b, t, d) = (x.shape[0], x.shape[1], x.shape[2])
        let dh = d / heads
        let packed = try linear(x, weight: qkv.weight, bias: qkv.bias)   // [B, T, 3·D] = [B, T, 3, H, dh]
        let o: Tensor
        if keepsProbabilities {
            // [B, T, 3, H, dh] → [3, B, H, T, dh]; probabilities from matmul and softmax, kept with their gradient.
            let heads3 = try packed.reshaped([b, t, 3, heads, dh]).permuted([2, 0, 3, 1, 4])
            let q = try heads3.sliced(axis: 0, range: 0..<1).reshaped([b * heads, t, dh])
            let k = try heads3.sliced(axis: 0, range: 1..<2).reshaped([b * heads, t, dh])
            let v = try heads3.sliced(axis: 0, range: 2..<3).reshaped([b * heads, t, dh])
            let scores = try matmul(q, k, transposeB: true).scaled(by: 1 / Float(dh).squareRoot())
            let p = try scores.softmax().reshaped([b, heads, t, t])
            p.retainGrad()
            probabilities = p
            o = try matmul(p.reshaped([b * heads, t, t]), v).reshaped([b, heads, t, dh]).permuted([0, 2, 1, 3]).reshaped([b, t, d])
        } else {
            o = try packedSelfAttention(packed, heads: heads)                // [B, T, D]
        }
        return try linear(o, weight: proj.weight, bias: proj.bias)
    }
}

/// A pre-norm transformer block: x + attn(norm1(x)), then x + fc2(GELU(fc1(norm2(x)))).
public final class TransformerBlock: Op {
    public struct Config: OpConfig {
        public var dim: Int, heads: Int, mlp_dim: Int
        public static let attributes = ["dim", "heads", "mlp_dim"]
    }
    public static let kind = "block"
    public let norm1: LayerNormLayer
    public let attention: MultiHeadAttention
    public let norm2: LayerNormLayer
    public let fc1: Linear
    public let fc2: Linear
    public let config: Config

    public convenience init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        try self.init(dim: config.dim, heads: config.heads, mlpDim: config.mlp_dim, seed: seed, engine: engine)
    }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let (d, heads, m) = (config.dim, config.heads, config.mlp_dim)
        guard d > 0, heads > 0, m > 0, d % heads == 0 else { throw TensorError("needs positive sizes and a width that splits into the heads") }
        guard inputs[0].count == 2, inputs[0][1] == d else { throw TensorError("expects [T, \(d)]") }
        return inputs[0]
    }

    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] {
        let (d, m) = (config.dim, config.mlp_dim)
        return [("norm1.weight", [d]), ("norm1.bias", [d]), ("attn.qkv.weight", [3 * d, d]), ("attn.qkv.bias", [3 * d]),
                ("attn.proj.weight", [d, d]), ("attn.proj.bias", [d]), ("norm2.weight", [d]), ("norm2.bias", [d]),
                ("mlp.fc1.weight", [m, d]), ("mlp.fc1.bias", [m]), ("mlp.fc2.weight", [d, m]), ("mlp.fc2.bias", [d])]
    }

    /// Q, K, V packed and permuted, the heads' outputs, the MLP's hidden layer and, when attention
    /// maps are kept, the probabilities.
    public static func workspaceElements(_ config: Config, inputs: Shapes, output: [Int]) -> Int {
        let t = output[0]
        return HostMemory.product([t, 7 * config.dim + config.mlp_dim]).flatMap { a in
            HostMemory.product([config.heads, t, t]).map { a + $0 } } ?? .max
    }

    public static func flops(_ config: Config, inputs: Shapes, output: [Int]) -> Double {
        let t = Double(output[0]), d = Double(config.dim), m = Double(config.mlp_dim)
        return 2 * t * (4 * d * d + 2 * d * m) + 4 * t * t * d
    }

    public init(dim: Int, heads: Int, mlpDim: Int, seed: UInt64, engine: Engine) throws {
        guard mlpDim > 0 else { throw TensorError("transformer block: MLP width must be positive, got \(mlpDim)") }
        norm1 = try LayerNormLayer(dim: dim, engine: engine)
        attention = try MultiHeadAttention(dim: dim, heads: heads, seed: seed, engine: engine)
        norm2 = try LayerNormLayer(dim: dim, engine: engine)
        fc1 = try Linear(inFeatures: dim, outFeatures: mlpDim, seed: seed &+ 4, engine: engine)
        fc2 = try Linear(inFeatures: mlpDim, outFeatures: dim, seed: seed &+ 6, engine: engine)
        config = Config(dim: dim, heads: heads, mlp_dim: mlpDim)
    }

    public var parameters: [(name: String, tensor: Tensor)] {
        func named(_ prefix: String, _ list: [(name: String, tensor: Tensor)]) -> [(name: String, tensor: Tensor)] {
            list.map { (prefix + $0.name, $0.tensor) }
        }
        return named("norm1.", norm1.parameters) + named("attn.", attention.parameters) + named("norm2.", norm2.parameters)
            + named("mlp.fc1.", fc1.parameters) + named("mlp.fc2.", fc2.parameters)
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        let h = try x.add(try attention.forward(try norm1(x)))
        let m = try linear(try linear(try norm2(h), weight: fc1.weight, bias: fc1.bias).gelu(),
                           weight: fc2.weight, bias: fc2.bias)
        return try h.add(m)
    }
}

/// [B, T, D] → [B, D]: the first (class) token's features.
public final class ClassTokenLayer: Op {
    public static let kind = "cls_token"
    public let config = NoConfig()
    public init() {}
    public convenience init(config: NoConfig, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.init() }
    public static func outputShape(_ config: NoConfig, inputs: Shapes) throws -> [Int] {
        guard inputs[0].count == 2 else { throw TensorError("expects [T, D]") }
        return [inputs[0][1]]
    }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        guard x.rank == 3 else { throw TensorError("class token: expects [B, T, D], got \(x.shape)") }
        return try x.sliced(axis: 1, range: 0..<1).reshaped([x.shape[0], x.shape[2]])
    }
}
