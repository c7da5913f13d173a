import Foundation
import PrismCL

/// The quantization of a uint8 tensor: real = scale · (q − zeroPoint) (PyTorch's `quint8`,
/// onnxruntime's QUInt8 activations).
public struct AffineQuantization: Codable, Equatable, Sendable {
    public var scale: Float
    public var zeroPoint: Int32

    public init(scale: Float, zeroPoint: Int32) {
        (self.scale, self.zeroPoint) = (scale, zeroPoint)
    }

    /// The quantization that covers [low, high] (widened to hold 0, so a real zero is exact):
    /// scale = (high − low) / 255, zero point = round(−low / scale) — PyTorch's MinMaxObserver for quint8.
    /// - Throws: `TensorError` for a bound that is not finite.
    public init(low: Float, high: Float) throws {
        guard low.isFinite, high.isFinite else { throw TensorError("quantization: range \(low)…\(high) is not finite") }
        let (a, b) = (min(low, 0), max(high, 0))
        scale = b > a ? (b - a) / 255 : 1
        zeroPoint = Int32(min(max((-a / self.scale).rounded(.toNearestOrEven), 0), 255))
    }

    public func validate() throws {
        guard scale > 0, scale.isFinite, (0...255).contains(zeroPoint) else {
            throw TensorError("quantization: scale \(scale) must be positive and finite, zero point \(zeroPoint) in 0…255")
        }
    }
}

/// A real multiplier M > 0 as TensorFlow Lite's QuantizeMultiplier holds it: M = multiplier · 2^(shift − 31),
/// multiplier in [2³⁰, 2³¹).
public struct FixedPointMultiplier: Equatable, Sendable {
    public var multiplier: Int32
    public var shift: Int32

    /// - Throws: `TensorError` for M not positive and finite, or so large or small that it does not fit
    ///   (shift outside −31…30).
    public init(_ real: Double) throws {
        guard real > 0, real.isFinite else { throw TensorError("requantization: multiplier \(real) must be positive and finite") }
        let exponent = real.exponent + 1  // real = fraction · 2^exponent, fraction in [0.5, 1)
        var q = (real / pow(2, Double(exponent)) * 2_147_483_648).rounded(.toNearestOrAwayFromZero)
        var shift = exponent
        if q == 2_147_483_648 { q /= 2; shift += 1 }
        guard (-31...30).contains(shift) else {
            throw TensorError("requantization: multiplier \(real) is outside the range a 32-bit fixed-point multiplier holds")
        }
        (multiplier, self.shift) = (Int32(q), Int32(shift))
    }
}

/// A uint8 tensor on the device with its quantization.
public final class QuantizedTensor {
    public let engine: Engine
    public let shape: [Int]
    public let storage: Buffer<UInt8>
    public let quantization: AffineQuantization
    public var count: Int { shape.reduce(1, *) }

    public init(engine: Engine, shape: [Int], storage: Buffer<UInt8>, quantization: AffineQuantization) throws {
        try quantization.validate()
        guard storage.count >= shape.reduce(1, *) else { throw TensorError("quantized tensor: buffer too small for shape \(shape)") }
        (self.engine, self.shape, self.storage, self.quantization) = (engine, shape, storage, quantization)
    }

    /// The values as real numbers, scale · (q − zero point).
    public func dequantized() throws -> Tensor {
        let y = try Tensor.empty(shape, engine: engine)
        let n = count
        try engine.launch("quantized.cl", "dequantize_u8", global: [roundUp(max(n, 1), flatKernelGroupSize)], local: [flatKernelGroupSize],
                          [storage, y.storage, quantization.scale, quantization.zeroPoint, Int32(n)])
        return y
    }

    /// The values as they are stored.
    public func values() throws -> [UInt8] { try storage.read(0..<count) }
}

