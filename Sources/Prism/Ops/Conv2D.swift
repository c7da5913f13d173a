import PrismCL

/// The sizes of one convolution: input [N, C, H, W], weight [K, C, R, S], output [N, K, P, Q].
public struct Conv2DGeometry: Sendable {
    public let n, c, h, w, k, r, s, p, q: Int
    public let stride, padding, dilation: (Int, Int)

    /// Checks the shapes and hyper-parameters of `conv2d` and derives the output size.
    /// - Throws: `TensorError` naming both shapes when they do not form a convolution.
    public init(input: [Int], weight: [Int], bias: [Int]?, stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int)) throws {
        let op = "conv2d"
        guard input.count == 4 else { throw TensorError.shape(op, "input must have rank 4 [N, C, H, W]", input, weight) }
        guard weight.count == 4 else { throw TensorError.shape(op, "weight must have rank 4 [K, C, R, S]", input, weight) }
        guard input[1] == weight[1] else {
            throw TensorError.shape(op, "input has \(input[1]) channels, weight expects \(weight[1])", input, weight)
        }
        if let bias, bias != [weight[0]] {
            throw TensorError.shape(op, "bias must have shape [\(weight[0])]", bias, weight)
        }
        guard stride.0 >= 1, stride.1 >= 1, dilation.0 >= 1, dilation.1 >= 1, padding.0 >= 0, padding.1 >= 0 else {
            throw TensorError.shape(op, "stride \(stride) and dilation \(dilation) must be ≥ 1, padding \(padding) ≥ 0", input, weight)
        }
        guard input.allSatisfy({ $0 > 0 }), weight.allSatisfy({ $0 > 0 }) else {
            throw TensorError.shape(op, "dimensions must be positive", input, weight)
        }
        let spanH = input[2] + 2 * padding.0 - dilation.0 * (weight[2] - 1) - 1
        let spanW = input[3] + 2 * padding.1 - dilation.1 * (weight[3] - 1) - 1
        let p = spanH < 0 ? 0 : spanH / stride.0 + 1
        let q = spanW < 0 ? 0 : spanW / stride.1 + 1
        guard p > 0, q > 0 else {
            throw TensorError.shape(op, "output size \(p)×\(q) is empty (kernel larger than padded input)", input, weight)
        }
        let limit = Int(Int32.max)
        guard input.reduce(1, *) < limit, weight.reduce(1, *) < limit, input[0] * weight[0] * p * q < limit else {
            throw TensorError.shape(op, "tensor too large for 32-bit indexing", input, weight)
        }
        (n, c, h, w) = (input[0], input[1], input[2], input[3])
        (k, r, s) = (weight[0], weight[2], weight[3])
        (self.p, self.q) = (p, q)
        (self.stride, self.padding, self.dilation) = (stride, padding, dilation)
    }

    /// [N, K, P, Q].
    public var outputShape: [Int] { [n, k, p, q] }
    /// Multiply-adds of the forward pass (each backward costs the same).
    public var multiplyAdds: Int { n * k * p * q * c * r * s }
    var padded: Bool { padding.0 != 0 || padding.1 != 0 }
    /// Whether `conv2d_forward_rows` applies: stride 1, no padding or dilation, a shallow depth.
    var suitsRowKernel: Bool {
        stride == (1, 1) && padding == (0, 0) && dilation == (1, 1) && c * r * s <= 32
    }

    /// The GEOM kernel arguments: N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw, dh, dw.
    var arguments: [any KernelArgument] {
        [n, c, h, w, k, r, s, p, q, stride.0, stride.1, padding.0, padding.1, dilation.0, dilation.1].map { Int32($0) }
    }
}

/// Tunables of `conv2d.cl`, read from the defines its programs are built with (`Engine.resolvedDefines`:
/// the family's defaults, tuning table, call-site defines, then `defineOverrides`).
private struct Conv2DTiles {
    let forwardChannels, forwardPixels: Int   // CONV_VW · CONV_FWD_KV, CONV_FWD_NP
    let rowChannels, rowRows: Int             // CONV_ROWS_KB, CONV_ROWS_NP
    let inputChannels, inputPixels: Int       // CONV_VW · CONV_DX_KV, CONV_DX_NP
    let weightChannels, weightColumns: Int    // CONV_VW · CONV_DW_KV, CONV_DW_NP
    let tm, tn, wm, wn: Int
    /// The resolved defines they were read from.
    let defines: [String: String]

