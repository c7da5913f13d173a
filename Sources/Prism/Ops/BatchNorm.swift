import PrismCL

/// Checks a batch-norm input [N, C, …] and its per-channel tensors; returns C and the shape
/// [1, C, 1, …] (x's rank) that lays a per-channel [C] over x.
private func batchNormChannels(_ op: String, _ x: Tensor, _ perChannel: [(String, Tensor?)], eps: Float) throws -> (Int, [Int]) {
    guard x.rank >= 2 else { throw TensorError.shape(op, "input must have rank 2 or more [N, C, …]", x.shape) }
    guard x.count > 0 else { throw TensorError.shape(op, "input is empty", x.shape) }
    guard eps.isFinite, eps >= 0 else { throw TensorError("\(op): eps must be finite and not negative, got \(eps)") }
    let c = x.shape[1]
    for case let (name, t?) in perChannel where t.shape != [c] {
        throw TensorError.shape(op, "\(name) must have shape [\(c)]", x.shape, t.shape)
    }
    return (c, [1, c] + [Int](repeating: 1, count: x.rank - 2))
}

/// 1/√(v + eps) element by element, recording its backward (as e^(−½·log(v + eps))).
private func inverseSquareRoot(_ v: Tensor, eps: Float) throws -> Tensor {
    try v.shifted(by: eps).log().scaled(by: -0.5).exp()
}

/// Batch normalization with fixed statistics (PyTorch's `BatchNorm1d/2d` in eval mode) over axis 1:
/// y = (x − runningMean[c]) / √(runningVar[c] + eps) · weight[c] + bias[c], recording its backward
/// (gradients for x, weight and bias; the running statistics are constants).
/// - Parameters:
///   - x: [N, C] or [N, C, …].
///   - runningMean, runningVar: [C].
///   - weight, bias: [C], or nil (1 and 0).
///   - eps: added to the variance, ≥ 0.
/// - Throws: `TensorError` naming the shapes when x has rank below 2 or a per-channel tensor is not [C].
/// - Returns: a tensor of x's shape.
public func batchNorm(_ x: Tensor, runningMean: Tensor, runningVar: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
    let (_, laid) = try batchNormChannels("batchNorm", x, [("runningMean", runningMean), ("runningVar", runningVar),
                                                          ("weight", weight), ("bias", bias)], eps: eps)
    let invStd = try inverseSquareRoot(try runningVar.detached(), eps: eps)
    let scale = try weight.map { try $0.mul(invStd) } ?? invStd
    var shift = try runningMean.detached().mul(scale).scaled(by: -1)
    if let bias { shift = try shift.add(bias) }
    return try x.mul(try scale.reshaped(laid)).add(try shift.reshaped(laid))
}

/// The batch-norm family (`batchnorm.cl`): training-mode batch normalization with the statistics
/// kept on the device, one variant on every device.
public enum BatchNormFamily {
    public static let descriptor = KernelFamilyDescriptor(file: "batchnorm.cl", tunables: [], variants: ["planes"])
}

/// Batch normalization with the batch's statistics (PyTorch's `BatchNorm1d/2d` in training mode)
/// over axis 1: each channel is normalized by its mean and biased variance over N and the trailing
/// axes, then scaled by weight and shifted by bias. The backward flows through the statistics, as
/// PyTorch's does. Fused kernels (`batchnorm.cl`): five launches forward, three backward, no host
/// round trip.
/// - Parameters:
///   - x: [N, C] or [N, C, …], with more than one value per channel.
///   - weight, bias: [C], or nil (1 and 0).
///   - eps: added to the variance, ≥ 0.
/// - Throws: `TensorError` naming the shapes when x has rank below 2, one value per channel, or a
///   per-channel tensor is not [C].
/// - Returns: the output (x's shape), the batch mean per channel and the unbiased batch variance per
///   channel (what PyTorch folds into the running statistics with its momentum), on the device.
public func batchNormTraining(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) throws
    -> (output: Tensor, mean: Tensor, variance: Tensor) {
    let (c, _) = try batchNormChannels("batchNormTraining", x, [("weight", weight), ("bias", bias)], eps: eps)
    let n = x.shape[0], spatial = x.shape[2...].reduce(1, *)
    let values = n * spatial
    guard values > 1 else {
        throw TensorError.shape("batchNormTraining", "needs more than one value per channel", x.shape)
    }
    guard x.count < Int(Int32.max) else { throw TensorError.shape("batchNormTraining", "tensor too large for 32-bit indexing", x.shape) }
    let engine = x.engine, file = BatchNormFamily.descriptor.file
    let count = Float(values), rows = n * c
    let affine = Int32((weight == nil ? 0 : 1) | (bias == nil ? 0 : 2))
    let weightBuffer = weight?.storage ?? x.storage, biasBuffer = bias?.storage ?? x.storage
    let partial = try engine.buffer(count: rows), rstd = try engine.buffer(count: c)
    let mean = try Tensor.empty([c], engine: engine), variance = try Tensor.empty([c], engine: engine)
    let planes: [any KernelArgument] = [Int32(n), Int32(c), Int32(spatial)]
    for stage in 0..<2 {
        try engine.launch(file, "bn_plane_sums", global: [n, c], [x.storage, mean.storage, partial] + planes + [Int32(stage)])
        try engine.launch(file, "bn_channel_stats", global: [c], [partial, mean.storage, rstd, variance.storage, Int32(n), Int32(c), count, eps, Int32(stage)])
    }
    let y = try Tensor.empty(x.shape, engine: engine)
    try engine.launch(file, "bn_normalize", global: [spatial, rows],
                      [x.storage, mean.storage, rstd, weightBuffer, biasBuffer, y.storage, Int32(rows), Int32(c), Int32(spatial), affine])
    y.record(inputs: [x] + (weight.map { [$0] } ?? []) + (bias.map { [$0] } ?? [])) { dy in
        let partialDy = try engine.buffer(count: rows), partialDyx = try engine.buffer(count: rows)
        try engine.launch(file, "bn_grad_partials", global: [n, c], [x.storage, dy.storage, mean.storage, rstd, partialDy, partialDyx] + planes)
        let sumDy = try Tensor.empty([c], engine: engine), sumDyx = try Tensor.empty([c], engine: engine)
        try engine.launch(file, "bn_grad_sums", global: [c], [partialDy, partialDyx, sumDy.storage, sumDyx.storage, Int32(n), Int32(c)])
        var grads: [Tensor?] = [nil]
        if x.requiresGrad {
            let dx = try Tensor.empty(x.shape, engine: engine)
            try engine.launch(file, "bn_backward_input", global: [spatial, rows],
                              [x.storage, dy.storage, mean.storage, rstd, weightBuffer, sumDy.storage, sumDyx.storage, dx.storage,
                               Int32(rows), Int32(c), Int32(spatial), count, affine])
            grads[0] = dx
        }
        if weight != nil { grads.append(sumDyx) }
        if bias != nil { grads.append(sumDy) }
        return grads
    }
    return (y, mean, variance)
}