extension Tensor {
    /// The tensor quantized to uint8: clamp(round(x / scale) + zero point, 0, 255), ties to even
    /// (`torch.quantize_per_tensor` with quint8; the division is a multiplication by 1 / scale).
    public func quantized(_ q: AffineQuantization) throws -> QuantizedTensor {
        try q.validate()
        let n = count
        let storage = try engine.context.buffer(UInt8.self, count: max(n, 1))
        try engine.launch("quantized.cl", "quantize_u8", global: [roundUp(max(n, 1), flatKernelGroupSize)], local: [flatKernelGroupSize],
                          [self.storage, storage, 1 / q.scale, q.zeroPoint, Int32(n)])
        return try QuantizedTensor(engine: engine, shape: shape, storage: storage, quantization: q)
    }
}

/// The weights of a quantized Linear or convolution layer: int8 symmetric per output channel
/// (real = scale[c] · q, q in −127…127, as PyTorch's per-channel qint8 weights), and the float bias.
public struct QuantizedWeights {
    public var shape: [Int]
    public var values: [Int8]
    public var scales: [Float]
    public var bias: [Float]?

    /// Quantizes `weights` (first axis: output channels): scale[c] = max |w[c]| / 127 (1 for an all-zero channel),
    /// q = round(w / scale), ties to even.
    public init(weights: [Float], shape: [Int], bias: [Float]?) throws {
        guard let outputs = shape.first, outputs > 0, weights.count == shape.reduce(1, *), weights.count % outputs == 0 else {
            throw TensorError("quantized weights: \(weights.count) values for shape \(shape)")
        }
        guard weights.allSatisfy(\.isFinite), bias?.allSatisfy(\.isFinite) ?? true else { throw TensorError("quantized weights: values are not finite") }
        if let bias, bias.count != outputs { throw TensorError("quantized weights: \(bias.count) biases for \(outputs) output channels") }
        let per = weights.count / outputs
        var scales = [Float](repeating: 1, count: outputs), values = [Int8](repeating: 0, count: weights.count)
        for c in 0..<outputs {
            let top = weights[(c * per)..<((c + 1) * per)].reduce(Float(0)) { max($0, abs($1)) }
            scales[c] = top > 0 ? top / 127 : 1
            for i in (c * per)..<((c + 1) * per) {
                values[i] = Int8(max(-127, min(127, (weights[i] / scales[c]).rounded(.toNearestOrEven))))
            }
        }
        (self.shape, self.values, self.scales, self.bias) = (shape, values, scales, bias)
    }

    public init(shape: [Int], values: [Int8], scales: [Float], bias: [Float]?) {
        (self.shape, self.values, self.scales, self.bias) = (shape, values, scales, bias)
    }

    /// The weights as real numbers (scale · q): what the quantized layer computes with.
    public var dequantized: [Float] {
        let per = values.count / scales.count
        return values.indices.map { Float(values[$0]) * scales[$0 / per] }
    }

    /// For an input of quantization `input` and an output of quantization `output`: the int32 biases
    /// (round(b / (s_x · s_w[c])), ties to even) and the fixed-point multipliers s_x · s_w[c] / s_y.
    public func requantization(input: AffineQuantization, output: AffineQuantization) throws -> (bias: [Int32], multipliers: [FixedPointMultiplier]) {
        let bias = try scales.indices.map { c -> Int32 in
            let value = (Double(self.bias?[c] ?? 0) / (Double(input.scale) * Double(scales[c]))).rounded(.toNearestOrEven)
            guard abs(value) < 2_147_483_647 else { throw TensorError("quantized weights: bias \(self.bias![c]) of channel \(c) overflows int32 at this scale") }
            return Int32(value)
        }
        let multipliers = try scales.map { try FixedPointMultiplier(Double(input.scale) * Double($0) / Double(output.scale)) }
        return (bias, multipliers)
    }
}

/// A layer's int8 weights on the device, transposed to [K, N8] (N padded to a multiple of 8 with zero columns).
struct DeviceInt8Weights {
    let transposed: Buffer<Int8>
    /// The per-channel weight scales and the float bias, padded to N8 with zeros (dynamic quantization's epilogue).
    let scales: Buffer<Float>
    let bias: Buffer<Float>
    let n: Int, n8: Int, k: Int

