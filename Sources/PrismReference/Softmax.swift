import Foundation

extension Reference {
    /// Softmax along the last axis.
    ///
    /// x: [rows, C] → y: [rows, C]
    public static func softmax(x: [Double], classes c: Int) -> [Double] {
        logSoftmax(x: x, classes: c).map { Foundation.exp($0) }
    }

    /// Log-softmax along the last axis: x − max − log Σ exp(x − max).
    ///
    /// x: [rows, C] → y: [rows, C]
    public static func logSoftmax(x: [Double], classes c: Int) -> [Double] {
        var y = x
        for r in 0..<(x.count / c) {
            let row = x[(r * c)..<((r + 1) * c)]
            let m = row.max()!
            let lse = m + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) })
            for k in 0..<c { y[r * c + k] = x[r * c + k] - lse }
        }
        return y
    }

    /// Backward of `softmax` from its output: dx = y ⊙ (dy − Σ dy ⊙ y) per row.
    ///
    /// y, dy: [rows, C] → dx: [rows, C]
    public static func softmaxBackward(y: [Double], dy: [Double], classes c: Int) -> [Double] {
        var dx = y
        for r in 0..<(y.count / c) {
            let range = (r * c)..<((r + 1) * c)
            let dot = range.reduce(0) { $0 + y[$1] * dy[$1] }
            for i in range { dx[i] = y[i] * (dy[i] - dot) }
        }
        return dx
    }

    /// Backward of `logSoftmax` from its output: dx = dy − exp(y) · Σ dy per row.
    ///
    /// y, dy: [rows, C] → dx: [rows, C]
    public static func logSoftmaxBackward(y: [Double], dy: [Double], classes c: Int) -> [Double] {
        var dx = y
        for r in 0..<(y.count / c) {
            let range = (r * c)..<((r + 1) * c)
            let total = range.reduce(0) { $0 + dy[$1] }
            for i in range { dx[i] = dy[i] - Foundation.exp(y[i]) * total }
        }
        return dx
    }

    /// Mean cross-entropy of logits against class labels: mean over rows of −log softmax(x)[label].
    ///
    /// x: [rows, C], labels: [rows] → scalar
    public static func crossEntropy(x: [Double], labels: [Int], classes c: Int) -> Double {
        let logp = logSoftmax(x: x, classes: c)
        return labels.enumerated().reduce(0) { $0 - logp[$1.offset * c + $1.element] } / Double(labels.count)
    }

    /// Backward of `crossEntropy`: dx = (softmax(x) − onehot(label)) · dloss / rows.
    ///
    /// x: [rows, C], labels: [rows] → dx: [rows, C]
    public static func crossEntropyBackward(x: [Double], labels: [Int], classes c: Int, dloss: Double = 1) -> [Double] {
        var dx = softmax(x: x, classes: c)
        for (r, label) in labels.enumerated() { dx[r * c + label] -= 1 }
        return dx.map { $0 * dloss / Double(labels.count) }
    }

    /// Mean squared error: mean of (x − t)².
    ///
    /// x, t: [n] → scalar
    public static func mse(x: [Double], target t: [Double]) -> Double {
        zip(x, t).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / Double(x.count)
    }

    /// Backward of `mse` with respect to x: 2 (x − t) · dloss / n (the target's is its negation).
    ///
    /// x, t: [n] → dx: [n]
    public static func mseBackward(x: [Double], target t: [Double], dloss: Double = 1) -> [Double] {
        zip(x, t).map { 2 * ($0 - $1) * dloss / Double(x.count) }
    }
}