    /// The tiles a program of `conv2d.cl` built with call-site `defines` uses.
    init(engine: Engine, defines callSite: [String: String] = [:]) {
        let defines = engine.resolvedDefines(Conv2DFamily.descriptor.file, callSite)
        func value(_ name: String) -> Int { Conv2DFamily.descriptor.int(name, in: defines) }
        let width = value("CONV_VW")
        forwardChannels = width * value("CONV_FWD_KV")
        forwardPixels = value("CONV_FWD_NP")
        rowChannels = value("CONV_ROWS_KB")
        rowRows = value("CONV_ROWS_NP")
        inputChannels = width * value("CONV_DX_KV")
        inputPixels = value("CONV_DX_NP")
        weightChannels = width * value("CONV_DW_KV")
        weightColumns = value("CONV_DW_NP")
        tm = value("CONV_TM")
        tn = value("CONV_TN")
        wm = value("CONV_WM")
        wn = value("CONV_WN")
        self.defines = defines
    }
}

/// Call-site defines of launches whose kernels ignore CONV_PADDED: they share the program of
/// unpadded convolutions instead of building one more.
private let unpaddedProgram = ["CONV_PADDED": "0"]

/// Work-group width of the CPU-shaped kernels along their pixel dimension: consecutive work-items
/// share a packed panel, so it stays in cache. Fixed, like `flatKernelGroupSize`, so PoCL compiles each kernel
/// once rather than once per work-group size.
private let cpuGroupWidth = 16

/// Work-group size of the one-dimensional helper kernels (packing, reductions, pooling); the
/// global size is rounded up to it and the kernels guard their tails.
let flatKernelGroupSize = 64

/// 2-D convolution (cross-correlation, as PyTorch's `Conv2d`), recording its backward.
/// - Parameters:
///   - input: [N, C, H, W].
///   - weight: [K, C, R, S].
///   - bias: [K], or nil.
///   - stride, padding, dilation: (height, width) each.
///   - groups: split the C input and K output channels into this many groups, output group j
///     reading input group j only (PyTorch's `groups`; C for a depthwise convolution). The weight
///     is then [K, C / groups, R, S].
///   - relu: apply max(·, 0) in the kernels' epilogue (a Conv2D followed by ReLU, in one pass).
///   - variant: which forward kernel runs (tests force each; `.automatic`: `Conv2DFamily.choose`).
///     With groups, it applies to the dense convolutions of the `.blockDiagonal` and `.perGroup` ways.
///   - grouping: how a convolution with `groups` > 1 runs (tests force each; `.automatic`:
///     `Conv2DGroupedFamily.choose`); ignored without groups.
/// - Throws: `TensorError` when ranks, channels, groups or the bias shape disagree, or the output
///   would be empty; `CLError` from the device.
/// - Returns: [N, K, P, Q] with P = (H + 2·padding.0 − dilation.0·(R − 1) − 1) / stride.0 + 1, Q likewise.
public func conv2d(_ input: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                   dilation: (Int, Int) = (1, 1), groups: Int = 1, relu: Bool = false, variant: Conv2DVariant = .automatic,
                   grouping: Conv2DGroupedVariant = .automatic) throws -> Tensor {
    if groups != 1 {
        return try groupedConv2d(input, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                                 groups: groups, relu: relu, variant: variant, grouping: grouping)
    }
    let g = try Conv2DGeometry(input: input.shape, weight: weight.shape, bias: bias?.shape,
                               stride: stride, padding: padding, dilation: dilation)
    let engine = input.engine
    let out = try Tensor.empty(g.outputShape, engine: engine)
    try Conv2DKernels.forward(engine, g, x: input.storage, w: weight.storage, bias: bias?.storage, y: out.storage, relu: relu, variant: variant)

    let inputs = [input, weight] + (bias.map { [$0] } ?? [])
    let y = out.storage
    out.record(inputs: inputs) { upstream in
        // The fused ReLU's backward: the gradient passes where the output is positive.
        let dy = relu ? try reluMaskedGradient(engine, output: y, upstream) : upstream
        let dx = input.requiresGrad ? try Conv2DKernels.backwardInput(engine, g, dy: dy.storage, w: weight.storage).0 : nil
        let dw = weight.requiresGrad ? try Conv2DKernels.backwardWeight(engine, g, x: input.storage, dy: dy.storage).0 : nil
        var grads: [Tensor?] = [
            try dx.map { try Tensor(engine: engine, shape: input.shape, storage: $0) },
            try dw.map { try Tensor(engine: engine, shape: weight.shape, storage: $0) },
        ]
        if let bias {
            grads.append(bias.requiresGrad
                ? try Tensor(engine: engine, shape: bias.shape, storage: try Conv2DKernels.backwardBias(engine, g, dy: dy.storage).0)
                : nil)
        }
        return grads
    }
    return out
}

