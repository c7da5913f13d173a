import PrismCL

/// The checked sizes of an attention call.
struct AttentionGeometry {
    let batch: Int, heads: Int, t: Int, d: Int
    var bh: Int { batch * heads }

    init(_ q: Tensor, _ k: Tensor, _ v: Tensor, keyLengths: [Int]?) throws {
        let op = "attention"
        guard q.rank == 4 else { throw TensorError.shape(op, "q must be [batch, heads, T, d]", q.shape, k.shape) }
        guard k.shape == q.shape, v.shape == q.shape else {
            throw TensorError.shape(op, "q, k and v must have the same shape (self-attention)", q.shape, k.shape == q.shape ? v.shape : k.shape)
        }
        try self.init(batch: q.shape[0], heads: q.shape[1], t: q.shape[2], d: q.shape[3], keyLengths: keyLengths, shapes: (q.shape, k.shape))
    }

    init(batch: Int, heads: Int, t: Int, d: Int, keyLengths: [Int]?, shapes: ([Int], [Int])) throws {
        let op = "attention"
        (self.batch, self.heads, self.t, self.d) = (batch, heads, t, d)
        let (qShape, kShape) = shapes
        guard batch > 0, heads > 0, t > 0, (1...128).contains(d) else {
            throw TensorError.shape(op, "sizes must be positive and the head width d at most 128", qShape, kShape)
        }
        guard 3 * batch * heads * t * d < Int(Int32.max), batch * heads * t * t < Int(Int32.max) else {
            throw TensorError.shape(op, "too large for 32-bit indexing", qShape, kShape)
        }
        if let keyLengths {
            guard keyLengths.count == batch else {
                throw TensorError("attention: \(keyLengths.count) key lengths for a batch of \(batch)")
            }
            if let bad = keyLengths.first(where: { $0 < 0 || $0 > t }) {
                throw TensorError("attention: key length \(bad) outside 0…\(t)")
            }
        }
    }
}

/// Strides (in floats) of the attention kernels' rows: see `Kernels/attention.cl`.
struct AttentionLayout {
    var inB: Int, inH: Int, inT: Int, qOff: Int, kOff: Int, vOff: Int, outB: Int, outH: Int, outT: Int

    /// Q, K, V and O contiguous [B, H, T, d].
    static func contiguous(_ g: AttentionGeometry) -> AttentionLayout {
        AttentionLayout(inB: g.heads * g.t * g.d, inH: g.t * g.d, inT: g.d, qOff: 0, kOff: 0, vOff: 0,
                        outB: g.heads * g.t * g.d, outH: g.t * g.d, outT: g.d)
    }

    /// Q, K, V packed in one [B, T, 3, H, d] projection; O written as [B, T, H, d].
    static func packed(_ g: AttentionGeometry) -> AttentionLayout {
        let width = g.heads * g.d
        return AttentionLayout(inB: g.t * 3 * width, inH: g.d, inT: 3 * width, qOff: 0, kOff: width, vOff: 2 * width,
                               outB: g.t * width, outH: g.d, outT: width)
    }

    var arguments: [any KernelArgument] { [inB, inH, inT, qOff, kOff, vOff, outB, outH, outT].map { Int32($0) } }
}

