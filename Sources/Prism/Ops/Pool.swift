import PrismCL

/// The sizes of one pooling: input [N, C, H, W], window kh × kw, output [N, C, P, Q].
struct Pool2DGeometry {
    let planes, h, w, p, q: Int
    let kernel, stride, padding: (Int, Int)
    let ceilMode, countIncludePad: Bool
    let outputShape: [Int]

    /// Checks a pooling's input and hyper-parameters; `op` names it in errors.
    init(_ op: String, input: [Int], kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int),
         ceilMode: Bool = false, countIncludePad: Bool = true) throws {
        let window = [kernel.0, kernel.1]
        guard input.count == 4 else { throw TensorError.shape(op, "input must have rank 4 [N, C, H, W]", input, window) }
        guard kernel.0 >= 1, kernel.1 >= 1, stride.0 >= 1, stride.1 >= 1 else {
            throw TensorError.shape(op, "kernel \(kernel) and stride \(stride) must be ≥ 1", input, window)
        }
        guard padding.0 >= 0, padding.1 >= 0, 2 * padding.0 <= kernel.0, 2 * padding.1 <= kernel.1 else {
            throw TensorError.shape(op, "padding \(padding) must be between 0 and half the kernel", input, window)
        }
        let p = Self.outputSize(input[2], kernel: kernel.0, stride: stride.0, padding: padding.0, ceilMode: ceilMode)
        let q = Self.outputSize(input[3], kernel: kernel.1, stride: stride.1, padding: padding.1, ceilMode: ceilMode)
        guard input.allSatisfy({ $0 > 0 }), p > 0, q > 0 else {
            throw TensorError.shape(op, "output size \(p)×\(q) is empty", input, window)
        }
        guard input.reduce(1, *) < Int(Int32.max) else { throw TensorError.shape(op, "tensor too large for 32-bit indexing", input, window) }
        planes = input[0] * input[1]
        (h, w, self.p, self.q) = (input[2], input[3], p, q)
        (self.kernel, self.stride, self.padding) = (kernel, stride, padding)
        (self.ceilMode, self.countIncludePad) = (ceilMode, countIncludePad)
        outputShape = [input[0], input[1], p, q]
    }

    /// PyTorch's pooling output size along one axis (`slidingLength`), 0 when no window fits.
    static func outputSize(_ size: Int, kernel: Int, stride: Int, padding: Int, ceilMode: Bool) -> Int {
        (try? slidingLength(size, kernel: kernel, stride: stride, padding: padding, ceil: ceilMode)) ?? 0
    }

    /// Whether the last window of a row or column reaches past the input and its padding (ceil mode).
    var overhang: Bool {
        (p - 1) * stride.0 + kernel.0 > h + 2 * padding.0 || (q - 1) * stride.1 + kernel.1 > w + 2 * padding.1
    }

    /// The compile-time specializations of `pool.cl` for this pooling (see the file's header).
    var defines: [String: String] {
        let divisor = !countIncludePad ? 2 : overhang ? 1 : 0
        return ["POOL_UNPADDED": padding == (0, 0) && !overhang ? "1" : "0", "POOL_KH": "\(kernel.0)", "POOL_KW": "\(kernel.1)",
                "POOL_DIVISOR": "\(divisor)", "POOL_PLANES_FIRST": planesFirst ? "1" : "0",
                "POOL_PLANE_STRIDE": planeStride ? "1" : "0"]
    }

    /// Whether the kernels that run one work-item per output lay planes along the range's first axis
    /// (`POOL_PLANES_FIRST`), as `PoolFamily.planesFirst` decides for the device; set by the ops.
    var planesFirst = false

    /// Whether the (Q, P, planes) range holds fewer planes than there are (`POOL_PLANE_STRIDE`: the
    /// kernels loop over the rest).
    var planeStride: Bool { !planesFirst && outputLaunch.global[2] < planes }

    /// The range of the kernels that run one work-item per output, and its work-groups:
    /// - planes first (`planesFirst`): (planes, Q, P) in work-groups of up to 64 planes;
    /// - else (Q, P, planes): planes of 64 outputs or more leave the work-group to the driver; smaller
    ///   ones are grouped whole, several to a work-group of about 64 work-items, so that a GPU's warp
    ///   reads neighbouring memory (planes are contiguous). The third axis holds at most 65,535
    ///   work-groups (the most some GPU drivers take there); the kernels stride over the planes beyond
    ///   it (`planeStride`).
    /// Ranges are rounded up to whole work-groups; the kernels skip planes past the last.
    var outputLaunch: (global: [Int], local: [Int]?) {
        if planesFirst {
            let group = min(planes, 64)
            return ([roundUp(planes, group), q, p], [group, 1, 1])
        }
        let area = p * q
        guard area < 64 else { return ([q, p, min(planes, 65535)], nil) }
        let perGroup = max(1, min(planes, 64 / area))
        let groups = (planes + perGroup - 1) / perGroup
        return ([q, p, min(groups, 65535) * perGroup], [q, p, perGroup])
    }

    /// Whether no two windows share a pixel (stride ≥ kernel in both directions).
    var disjoint: Bool { stride.0 >= kernel.0 && stride.1 >= kernel.1 }

    /// The POOL_GEOM kernel arguments: planes, H, W, P, Q, kh, kw, sh, sw, ph, pw.
    var arguments: [any KernelArgument] {
        [planes, h, w, p, q, kernel.0, kernel.1, stride.0, stride.1, padding.0, padding.1].map { Int32($0) }
    }
}

