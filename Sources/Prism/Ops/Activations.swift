import PrismCL

/// The parametric activations of `activation_f32` (the raw values are the kernel's op codes).
enum ActivationOp: Int32 {
    case leakyRelu = 0, elu = 1, silu = 2, hardswish = 3, hardtanh = 4, hardsigmoid = 5
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

    /// x clamped to [minValue, maxValue] (PyTorch's `Hardtanh`; `ReLU6` is hardtanh(0, 6)), recording
    /// its backward (0 at and past the corners, as PyTorch).
    /// - Throws: `TensorError` when a bound is NaN or minValue > maxValue.
    public func hardtanh(min minValue: Float = -1, max maxValue: Float = 1) throws -> Tensor {
        guard !minValue.isNaN, !maxValue.isNaN, minValue <= maxValue else {
            throw TensorError("hardtanh: needs min_val ≤ max_val, got \(minValue) and \(maxValue)")
        }
        return try activation(.hardtanh, alpha: minValue, beta: maxValue)
    }

    /// alpha·x + beta clamped to [0, 1]: PyTorch's `Hardsigmoid` (relu6(x + 3)/6) with the defaults,
    /// ONNX's `HardSigmoid` with others. Records its backward (alpha strictly between the corners, 0
    /// at and past them, as PyTorch).
    /// - Throws: `TensorError` when alpha or beta is not finite.
    public func hardsigmoid(alpha: Float = 1.0 / 6, beta: Float = 0.5) throws -> Tensor {
        guard alpha.isFinite, beta.isFinite else { throw TensorError("hardsigmoid: alpha and beta must be finite, got \(alpha) and \(beta)") }
        return try activation(.hardsigmoid, alpha: alpha, beta: beta)
    }

    /// PReLU (PyTorch's `PReLU`): x for x > 0, weight·x otherwise, with one weight for all channels
    /// ([1]) or one per channel ([C], axis 1 of [N, C, …]), recording its backward (the weight's
    /// side at 0, as PyTorch). Composed as relu(x) + weight·(x − relu(x)).
    /// - Throws: `TensorError` when the weight is not [1] or [C].
    public func prelu(weight: Tensor) throws -> Tensor {
        guard weight.rank == 1, weight.count == 1 || (rank >= 2 && weight.count == shape[1]) else {
            throw TensorError.shape("prelu", "weight must be [1] or [C] for the channel axis 1", shape, weight.shape)
        }
        let perChannel = weight.count == 1 ? weight : try weight.reshaped([weight.count] + [Int](repeating: 1, count: rank - 2))
        let positive = try relu()
        return try positive.add(try sub(positive).mul(perChannel))
    }

    /// Applies `op` with parameters `alpha` and `beta` element by element, recording its backward.
    private func activation(_ op: ActivationOp, alpha: Float, beta: Float = 0) throws -> Tensor {
        guard count < Int(Int32.max) else { throw TensorError.shape("\(op)", "tensor too large for 32-bit indexing", shape) }
        let engine = engine, n = count, x = storage
        let y = try Tensor.empty(shape, engine: engine)
        let defines = ["ACTIVATION_OP": "\(op.rawValue)"]
        try engine.launch("elementwise.cl", "activation_f32", defines: defines, global: [roundUp(n, flatKernelGroupSize)], local: [flatKernelGroupSize],
                          [x, y.storage, op.rawValue, alpha, beta, Int32(n)])
        y.record(inputs: [self], op: "\(op)") { [shape] dy in
            let dx = try Tensor.empty(shape, engine: engine)
            try engine.launch("elementwise.cl", "activation_backward_f32", defines: defines, global: [roundUp(n, flatKernelGroupSize)],
                              local: [flatKernelGroupSize], [x, dy.storage, dx.storage, op.rawValue, alpha, beta, Int32(n)])
            return [dx]
        }
        return y
    }
}

extension Tensor {
    /// Fake quantization per tensor (PyTorch's `fake_quantize_per_tensor_affine`; ONNX's
    /// QuantizeLinear followed by DequantizeLinear): (clamp(round(x / scale) + zeroPoint, quantMin,
    /// quantMax) − zeroPoint) · scale, rounding half to even. The backward is PyTorch's
    /// straight-through estimator: the gradient passes where the rounded value is within range.
    /// - Throws: `TensorError` for a scale that is not positive and finite, or quantMin > quantMax.
    public func fakeQuantize(scale: Float, zeroPoint: Int, quantMin: Int, quantMax: Int) throws -> Tensor {
        guard scale.isFinite, scale > 0, quantMin <= quantMax, (quantMin...quantMax).contains(zeroPoint) else {
            throw TensorError("fake_quantize: needs a positive finite scale and quant_min ≤ zero_point ≤ quant_max, got scale \(scale), zero point \(zeroPoint), range \(quantMin)...\(quantMax)")
        }
        let engine = engine, n = count, x = storage
        let parameters: [any KernelArgument] = [scale, Float(zeroPoint), Float(quantMin), Float(quantMax), Int32(n)]
        let y = try Tensor.empty(shape, engine: engine)
        try engine.launch("elementwise.cl", "fake_quantize_f32", global: [roundUp(n, flatKernelGroupSize)], local: [flatKernelGroupSize],
                          [x, y.storage] + parameters)
        y.record(inputs: [self], op: "fake_quantize") { [shape] dy in
            let dx = try Tensor.empty(shape, engine: engine)
            try engine.launch("elementwise.cl", "fake_quantize_backward_f32", global: [roundUp(n, flatKernelGroupSize)], local: [flatKernelGroupSize],
                              [x, dy.storage, dx.storage] + parameters)
            return [dx]
        }
        return y
    }
}
