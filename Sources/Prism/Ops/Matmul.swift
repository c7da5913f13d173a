import PrismCL

/// The operand sizes of `matmul`: op(a) is [M, K], op(b) is [K, N], for `batch` products.
struct MatmulGeometry {
    let batch, m, n, k: Int
    /// b is rank 2 and shared by every product of a rank-3 a.
    let broadcastB: Bool
    let outputShape: [Int]

    init(_ a: [Int], _ b: [Int], transposeA: Bool, transposeB: Bool) throws {
        let op = "matmul"
        guard (a.count == 2 && b.count == 2) || (a.count == 3 && (b.count == 2 || b.count == 3)) else {
            throw TensorError.shape(op, "operands must be [M, K] × [K, N] or [B, M, K] × [B, K, N] (or × [K, N])", a, b)
        }
        guard a.allSatisfy({ $0 > 0 }), b.allSatisfy({ $0 > 0 }) else {
            throw TensorError.shape(op, "dimensions must be positive", a, b)
        }
        if a.count == 3, b.count == 3, a[0] != b[0] {
            throw TensorError.shape(op, "batch sizes differ", a, b)
        }
        let (ar, ac) = (a[a.count - 2], a[a.count - 1])
        let (br, bc) = (b[b.count - 2], b[b.count - 1])
        let (m, ka) = transposeA ? (ac, ar) : (ar, ac)
        let (kb, n) = transposeB ? (bc, br) : (br, bc)
        guard ka == kb else { throw TensorError.shape(op, "inner dimensions differ", a, b) }
        batch = a.count == 3 ? a[0] : 1
        (self.m, self.n, self.k) = (m, n, ka)
        broadcastB = a.count == 3 && b.count == 2
        outputShape = a.count == 3 ? [batch, m, n] : [m, n]
    }
}

/// Tunables of `matmul.cl` that the host needs (GPU tile sizes), read from the defines its programs
/// are built with (`Engine.resolvedDefines`: the family's defaults, tuning table, overrides).
private struct MatmulTiles {
    let tm, tn, wm, wn: Int

    init(defines: [String: String]) {
        let d = GEMMFamily.descriptor
        (tm, tn) = (d.int("MM_TM", in: defines), d.int("MM_TN", in: defines))
        (wm, wn) = (d.int("MM_WM", in: defines), d.int("MM_WN", in: defines))
    }
}

/// Matrix product op(a)·op(b), single or batched, recording its backward.
///
/// Shapes: [M, K] × [K, N] → [M, N]; [B, M, K] × [B, K, N] → [B, M, N]; [B, M, K] × [K, N] → [B, M, N]
/// (b shared by the batch). With `transposeA` a is stored as [K, M] (or [B, K, M]); with `transposeB`
/// b is stored as [N, K] (or [B, N, K]).
/// - Parameters:
///   - variant: which kernel runs (tests force each; `.automatic`: `GEMMFamily.choose`).
/// - Throws: `TensorError` naming both shapes when they do not form a product, e.g.
///   `matmul: inner dimensions differ: [2, 3] × [4, 5]`; `CLError` from the device.
/// - Returns: the product, [M, N] or [B, M, N].
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false,
                   variant: MatmulVariant = .automatic) throws -> Tensor {
    let g = try MatmulGeometry(a.shape, b.shape, transposeA: transposeA, transposeB: transposeB)
    let engine = a.engine
    let out = try Tensor.empty(g.outputShape, engine: engine)
    try MatmulKernels.gemm(engine: engine, a: a.storage, b: b.storage, c: out.storage, m: g.m, n: g.n, k: g.k, batch: g.batch,
                           broadcastB: g.broadcastB, transposeA: transposeA, transposeB: transposeB, variant: variant)
    out.record(inputs: [a, b]) { dc in
        let da = a.requiresGrad
            ? try matmulGradientA(g, a: a, b: b, dc: dc, transposeA: transposeA, transposeB: transposeB, variant: variant) : nil
        let db = b.requiresGrad
            ? try matmulGradientB(g, a: a, b: b, dc: dc, transposeA: transposeA, transposeB: transposeB, variant: variant) : nil
        return [da, db]
    }
    return out
}