/// Runs the fused forward and records the backward; `q`, `k`, `v` are the same buffer when packed.
/// - Returns: O with `outputShape`, recording gradients to `inputs` (three tensors, or one packed one).
func fusedAttention(_ g: AttentionGeometry, layout: AttentionLayout, q: Buffer<Float>, k: Buffer<Float>, v: Buffer<Float>,
                    inputs: [Tensor], outputShape: [Int], causal: Bool, keyLengths: [Int]?, scale: Float?,
                    variant: AttentionVariant) throws -> Tensor {
    let engine = inputs[0].engine
    let defines = ["ATT_D": String(g.d)]
    let resolved = engine.resolvedDefines(AttentionFamily.descriptor.file, defines)
    let chosen = try AttentionFamily.choose(variant, d: g.d, traits: engine.traits, defines: resolved)
    let s = scale ?? 1 / Float(g.d).squareRoot()
    let lens = try engine.context.buffer((keyLengths ?? [0]).map { Int32($0) })
    let flags: [any KernelArgument] = [Int32(g.t), Int32(g.heads), s, Int32(causal ? 1 : 0), Int32(keyLengths == nil ? 0 : 1), lens]
        + layout.arguments
    let out = try Tensor.empty(outputShape, engine: engine)
    let lse = try engine.buffer(count: g.bh * g.t)
    let blocks = (g.t + 15) / 16
    // Tiled: rows of K or V as transposed 16-row panels (see attention_pack_panels).
    func panels(_ x: Buffer<Float>, offset: Int) throws -> Buffer<Float> {
        let p = try engine.buffer(count: g.bh * blocks * 16 * g.d)
        try engine.launch("attention.cl", "attention_pack_panels", defines: defines, global: [blocks, g.bh],
                          [x, p, Int32(offset), Int32(g.t), Int32(g.heads)] + layout.arguments)
        return p
    }
    let suffix = chosen == .cpu ? "_cpu" : ""
    let bq = AttentionFamily.descriptor.int("ATT_BQ", in: resolved)
    // The CPU row kernels: one work-item per row, no work-group; the others: ATT_BQ rows per work-group.
    let (global, local) = chosen == .cpu ? ([g.t, g.bh], [1, 1]) : ([roundUp(g.t, bq), g.bh], [bq, 1])
    // The tiled forward's K panels, kept for its backward (which packs only V).
    var keyPanels: Buffer<Float>?
    if chosen == .tiled {
        let kp = try panels(k, offset: layout.kOff)
        try engine.launch("attention.cl", "attention_forward_tiled", defines: defines, global: [blocks, g.bh], local: [1, 1],
                          [q, kp, v, out.storage, lse] + flags)
        keyPanels = kp
    } else {
        try engine.launch("attention.cl", "attention_forward" + suffix, defines: defines, global: global, local: local,
                          [q, k, v, out.storage, lse] + flags)
    }
    out.record(inputs: inputs, op: "attention") { [engine, os = out.storage, keyPanels] dout in
        let delta = try engine.buffer(count: g.bh * g.t)
        try engine.launch("attention.cl", "attention_delta", defines: defines, global: [g.t, g.bh],
                          [os, dout.storage, delta, Int32(g.t), Int32(g.heads)] + layout.arguments)
        let grads = try inputs.map { try Tensor.empty($0.shape, engine: engine) }
        let (dq, dk, dv) = grads.count == 1 ? (grads[0], grads[0], grads[0]) : (grads[0], grads[1], grads[2])
        if let kp = keyPanels {
            let vp = try panels(v, offset: layout.vOff)
            try engine.launch("attention.cl", "attention_backward_tiled", defines: defines, global: [g.bh], local: [1],
                              [q, k, kp, vp, dout.storage, lse, delta, dq.storage, dk.storage, dv.storage] + flags)
            return grads
        }
        try engine.launch("attention.cl", "attention_backward_dq" + suffix, defines: defines, global: global, local: local,
                          [q, k, v, dout.storage, lse, delta, dq.storage] + flags)
        try engine.launch("attention.cl", "attention_backward_dkv" + suffix, defines: defines, global: global, local: local,
                          [q, k, v, dout.storage, lse, delta, dk.storage, dv.storage] + flags)
        return grads
    }
    return out
}

