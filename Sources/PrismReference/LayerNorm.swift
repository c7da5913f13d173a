import Foundation

extension Reference {
    /// Layer normalization over the last axis (PyTorch's `F.layer_norm` with `normalized_shape = [n]`):
    /// per row, mean μ and biased variance σ² = mean of (x − μ)², rstd = 1 / √(σ² + eps), then
    /// y = (x − μ) · rstd · weight + bias. A nil weight is all ones, a nil bias all zeros.
    ///
    /// x: [rows, n]; weight, bias: [n] or nil → y: [rows, n], mean: [rows], rstd: [rows]
    public static func layerNorm(x: [Double], weight: [Double]?, bias: [Double]?, features n: Int,
                                 eps: Double = 1e-5) -> (y: [Double], mean: [Double], rstd: [Double]) {
        let rows = x.count / n
        var y = [Double](repeating: 0, count: x.count)
        var means = [Double](repeating: 0, count: rows), rstds = [Double](repeating: 0, count: rows)
        for r in 0..<rows {
            let row = x[(r * n)..<((r + 1) * n)]
            let mean = row.reduce(0, +) / Double(n)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)
            let rstd = 1 / (variance + eps).squareRoot()
            for j in 0..<n {
                y[r * n + j] = (x[r * n + j] - mean) * rstd * (weight?[j] ?? 1) + (bias?[j] ?? 0)
            }
            means[r] = mean
            rstds[r] = rstd
        }
        return (y, means, rstds)
    }

    /// Backward of `layerNorm`. With x̂ = (x − μ) · rstd and g = dy · weight, per row
    /// dx = rstd · (g − mean(g) − x̂ · mean(g · x̂)); over every row, dweight = Σ dy · x̂ and dbias = Σ dy.
    ///
    /// dy, x: [rows, n]; weight: [n] or nil → dx: [rows, n], dweight: [n], dbias: [n]
    public static func layerNormBackward(dy: [Double], x: [Double], weight: [Double]?, features n: Int,
                                         eps: Double = 1e-5) -> (dx: [Double], dweight: [Double], dbias: [Double]) {
        let rows = x.count / n
        let forward = layerNorm(x: x, weight: nil, bias: nil, features: n, eps: eps)
        let xhat = forward.y
        var dx = [Double](repeating: 0, count: x.count)
        var dweight = [Double](repeating: 0, count: n), dbias = [Double](repeating: 0, count: n)
        for r in 0..<rows {
            let range = (r * n)..<((r + 1) * n)
            let g = range.map { dy[$0] * (weight?[$0 - r * n] ?? 1) }
            let meanG = g.reduce(0, +) / Double(n)
            let meanGX = zip(g, range).reduce(0) { $0 + $1.0 * xhat[$1.1] } / Double(n)
            for (j, i) in range.enumerated() {
                dx[i] = forward.rstd[r] * (g[j] - meanG - xhat[i] * meanGX)
                dweight[j] += dy[i] * xhat[i]
                dbias[j] += dy[i]
            }
        }
        return (dx, dweight, dbias)
    }
}