/// The gradient of `matmul` with respect to a (shape of a): dop(A) = dC·op(B)ᵀ.
private func matmulGradientA(_ g: MatmulGeometry, a: Tensor, b: Tensor, dc: Tensor, transposeA: Bool, transposeB: Bool,
                             variant: MatmulVariant) throws -> Tensor {
    let engine = a.engine
    let da = try Tensor.empty(a.shape, engine: engine)
    if transposeA {
        // dA = (dC·op(B)ᵀ)ᵀ = op(B)·dCᵀ: [K, M].
        try MatmulKernels.gemm(engine: engine, a: b.storage, b: dc.storage, c: da.storage, m: g.k, n: g.m, k: g.n, batch: g.batch,
                               broadcastA: g.broadcastB, transposeA: transposeB, transposeB: true, variant: variant)
    } else {
        // dA = dC·op(B)ᵀ: [M, K].
        try MatmulKernels.gemm(engine: engine, a: dc.storage, b: b.storage, c: da.storage, m: g.m, n: g.k, k: g.n, batch: g.batch,
                               broadcastB: g.broadcastB, transposeA: false, transposeB: !transposeB, variant: variant)
    }
    return da
}

/// The gradient of `matmul` with respect to b (shape of b): dop(B) = op(A)ᵀ·dC, summed over the batch
/// when b is shared by it.
private func matmulGradientB(_ g: MatmulGeometry, a: Tensor, b: Tensor, dc: Tensor, transposeA: Bool, transposeB: Bool,
                             variant: MatmulVariant) throws -> Tensor {
    let engine = a.engine
    // A shared b with an untransposed a: the batch is one product of B·M rows, whose gradient is the sum.
    let flatten = g.broadcastB && !transposeA
    let batch = flatten ? 1 : g.batch
    let rows = flatten ? g.batch * g.m : g.m
    // Per-product gradients, summed afterwards when b is shared and the batch cannot be flattened.
    let perProduct = g.broadcastB && !flatten
    let target = perProduct ? try engine.buffer(count: g.batch * b.count) : try engine.buffer(count: b.count)
    if transposeB {
        // dB = (op(A)ᵀ·dC)ᵀ = dCᵀ·op(A): [N, K].
        try MatmulKernels.gemm(engine: engine, a: dc.storage, b: a.storage, c: target, m: g.n, n: g.k, k: rows, batch: batch,
                               transposeA: true, transposeB: transposeA, variant: variant)
    } else {
        // dB = op(A)ᵀ·dC: [K, N].
        try MatmulKernels.gemm(engine: engine, a: a.storage, b: dc.storage, c: target, m: g.k, n: g.n, k: rows, batch: batch,
                               transposeA: !transposeA, transposeB: false, variant: variant)
    }
    guard perProduct else { return try Tensor(engine: engine, shape: b.shape, storage: target) }
    let db = try Tensor.empty(b.shape, engine: engine)
    try MatmulKernels.columnSums(engine: engine, x: target, out: db.storage, rows: g.batch, columns: b.count)
    return db
}