/// A grouped convolution in the way `Conv2DGroupedFamily.choose` picks: one dense convolution over
/// the block-diagonal weight, the direct kernels, or one convolution per group (input channels and
/// weight rows sliced, the outputs joined along the channel axis; the backward comes from `sliced`,
/// `conv2d` and `concat`).
private func groupedConv2d(_ input: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                           dilation: (Int, Int), groups: Int, relu: Bool, variant: Conv2DVariant,
                           grouping: Conv2DGroupedVariant) throws -> Tensor {
    let op = "conv2d"
    guard input.rank == 4 else { throw TensorError.shape(op, "input must have rank 4 [N, C, H, W]", input.shape, weight.shape) }
    guard weight.rank == 4 else { throw TensorError.shape(op, "weight must have rank 4 [K, C / groups, R, S]", input.shape, weight.shape) }
    let c = input.shape[1], k = weight.shape[0]
    guard groups >= 1, c % groups == 0, k % groups == 0 else {
        throw TensorError.shape(op, "groups \(groups) must be ≥ 1 and divide both \(c) input and \(k) output channels", input.shape, weight.shape)
    }
    let cg = c / groups, kg = k / groups
    guard weight.shape[1] == cg else {
        throw TensorError.shape(op, "input has \(c) channels in \(groups) groups of \(cg), weight expects \(weight.shape[1]) per group",
                                input.shape, weight.shape)
    }
    if let bias, bias.shape != [k] { throw TensorError.shape(op, "bias must have shape [\(k)]", bias.shape, weight.shape) }
    let engine = input.engine
    switch try Conv2DGroupedFamily.choose(grouping, input: input.shape, weight: weight.shape, groups: groups,
                                          defines: engine.resolvedDefines(Conv2DGroupedFamily.descriptor.file)) {
    case .blockDiagonal:
        return try conv2d(input, weight: try blockDiagonalWeight(weight, channels: c, groups: groups), bias: bias, stride: stride,
                          padding: padding, dilation: dilation, relu: relu, variant: variant)
    case .direct, .automatic:
        let out = try directGroupedConv2d(input, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
        return relu ? try out.relu() : out
    case .perGroup:
        break
    }
    let outputs = try (0..<groups).map { j in
        try conv2d(try input.sliced(axis: 1, range: (j * cg)..<((j + 1) * cg)),
                   weight: try weight.sliced(axis: 0, range: (j * kg)..<((j + 1) * kg)),
                   bias: try bias.map { try $0.sliced(axis: 0, range: (j * kg)..<((j + 1) * kg)) },
                   stride: stride, padding: padding, dilation: dilation, relu: relu, variant: variant)
    }
    return try concat(outputs, axis: 1)
}

/// The dense weight [K, C, R, S] of a grouped weight [K, C / groups, R, S]: output channel k keeps its
/// group's taps and holds zeros for the other groups' input channels, so one dense convolution computes
/// the grouped one. Its backward gathers the diagonal blocks of the dense weight's gradient.
func blockDiagonalWeight(_ weight: Tensor, channels c: Int, groups: Int) throws -> Tensor {
    let engine = weight.engine
    let (k, rs) = (weight.shape[0], weight.shape[2] * weight.shape[3])
    let dense = try Tensor.empty([k, c, weight.shape[2], weight.shape[3]], engine: engine)
    let sizes = [Int32(k), Int32(c), Int32(rs), Int32(groups)]
    try engine.launch("conv2d_grouped.cl", "conv2d_grouped_expand_weight", global: [roundUp(dense.count, flatKernelGroupSize)],
                      local: [flatKernelGroupSize], [weight.storage, dense.storage] + sizes)
    dense.record(inputs: [weight], op: "blockDiagonal(groups: \(groups))") { dd in
        let dw = try Tensor.empty(weight.shape, engine: engine)
        try engine.launch("conv2d_grouped.cl", "conv2d_grouped_gather_weight", global: [roundUp(dw.count, flatKernelGroupSize)],
                          local: [flatKernelGroupSize], [dd.storage, dw.storage] + sizes)
        return [dw]
    }
    return dense
}

/// A grouped convolution by the direct kernels `conv2d_grouped_*`, recording its backward (shapes
/// already checked by `groupedConv2d`).
private func directGroupedConv2d(_ input: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                                 dilation: (Int, Int), groups: Int) throws -> Tensor {
    // The geometry of the dense convolution with the same channels gives GEOM (C and K count every channel).
    let (c, k) = (input.shape[1], weight.shape[0])
    let g = try Conv2DGeometry(input: input.shape, weight: [k, c, weight.shape[2], weight.shape[3]], bias: bias?.shape,
                               stride: stride, padding: padding, dilation: dilation)
    let engine = input.engine
    let geometry = g.arguments + [Int32(groups)]
    let out = try Tensor.empty(g.outputShape, engine: engine)
    // A host-written buffer stands in for a missing bias (see `Conv2DKernels.zeroBuffer`).
    let biasBuffer = try bias?.storage ?? engine.context.buffer([Float](repeating: 0, count: 64))
    // Output channels per work-item: the largest of 4, 2, 1 dividing the channels per group.
    let block = [4, 2, 1].first { (k / groups) % $0 == 0 } ?? 1
    try engine.launch("conv2d_grouped.cl", "conv2d_grouped_forward", defines: ["CONV_GROUP_KB": "\(block)"],
                      global: [roundUp(out.count / block, flatKernelGroupSize)], local: [flatKernelGroupSize], [input.storage, weight.storage, biasBuffer, Int32(bias == nil ? 0 : 1), out.storage] + geometry)
    let inputs = [input, weight] + (bias.map { [$0] } ?? [])
    out.record(inputs: inputs, op: "conv2d(groups: \(groups))") { dy in
        var grads: [Tensor?] = [nil, nil]
        if input.requiresGrad {
            let dx = try Tensor.empty(input.shape, engine: engine)
            try engine.launch("conv2d_grouped.cl", "conv2d_grouped_backward_input", global: [roundUp(dx.count, flatKernelGroupSize)],
                              local: [flatKernelGroupSize], [dy.storage, weight.storage, dx.storage] + geometry)
            grads[0] = dx
        }
        if weight.requiresGrad {
            let dw = try Tensor.empty(weight.shape, engine: engine)
            try engine.launch("conv2d_grouped.cl", "conv2d_grouped_backward_weight", global: [roundUp(dw.count, flatKernelGroupSize)],
                              local: [flatKernelGroupSize], [input.storage, dy.storage, dw.storage] + geometry)
            grads[1] = dw
        }
        if let bias {
            grads.append(bias.requiresGrad ? try dy.reshaped([g.n, g.k, g.p * g.q]).sum(axis: 2).sum(axis: 0) : nil)
        }
        return grads
    }
    return out
}

/// Conv2D (with an optional fused ReLU) followed by 2×2 max pooling with stride 2, in one pass of the
/// CPU-shaped forward kernels: the full-size activation is never written. The inference path of
/// `Model` (inside `noGrad`) uses it for Conv2D → ReLU → MaxPool2D(2) on CPU devices; the values
/// equal `maxPool2d(conv2d(…, relu: relu), kernel: (2, 2))` up to float rounding — exactly for the
/// micro-tile kernel and for single-channel inputs (the shallow kernel sums a multi-channel input's
/// taps in another order).
/// - Parameters:
///   - input, weight, bias, stride, padding, dilation, relu: as `conv2d`.
///   - variant: `.automatic` (the row kernel for shallow inputs, else the micro-tile kernel), `.cpu`
///     or `.rows`; there is no GPU-shaped fused kernel.
/// - Throws: `TensorError` when shapes disagree, the convolution's output is smaller than 2×2, the
///   variant is `.gpu` (or `.automatic` on a device that is not a CPU), or gradients are being
///   recorded for an input (this op has no backward); `CLError` from the device.
/// - Returns: [N, K, P / 2, Q / 2] for the convolution's output [N, K, P, Q].
public func conv2dMaxPool2x2(_ input: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                             dilation: (Int, Int) = (1, 1), relu: Bool = false, variant: Conv2DVariant = .automatic) throws -> Tensor {
    let g = try Conv2DGeometry(input: input.shape, weight: weight.shape, bias: bias?.shape,
                               stride: stride, padding: padding, dilation: dilation)
    let engine = input.engine
    guard g.p >= 2, g.q >= 2 else {
        throw TensorError("conv2dMaxPool2x2: the convolution's output \(g.p)×\(g.q) is smaller than one 2×2 window")
    }
    if engine.isGradEnabled, ([input, weight] + (bias.map { [$0] } ?? [])).contains(where: \.requiresGrad) {
        throw TensorError("conv2dMaxPool2x2: inference only (no backward); call it inside noGrad or use conv2d and maxPool2d")
    }
    let out = try Tensor.empty([g.n, g.k, g.p / 2, g.q / 2], engine: engine)
    try Conv2DKernels.forward(engine, g, x: input.storage, w: weight.storage, bias: bias?.storage, y: out.storage, relu: relu,
                              variant: variant, pool2x2: true)
    return out
}

/// The launches of `conv2d.cl` on raw buffers. Each returns the events of its launches, in order,
/// so a benchmark can time them.
public enum Conv2DKernels {
    /// Call-site defines of the pooled forward: 4 taps per pooled pixel in the micro-tile kernel, so
    /// a work-item holds whole windows (the tuned CONV_FWD_NP when it is a multiple of 4).
    private static func poolDefines(_ engine: Engine) -> [String: String] {
        Conv2DFamily.pooledCallSite(engine.resolvedDefines(Conv2DFamily.descriptor.file))
    }

    /// Whether `forward(…, pool2x2: true)` can run on this engine: `Conv2DFamily` has a pooled
    /// variant for the device, and no override of CONV_FWD_NP splits a window between work-items.
    public static func supportsPooling(_ engine: Engine) -> Bool {
        let traits = engine.traits, defines = Conv2DTiles(engine: engine, defines: poolDefines(engine)).defines
        return !Conv2DFamily.preference(traits, pooled: true).isEmpty
            && Conv2DFamily.unmet(.cpu, nil, pooled: true, traits: traits, defines: defines) == nil
    }

    /// A buffer of zeros (the kernels read its first element), written whole from the host: Oclgrind
    /// counts neither a device-side fill nor the unwritten rest of a pooled allocation as initialized,
    /// so the buffer fills the pool's smallest allocation (256 bytes).
    private static func zeroBuffer(_ engine: Engine) throws -> Buffer<Float> {
        try engine.context.buffer([Float](repeating: 0, count: 64))
    }

    /// y = conv2d(x, w) + bias with the geometry `g` (y overwritten); with `pool2x2`, y is that
    /// (activated) output max-pooled over 2×2 windows with stride 2, [N, K, P / 2, Q / 2] (CPU kernels only).
    /// - Returns: the launches' events.
    @discardableResult
    public static func forward(_ engine: Engine, _ g: Conv2DGeometry, x: Buffer<Float>, w: Buffer<Float>, bias: Buffer<Float>?,
                               y: Buffer<Float>, relu: Bool = false, variant: Conv2DVariant = .automatic,
                               pool2x2: Bool = false) throws -> [Event] {
        var activation = ["CONV_RELU": relu ? "1" : "0"]
        if pool2x2 { activation.merge(poolDefines(engine)) { $1 } }
        activation.merge(Conv2DFamily.narrowed(engine.resolvedDefines(Conv2DFamily.descriptor.file), channels: g.k, vectors: "CONV_FWD_KV")) { $1 }
        let tiles = Conv2DTiles(engine: engine, defines: activation)
        let chosen = try Conv2DFamily.choose(variant, g, pooled: pool2x2, traits: engine.traits, defines: tiles.defines)
        let biasBuffer = try bias ?? zeroBuffer(engine)
        let hasBias = Int32(bias == nil ? 0 : 1)
        if pool2x2 && chosen == .rows {
            let kBlocks = (g.k + tiles.forwardChannels - 1) / tiles.forwardChannels
            let packed = try engine.buffer(count: kBlocks * tiles.forwardChannels * g.c * g.r * g.s)
            let pack = try engine.launch("conv2d.cl", "conv2d_pack_weight", defines: unpaddedProgram.merging(activation) { $1 },
                                         global: [roundUp(packed.count, flatKernelGroupSize)], local: [flatKernelGroupSize],
                                         [w, packed, Int32(g.k), Int32(g.c), Int32(g.r * g.s)])
            let main = try engine.launch("conv2d.cl", "conv2d_forward_rows_pool", defines: unpaddedProgram.merging(activation) { $1 },
                                         global: [g.p / 2, g.n, kBlocks], local: [1, 1, 1], [x, packed, biasBuffer, hasBias, y] + g.arguments)
            return [pack, main].compactMap { $0 }
        }
        if chosen == .rows {
            let channels = tiles.rowChannels
            let main = try engine.launch("conv2d.cl", "conv2d_forward_rows", defines: unpaddedProgram.merging(activation) { $1 },
                                         global: [(g.q + 7) / 8, g.n * ((g.p + tiles.rowRows - 1) / tiles.rowRows), (g.k + channels - 1) / channels],
                                         [x, w, biasBuffer, hasBias, y] + g.arguments)
            return [main].compactMap { $0 }
        }
        if chosen == .cpu {
            let defines = ["CONV_PADDED": g.padded ? "1" : "0"].merging(activation) { $1 }
            let kBlocks = (g.k + tiles.forwardChannels - 1) / tiles.forwardChannels
            let packed = try engine.buffer(count: kBlocks * tiles.forwardChannels * g.c * g.r * g.s)
            let pack = try engine.launch("conv2d.cl", "conv2d_pack_weight", defines: defines, global: [roundUp(packed.count, flatKernelGroupSize)], local: [flatKernelGroupSize],
                                         [w, packed, Int32(g.k), Int32(g.c), Int32(g.r * g.s)])
            let columns = ((pool2x2 ? 4 * g.n * (g.p / 2) * (g.q / 2) : g.n * g.p * g.q) + tiles.forwardPixels - 1) / tiles.forwardPixels
            let width = cpuGroupWidth
            let main = try engine.launch("conv2d.cl", "conv2d_forward_cpu", defines: defines, global: [roundUp(columns, width), kBlocks], local: [width, 1],
                                         [x, packed, biasBuffer, hasBias, try zeroBuffer(engine), y] + g.arguments)
            return [pack, main].compactMap { $0 }
        }
        let lx = tiles.tn / tiles.wn, ly = tiles.tm / tiles.wm
        let groupsX = (g.n * g.p * g.q + tiles.tn - 1) / tiles.tn
        let groupsY = (g.k + tiles.tm - 1) / tiles.tm
        let main = try engine.launch("conv2d.cl", "conv2d_forward_gpu", defines: unpaddedProgram.merging(activation) { $1 }, global: [groupsX * lx, groupsY * ly], local: [lx, ly],
                                     [x, w, biasBuffer, hasBias, y] + g.arguments)
        return [main].compactMap { $0 }
    }

    /// dx for dy: a new buffer of N·C·H·W floats.
    /// - Returns: dx and the launches' events.
    public static func backwardInput(_ engine: Engine, _ g: Conv2DGeometry, dy: Buffer<Float>,
                                     w: Buffer<Float>, variant: Conv2DBackwardInputVariant = .automatic) throws -> (Buffer<Float>, [Event]) {
        if try Conv2DFamily.backwardInputVariant(variant, g) == .rows {
            // One channel block of all C (at most 4 channels when chosen automatically, so none idles).
            let channels = min(g.c, 8)
            let defines = ["CONV_ROWS_KB": String(channels), "CONV_PADDED": "0"]
            let dx = try engine.buffer(count: g.n * g.c * g.h * g.w)
            let main = try engine.launch("conv2d.cl", "conv2d_backward_input_rows", defines: defines,
                                         global: [(g.w + 7) / 8, g.n * g.h, (g.c + channels - 1) / channels], local: [1, 1, 1], [dy, w, dx] + g.arguments)
            return (dx, [main].compactMap { $0 })
        }
        let defines = Conv2DFamily.backwardInputDefines(g, engine.resolvedDefines(Conv2DFamily.descriptor.file))
        let tiles = Conv2DTiles(engine: engine, defines: defines)
        let cBlocks = (g.c + tiles.inputChannels - 1) / tiles.inputChannels
        let packed = try engine.buffer(count: cBlocks * tiles.inputChannels * g.k * g.r * g.s)
        let pack = try engine.launch("conv2d.cl", "conv2d_pack_weight_t", defines: defines, global: [roundUp(packed.count, flatKernelGroupSize)], local: [flatKernelGroupSize],
                                     [w, packed, Int32(g.k), Int32(g.c), Int32(g.r * g.s)])
        let dx = try engine.buffer(count: g.n * g.c * g.h * g.w)
        let columns = (g.n * g.h * g.w + tiles.inputPixels - 1) / tiles.inputPixels
        let width = cpuGroupWidth
        let main = try engine.launch("conv2d.cl", "conv2d_backward_input", defines: defines, global: [roundUp(columns, width), cBlocks], local: [width, 1],
                                     [dy, packed, try zeroBuffer(engine), dx] + g.arguments)
        return (dx, [pack, main].compactMap { $0 })
    }

    /// dw for dy: a new buffer of K·C·R·S floats.
    /// - Returns: dw and the launches' events.
    public static func backwardWeight(_ engine: Engine, _ g: Conv2DGeometry, x: Buffer<Float>,
                                      dy: Buffer<Float>) throws -> (Buffer<Float>, [Event]) {
        let defines = Conv2DFamily.narrowed(engine.resolvedDefines(Conv2DFamily.descriptor.file), channels: g.k, vectors: "CONV_DW_KV")
            .merging(["CONV_PADDED": g.padded ? "1" : "0"]) { $1 }
        let tiles = Conv2DTiles(engine: engine, defines: defines)
        let kBlocks = (g.k + tiles.weightChannels - 1) / tiles.weightChannels
        let pq = g.p * g.q
        let packed = try engine.buffer(count: kBlocks * tiles.weightChannels * g.n * pq)
        let pack = try engine.launch("conv2d.cl", "conv2d_pack_dy", defines: defines, global: [roundUp(g.n * pq, flatKernelGroupSize), kBlocks], local: [flatKernelGroupSize, 1],
                                     [dy, packed, Int32(g.n), Int32(g.k), Int32(pq)])
        // Chunks of images small enough that a chunk's input and packed dy stay in cache.
        let bytesPerImage = 4 * (g.c * g.h * g.w + pq * tiles.weightChannels)
        let images = max(1, min(g.n, (256 * 1024) / max(bytesPerImage, 1)))
        let chunks = (g.n + images - 1) / images
        let depth = g.c * g.r * g.s
        let partial = try engine.buffer(count: chunks * g.k * depth)
        let columns = (depth + tiles.weightColumns - 1) / tiles.weightColumns
        let width = cpuGroupWidth
        let main = try engine.launch("conv2d.cl", "conv2d_backward_weight", defines: defines,
                                     global: [roundUp(columns, width), kBlocks, chunks], local: [width, 1, 1],
                                     [x, packed, partial, Int32(images)] + g.arguments)
        let dw = try engine.buffer(count: g.k * depth)
        let reduce = try engine.launch("conv2d.cl", "conv2d_reduce_chunks", defines: defines, global: [roundUp(dw.count, flatKernelGroupSize)], local: [flatKernelGroupSize],
                                       [partial, dw, Int32(dw.count), Int32(chunks)])
        return (dw, [pack, main, reduce].compactMap { $0 })
    }

    /// db for dy: a new buffer of K floats.
    /// - Returns: db and the launches' events.
    public static func backwardBias(_ engine: Engine, _ g: Conv2DGeometry, dy: Buffer<Float>) throws -> (Buffer<Float>, [Event]) {
        let pq = g.p * g.q
        // Chunks of about 64 Ki elements per work-item, so a small K still spreads over every core.
        let images = max(1, min(g.n, 65536 / pq))
        let chunks = (g.n + images - 1) / images
        let partial = try engine.buffer(count: chunks * g.k)
        let sum = try engine.launch("conv2d.cl", "conv2d_backward_bias", defines: unpaddedProgram, global: [roundUp(g.k, 8), chunks], local: [8, 1],
                                    [dy, partial, Int32(g.n), Int32(g.k), Int32(pq), Int32(images)])
        let db = try engine.buffer(count: g.k)
        let reduce = try engine.launch("conv2d.cl", "conv2d_reduce_chunks", defines: unpaddedProgram, global: [roundUp(g.k, flatKernelGroupSize)], local: [flatKernelGroupSize],
                                       [partial, db, Int32(g.k), Int32(chunks)])
        return (db, [sum, reduce].compactMap { $0 })
    }
}
