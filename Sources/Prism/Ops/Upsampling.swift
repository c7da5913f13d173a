import PrismCL

/// 2-D transposed convolution, as PyTorch's `ConvTranspose2d`, recording its backward.
///
/// Its forward is the input gradient of the convolution that maps the output back to the input
/// (`conv2d_backward_input`); its input gradient is that convolution's forward and its weight gradient
/// that convolution's weight gradient with the input in the role of the output gradient. With groups,
/// one transposed convolution per group, input channels and weight rows sliced and the outputs joined
/// along the channel axis (the backward comes from `sliced` and `concat`).
/// - Parameters:
///   - input: [N, Cin, H, W].
///   - weight: [Cin, Cout / groups, R, S] (PyTorch's layout for a transposed convolution).
///   - bias: [Cout], or nil.
///   - stride, padding, dilation: (height, width) each.
///   - outputPadding: rows and columns added at the bottom and right of the output, each below its stride.
///   - groups: input group j feeds output group j only; divides Cin.
/// - Throws: `TensorError` when ranks, channels, groups or the bias shape disagree, an output padding is
///   not below its stride, or the output would be empty; `CLError` from the device.
/// - Returns: [N, Cout, Hout, Wout] with Hout = (H − 1)·stride.0 − 2·padding.0 + dilation.0·(R − 1) + outputPadding.0 + 1, Wout likewise.
public func convTranspose2d(_ input: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                            outputPadding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1) throws -> Tensor {
    let op = "conv_transpose2d"
    if groups != 1 {
        guard input.rank == 4, weight.rank == 4, groups > 1, input.shape[1] % groups == 0, input.shape[1] == weight.shape[0] else {
            throw TensorError.shape(op, "groups \(groups) must be ≥ 1 and divide the input's channels, which the weight's first axis must equal", input.shape, weight.shape)
        }
        let (cg, kg) = (input.shape[1] / groups, weight.shape[1])
        if let bias, bias.shape != [kg * groups] { throw TensorError.shape(op, "bias must have shape [\(kg * groups)]", bias.shape, weight.shape) }
        let outputs = try (0..<groups).map { j in
            try convTranspose2d(try input.sliced(axis: 1, range: (j * cg)..<((j + 1) * cg)),
                                weight: try weight.sliced(axis: 0, range: (j * cg)..<((j + 1) * cg)),
                                bias: try bias.map { try $0.sliced(axis: 0, range: (j * kg)..<((j + 1) * kg)) },
                                stride: stride, padding: padding, outputPadding: outputPadding, dilation: dilation)
        }
        return try concat(outputs, axis: 1)
    }
    guard input.rank == 4 else { throw TensorError.shape(op, "input must have rank 4 [N, C, H, W]", input.shape, weight.shape) }
    guard weight.rank == 4 else { throw TensorError.shape(op, "weight must have rank 4 [Cin, Cout, R, S]", input.shape, weight.shape) }
    guard input.shape[1] == weight.shape[0] else {
        throw TensorError.shape(op, "input has \(input.shape[1]) channels, weight expects \(weight.shape[0])", input.shape, weight.shape)
    }
    let cout = weight.shape[1]
    if let bias, bias.shape != [cout] { throw TensorError.shape(op, "bias must have shape [\(cout)]", bias.shape, weight.shape) }
    guard stride.0 >= 1, stride.1 >= 1, dilation.0 >= 1, dilation.1 >= 1, padding.0 >= 0, padding.1 >= 0,
          outputPadding.0 >= 0, outputPadding.1 >= 0, outputPadding.0 < stride.0, outputPadding.1 < stride.1 else {
        throw TensorError.shape(op, "stride \(stride) and dilation \(dilation) must be ≥ 1, padding \(padding) ≥ 0, output padding \(outputPadding) ≥ 0 and below the stride",
                                input.shape, weight.shape)
    }
    let limit = Int(Int32.max)
    guard input.shape.allSatisfy({ $0 > 0 && $0 < limit }), weight.shape.allSatisfy({ $0 > 0 && $0 < limit }),
          [stride.0, stride.1, padding.0, padding.1, dilation.0, dilation.1].allSatisfy({ $0 < 1 << 20 }) else {
        throw TensorError.shape(op, "dimensions must be positive and hyper-parameters below 2^20", input.shape, weight.shape)
    }
    let (h, w) = (input.shape[2], input.shape[3])
    let hOut = (h - 1) * stride.0 - 2 * padding.0 + dilation.0 * (weight.shape[2] - 1) + outputPadding.0 + 1
    let wOut = (w - 1) * stride.1 - 2 * padding.1 + dilation.1 * (weight.shape[3] - 1) + outputPadding.1 + 1
    guard hOut > 0, wOut > 0 else { throw TensorError.shape(op, "output size \(hOut)×\(wOut) is empty", input.shape, weight.shape) }
    // The convolution from the output [N, Cout, Hout, Wout] back to the input [N, Cin, H, W].
    let g = try Conv2DGeometry(input: [input.shape[0], cout, hOut, wOut], weight: weight.shape, bias: nil,
                               stride: stride, padding: padding, dilation: dilation)
    guard g.p == h, g.q == w else { throw TensorError.shape(op, "geometry does not invert (\(g.p)×\(g.q) ≠ \(h)×\(w))", input.shape, weight.shape) }
    let engine = input.engine
    let y = try Tensor(engine: engine, shape: [input.shape[0], cout, hOut, wOut],
                       storage: try Conv2DKernels.backwardInput(engine, g, dy: input.storage, w: weight.storage).0)
    y.record(inputs: [input, weight], op: op) { dy in
        var dx: Tensor?
        if input.requiresGrad {
            let out = try Tensor.empty(input.shape, engine: engine)
            try Conv2DKernels.forward(engine, g, x: dy.storage, w: weight.storage, bias: nil, y: out.storage)
            dx = out
        }
        let dw = weight.requiresGrad
            ? try Tensor(engine: engine, shape: weight.shape, storage: try Conv2DKernels.backwardWeight(engine, g, x: dy.storage, dy: input.storage).0)
            : nil
        return [dx, dw]
    }
    guard let bias else { return y }
    return try y.add(try bias.reshaped([cout, 1, 1]))
}

