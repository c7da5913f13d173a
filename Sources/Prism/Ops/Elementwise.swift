import PrismCL

/// The element-wise functions of `unary_f32` (the raw values are the kernel's op codes).
public enum UnaryOp: Int32, CaseIterable, Sendable {
    case relu = 0, gelu = 1, geluTanh = 2, tanh = 3, sigmoid = 4, exp = 5, log = 6, sqrt = 7, erf = 8, reciprocal = 9
}

/// The binary operations of `binary_f32` (the raw values are the kernel's op codes): a op b, and
/// the reflected ones b op a (`rsub`: b − a, …), where b is still the operand broadcast over a.
public enum BinaryOp: Int32, CaseIterable, Sendable {
    case add = 0, sub = 1, mul = 2, div = 3, pow = 4, rsub = 5, rdiv = 6, rpow = 7

    var name: String { "\(self)" }
}


extension Tensor {
    // MARK: unary

    /// max(x, 0), recording its backward (the gradient at 0 is 0, as in PyTorch).
    public func relu() throws -> Tensor { try unary(.relu) }

    /// GELU: x·Φ(x) with the exact normal CDF (erf), or the tanh approximation with
    /// `approximate: true` (PyTorch's `approximate='tanh'`), recording its backward.
    public func gelu(approximate: Bool = false) throws -> Tensor { try unary(approximate ? .geluTanh : .gelu) }

    /// The hyperbolic tangent, recording its backward.
    public func tanh() throws -> Tensor { try unary(.tanh) }

    /// The logistic function 1 / (1 + e^−x), recording its backward.
    public func sigmoid() throws -> Tensor { try unary(.sigmoid) }

    /// e^x, recording its backward.
    public func exp() throws -> Tensor { try unary(.exp) }

    /// The natural logarithm (NaN below 0, −∞ at 0), recording its backward.
    public func log() throws -> Tensor { try unary(.log) }

    /// The square root (NaN below 0), recording its backward (∞ at 0, as PyTorch).
    public func sqrt() throws -> Tensor { try unary(.sqrt) }

    /// The error function (a polynomial approximation within 1.5e-7), recording its backward.
    public func erf() throws -> Tensor { try unary(.erf) }

    /// 1 / x, recording its backward.
    public func reciprocal() throws -> Tensor { try unary(.reciprocal) }

    /// Applies `op` element by element, recording its backward.
    /// - Returns: a tensor of the same shape.
    public func unary(_ op: UnaryOp) throws -> Tensor {
        let engine = engine, n = count, x = storage
        let y = try Tensor.empty(shape, engine: engine)
        let defines = ["UNARY_OP": "\(op.rawValue)"]
        try engine.launch("elementwise.cl", "unary_f32", defines: defines, global: [roundUp(n, flatKernelGroupSize)], local: [flatKernelGroupSize],
                          [x, y.storage, op.rawValue, Int32(n)])
        let ys = y.storage
        y.record(inputs: [self], op: "unary(\(op))") { [shape] dy in
            let dx = try Tensor.empty(shape, engine: engine)
            try engine.launch("elementwise.cl", "unary_backward_f32", defines: defines, global: [roundUp(n, flatKernelGroupSize)], local: [flatKernelGroupSize],
                              [x, ys, dy.storage, dx.storage, op.rawValue, Int32(n)])
            return [dx]
        }
        return y
    }

    // MARK: affine

    /// scale·x + shift, element by element, recording its backward.
    public func affine(scale: Float, shift: Float) throws -> Tensor {
        let engine = engine, n = count
        let y = try Tensor.empty(shape, engine: engine)
        try engine.launch("elementwise.cl", "affine_f32", global: [roundUp(n, flatKernelGroupSize)], local: [flatKernelGroupSize],
                          [storage, y.storage, scale, shift, Int32(n)])
        y.record(inputs: [self]) { [shape] dy in
            let dx = try Tensor.empty(shape, engine: engine)
            try engine.launch("elementwise.cl", "affine_f32", global: [roundUp(n, flatKernelGroupSize)], local: [flatKernelGroupSize],
                              [dy.storage, dx.storage, scale, Float(0), Int32(n)])
            return [dx]
        }
        return y
    }

    /// scale·x, recording its backward.
    public func scaled(by scale: Float) throws -> Tensor { try affine(scale: scale, shift: 0) }

    /// x + shift, recording its backward.
    public func shifted(by shift: Float) throws -> Tensor { try affine(scale: 1, shift: shift) }

    // MARK: binary

