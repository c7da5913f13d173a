import Foundation

extension Reference {
    /// Leaky ReLU: x for x > 0, negativeSlope·x otherwise.   x: [n] → y: [n]
    public static func leakyRelu(x: [Double], negativeSlope: Double) -> [Double] {
        x.map { $0 > 0 ? $0 : negativeSlope * $0 }
    }

    /// ELU: x for x > 0, alpha·(eˣ − 1) otherwise.   x: [n] → y: [n]
    public static func elu(x: [Double], alpha: Double) -> [Double] {
        x.map { $0 > 0 ? $0 : alpha * (Foundation.exp($0) - 1) }
    }

    /// SiLU: x / (1 + e^−x).   x: [n] → y: [n]
    public static func silu(x: [Double]) -> [Double] {
        x.map { $0 / (1 + Foundation.exp(-$0)) }
    }

    /// Hard swish: x·min(max(x + 3, 0), 6) / 6.   x: [n] → y: [n]
    public static func hardswish(x: [Double]) -> [Double] {
        x.map { $0 * Swift.min(Swift.max($0 + 3, 0), 6) / 6 }
    }

    /// Hardtanh: x clamped to [minValue, maxValue].   x: [n] → y: [n]
    public static func hardtanh(x: [Double], minValue: Double, maxValue: Double) -> [Double] {
        x.map { Swift.min(Swift.max($0, minValue), maxValue) }
    }

    /// Hard sigmoid: alpha·x + beta clamped to [0, 1] (PyTorch's relu6(x + 3)/6 with alpha 1/6, beta 1/2).
    ///   x: [n] → y: [n]
    public static func hardsigmoid(x: [Double], alpha: Double = 1.0 / 6, beta: Double = 0.5) -> [Double] {
        x.map { Swift.min(Swift.max(alpha * $0 + beta, 0), 1) }
    }

    /// PReLU: x for x > 0, w·x otherwise, with one weight (w: [1]) or one per channel (w: [C], the
    /// axis 1 of x).   x: [N, C, …] → y: [N, C, …]
    public static func prelu(x: [Double], shape: [Int], weight: [Double]) -> [Double] {
        let inner = shape.count > 2 ? shape[2...].reduce(1, *) : 1, channels = shape.count > 1 ? shape[1] : 1
        return x.indices.map { i in
            let w = weight.count == 1 ? weight[0] : weight[(i / inner) % channels]
            return x[i] > 0 ? x[i] : w * x[i]
        }
    }
}