/// 2-D max pooling (padding counts as −∞), recording its backward.
///
/// The forward keeps each window's argmax (ties: the first pixel in row-major window order), so the
/// backward routes gradients without searching.
/// - Parameters:
///   - input: [N, C, H, W].
///   - kernel: window (height, width).
///   - stride: step (height, width); nil means the kernel size, as in PyTorch.
///   - padding: implicit −∞ border (height, width), at most half the kernel.
///   - ceilMode: round the output size up (PyTorch's `ceil_mode`): a last, partial window is kept
///     when it starts inside the input or the left padding; it pools the pixels it covers.
///   - variant: the forward kernel (tests force each; `.automatic`: `PoolFamily.choose`).
/// - Throws: `TensorError` for a rank other than 4, invalid window parameters, an empty output, or a
///   forced variant that cannot pool this window.
/// - Returns: [N, C, P, Q] with P = (H + 2·padding.0 − kernel.0) / stride.0 + 1 (rounded up in ceil
///   mode, see above), Q likewise.
public func maxPool2d(_ input: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                      ceilMode: Bool = false, variant: PoolVariant = .automatic) throws -> Tensor {
    var g = try Pool2DGeometry("maxPool2d", input: input.shape, kernel: kernel, stride: stride ?? kernel, padding: padding,
                               ceilMode: ceilMode)
    let engine = input.engine
    g.planesFirst = PoolFamily.planesFirst(g, traits: engine.traits)
    let chosen = try PoolFamily.choose(variant, g, traits: engine.traits, defines: engine.resolvedDefines(PoolFamily.descriptor.file))
    let out = try Tensor.empty(g.outputShape, engine: engine)
    let argmax = try engine.context.buffer(Int32.self, count: out.count)
    let defines = g.defines
    if chosen == .window2x2 {
        try engine.launch("pool.cl", "maxpool2x2_forward", defines: defines, global: [(g.q + 7) / 8, g.p, g.planes], local: [(g.q + 7) / 8, g.p, 1],
                          [input.storage, out.storage, argmax] + g.arguments)
    } else {
        try engine.launch("pool.cl", "maxpool2d_forward", defines: defines, global: g.outputLaunch.global, local: g.outputLaunch.local,
                          [input.storage, out.storage, argmax] + g.arguments)
    }
    out.record(inputs: [input]) { dy in
        if g.disjoint {
            let dx = try Tensor.zeros(input.shape, engine: engine)
            try engine.launch("pool.cl", "maxpool2d_backward_scatter", defines: defines, global: g.outputLaunch.global, local: g.outputLaunch.local,
                              [dy.storage, argmax, dx.storage] + g.arguments)
            return [dx]
        }
        let dx = try Tensor.empty(input.shape, engine: engine)
        try engine.launch("pool.cl", "maxpool2d_backward", defines: defines, global: [roundUp(dx.count, flatKernelGroupSize)], local: [flatKernelGroupSize],
                          [dy.storage, argmax, dx.storage] + g.arguments)
        return [dx]
    }
    return out
}