    /// self + b; b broadcasts as `Broadcast.of(_:over:)` describes. Records its backward.
    public func add(_ b: Tensor) throws -> Tensor { try binary(.add, b) }
    /// self − b; b broadcasts as `Broadcast.of(_:over:)` describes. Records its backward.
    public func sub(_ b: Tensor) throws -> Tensor { try binary(.sub, b) }
    /// self · b element by element; b broadcasts as `Broadcast.of(_:over:)` describes. Records its backward.
    public func mul(_ b: Tensor) throws -> Tensor { try binary(.mul, b) }
    /// self / b element by element; b broadcasts as `Broadcast.of(_:over:)` describes. Records its backward.
    public func div(_ b: Tensor) throws -> Tensor { try binary(.div, b) }
    /// self to the power b element by element (`torch.pow`); b broadcasts as `Broadcast.of(_:over:)`
    /// describes. Records its backward.
    public func pow(_ b: Tensor) throws -> Tensor { try binary(.pow, b) }

    /// `self op b` with b broadcast over self, recording its backward; the gradient of b sums over
    /// the axes it was broadcast along.
    /// - Throws: `TensorError` naming both shapes when b does not broadcast over self.
    /// - Returns: a tensor of self's shape.
    public func binary(_ op: BinaryOp, _ b: Tensor) throws -> Tensor { try binary(op, b, relu: false) }

    /// `relu(self op b)` in one kernel (a residual Add followed by ReLU), recording its backward:
    /// the gradient passes where the output is positive, then as `binary`'s.
    public func binary(_ op: BinaryOp, _ b: Tensor, relu: Bool) throws -> Tensor {
        guard let cast = Broadcast.of(b.shape, over: shape) else {
            throw TensorError.shape(op.name, "second operand does not broadcast over the first", shape, b.shape)
        }
        guard count < Int(Int32.max) else { throw TensorError.shape(op.name, "tensor too large for 32-bit indexing", shape, b.shape) }
        let engine = engine, n = count, a = self
        let sizes: [any KernelArgument] = [op.rawValue, Int32(n), Int32(cast.inner), Int32(cast.bcount)]
        // The op and, for operands of one shape, the plain indexing are fixed at compile time, and b
        // broadcast over rows of several elements runs over a 3-D range (see elementwise.cl).
        var defines = ["BINARY_OP": "\(op.rawValue)"]
        var global = [roundUp(n, flatKernelGroupSize)], local = [flatKernelGroupSize]
        if cast.inner == 1 && cast.bcount == n {
            defines["BINARY_SAME_SHAPE"] = "1"
        } else if cast.inner > 1, n / (cast.inner * cast.bcount) <= 65535, cast.bcount <= 65535 {
            // Over (element, b's index, outer): rows shorter than a work-group share one (about 64
            // work-items each); longer rows take groups of 64 along the row. (65,535 work-groups is
            // the most some GPU drivers take along the second and third axes.)
            defines["BINARY_ROWS"] = "1"
            let outer = n / (cast.inner * cast.bcount)
            if cast.inner < flatKernelGroupSize {
                let perGroup = max(1, min(cast.bcount, flatKernelGroupSize / cast.inner))
                (global, local) = ([cast.inner, roundUp(cast.bcount, perGroup), outer], [cast.inner, perGroup, 1])
            } else {
                (global, local) = ([roundUp(cast.inner, flatKernelGroupSize), cast.bcount, outer], [flatKernelGroupSize, 1, 1])
            }
        }
        let out = try Tensor.empty(shape, engine: engine)
        try engine.launch("elementwise.cl", "binary_f32", defines: relu ? defines.merging(["BINARY_RELU": "1"]) { $1 } : defines, global: global, local: local,
                          [a.storage, b.storage, out.storage] + sizes)
        let y = out.storage
        out.record(inputs: [a, b], op: op.name) { upstream in
            let dy = relu ? try reluMaskedGradient(engine, output: y, upstream) : upstream
            var da: Tensor?, db: Tensor?
            if a.requiresGrad {
                let g = try Tensor.empty(a.shape, engine: engine)
                try engine.launch("elementwise.cl", "binary_backward_a_f32", defines: defines, global: global, local: local,
                                  [a.storage, b.storage, dy.storage, g.storage] + sizes)
                da = g
            }
            if b.requiresGrad {
                let g = try Tensor.empty(b.shape, engine: engine)
                try engine.launch("elementwise.cl", "binary_backward_b_f32", global: [roundUp(cast.bcount, flatKernelGroupSize)], local: [flatKernelGroupSize],
                                  [a.storage, b.storage, dy.storage, g.storage] + sizes)
                db = g
            }
            return [da, db]
        }
        return out
    }

    // MARK: operators

    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try a.add(b) }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try a.sub(b) }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try a.mul(b) }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try a.div(b) }
    public static func * (a: Tensor, s: Float) throws -> Tensor { try a.scaled(by: s) }
    public static func * (s: Float, a: Tensor) throws -> Tensor { try a.scaled(by: s) }
    public static func + (a: Tensor, s: Float) throws -> Tensor { try a.shifted(by: s) }
    public static func - (a: Tensor, s: Float) throws -> Tensor { try a.shifted(by: -s) }
    public static prefix func - (a: Tensor) throws -> Tensor { try a.scaled(by: -1) }
}
