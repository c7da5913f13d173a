import PrismCL

/// Layer normalization over the last axis, as PyTorch's `F.layer_norm(x, [n], weight, bias, eps)`,
/// recording its backward (to x, weight and bias).
///
/// Per row of n elements: y = (x − mean) / √(var + eps) · weight + bias, with the biased variance.
/// - Parameters:
///   - x: [..., n]; every leading axis counts as rows.
///   - weight: γ, [n], or nil for ones.
///   - bias: β, [n], or nil for zeros.
///   - eps: added to the variance (PyTorch's default 1e-5).
///   - variant: which kernels run (tests force each; `.automatic`: `LayerNormFamily.choose`).
/// - Throws: `TensorError` when the last axis is empty, weight or bias is not [n], eps is negative
///   or not finite, or x is too large for 32-bit indexing; `CLError` from the device.
/// - Returns: y, the shape of x.
public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5,
                      variant: LayerNormVariant = .automatic) throws -> Tensor {
    let op = "layerNorm"
    guard let n = x.shape.last, n > 0 else { throw TensorError.shape(op, "needs a non-empty last axis", x.shape) }
    for (name, parameter) in [("weight", weight), ("bias", bias)] {
        if let parameter, parameter.shape != [n] {
            throw TensorError.shape(op, "\(name) must have shape [\(n)]", x.shape, parameter.shape)
        }
    }
    guard eps >= 0, eps.isFinite else { throw TensorError("\(op): eps must be finite and not negative, got \(eps)") }
    guard x.count < Int(Int32.max) else { throw TensorError.shape(op, "tensor too large for 32-bit indexing", x.shape) }
    let engine = x.engine, rows = x.count / n
    let defines = engine.resolvedDefines(LayerNormFamily.descriptor.file)
    let useCPU = try LayerNormFamily.choose(variant, traits: engine.traits, defines: defines) == .cpu
    let group = LayerNormFamily.descriptor.int("LN_GROUP", in: defines)
    // Absent parameters: flags tell the kernels not to read them; any buffer fills the argument.
    let affine = Int32((weight == nil ? 0 : 1) | (bias == nil ? 0 : 2))
    let weightBuffer = weight?.storage ?? x.storage, biasBuffer = bias?.storage ?? x.storage

    let y = try Tensor.empty(x.shape, engine: engine)
    let mean = try engine.buffer(count: Swift.max(rows, 1)), rstd = try engine.buffer(count: Swift.max(rows, 1))
    let geometry: [any KernelArgument] = [Int32(rows), Int32(n)]
    let (global, local) = useCPU ? (roundUp(rows, flatKernelGroupSize), flatKernelGroupSize) : (rows * group, group)
    try engine.launch("layernorm.cl", useCPU ? "layernorm_forward_rows" : "layernorm_forward_group", global: [global], local: [local],
                      [x.storage, weightBuffer, biasBuffer, y.storage, mean, rstd] + geometry + [eps, affine])

    y.record(inputs: [x] + (weight.map { [$0] } ?? []) + (bias.map { [$0] } ?? [])) { dy in
        var grads: [Tensor?] = []
        if x.requiresGrad {
            let dx = try Tensor.empty(x.shape, engine: engine)
            try engine.launch("layernorm.cl", useCPU ? "layernorm_backward_rows" : "layernorm_backward_group", global: [global],
                              local: [local], [x.storage, weightBuffer, mean, rstd, dy.storage, dx.storage] + geometry + [affine])
            grads.append(dx)
        } else {
            grads.append(nil)
        }
        guard weight?.requiresGrad == true || bias?.requiresGrad == true else {
            return grads + [Tensor?](repeating: nil, count: Int(affine.nonzeroBitCount))
        }
        // dγ and dβ: partial sums over blocks of about √rows rows, then the sum of the partials.
        let block = Swift.max(1, Int(Double(rows).squareRoot().rounded(.up)))
        let blocks = (rows + block - 1) / block
        let partialW = try engine.buffer(count: Swift.max(blocks, 1) * n), partialB = try engine.buffer(count: Swift.max(blocks, 1) * n)
        try engine.launch("layernorm.cl", "layernorm_param_partials", global: [roundUp(n, flatKernelGroupSize), blocks],
                          local: [flatKernelGroupSize, 1], [x.storage, mean, rstd, dy.storage, partialW, partialB] + geometry + [Int32(block)])
        let dweight = try Tensor.empty([n], engine: engine), dbias = try Tensor.empty([n], engine: engine)
        try engine.launch("layernorm.cl", "layernorm_param_sums", global: [roundUp(n, flatKernelGroupSize)], local: [flatKernelGroupSize],
                          [partialW, partialB, dweight.storage, dbias.storage, Int32(n), Int32(blocks)])
        if weight != nil { grads.append(dweight) }
        if bias != nil { grads.append(dbias) }
        return grads
    }
    return y
}
