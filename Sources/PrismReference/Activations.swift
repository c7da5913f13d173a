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
}