/// Scaled dot-product attention O = softmax(Q·Kᵀ·scale + mask)·V for [batch, heads, T, d] tensors
/// (PyTorch's `scaled_dot_product_attention`), fused: the T×T scores never reach global memory. The
/// forward saves only O and the per-row log-sum-exp; the backward recomputes the probabilities tile
/// by tile (FlashAttention-2).
/// - Parameters:
///   - causal: query i sees keys j ≤ i.
///   - keyLengths: per batch element, the number of valid keys; keys at or past it are padding. A
///     query that sees no key outputs 0 and passes no gradient.
///   - scale: default 1/√d.
/// - Throws: `TensorError` for mismatched shapes, d outside 1…128, or key lengths outside 0…T.
/// - Returns: O, [batch, heads, T, d], recording its backward to q, k and v.
public func scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, causal: Bool = false, keyLengths: [Int]? = nil,
                                      scale: Float? = nil, variant: AttentionVariant = .automatic) throws -> Tensor {
    let g = try AttentionGeometry(q, k, v, keyLengths: keyLengths)
    return try fusedAttention(g, layout: .contiguous(g), q: q.storage, k: k.storage, v: v.storage, inputs: [q, k, v],
                              outputShape: q.shape, causal: causal, keyLengths: keyLengths, scale: scale, variant: variant)
}

/// Multi-head self-attention straight from a packed Q/K/V projection: `qkv` [batch, T, 3·heads·d]
/// (a Linear to 3·width, laid out [3, heads, d] per token as timm's `qkv`) → O [batch, T, heads·d],
/// the heads side by side — what the output projection reads. No permutes: the kernels address the
/// heads through strides, and the backward writes the packed gradient.
/// - Throws: as `scaledDotProductAttention`, and when the last axis is not 3·heads·d.
public func packedSelfAttention(_ qkv: Tensor, heads: Int, causal: Bool = false, keyLengths: [Int]? = nil,
                                scale: Float? = nil, variant: AttentionVariant = .automatic) throws -> Tensor {
    guard qkv.rank == 3, heads > 0, qkv.shape[2] % (3 * heads) == 0 else {
        throw TensorError.shape("attention", "qkv must be [batch, T, 3·heads·d]", qkv.shape, [heads])
    }
    let (b, t, d) = (qkv.shape[0], qkv.shape[1], qkv.shape[2] / (3 * heads))
    let g = try AttentionGeometry(batch: b, heads: heads, t: t, d: d, keyLengths: keyLengths, shapes: (qkv.shape, [heads]))
    return try fusedAttention(g, layout: .packed(g), q: qkv.storage, k: qkv.storage, v: qkv.storage, inputs: [qkv],
                              outputShape: [b, t, heads * d], causal: causal, keyLengths: keyLengths, scale: scale, variant: variant)
}

/// The attention probabilities softmax(Q·Kᵀ·scale + mask), [batch, heads, T, T] — the explicit mode
/// for explanations; it records nothing (use matmul and softmax when the probabilities need a gradient).
/// - Throws: as `scaledDotProductAttention`, and when the T×T matrices would not fit 32-bit indexing.
public func attentionProbabilities(q: Tensor, k: Tensor, causal: Bool = false, keyLengths: [Int]? = nil,
                                   scale: Float? = nil) throws -> Tensor {
    let g = try AttentionGeometry(q, k, k, keyLengths: keyLengths)
    let engine = q.engine
    let s = scale ?? 1 / Float(g.d).squareRoot()
    let lens = try engine.context.buffer((keyLengths ?? [0]).map { Int32($0) })
    let layout = AttentionLayout.contiguous(g)
    let flags: [any KernelArgument] = [Int32(g.t), Int32(g.heads), s, Int32(causal ? 1 : 0), Int32(keyLengths == nil ? 0 : 1), lens]
        + layout.arguments
    let defines = ["ATT_D": String(g.d)]
    let bq = AttentionFamily.descriptor.int("ATT_BQ", in: engine.resolvedDefines(AttentionFamily.descriptor.file, defines))
    // The forward's log-sum-exp (its output is discarded; k stands in for v).
    let scratch = try engine.buffer(count: q.count), lse = try engine.buffer(count: g.bh * g.t)
    try engine.launch("attention.cl", "attention_forward", defines: defines, global: [roundUp(g.t, bq), g.bh], local: [bq, 1],
                      [q.storage, k.storage, k.storage, scratch, lse] + flags)
    let p = try Tensor.empty([g.batch, g.heads, g.t, g.t], engine: engine)
    try engine.launch("attention.cl", "attention_probabilities", defines: defines, global: [g.t, g.bh],
                      [q.storage, k.storage, lse, p.storage] + flags)
    return p
}