    init(_ w: QuantizedWeights, engine: Engine) throws {
        let n = w.shape[0], k = w.values.count / max(w.shape[0], 1), n8 = (w.shape[0] + 7) / 8 * 8
        (self.n, self.k, self.n8) = (n, k, n8)
        var t = [Int8](repeating: 0, count: k * n8)
        for c in 0..<n { for i in 0..<k { t[i * n8 + c] = w.values[c * k + i] } }
        transposed = try engine.context.buffer(t)
        let padding = [Float](repeating: 0, count: n8 - n)
        scales = try engine.context.buffer(w.scales + padding)
        bias = try engine.context.buffer((w.bias ?? [Float](repeating: 0, count: n)) + padding)
    }

    /// Work-items of the GEMMs (4 rows × 8 columns each) and their local size (on a CPU each work-item
    /// is its own group, its int8 vectors the SIMD, as the float GEMM's register tiles).
    func grid(_ engine: Engine, rows m: Int) -> (global: [Int], local: [Int]?) {
        ([n8 / 8, (m + QuantizedFamily.rowsPerItem - 1) / QuantizedFamily.rowsPerItem], engine.traits.type == .cpu ? [1, 1] : nil)
    }
}

/// A quantized layer's weights on the device, ready to launch: the int8 weights, with the int32 biases
/// and fixed-point multipliers (padded as the weights) for one input and output quantization.
struct DeviceQuantizedWeights {
    let weights: DeviceInt8Weights
    let bias: Buffer<Int32>
    let multiplier: Buffer<Int32>
    let shift: Buffer<Int32>

    init(_ w: QuantizedWeights, input: AffineQuantization, output: AffineQuantization, engine: Engine, weights: DeviceInt8Weights? = nil) throws {
        let (values, multipliers) = try w.requantization(input: input, output: output)
        let device = try weights ?? DeviceInt8Weights(w, engine: engine)
        let padding = device.n8 - device.n
        self.weights = device
        bias = try engine.context.buffer(values + [Int32](repeating: 0, count: padding))
        multiplier = try engine.context.buffer(multipliers.map(\.multiplier) + [Int32](repeating: 1 << 30, count: padding))
        shift = try engine.context.buffer(multipliers.map(\.shift) + [Int32](repeating: 0, count: padding))
    }

    /// y = requantize(x · wᵀ + b) for the rows of `x` [M, K]: row-major, or NCHW for `pixels` > 0.
    func gemm(_ engine: Engine, x: Buffer<UInt8>, rows m: Int, pixels: Int, zx: Int32, output: AffineQuantization, relu: Bool) throws -> Buffer<UInt8> {
        let y = try engine.context.buffer(UInt8.self, count: max(m * weights.n, 1))
        let (global, local) = weights.grid(engine, rows: m)
        try engine.launch("quantized.cl", "qgemm_u8i8", global: global, local: local,
                          [x, weights.transposed, bias, multiplier, shift, y, Int32(m), Int32(weights.n), Int32(weights.n8), Int32(weights.k),
                           Int32(pixels), zx, output.zeroPoint, relu ? output.zeroPoint : Int32(0)])
        return y
    }
}

/// The quantized family (`quantized.cl`): integer-only Linear, convolution and pooling on uint8
/// activations and int8 weights, one variant on every device.
public enum QuantizedFamily {
    public static let descriptor = KernelFamilyDescriptor(file: "quantized.cl", tunables: [], variants: ["gemm"])

    /// Rows of the integer GEMM per work-item (its register tile is 4 rows × 8 columns).
    static let rowsPerItem = 4
}

/// y = x · wᵀ + b in integers: x [M, K] uint8, the weights [N, K] int8 per channel, y [M, N] uint8 of
/// quantization `output`, requantized in fixed point; `relu` clamps at the output's zero point.
/// - Throws: `TensorError` when the shapes disagree or a multiplier does not fit.
public func quantizedLinear(_ x: QuantizedTensor, _ w: QuantizedWeights, output: AffineQuantization, relu: Bool = false) throws -> QuantizedTensor {
    try output.validate()
    return try quantizedLinear(x, w, try DeviceQuantizedWeights(w, input: x.quantization, output: output, engine: x.engine), output: output, relu: relu)
}

