import Foundation
import PrismCL
import Prism

/// A smaller background that stands for a large one, like `shap.kmeans` and `shap.sample`: fewer
/// rows mean proportionally fewer model evaluations per coalition.
public struct BackgroundSummary: Equatable, Sendable {
    /// [k, width] row-major.
    public var rows: [Float]
    /// One weight per row (cluster sizes for k-means, 1 for a sample); use as `backgroundWeights`.
    public var weights: [Float]
    public var width: Int

    public var count: Int { weights.count }

    /// k-means (k-means++ seeding, then Lloyd iterations until no row changes cluster or
    /// `iterations` are done), weighted by cluster sizes. The weighted mean of the centroids equals
    /// the data's mean, so a model that is linear in its input keeps its base value exactly.
    /// - Parameters:
    ///   - data: [n, width] row-major.
    ///   - roundToData: replace each centroid's value in every column by the closest value that column
    ///     takes in the data (shap's `round_values`; keeps categorical columns valid, at the price of
    ///     the exact mean).
    /// - Throws: `ExplainError` when `k` is not in 1…n or the data is not whole rows.
    public static func kMeans(_ data: [Float], width: Int, k: Int, seed: UInt64 = 0, iterations: Int = 100,
                              roundToData: Bool = false) throws -> BackgroundSummary {
        let n = try rowCount(data, width: width)
        guard k >= 1, k <= n else { throw ExplainError("k-means: k = \(k) outside 1…\(n) (the number of rows)") }
        func distance(_ r: Int, _ centroid: [Double], _ c: Int) -> Double {
            var s = 0.0
            for j in 0..<width { let d = Double(data[r * width + j]) - centroid[c * width + j]; s += d * d }
            return s
        }
        var rng = SplitMix64(seed: seed)
        func uniform() -> Double { Double(rng.next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }
        // k-means++: the first centre uniformly, each next one with probability ∝ squared distance.
        var centroids = [Double](repeating: 0, count: k * width)
        let first = Int(rng.next() % UInt64(n))
        for j in 0..<width { centroids[j] = Double(data[first * width + j]) }
        var nearest = (0..<n).map { distance($0, centroids, 0) }
        for c in 1..<max(k, 1) {
            let total = nearest.reduce(0, +)
            var pick = n - 1
            if total > 0 {
                var target = uniform() * total
                for r in 0..<n { target -= nearest[r]; if target < 0 { pick = r; break } }
            } else {
                pick = Int(rng.next() % UInt64(n))
            }
            for j in 0..<width { centroids[c * width + j] = Double(data[pick * width + j]) }
            for r in 0..<n { nearest[r] = min(nearest[r], distance(r, centroids, c)) }
        }
        // Lloyd iterations.
        var assignment = [Int](repeating: -1, count: n)
        for _ in 0..<max(iterations, 1) {
            var changed = false
            for r in 0..<n {
                var best = 0, bestDistance = Double.infinity
                for c in 0..<k { let d = distance(r, centroids, c); if d < bestDistance { (best, bestDistance) = (c, d) } }
                if assignment[r] != best { assignment[r] = best; changed = true }
            }
            var sums = [Double](repeating: 0, count: k * width), sizes = [Int](repeating: 0, count: k)
            for r in 0..<n {
                sizes[assignment[r]] += 1
                for j in 0..<width { sums[assignment[r] * width + j] += Double(data[r * width + j]) }
            }
            for c in 0..<k where sizes[c] > 0 { for j in 0..<width { centroids[c * width + j] = sums[c * width + j] / Double(sizes[c]) } }
            if !changed { break }
        }
        var sizes = [Int](repeating: 0, count: k)
        for a in assignment { sizes[a] += 1 }
        // Empty clusters (possible only with duplicate rows) are dropped.
        let kept = (0..<k).filter { sizes[$0] > 0 }
        var rows = kept.flatMap { c in (0..<width).map { Float(centroids[c * width + $0]) } }
        if roundToData {
            for j in 0..<width {
                let column = Array(Set((0..<n).map { data[$0 * width + j] })).sorted()
                for c in kept.indices { rows[c * width + j] = closest(rows[c * width + j], in: column) }
            }
        }
        return BackgroundSummary(rows: rows, weights: kept.map { Float(sizes[$0]) }, width: width)
    }

    /// `k` rows drawn without replacement with the seed (shap's `sample`), equal weights.
    /// - Throws: `ExplainError` when `k` is not in 1…n or the data is not whole rows.
    public static func sample(_ data: [Float], width: Int, k: Int, seed: UInt64 = 0) throws -> BackgroundSummary {
        let n = try rowCount(data, width: width)
        guard k >= 1, k <= n else { throw ExplainError("background sample: k = \(k) outside 1…\(n) (the number of rows)") }
        var rng = SplitMix64(seed: seed)
        var order = Array(0..<n)
        for i in 0..<k { order.swapAt(i, i + Int(rng.next() % UInt64(n - i))) }
        let rows = order.prefix(k).flatMap { r in data[(r * width)..<((r + 1) * width)] }
        return BackgroundSummary(rows: rows, weights: [Float](repeating: 1, count: k), width: width)
    }

    static func rowCount(_ data: [Float], width: Int) throws -> Int {
        guard width > 0, !data.isEmpty, data.count % width == 0 else {
            throw ExplainError("background summary: \(data.count) values are not whole rows of \(width)")
        }
        return data.count / width
    }

    /// The element of the sorted `values` closest to `x`.
    static func closest(_ x: Float, in values: [Float]) -> Float {
        var lo = 0, hi = values.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if values[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        if lo > 0 && abs(values[lo - 1] - x) <= abs(values[lo] - x) { return values[lo - 1] }
        return values[lo]
    }
}
