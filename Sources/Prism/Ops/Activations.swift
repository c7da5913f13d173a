import PrismCL

// Activations built from the element-wise kernels (relu, sigmoid, exp, affine, binary ops), so
// their backward comes from those ops' recorded backward. Where PyTorch picks a one-sided
// derivative at a kink (x = 0, x = ±3), these may pick the other side; everywhere else the
// gradients are PyTorch's.
extension Tensor {
    /// Leaky ReLU: x for x > 0, negativeSlope·x otherwise (PyTorch's `LeakyReLU`), recording its backward.
    ///
    /// Computed as negativeSlope·x + (1 − negativeSlope)·relu(x).
    /// - Throws: `TensorError` when the slope is not finite.
    public func leakyRelu(negativeSlope: Float) throws -> Tensor {
        guard negativeSlope.isFinite else { throw TensorError("leakyRelu: negative slope must be finite, got \(negativeSlope)") }
        return try scaled(by: negativeSlope).add(try relu().scaled(by: 1 - negativeSlope))
    }

    /// ELU: x for x > 0, alpha·(eˣ − 1) otherwise (PyTorch's `ELU`), recording its backward.
    ///
    /// Computed as relu(x) + alpha·(e^min(x, 0) − 1), so eˣ is never taken of a large positive x.
    /// - Throws: `TensorError` when alpha is not finite.
    public func elu(alpha: Float) throws -> Tensor {
        guard alpha.isFinite else { throw TensorError("elu: alpha must be finite, got \(alpha)") }
        let negativePart = try scaled(by: -1).relu().scaled(by: -1).exp().affine(scale: alpha, shift: -alpha)
        return try relu().add(negativePart)
    }

    /// SiLU (swish): x·sigmoid(x) (PyTorch's `SiLU`), recording its backward.
    public func silu() throws -> Tensor {
        try mul(try sigmoid())
    }

    /// Hard swish: x·relu6(x + 3)/6 (PyTorch's `Hardswish`), recording its backward.
    ///
    /// relu6(x + 3) is computed as relu(x + 3) − relu(x − 3).
    public func hardswish() throws -> Tensor {
        let gate = try shifted(by: 3).relu().sub(try shifted(by: -3).relu()).scaled(by: 1 / 6)
        return try mul(gate)
    }
}
