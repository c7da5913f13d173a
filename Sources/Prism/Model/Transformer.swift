import Foundation

// The layers of a vision transformer (Dosovitskiy et al. 2021) in pre-norm form, as timm's
// `VisionTransformer` builds it: patch embedding with a class token and learned positions,
// transformer blocks (x + attn(norm1(x)); x + mlp(norm2(x))), a final LayerNorm, the class token's
// features, a Linear head. Parameter names follow timm (`proj.weight`, `cls_token`, `attn.qkv.weight`,
// `mlp.fc1.weight`…) under the block's `nn.Sequential` index, so a state dict moves to the PyTorch
// modules of `Benchmarks/peers/torch_load_model.py` unchanged.

/// LayerNorm over the last axis with an elementwise affine transform, like `nn.LayerNorm(dim)`.
public final class LayerNormLayer: Op {
    public typealias Schema = LayerNormSchema
    public typealias Config = LayerNormSchema.Config
    public let weight: Tensor
    public let bias: Tensor
    public let eps: Float

    public convenience init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        try self.init(dim: config.normalized_shape, eps: Float(config.eps ?? 1e-5), engine: engine)
    }

    public var config: Config { Config(normalized_shape: weight.count, eps: Double(String(describing: eps))) }

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
    public typealias Schema = PatchEmbeddingSchema
    public typealias Config = PatchEmbeddingSchema.Config
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
    public typealias Schema = TransformerBlockSchema
    public typealias Config = TransformerBlockSchema.Config
    public let norm1: LayerNormLayer
    public let attention: MultiHeadAttention
    public let norm2: LayerNormLayer
    public let fc1: Linear
    public let fc2: Linear
    public let config: Config

    public convenience init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws {
        try self.init(dim: config.dim, heads: config.heads, mlpDim: config.mlp_dim, seed: seed, engine: engine)
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
    public typealias Schema = ClassTokenSchema
    public let config = NoConfig()
    public init() {}
    public convenience init(config: NoConfig, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.init() }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        guard x.rank == 3 else { throw TensorError("class token: expects [B, T, D], got \(x.shape)") }
        return try x.sliced(axis: 1, range: 0..<1).reshaped([x.shape[0], x.shape[2]])
    }
}
