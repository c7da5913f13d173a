import PrismCL

extension Tensor {
    /// Softmax along the last axis (numerically stable), recording its backward.
    /// - Throws: `TensorError` for a rank-0 tensor.
    public func softmax() throws -> Tensor {
        let (rows, c) = try lastAxisRows("softmax")
        let y = try Tensor.empty(shape, engine: engine)
        try engine.launch("softmax.cl", "softmax_forward", global: [rows], [storage, y.storage, Int32(rows), Int32(c)])
        // The closure keeps y's buffer, not y: y owns the closure (through its node).
        y.record(inputs: [self]) { [engine, shape, ys = y.storage] dy in
            let dx = try Tensor.empty(shape, engine: engine)
            try engine.launch("softmax.cl", "softmax_backward", global: [rows], [ys, dy.storage, dx.storage, Int32(rows), Int32(c)])
            return [dx]
        }
        return y
    }

    /// Log-softmax along the last axis (numerically stable), recording its backward.
    public func logSoftmax() throws -> Tensor {
        let (rows, c) = try lastAxisRows("logSoftmax")
        let y = try Tensor.empty(shape, engine: engine)
        try engine.launch("softmax.cl", "log_softmax_forward", global: [rows], [storage, y.storage, Int32(rows), Int32(c)])
        // The closure keeps y's buffer, not y: y owns the closure (through its node).
        y.record(inputs: [self]) { [engine, shape, ys = y.storage] dy in
            let dx = try Tensor.empty(shape, engine: engine)
            try engine.launch("softmax.cl", "log_softmax_backward", global: [rows], [ys, dy.storage, dx.storage, Int32(rows), Int32(c)])
            return [dx]
        }
        return y
    }

    /// (rows, C) for an op along the last axis.
    func lastAxisRows(_ op: String) throws -> (Int, Int) {
        guard let c = shape.last, c > 0 else { throw TensorError("\(op): needs a non-empty last axis, got shape \(shape)") }
        return (count / c, c)
    }
}

/// Cross-entropy of logits [batch, classes] against integer labels, fused with log-softmax and
/// averaged over the batch (PyTorch's `F.cross_entropy` with the default mean reduction).
/// - Parameters:
///   - logits: [batch, classes].
///   - labels: one class index per row.
/// - Throws: `TensorError` when the shapes disagree or a label lies outside 0..<classes (naming it).
/// - Returns: a one-element tensor [1], recording its backward to the logits.
public func crossEntropy(_ logits: Tensor, labels: [Int32]) throws -> Tensor {
    guard logits.rank == 2, logits.shape[1] > 0 else {
        throw TensorError.shape("crossEntropy", "logits must be [batch, classes]", logits.shape, [labels.count])
    }
    let rows = logits.shape[0], c = logits.shape[1]
    guard rows > 0 else { throw TensorError.shape("crossEntropy", "empty batch", logits.shape, [labels.count]) }
    guard labels.count == rows else {
        throw TensorError.shape("crossEntropy", "\(labels.count) labels for \(rows) rows", logits.shape, [labels.count])
    }
    if let i = labels.firstIndex(where: { $0 < 0 || Int($0) >= c }) {
        throw TensorError("crossEntropy: label \(labels[i]) at row \(i) outside 0..<\(c)")
    }
    let engine = logits.engine
    let labelBuffer = try engine.context.buffer(labels)
    let perRow = try engine.buffer(count: rows)
    let prob = try engine.buffer(count: rows * c)
    try engine.launch("softmax.cl", "cross_entropy_forward", global: [rows],
                      [logits.storage, labelBuffer, perRow, prob, Int32(rows), Int32(c)])
    let loss = try Tensor.empty([1], engine: engine)
    try engine.launch("softmax.cl", "sum_scaled", global: [1], [perRow, loss.storage, Int32(rows), Float(1) / Float(rows)])
    loss.record(inputs: [logits]) { dloss in
        let dx = try Tensor.empty([rows, c], engine: engine)
        try engine.launch("softmax.cl", "cross_entropy_backward", global: [rows],
                          [prob, labelBuffer, dloss.storage, dx.storage, Int32(rows), Int32(c)])
        return [dx]
    }
    return loss
}