/// How `upsample` fills the new pixels.
public enum UpsampleMode: String, Sendable, CaseIterable {
    /// The source pixel at floor(dst / scale) (PyTorch's "nearest").
    case nearest
    /// Linear in each of height and width, from the two nearest source pixels (PyTorch's "bilinear").
    case bilinear
}

/// For one axis, the source positions and weights of `upsample` (PyTorch's `upsample_*2d`):
/// output i reads (1 − λ[i])·x[lo[i]] + λ[i]·x[hi[i]] (nearest: λ = 0).
/// - Parameters:
///   - scale: the scale factor given by the caller, or nil when only sizes are (then in / out is used).
func upsampleTaps(input: Int, output: Int, scale: Double?, mode: UpsampleMode, alignCorners: Bool) -> (lo: [Int], hi: [Int], weight: [Float]) {
    var lo = [Int](), hi = [Int](), weight = [Float]()
    for i in 0..<output {
        switch mode {
        case .nearest:
            let ratio = scale.map { 1 / $0 } ?? Double(input) / Double(output)
            let src = min(Int((Double(i) * ratio).rounded(.down)), input - 1)
            lo.append(src); hi.append(src); weight.append(0)
        case .bilinear:
            let src: Double
            if alignCorners {
                src = output > 1 ? Double(i) * Double(input - 1) / Double(output - 1) : 0
            } else {
                let ratio = scale.map { 1 / $0 } ?? Double(input) / Double(output)
                src = max((Double(i) + 0.5) * ratio - 0.5, 0)
            }
            let l = min(Int(src.rounded(.down)), input - 1)
            lo.append(l); hi.append(min(l + 1, input - 1)); weight.append(Float(src - Double(l)))
        }
    }
    return (lo, hi, weight)
}