/// A fully connected layer, y = x·weightᵀ + bias (then ReLU), as PyTorch's `Linear`, recording its backward.
/// - Parameters:
///   - x: [..., in] (leading dimensions are flattened into rows).
///   - weight: [out, in] (PyTorch's layout).
///   - bias: [out], or nil.
///   - relu: apply max(·, 0) in the same kernel (the backward masks with the saved output).
/// - Throws: `TensorError` naming both shapes when they disagree, e.g.
///   `linear: input has 3 features, weight expects 4: [2, 3] × [5, 4]`; `CLError` from the device.
/// - Returns: [..., out].
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?, relu: Bool = false) throws -> Tensor {
    let op = "linear"
    guard x.rank >= 1, weight.rank == 2 else {
        throw TensorError.shape(op, "input must be [..., in] and weight [out, in]", x.shape, weight.shape)
    }
    let features = x.shape[x.rank - 1], (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
    guard features == inFeatures else {
        throw TensorError.shape(op, "input has \(features) features, weight expects \(inFeatures)", x.shape, weight.shape)
    }
    if let bias, bias.shape != [outFeatures] {
        throw TensorError.shape(op, "bias must have shape [\(outFeatures)]", bias.shape, weight.shape)
    }
    guard x.shape.allSatisfy({ $0 > 0 }), outFeatures > 0, inFeatures > 0 else {
        throw TensorError.shape(op, "dimensions must be positive", x.shape, weight.shape)
    }
    let rows = x.count / features
    let engine = x.engine
    let y = try Tensor.empty(Array(x.shape.dropLast()) + [outFeatures], engine: engine)
    try MatmulKernels.gemm(engine: engine, a: x.storage, b: weight.storage, c: y.storage, m: rows, n: outFeatures, k: inFeatures,
                           transposeB: true, bias: bias?.storage, relu: relu)

    let inputs = [x, weight] + (bias.map { [$0] } ?? [])
    // The closure holds y's storage, not y (which holds the closure: a cycle would leak the graph).
    y.record(inputs: inputs) { [ys = y.storage] dy in
        // dz = dy ⊙ (y > 0) through the fused ReLU.
        let dz = relu ? try reluMaskedGradient(engine, output: ys, dy).storage : dy.storage
        var grads: [Tensor?] = [nil, nil]
        if x.requiresGrad {
            // dx = dz·W: [rows, in].
            let dx = try Tensor.empty(x.shape, engine: engine)
            try MatmulKernels.gemm(engine: engine, a: dz, b: weight.storage, c: dx.storage, m: rows, n: inFeatures, k: outFeatures)
            grads[0] = dx
        }
        if weight.requiresGrad {
            // dW = dzᵀ·x: [out, in].
            let dw = try Tensor.empty(weight.shape, engine: engine)
            try MatmulKernels.gemm(engine: engine, a: dz, b: x.storage, c: dw.storage, m: outFeatures, n: inFeatures, k: rows,
                                   transposeA: true)
            grads[1] = dw
        }
        if let bias {
            var db: Tensor?
            if bias.requiresGrad {
                db = try Tensor.empty(bias.shape, engine: engine)
                try MatmulKernels.columnSums(engine: engine, x: dz, out: db!.storage, rows: rows, columns: outFeatures)
            }
            grads.append(db)
        }
        return grads
    }
    return y
}

/// The launches of `matmul.cl` on raw buffers, for the ops above and for benchmarks, which can call
/// them repeatedly on preallocated buffers and sum `Event.durationNanoseconds()` over the returned events.
public enum MatmulKernels {
    /// The largest element count a kernel may index with 32-bit integers.
    static let indexLimit = Int(Int32.max)

    /// A buffer of zeros standing in for an absent bias (never read), written whole from the host so
    /// Oclgrind counts it as initialized.
    private static func zeroBuffer(_ engine: Engine) throws -> Buffer<Float> {
        try engine.context.buffer([Float](repeating: 0, count: 64))
    }

    /// C = op(A)·op(B) (+ bias over columns) (then ReLU) for `batch` products; C is overwritten.
    ///
    /// op(A) is [m, k]: A is stored [m, k] row-major, or [k, m] with `transposeA`. op(B) is [k, n]: B is
    /// stored [k, n], or [n, k] with `transposeB`. C is [m, n]. Product z of a batch reads A at
    /// z·m·k (0 with `broadcastA`), B at z·k·n (0 with `broadcastB`) and writes C at z·m·n.
    /// The CPU variant packs B into panels in a scratch buffer taken from the engine's pool per call.
    /// - Parameters:
    ///   - bias: [n] added to every row of C, or nil.
    ///   - relu: apply max(·, 0) after the bias.
    ///   - variant: `.cpu` (packed panels, register micro-tiles), `.gpu` (local-memory tiles), or
    ///     `.automatic` (`GEMMFamily.choose`).
    /// - Throws: `TensorError` when a size is not positive, a buffer is too small, or an operand would
    ///   need 2³¹ or more elements; `CLError` from the device.
    /// - Returns: the events of the launches in order (CPU: pack, GEMM; GPU: GEMM).
    @discardableResult
    public static func gemm(engine: Engine, a: Buffer<Float>, b: Buffer<Float>, c: Buffer<Float>, m: Int, n: Int, k: Int,
                            batch: Int = 1, broadcastA: Bool = false, broadcastB: Bool = false,
                            transposeA: Bool = false, transposeB: Bool = false, bias: Buffer<Float>? = nil, relu: Bool = false,
                            variant: MatmulVariant = .automatic) throws -> [Event] {
        guard m > 0, n > 0, k > 0, batch > 0 else {
            throw TensorError("matmul: sizes must be positive, got m \(m), n \(n), k \(k), batch \(batch)")
        }
        let countA = (broadcastA ? 1 : batch) * m * k, countB = (broadcastB ? 1 : batch) * k * n, countC = batch * m * n
        guard a.count >= countA, b.count >= countB, c.count >= countC, (bias?.count ?? n) >= n else {
            throw TensorError("matmul: buffers of \(a.count), \(b.count), \(c.count) elements are too small for "
                + "\(batch) × [\(m), \(k)] × [\(k), \(n)]")
        }
        // A shared B and an untransposed, unshared A: the batch is one product of batch·m rows.
        var (batch, m) = (batch, m)
        if broadcastB, !broadcastA, !transposeA, batch > 1 {
            (m, batch) = (batch * m, 1)
        }
        let defines = engine.resolvedDefines(GEMMFamily.descriptor.file)
        let useCPU = try GEMMFamily.choose(variant, traits: engine.traits, defines: defines) == .cpu
        // The CPU micro-tile is mr rows × nr = MM_NV·MM_VW columns; packing and launch follow the values
        // the kernels are built with.
        let mr = GEMMFamily.descriptor.int("MM_MR", in: defines), nr = GEMMFamily.descriptor.int("MM_NV", in: defines) * GEMMFamily.descriptor.int("MM_VW", in: defines)
        let panels = (n + nr - 1) / nr * nr * k * (broadcastB ? 1 : batch)
        guard countA < indexLimit, countB < indexLimit, countC < indexLimit, !useCPU || panels < indexLimit else {
            throw TensorError("matmul: \(batch) × [\(m), \(k)] × [\(k), \(n)] is too large for 32-bit indexing")
        }
        let (sam, sak) = transposeA ? (1, m) : (k, 1)
        let (sbk, sbn) = transposeB ? (1, k) : (n, 1)
        let batchA = broadcastA ? 0 : m * k, batchB = broadcastB ? 0 : k * n
        let biasBuffer = try bias ?? zeroBuffer(engine)
        let flags: [any KernelArgument] = [Int32(bias == nil ? 0 : 1), Int32(relu ? 1 : 0)]
        let sizes: [any KernelArgument] = [Int32(m), Int32(n), Int32(k)]
        if useCPU {
            let packed = try engine.buffer(count: panels)
            // Packing work-items cover MM_PACK_ROWS rows of K each: size the launch from the value the
            // kernels are built with (a fixed 32 left rows unpacked under a tuned 8).
            let packRows = GEMMFamily.descriptor.int("MM_PACK_ROWS", in: defines)
            let packBatches = broadcastB ? 1 : batch
            let panelRows = (n + nr - 1) / nr * k
            let packItems = (n + nr - 1) / nr * ((k + packRows - 1) / packRows)
            let pack = try engine.launch("matmul.cl", "matmul_pack_b", global: [roundUp(packItems, flatKernelGroupSize), packBatches],
                                         local: [flatKernelGroupSize, 1], [b, packed, Int32(k), Int32(n), Int32(sbk), Int32(sbn), Int32(batchB)])
            let mTiles = (m + mr - 1) / mr
            let tiles = mTiles * ((n + nr - 1) / nr)
            var events = [pack]
            var operandA: [any KernelArgument] = [a, Int32(sam), Int32(sak), Int32(batchA)]
            if GEMMFamily.descriptor.int("MM_PACKED_A", in: defines) != 0 {
                let packedA = try engine.buffer(count: mTiles * mr * k * (broadcastA ? 1 : batch))
                events.append(try engine.launch("matmul.cl", "matmul_pack_a", global: [roundUp(mTiles * ((k + packRows - 1) / packRows), flatKernelGroupSize), broadcastA ? 1 : batch],
                                                local: [flatKernelGroupSize, 1], [a, packedA, Int32(m), Int32(k), Int32(sam), Int32(sak), Int32(batchA)]))
                operandA = [packedA, Int32(sam), Int32(sak), Int32(broadcastA ? 0 : mTiles * mr * k)]
            }
            events.append(try engine.launch("matmul.cl", "matmul_cpu", global: [tiles, batch], local: [1, 1],
                                            operandA + [packed, Int32(broadcastB ? 0 : panelRows * nr), biasBuffer] + flags + [c] + sizes))
            return events.compactMap { $0 }
        }
        let tiles = MatmulTiles(defines: defines)
        let lx = tiles.tn / tiles.wn, ly = tiles.tm / tiles.wm
        let groupsX = (n + tiles.tn - 1) / tiles.tn, groupsY = (m + tiles.tm - 1) / tiles.tm
        let main = try engine.launch("matmul.cl", "matmul_gpu", global: [groupsX * lx, groupsY * ly, batch], local: [lx, ly, 1],
                                     [a, Int32(sam), Int32(sak), Int32(batchA), b, Int32(sbk), Int32(sbn), Int32(batchB), biasBuffer]
                                         + flags + [c] + sizes)
        return [main].compactMap { $0 }
    }

    /// out[j] = Σ_{i < rows} x[i·columns + j] for j < columns (overwrites out): bias gradients, and
    /// the sum of a batch of gradients of a shared operand.
    /// - Returns: the launch's event.
    @discardableResult
    public static func columnSums(engine: Engine, x: Buffer<Float>, out: Buffer<Float>, rows: Int, columns: Int) throws -> [Event] {
        guard x.count >= rows * columns, out.count >= columns, rows * columns < indexLimit else {
            throw TensorError("matmul: column sums of [\(rows), \(columns)] do not fit buffers of \(x.count) and \(out.count) elements")
        }
        let sum = try engine.launch("matmul.cl", "matmul_column_sums", global: [roundUp(columns, flatKernelGroupSize)], local: [flatKernelGroupSize],
                                    [x, out, Int32(rows), Int32(columns)])
        return [sum].compactMap { $0 }
    }
}

/// The backward of a ReLU fused into a kernel's epilogue (Linear, Conv2D, a binary op): the upstream
/// gradient where the saved output is positive, 0 elsewhere (`matmul_relu_mask`).
/// - Parameters:
///   - output: the fused kernel's output (after the ReLU), as many floats as `upstream`.
func reluMaskedGradient(_ engine: Engine, output: Buffer<Float>, _ upstream: Tensor) throws -> Tensor {
    let masked = try Tensor.empty(upstream.shape, engine: engine)
    let n = upstream.count
    try engine.launch("matmul.cl", "matmul_relu_mask", global: [roundUp(n, flatKernelGroupSize)], local: [flatKernelGroupSize],
                      [output, upstream.storage, masked.storage, Int32(n)])
    return masked
}