/// `quantizedLinear` with the weights already on the device (for the input quantization they were made for).
func quantizedLinear(_ x: QuantizedTensor, _ w: QuantizedWeights, _ device: DeviceQuantizedWeights, output: AffineQuantization, relu: Bool) throws -> QuantizedTensor {
    guard x.shape.count == 2, w.shape.count == 2, x.shape[1] == w.shape[1] else {
        throw TensorError.shape("quantizedLinear", "x [M, K] and weights [N, K] must agree on K", x.shape, w.shape)
    }
    let (m, n) = (x.shape[0], w.shape[0])
    let y = try device.gemm(x.engine, x: x.storage, rows: m, pixels: 0, zx: x.quantization.zeroPoint, output: output, relu: relu)
    return try QuantizedTensor(engine: x.engine, shape: [m, n], storage: y, quantization: output)
}

/// A convolution (groups 1) in integers: x [B, C, H, W] uint8, the weights [OC, C, KH, KW] int8 per
/// channel, y [B, OC, OH, OW] uint8 of quantization `output`; padded positions are real zeros.
/// - Throws: `TensorError` when the shapes disagree or the output would be empty.
/// The columns of a convolution of `x` (uint8) for the integer GEMM: [B · OH · OW, C · KH · KW], padded positions at the zero point.
func quantizedColumns(_ x: QuantizedTensor, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int))
    throws -> (columns: Buffer<UInt8>, rows: Int, outputSize: (Int, Int)) {
    guard x.shape.count == 4, stride.0 > 0, stride.1 > 0, dilation.0 > 0, dilation.1 > 0, padding.0 >= 0, padding.1 >= 0 else {
        throw TensorError("quantized convolution: needs [B, C, H, W], positive stride and dilation, padding not negative; got \(x.shape)")
    }
    let (b, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]), (kh, kw) = kernel
    let oh = (h + 2 * padding.0 - dilation.0 * (kh - 1) - 1) / stride.0 + 1
    let ow = (wd + 2 * padding.1 - dilation.1 * (kw - 1) - 1) / stride.1 + 1
    guard oh > 0, ow > 0 else { throw TensorError("quantized convolution: a \(kh)×\(kw) kernel does not fit a \(h)×\(wd) input") }
    let rows = b * oh * ow, k = c * kh * kw
    let cols = try x.engine.context.buffer(UInt8.self, count: max(rows * k, 1))
    try x.engine.launch("quantized.cl", "qim2col_u8", global: [rows],
                        [x.storage, cols, Int32(c), Int32(h), Int32(wd), Int32(oh), Int32(ow), Int32(kh), Int32(kw), Int32(stride.0), Int32(stride.1),
                         Int32(padding.0), Int32(padding.1), Int32(dilation.0), Int32(dilation.1), x.quantization.zeroPoint, Int32(rows)])
    return (cols, rows, (oh, ow))
}

public func quantizedConv2D(_ x: QuantizedTensor, _ w: QuantizedWeights, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                            dilation: (Int, Int) = (1, 1), output: AffineQuantization, relu: Bool = false) throws -> QuantizedTensor {
    try output.validate()
    return try quantizedConv2D(x, w, try DeviceQuantizedWeights(w, input: x.quantization, output: output, engine: x.engine), stride: stride,
                               padding: padding, dilation: dilation, output: output, relu: relu)
}

