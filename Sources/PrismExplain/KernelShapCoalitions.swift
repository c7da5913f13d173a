import Foundation
import Prism

/// Kernel SHAP's coalitions (shap's `KernelExplainer` scheme) besides ∅ and all, as a growing 0/1
/// matrix [rows, M]: first every coalition of the size pairs {k, M − k} that the budget enumerates,
/// with their exact kernel weights, then paired draws (S, S̄) over the sizes left, a repeated
/// coalition counted again instead of evaluated again.
struct KernelShapCoalitions {
    /// Features M (at least 2).
    let featureCount: Int
    /// Kernel weight of size pair k = 0…⌊M/2⌋ (sizes k and M − k together), normalised to sum 1; 0 for k = 0.
    let pairWeight: [Double]
    /// Coalition masks [rows, M]: the enumerated rows first, then the sampled ones in order of first draw.
    private(set) var masks: [UInt8] = []
    /// Exact kernel weight of each enumerated row.
    private(set) var fixedWeight: [Double] = []
    /// Size pairs 1…`enumeratedPairs` are enumerated completely.
    private(set) var enumeratedPairs = 0
    /// The rows (S, S̄) of each draw, in order.
    private(set) var draws: [(Int, Int)] = []

    /// Size pairs still sampled and their cumulative kernel weights.
    private let sizes: [Int]
    private let cumulative: [Double]
    private var rowOf: [[UInt8]: Int] = [:]
    /// Coalitions the budget still allows.
    private var slots: Int
    private var attempts = 0
    private let maxAttempts: Int

    /// Enumerated rows: the first `fixedRows` of `masks`.
    var fixedRows: Int { fixedWeight.count }
    /// Rows so far, enumerated and sampled.
    var rowCount: Int { masks.count / featureCount }
    /// Kernel weight of the sizes not enumerated, which the sampled rows carry together.
    var sampledWeight: Double { pairWeight[(enumeratedPairs + 1)...].reduce(0, +) }
    /// Whether another pair can be drawn (sizes left, room in the budget, attempts left).
    var canDraw: Bool { !sizes.isEmpty && slots >= 2 && attempts < maxAttempts }

    /// Enumerates the size pairs, smallest and largest sizes first, while the remaining budget, shared
    /// out by the pairs' kernel weight, covers all of a pair's coalitions (shap's rule).
    /// - Parameters:
    ///   - m: features, at least 2.
    ///   - budget: coalitions besides ∅ and all, at most 2^M − 2.
    init(features m: Int, budget: Int) {
        featureCount = m
        // Size pairs k = 1…⌊M/2⌋ cover sizes {k, M − k}; kernel weight of size s in total: (M−1)/(s(M−s)).
        let pairCount = m / 2
        let paired = (0...pairCount).map { $0 != m - $0 }
        var pairWeight = (0...pairCount).map { k -> Double in
            guard k > 0 else { return 0 }
            let w = shapleyKernelSizeWeight(features: m, size: k)
            return paired[k] ? 2 * w : w
        }
        let weightSum = pairWeight.reduce(0, +)
        pairWeight = pairWeight.map { $0 / weightSum }
        self.pairWeight = pairWeight
        let pairCoalitions = (0...pairCount).map { binomial(m, $0) * (paired[$0] ? 2 : 1) }

        var masks: [UInt8] = []
        var fixedWeight: [Double] = []
        var left = Double(budget)
        var remaining = pairWeight
        var enumeratedPairs = 0
        for k in 1...pairCount {
            let n = pairCoalitions[k]
            guard left * remaining[k] / n >= 1 - 1e-8 else { break }
            enumeratedPairs = k
            left -= n
            if remaining[k] < 1 { remaining = remaining.map { $0 / (1 - remaining[k]) } }
            let w = pairWeight[k] / n
            forEachSubset(of: m, size: k) { mask in
                masks += mask
                fixedWeight.append(w)
                if paired[k] {
                    masks += mask.map { 1 - $0 }
                    fixedWeight.append(w)
                }
            }
        }
        self.masks = masks
        self.fixedWeight = fixedWeight
        self.enumeratedPairs = enumeratedPairs

        sizes = enumeratedPairs < pairCount ? Array((enumeratedPairs + 1)...pairCount) : []
        var cumulative: [Double] = []
        for k in sizes { cumulative.append((cumulative.last ?? 0) + pairWeight[k]) }
        self.cumulative = cumulative
        slots = budget - fixedWeight.count
        maxAttempts = 4 * slots + 64
    }

    /// Draws up to `limit` pairs while `canDraw`: a size pair with probability ∝ its kernel weight, a
    /// uniform subset S of that size (the first k places of a partial Fisher–Yates shuffle), and its
    /// complement S̄; each coalition not seen before becomes a new row.
    mutating func draw(upTo limit: Int, using rng: inout ShapleyRandom) {
        let m = featureCount
        var drawn = 0
        while canDraw && drawn < limit {
            attempts += 1
            drawn += 1
            let k = sizes[rng.pick(cumulative: cumulative)]
            var order = Array(0..<m)
            var mask = [UInt8](repeating: 0, count: m)
            for i in 0..<k {
                order.swapAt(i, i + rng.below(m - i))
                mask[order[i]] = 1
            }
            let complement = mask.map { 1 - $0 }
            let rows = [mask, complement].map { z -> Int in
                if let r = rowOf[z] { return r }
                let r = fixedRows + rowOf.count
                rowOf[z] = r
                masks += z
                slots -= 1
                return r
            }
            draws.append((rows[0], rows[1]))
        }
    }

    /// The weight of every row: the exact kernel weight of an enumerated row, and for a sampled one
    /// its number of draws × `sampledWeight` / (2 · draws).
    func rowWeights() -> [Double] {
        var w = fixedWeight + [Double](repeating: 0, count: rowCount - fixedRows)
        if !draws.isEmpty {
            let scale = sampledWeight / Double(2 * draws.count)
            for pair in draws { w[pair.0] += scale; w[pair.1] += scale }
        }
        return w
    }
}

/// The Shapley kernel's weight of all coalitions of size s together, (M − 1) / (s (M − s)), for
/// 0 < s < M; each coalition of that size has 1 / C(M, s) of it.
func shapleyKernelSizeWeight(features m: Int, size s: Int) -> Double {
    Double(m - 1) / (Double(s) * Double(m - s))
}

/// Calls `body` with the 0/1 mask of every subset of 0..<n with `size` elements, in lexicographic order.
func forEachSubset(of n: Int, size: Int, _ body: ([UInt8]) -> Void) {
    guard size >= 0, size <= n else { return }
    var index = Array(0..<size)
    while true {
        var mask = [UInt8](repeating: 0, count: n)
        for i in index { mask[i] = 1 }
        body(mask)
        var i = size - 1
        while i >= 0 && index[i] == n - size + i { i -= 1 }
        if i < 0 { return }
        index[i] += 1
        for j in (i + 1)..<max(size, i + 1) { index[j] = index[j - 1] + 1 }
    }
}
