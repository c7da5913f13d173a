import Foundation

extension Reference {
    /// Batch normalization over axis 1 with given statistics (eval mode):
    /// y = (x − mean[c]) / √(variance[c] + eps) · weight[c] + bias[c].
    ///
    /// x: [N, C, …] (shape); mean, variance: [C]; weight, bias: [C] or nil (1 and 0) → y: x's shape.
    public static func batchNorm(x: [Double], shape: [Int], mean: [Double], variance: [Double], weight: [Double]?,
                                 bias: [Double]?, eps: Double) -> [Double] {
        let c = shape[1], inner = shape[2...].reduce(1, *)
        return x.indices.map { i in
            let ch = (i / inner) % c
            let normalized = (x[i] - mean[ch]) / (variance[ch] + eps).squareRoot()
            return normalized * (weight?[ch] ?? 1) + (bias?[ch] ?? 0)
        }
    }

    /// Batch normalization over axis 1 with the batch's statistics (training mode): per channel, the
    /// mean and biased variance over N and the trailing axes normalize x, then weight and bias apply.
    ///
    /// x: [N, C, …] (shape); weight, bias: [C] or nil → y: x's shape, mean: [C], and the unbiased
    /// variance: [C] (sum of squares over count − 1).
    public static func batchNormTraining(x: [Double], shape: [Int], weight: [Double]?, bias: [Double]?,
                                         eps: Double) -> (y: [Double], mean: [Double], unbiasedVariance: [Double]) {
        let c = shape[1], inner = shape[2...].reduce(1, *), count = x.count / c
        var mean = [Double](repeating: 0, count: c), squares = [Double](repeating: 0, count: c)
        for i in x.indices { mean[(i / inner) % c] += x[i] }
        mean = mean.map { $0 / Double(count) }
        for i in x.indices {
            let d = x[i] - mean[(i / inner) % c]
            squares[(i / inner) % c] += d * d
        }
        let biased = squares.map { $0 / Double(count) }
        let y = batchNorm(x: x, shape: shape, mean: mean, variance: biased, weight: weight, bias: bias, eps: eps)
        return (y, mean, squares.map { $0 / Double(count - 1) })
    }
}