/// `quantizedConv2D` with the weights already on the device (for the input quantization they were made for).
func quantizedConv2D(_ x: QuantizedTensor, _ w: QuantizedWeights, _ device: DeviceQuantizedWeights, stride: (Int, Int), padding: (Int, Int),
                     dilation: (Int, Int), output: AffineQuantization, relu: Bool) throws -> QuantizedTensor {
    guard x.shape.count == 4, w.shape.count == 4, x.shape[1] == w.shape[1] else {
        throw TensorError.shape("quantizedConv2D", "x [B, C, H, W] and weights [OC, C, KH, KW] must agree on C", x.shape, w.shape)
    }
    let (cols, rows, (oh, ow)) = try quantizedColumns(x, kernel: (w.shape[2], w.shape[3]), stride: stride, padding: padding, dilation: dilation)
    let y = try device.gemm(x.engine, x: cols, rows: rows, pixels: oh * ow, zx: x.quantization.zeroPoint, output: output, relu: relu)
    return try QuantizedTensor(engine: x.engine, shape: [x.shape[0], w.shape[0], oh, ow], storage: y, quantization: output)
}

/// Dynamic quantization (PyTorch's `quantize_dynamic`): `x` quantized to uint8 over its own range
/// (min-max of this tensor, widened to hold 0) at run time, multiplied by the int8 weights in
/// integers, the int32 sums dequantized to float (s_x · s_w[c]) plus the float bias; a ReLU when `relu`.
/// Linear: x [M, K] → [M, N]; convolution (`kernel` given): x [B, C, H, W] → [B, OC, OH, OW].
/// - Throws: `TensorError` when the shapes disagree or `x` is not finite.
public func dynamicQuantized(_ x: Tensor, _ w: QuantizedWeights, convolution: (stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int))? = nil,
                             relu: Bool = false) throws -> Tensor {
    try dynamicQuantized(x, w, try DeviceInt8Weights(w, engine: x.engine), convolution: convolution, relu: relu)
}

func dynamicQuantized(_ x: Tensor, _ w: QuantizedWeights, _ device: DeviceInt8Weights, convolution: (stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int))?,
                      relu: Bool) throws -> Tensor {
    let engine = x.engine
    let high = try engine.noGrad { try x.amax().item() }, low = try engine.noGrad { -(try x.affine(scale: -1, shift: 0).amax().item()) }
    let q = try AffineQuantization(low: low, high: high)
    let xq = try engine.noGrad { try x.quantized(q) }
    let source: Buffer<UInt8>, rows: Int, pixels: Int, shape: [Int]
    if let convolution {
        guard x.rank == 4, w.shape.count == 4, x.shape[1] == w.shape[1] else {
            throw TensorError.shape("dynamicQuantized", "x [B, C, H, W] and weights [OC, C, KH, KW] must agree on C", x.shape, w.shape)
        }
        let (cols, m, (oh, ow)) = try quantizedColumns(xq, kernel: (w.shape[2], w.shape[3]), stride: convolution.stride, padding: convolution.padding,
                                                        dilation: convolution.dilation)
        (source, rows, pixels, shape) = (cols, m, oh * ow, [x.shape[0], w.shape[0], oh, ow])
    } else {
        guard x.rank == 2, w.shape.count == 2, x.shape[1] == w.shape[1] else {
            throw TensorError.shape("dynamicQuantized", "x [M, K] and weights [N, K] must agree on K", x.shape, w.shape)
        }
        (source, rows, pixels, shape) = (xq.storage, x.shape[0], 0, [x.shape[0], w.shape[0]])
    }
    let y = try Tensor.empty(shape, engine: engine)
    let (global, local) = device.grid(engine, rows: rows)
    try engine.launch("quantized.cl", "qgemm_u8i8_f32", global: global, local: local,
                      [source, device.transposed, device.scales, device.bias, y.storage, Int32(rows), Int32(device.n), Int32(device.n8), Int32(device.k),
                       Int32(pixels), q.zeroPoint, q.scale, Int32(relu ? 1 : 0)])
    return y
}

