import PrismCL

/// Inverted dropout: during training each element is zeroed with probability `p` and the kept ones
/// are scaled by 1 / (1 − p), so the expected value is unchanged; otherwise the input itself.
///
/// The mask comes from Philox-4x32-10 keyed by `seed` and counted by element index (see
/// `Kernels/dropout.cl`), so it is the same on every device and the backward regenerates it. A
/// slice of a batch gives `elementOffset`, the index of its first element in the whole batch, and
/// gets exactly the whole batch's mask for its elements.
/// - Parameters:
///   - x: any shape.
///   - p: the drop probability, in [0, 1]; p = 1 gives zeros.
///   - seed: the generator's key; use a fresh one per step.
///   - training: false returns `x` unchanged.
///   - elementOffset: where `x`'s elements start in the mask's stream (0: a whole tensor).
/// - Throws: `TensorError` when p lies outside [0, 1].
/// - Returns: a tensor of x's shape, recording its backward (dx = dy · mask · scale).
public func dropout(_ x: Tensor, p: Float, seed: UInt64, training: Bool, elementOffset: UInt64 = 0) throws -> Tensor {
    guard p >= 0, p <= 1 else { throw TensorError("dropout: probability \(p) is outside [0, 1] for input \(x.shape)") }
    guard x.count < Int(Int32.max) - 4 else { throw TensorError("dropout: tensor too large for 32-bit indexing: \(x.shape)") }
    if !training || p == 0 { return x }
    let engine = x.engine, n = x.count
    let threshold = p == 1 ? UInt32.max : UInt32(Double(p) * 4_294_967_296.0)
    let scale: Float = p == 1 ? 0 : 1 / (1 - p)
    let blocks = (n + 3) / 4
    func apply(_ input: Tensor) throws -> Tensor {
        let out = try Tensor.empty(input.shape, engine: engine)
        try engine.launch("dropout.cl", "dropout_f32", global: [roundUp(blocks, flatKernelGroupSize)], local: [flatKernelGroupSize],
                          [input.storage, out.storage, Int32(n), seed, threshold, scale, elementOffset])
        return out
    }
    let y = try apply(x)
    y.record(inputs: [x]) { dy in [try apply(dy)] }
    return y
}