/// Upsampling (or resampling) of x [N, C, H, W] to [N, C, size.0, size.1], as PyTorch's
/// `F.interpolate(…, mode="nearest"/"bilinear")`; composed of `gather` and elementwise ops (the
/// backward is theirs).
/// - Parameters:
///   - size: the output height and width.
///   - scale: the scale factors the caller gave (they set the source positions as in PyTorch), or nil
///     when only the size was given.
///   - alignCorners: bilinear only: the corner pixels of input and output align.
/// - Throws: `TensorError` when x is not rank 4 or a size is not positive; `CLError` from the device.
public func upsample(_ x: Tensor, size: (Int, Int), scale: (Double, Double)? = nil, mode: UpsampleMode,
                     alignCorners: Bool = false) throws -> Tensor {
    guard x.rank == 4, x.count > 0 else { throw TensorError.shape("upsample", "input must be a non-empty [N, C, H, W]", x.shape, [size.0, size.1]) }
    guard size.0 > 0, size.1 > 0, size.0 < 1 << 24, size.1 < 1 << 24 else {
        throw TensorError.shape("upsample", "output size must be positive", x.shape, [size.0, size.1])
    }
    var y = x
    for (axis, output, factor) in [(2, size.0, scale?.0), (3, size.1, scale?.1)] {
        let taps = upsampleTaps(input: x.shape[axis], output: output, scale: factor, mode: mode, alignCorners: alignCorners)
        let lo = try gather(y, axis: axis, indices: try IntTensor(taps.lo, shape: [output], engine: x.engine))
        if mode == .nearest { y = lo; continue }
        let hi = try gather(y, axis: axis, indices: try IntTensor(taps.hi, shape: [output], engine: x.engine))
        let lambdaShape = axis == 2 ? [output, 1] : [output]
        let lambda = try Tensor(taps.weight, shape: lambdaShape, engine: x.engine)
        let keep = try Tensor(taps.weight.map { 1 - $0 }, shape: lambdaShape, engine: x.engine)
        y = try lo.mul(keep).add(try hi.mul(lambda))
    }
    return y
}

/// How `pad2d` fills the border.
public enum PadMode: String, Sendable, CaseIterable {
    /// A constant value.
    case constant
    /// The mirror image without repeating the edge (PyTorch's "reflect").
    case reflect
    /// The edge pixel repeated (PyTorch's "replicate").
    case replicate
}

/// The last two axes of x [*, H, W] padded, as PyTorch's `F.pad(x, (left, right, top, bottom), mode, value)`;
/// composed of `concat` and `gather` (the backward is theirs).
/// - Parameters:
///   - pads: (left, right, top, bottom), each ≥ 0 (reflect: each below its axis's size).
///   - value: the constant of `.constant`.
/// - Throws: `TensorError` when x has rank below 2 or a pad is negative or too wide; `CLError` from the device.
public func pad2d(_ x: Tensor, pads: (left: Int, right: Int, top: Int, bottom: Int), mode: PadMode = .constant, value: Float = 0) throws -> Tensor {
    let all = [pads.left, pads.right, pads.top, pads.bottom]
    guard x.rank >= 2, x.count > 0 else { throw TensorError.shape("pad", "input must be non-empty with rank ≥ 2", x.shape, all) }
    guard all.allSatisfy({ $0 >= 0 && $0 < 1 << 24 }) else { throw TensorError.shape("pad", "pads must be non-negative", x.shape, all) }
    var y = x
    for (axis, before, after) in [(x.rank - 1, pads.left, pads.right), (x.rank - 2, pads.top, pads.bottom)] where before + after > 0 {
        let n = y.shape[axis]
        if mode == .reflect, before >= n || after >= n {
            throw TensorError.shape("pad", "reflect padding must be below the size \(n) of axis \(axis - x.rank)", x.shape, all)
        }
        var source = y
        var indices = [Int]()
        for i in -before..<(n + after) {
            if (0..<n).contains(i) { indices.append(i); continue }
            switch mode {
            case .constant: indices.append(n)   // the appended constant slice
            case .replicate: indices.append(min(max(i, 0), n - 1))
            case .reflect: indices.append(i < 0 ? -i : 2 * (n - 1) - i)
            }
        }
        if mode == .constant {
            var sliceShape = y.shape
            sliceShape[axis] = 1
            source = try concat([y, try Tensor.full(sliceShape, value, engine: x.engine)], axis: axis)
        }
        y = try gather(source, axis: axis, indices: try IntTensor(indices, shape: [indices.count], engine: x.engine))
    }
    return y
}