/// Max pooling (kernel K, stride S, no padding) of a uint8 tensor [B, C, H, W]; the quantization passes through.
public func quantizedMaxPool2D(_ x: QuantizedTensor, kernel: Int, stride: Int) throws -> QuantizedTensor {
    guard x.shape.count == 4, kernel > 0, stride > 0, x.shape[2] >= kernel, x.shape[3] >= kernel else {
        throw TensorError("quantizedMaxPool2D: needs [B, C, H, W] at least \(kernel)×\(kernel), got \(x.shape)")
    }
    let (h, w) = (x.shape[2], x.shape[3]), (oh, ow) = ((h - kernel) / stride + 1, (w - kernel) / stride + 1)
    let planes = x.shape[0] * x.shape[1]
    let y = try x.engine.context.buffer(UInt8.self, count: max(planes * oh * ow, 1))
    try x.engine.launch("quantized.cl", "qmaxpool2d_u8", global: [oh * ow, planes],
                        [x.storage, y, Int32(h), Int32(w), Int32(oh), Int32(ow), Int32(kernel), Int32(stride), Int32(planes)])
    return try QuantizedTensor(engine: x.engine, shape: [x.shape[0], x.shape[1], oh, ow], storage: y, quantization: x.quantization)
}

/// The fixed-point multipliers of an integer Add (TensorFlow Lite's): each input's s_in / (2 · max(s_a, s_b)),
/// and the output's 2 · max(s_a, s_b) / (2²⁰ · s_y).
/// - Throws: `TensorError` when a multiplier does not fit.
public func quantizedAddMultipliers(_ a: AffineQuantization, _ b: AffineQuantization, output: AffineQuantization)
    throws -> (a: FixedPointMultiplier, b: FixedPointMultiplier, output: FixedPointMultiplier) {
    let twice = 2 * Double(max(a.scale, b.scale))
    return (try FixedPointMultiplier(Double(a.scale) / twice), try FixedPointMultiplier(Double(b.scale) / twice),
            try FixedPointMultiplier(twice / (Double(1 << 20) * Double(output.scale))))
}

/// a + b of two uint8 tensors of the same shape, in integers, into the quantization `output`
/// (TensorFlow Lite's uint8 Add); `relu` clamps at the output's zero point.
/// - Throws: `TensorError` when the shapes differ or a multiplier does not fit.
public func quantizedAdd(_ a: QuantizedTensor, _ b: QuantizedTensor, output: AffineQuantization, relu: Bool = false) throws -> QuantizedTensor {
    try output.validate()
    guard a.shape == b.shape else { throw TensorError.shape("quantizedAdd", "the inputs must have the same shape", a.shape, b.shape) }
    let (ma, mb, my) = try quantizedAddMultipliers(a.quantization, b.quantization, output: output)
    let n = a.count
    let y = try a.engine.context.buffer(UInt8.self, count: max(n, 1))
    try a.engine.launch("quantized.cl", "qadd_u8", global: [roundUp(max(n, 1), flatKernelGroupSize)], local: [flatKernelGroupSize],
                        [a.storage, b.storage, y, a.quantization.zeroPoint, ma.multiplier, ma.shift, b.quantization.zeroPoint, mb.multiplier, mb.shift,
                         output.zeroPoint, my.multiplier, my.shift, relu ? output.zeroPoint : Int32(0), Int32(n)])
    return try QuantizedTensor(engine: a.engine, shape: a.shape, storage: y, quantization: output)
}

/// ReLU of a uint8 tensor: max(q, zero point); the quantization passes through.
public func quantizedReLU(_ x: QuantizedTensor) throws -> QuantizedTensor {
    let n = x.count
    let y = try x.engine.context.buffer(UInt8.self, count: max(n, 1))
    try x.engine.launch("quantized.cl", "qrelu_u8", global: [roundUp(max(n, 1), flatKernelGroupSize)], local: [flatKernelGroupSize],
                        [x.storage, y, x.quantization.zeroPoint, Int32(n)])
    return try QuantizedTensor(engine: x.engine, shape: x.shape, storage: y, quantization: x.quantization)
}

extension QuantizedTensor {
    /// The same bytes under another shape of as many elements.
    /// - Throws: `TensorError` when the counts differ.
    public func reshaped(_ shape: [Int]) throws -> QuantizedTensor {
        guard shape.reduce(1, *) == count else { throw TensorError.shape("QuantizedTensor.reshaped", "the element counts must agree", self.shape, shape) }
        return try QuantizedTensor(engine: engine, shape: shape, storage: storage, quantization: quantization)
    }
}