/// Mean squared error between two tensors of the same shape (mean over every element).
/// - Returns: a one-element tensor [1], recording its backward to both (the target's is the negated prediction's).
public func mseLoss(_ prediction: Tensor, _ target: Tensor) throws -> Tensor {
    guard prediction.shape == target.shape else {
        throw TensorError.shape("mseLoss", "shapes differ", prediction.shape, target.shape)
    }
    let engine = prediction.engine, n = prediction.count
    guard n > 0 else { throw TensorError("mseLoss: empty tensors \(prediction.shape)") }
    let block = SoftmaxFamily.descriptor.int("MSE_BLOCK", in: engine.resolvedDefines(SoftmaxFamily.descriptor.file))
    let blocks = (n + block - 1) / block
    let partial = try engine.buffer(count: blocks)
    try engine.launch("softmax.cl", "mse_forward_partial", global: [blocks],
                      [prediction.storage, target.storage, partial, Int32(n)])
    let loss = try Tensor.empty([1], engine: engine)
    try engine.launch("softmax.cl", "sum_scaled", global: [1], [partial, loss.storage, Int32(blocks), Float(1) / Float(n)])
    loss.record(inputs: [prediction, target]) { dloss in
        let dx = try Tensor.empty(prediction.shape, engine: engine)
        try engine.launch("softmax.cl", "mse_backward", global: [n], [prediction.storage, target.storage, dloss.storage, dx.storage, Int32(n)])
        guard target.requiresGrad else { return [dx, nil] }
        let dt = try Tensor.empty(target.shape, engine: engine)
        try engine.launch("elementwise.cl", "affine_f32", global: [n], [dx.storage, dt.storage, Float(-1), Float(0), Int32(n)])
        return [dx, dt]
    }
    return loss
}

/// Hinton's knowledge-distillation loss (Hinton, Vinyals & Dean 2015), averaged over the batch:
/// α · T² · KL(p_teacher ‖ p_student) + (1 − α) · CE(student, labels), with p = softmax(logits / T) —
/// what `T² · F.kl_div(F.log_softmax(s / T), F.softmax(t / T), reduction="batchmean")` times α plus
/// (1 − α) · `F.cross_entropy(s, labels)` gives in PyTorch. The T² keeps the soft term's gradients on
/// the scale of the hard term's as T changes.
/// - Parameters:
///   - student: the student's logits [batch, classes]; the loss's backward reaches them.
///   - teacher: the teacher's logits, same shape (no gradient flows to them).
///   - labels: one class index per row.
///   - temperature: T > 0.
///   - alpha: the soft term's weight, in [0, 1].
/// - Throws: `TensorError` when the shapes disagree, a label lies outside 0..<classes, or T or α is out of range.
public func distillationLoss(_ student: Tensor, teacher: Tensor, labels: [Int32], temperature: Float, alpha: Float) throws -> Tensor {
    guard student.rank == 2, student.shape[1] > 0, student.shape[0] > 0 else {
        throw TensorError.shape("distillationLoss", "logits must be a non-empty [batch, classes]", student.shape, teacher.shape)
    }
    guard teacher.shape == student.shape else {
        throw TensorError.shape("distillationLoss", "the teacher's logits differ in shape from the student's", student.shape, teacher.shape)
    }
    let rows = student.shape[0], c = student.shape[1]
    guard labels.count == rows else {
        throw TensorError.shape("distillationLoss", "\(labels.count) labels for \(rows) rows", student.shape, [labels.count])
    }
    if let i = labels.firstIndex(where: { $0 < 0 || Int($0) >= c }) {
        throw TensorError("distillationLoss: label \(labels[i]) at row \(i) outside 0..<\(c)")
    }
    guard temperature > 0, temperature.isFinite else { throw TensorError("distillationLoss: temperature \(temperature) must be positive") }
    guard alpha >= 0, alpha <= 1 else { throw TensorError("distillationLoss: alpha \(alpha) must lie in [0, 1]") }
    let engine = student.engine
    let labelBuffer = try engine.context.buffer(labels)
    let perRow = try engine.buffer(count: rows)
    let grad = try engine.buffer(count: rows * c)
    try engine.launch("softmax.cl", "distillation_forward", global: [rows],
                      [student.storage, teacher.storage, labelBuffer, perRow, grad, Int32(rows), Int32(c), temperature, alpha])
    let loss = try Tensor.empty([1], engine: engine)
    try engine.launch("softmax.cl", "sum_scaled", global: [1], [perRow, loss.storage, Int32(rows), Float(1) / Float(rows)])
    loss.record(inputs: [student]) { dloss in
        let dx = try Tensor.empty([rows, c], engine: engine)
        try engine.launch("softmax.cl", "distillation_backward", global: [rows * c], [grad, dloss.storage, dx.storage, Int32(rows), Int32(c)])
        return [dx]
    }
    return loss
}
