import PrismCL

/// The parametric activations of `activation_f32` (the raw values are the kernel's op codes).
enum ActivationOp: Int32 {
    case leakyRelu = 0, elu = 1, silu = 2, hardswish = 3
}

extension Tensor {
    /// Leaky ReLU: x for x > 0, negativeSlope·x otherwise (PyTorch's `LeakyReLU`), recording its
    /// backward (the slope at 0 is negativeSlope, as in PyTorch).
    /// - Throws: `TensorError` when the slope is not finite.
    public func leakyRelu(negativeSlope: Float) throws -> Tensor {
        guard negativeSlope.isFinite else { throw TensorError("leakyRelu: negative slope must be finite, got \(negativeSlope)") }
        return try activation(.leakyRelu, alpha: negativeSlope)
    }

    /// ELU: x for x > 0, alpha·(eˣ − 1) otherwise (PyTorch's `ELU`), recording its backward (the
    /// slope at 0 is alpha, as in PyTorch).
    /// - Throws: `TensorError` when alpha is not finite.
    public func elu(alpha: Float) throws -> Tensor {
        guard alpha.isFinite else { throw TensorError("elu: alpha must be finite, got \(alpha)") }
        return try activation(.elu, alpha: alpha)
    }

    /// SiLU (swish): x·sigmoid(x) (PyTorch's `SiLU`), recording its backward.
    public func silu() throws -> Tensor { try activation(.silu, alpha: 0) }

    /// Hard swish: x·relu6(x + 3)/6 (PyTorch's `Hardswish`), recording its backward (at ±3 the
    /// slope of the middle piece, x/3 + 1/2, as in PyTorch).
    public func hardswish() throws -> Tensor { try activation(.hardswish, alpha: 0) }

    /// Applies `op` with parameter `alpha` element by element, recording its backward.
    private func activation(_ op: ActivationOp, alpha: Float) throws -> Tensor {
        guard count < Int(Int32.max) else { throw TensorError.shape("\(op)", "tensor too large for 32-bit indexing", shape) }
        let engine = engine, n = count, x = storage
        let y = try Tensor.empty(shape, engine: engine)
        let defines = ["ACTIVATION_OP": "\(op.rawValue)"]
        try engine.launch("elementwise.cl", "activation_f32", defines: defines, global: [roundUp(n, flatKernelGroupSize)], local: [flatKernelGroupSize],
                          [x, y.storage, op.rawValue, alpha, Int32(n)])
        y.record(inputs: [self], op: "\(op)") { [shape] dy in
            let dx = try Tensor.empty(shape, engine: engine)
            try engine.launch("elementwise.cl", "activation_backward_f32", defines: defines, global: [roundUp(n, flatKernelGroupSize)],
                              local: [flatKernelGroupSize], [x, dy.storage, dx.storage, op.rawValue, alpha, Int32(n)])
            return [dx]
        }
        return y
    }
}
