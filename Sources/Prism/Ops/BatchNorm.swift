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

/// Batch normalization with the batch's statistics (PyTorch's `BatchNorm1d/2d` in training mode)
/// over axis 1: each channel is normalized by its mean and biased variance over N and the trailing
/// axes, then scaled by weight and shifted by bias. The backward flows through the statistics, as
/// PyTorch's does.
/// - Parameters:
///   - x: [N, C] or [N, C, …], with more than one value per channel.
///   - weight, bias: [C], or nil (1 and 0).
///   - eps: added to the variance, ≥ 0.
/// - Throws: `TensorError` naming the shapes when x has rank below 2, one value per channel, or a
///   per-channel tensor is not [C].
/// - Returns: the output (x's shape), the batch mean per channel and the unbiased batch variance per
///   channel (what PyTorch folds into the running statistics with its momentum).
public func batchNormTraining(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) throws
    -> (output: Tensor, mean: [Float], variance: [Float]) {
    let (c, _) = try batchNormChannels("batchNormTraining", x, [("weight", weight), ("bias", bias)], eps: eps)
    let n = x.shape[0], spatial = x.shape[2...].reduce(1, *)
    let values = n * spatial
    guard values > 1 else {
        throw TensorError.shape("batchNormTraining", "needs more than one value per channel", x.shape)
    }
    let x3 = try x.reshaped([n, c, spatial])
    // Mean over the trailing axes, then over the batch: equal counts, so the mean over both.
    let mean = try x3.mean(axis: 2, keepDims: true).mean(axis: 0, keepDims: true)
    let centered = try x3.sub(mean)
    let variance = try centered.mul(centered).mean(axis: 2, keepDims: true).mean(axis: 0, keepDims: true)
    var y = try centered.mul(try inverseSquareRoot(variance, eps: eps))
    if let weight { y = try y.mul(try weight.reshaped([1, c, 1])) }
    if let bias { y = try y.add(try bias.reshaped([1, c, 1])) }
    let unbiased = Float(values) / Float(values - 1)
    return (try y.reshaped(x.shape), try mean.toArray(), try variance.toArray().map { $0 * unbiased })
}
