import Foundation

/// Plain-Swift integer references of the quantized kernels (`quantized.cl`): the same integer
/// arithmetic, so the device must match them bit for bit.
public enum QuantizedReference {
    /// gemmlowp's SaturatingRoundingDoublingHighMul: round(a · b / 2³¹), ties away from zero.
    public static func highMul(_ a: Int32, _ b: Int32) -> Int32 {
        if a == b && a == .min { return .max }
        let ab = Int64(a) * Int64(b)
        let nudge: Int64 = ab >= 0 ? 1 << 30 : 1 - (1 << 30)
        return Int32((ab + nudge) / (1 << 31))
    }

    /// gemmlowp's RoundingDivideByPOT: x / 2^e rounded to nearest, ties away from zero.
    public static func dividePOT(_ x: Int32, _ e: Int32) -> Int32 {
        let mask = Int32(truncatingIfNeeded: (Int64(1) << Int64(e)) - 1)
        let remainder = x & mask
        let threshold = (mask >> 1) + (x < 0 ? 1 : 0)
        return (x >> e) + (remainder > threshold ? 1 : 0)
    }

    /// TFLite's MultiplyByQuantizedMultiplier, the left shift saturating.
    public static func requantize(_ acc: Int32, multiplier: Int32, shift: Int32) -> Int32 {
        let left = max(shift, 0), right = max(-shift, 0)
        let widened = Int64(acc) << Int64(left)
        let x = Int32(clamping: widened)
        return dividePOT(highMul(x, multiplier), right)
    }

    /// `quantize_u8`.
    public static func quantize(_ x: [Float], invScale: Float, zeroPoint: Int32) -> [UInt8] {
        x.map { UInt8(clamping: Int32(($0 * invScale).rounded(.toNearestOrEven)) + zeroPoint) }
    }

    /// `quantizedLinear` (`qgemm_u8i8`): y [M, N] from x [M, K], w [N, K].
    public static func linear(x: [UInt8], w: [Int8], bias: [Int32], multiplier: [Int32], shift: [Int32], m: Int, n: Int, k: Int,
                              zx: Int32, zy: Int32, lo: Int32) -> [UInt8] {
        var y = [UInt8](repeating: 0, count: m * n)
        for r in 0..<m {
            for c in 0..<n {
                var acc = bias[c]
                for i in 0..<k { acc &+= (Int32(x[r * k + i]) - zx) * Int32(w[c * k + i]) }
                let q = zy + requantize(acc, multiplier: multiplier[c], shift: shift[c])
                y[r * n + c] = UInt8(min(max(q, lo), 255))
            }
        }
        return y
    }

    /// `quantizedConv2D` (`qim2col_u8`, then `qgemm_u8i8`): y [B, OC, OH, OW] from x [B, C, H, W], w [OC, C, KH, KW].
    public static func conv2d(x: [UInt8], w: [Int8], bias: [Int32], multiplier: [Int32], shift: [Int32],
                              batch: Int, channels: Int, height: Int, width: Int, outChannels: Int, kernel: (Int, Int), stride: (Int, Int),
                              padding: (Int, Int), dilation: (Int, Int), zx: Int32, zy: Int32, lo: Int32) -> [UInt8] {
        let oh = (height + 2 * padding.0 - dilation.0 * (kernel.0 - 1) - 1) / stride.0 + 1
        let ow = (width + 2 * padding.1 - dilation.1 * (kernel.1 - 1) - 1) / stride.1 + 1
        var y = [UInt8](repeating: 0, count: batch * outChannels * oh * ow)
        for b in 0..<batch {
            for oc in 0..<outChannels {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var acc = bias[oc]
                        for c in 0..<channels {
                            for ky in 0..<kernel.0 {
                                let iy = oy * stride.0 - padding.0 + ky * dilation.0
                                guard iy >= 0, iy < height else { continue }
                                for kx in 0..<kernel.1 {
                                    let ix = ox * stride.1 - padding.1 + kx * dilation.1
                                    guard ix >= 0, ix < width else { continue }
                                    let a = Int32(x[((b * channels + c) * height + iy) * width + ix]) - zx
                                    acc &+= a * Int32(w[((oc * channels + c) * kernel.0 + ky) * kernel.1 + kx])
                                }
                            }
                        }
                        let q = zy + requantize(acc, multiplier: multiplier[oc], shift: shift[oc])
                        y[((b * outChannels + oc) * oh + oy) * ow + ox] = UInt8(min(max(q, lo), 255))
                    }
                }
            }
        }
        return y
    }

    /// `quantizedAdd` (`qadd_u8`): TFLite's uint8 Add. Each pair is a fixed-point multiplier and shift
    /// (input a's, input b's, the output's).
    public static func add(a: [UInt8], b: [UInt8], za: Int32, ma: (Int32, Int32), zb: Int32, mb: (Int32, Int32),
                           zy: Int32, my: (Int32, Int32), lo: Int32) -> [UInt8] {
        zip(a, b).map { qa, qb in
            let xa = requantize((Int32(qa) - za) * (1 << 20), multiplier: ma.0, shift: ma.1)
            let xb = requantize((Int32(qb) - zb) * (1 << 20), multiplier: mb.0, shift: mb.1)
            return UInt8(min(max(requantize(xa + xb, multiplier: my.0, shift: my.1) + zy, lo), 255))
        }
    }
}