/// 2-D average pooling (PyTorch's `AvgPool2d`), recording its backward. By default padding counts
/// as zeros in the average (`count_include_pad = true`): every window divides by kernel.0 · kernel.1,
/// except a ceil-mode window reaching past the padded input, which divides by its part inside it.
/// - Parameters:
///   - input: [N, C, H, W].
///   - kernel: window (height, width).
///   - stride: step (height, width); nil means the kernel size.
///   - padding: implicit zero border (height, width), at most half the kernel.
///   - ceilMode: round the output size up, as `maxPool2d`.
///   - countIncludePad: false divides each window by the number of input pixels it covers.
/// - Throws: `TensorError` for a rank other than 4, invalid window parameters, or an empty output.
/// - Returns: [N, C, P, Q].
public func avgPool2d(_ input: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                      ceilMode: Bool = false, countIncludePad: Bool = true) throws -> Tensor {
    var g = try Pool2DGeometry("avgPool2d", input: input.shape, kernel: kernel, stride: stride ?? kernel, padding: padding,
                               ceilMode: ceilMode, countIncludePad: countIncludePad)
    let engine = input.engine
    g.planesFirst = PoolFamily.planesFirst(g, traits: engine.traits)
    let out = try Tensor.empty(g.outputShape, engine: engine)
    // The forward unrolls the window (POOL_KH/KW); only POOL_DIVISOR matters to the backward, so its
    // program is shared by every window size.
    let backwardDefines = ["POOL_DIVISOR": g.defines["POOL_DIVISOR"] ?? "0"]
    try engine.launch("pool.cl", "avgpool2d_forward", defines: g.defines, global: g.outputLaunch.global, local: g.outputLaunch.local,
                      [input.storage, out.storage] + g.arguments)
    out.record(inputs: [input]) { dy in
        let dx = try Tensor.empty(input.shape, engine: engine)
        try engine.launch("pool.cl", "avgpool2d_backward", defines: backwardDefines, global: [roundUp(dx.count, flatKernelGroupSize)], local: [flatKernelGroupSize],
                          [dy.storage, dx.storage] + g.arguments)
        return [dx]
    }
    return out
}

/// Global average pooling: the mean of each channel plane, recording its backward.
/// - Parameter input: [N, C, H, W].
/// - Throws: `TensorError` for a rank other than 4 or an empty plane.
/// - Returns: [N, C].
public func globalAvgPool2d(_ input: Tensor) throws -> Tensor {
    guard input.rank == 4, input.shape.allSatisfy({ $0 > 0 }) else {
        throw TensorError("globalAvgPool2d: input must have rank 4 [N, C, H, W] with positive sizes: \(input.shape)")
    }
    let engine = input.engine
    let planes = input.shape[0] * input.shape[1], area = input.shape[2] * input.shape[3]
    let out = try Tensor.empty([input.shape[0], input.shape[1]], engine: engine)
    try engine.launch("pool.cl", "global_avgpool_forward", global: [roundUp(planes, flatKernelGroupSize)], local: [flatKernelGroupSize], [input.storage, out.storage, Int32(planes), Int32(area)])
    out.record(inputs: [input]) { dy in
        let dx = try Tensor.empty(input.shape, engine: engine)
        try engine.launch("pool.cl", "global_avgpool_backward", global: [roundUp(dx.count, flatKernelGroupSize)], local: [flatKernelGroupSize], [dy.storage, dx.storage, Int32(planes), Int32(area)])
        return [dx]
    }
    return out
}
