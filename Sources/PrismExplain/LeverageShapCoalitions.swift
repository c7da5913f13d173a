import Foundation
import Prism

/// Leverage SHAP's coalitions besides ∅ and all (Musco & Witter 2025, Algorithm 1 with paired
/// Bernoulli sampling), as a growing 0/1 matrix [rows, M] of pairs (S, S̄).
///
/// The leverage score of coalition z in the Kernel SHAP regression is ℓ_z = 1 / C(M, |z|) (the
/// paper's closed form), so every size 1…M − 1 carries the same leverage mass and coalitions are
/// uniform within a size. A pair is kept with probability p_k = min(1, c / C(M, k)), k its smaller size, c solving
/// Σ_{s=1}^{M−1} min(C(M, s), c) = the expected number of coalitions; pairs are kept independently
/// (Bernoulli sampling, so none twice): for size pair k, a Binomial(N_k, p_k) count of distinct pairs
/// uniform among its N_k pairs (N_k = C(M, k), or C(M, M/2)/2 for k = M/2, the pairs whose S holds
/// the last feature). Sizes with C(M, k) ≤ c are kept whole (p_k = 1).
///
/// The sample grows in nested steps: raising the expected count from c to c′ adds each pair not kept
/// yet with probability (p′ − p)/(1 − p), so after every step the rows are exactly a Bernoulli(p′)
/// sample — what a stopping rule needs to look at the estimate between steps.
struct LeverageShapCoalitions {
    /// Features M (at least 2).
    let featureCount: Int
    /// Per size pair k = 0…⌊M/2⌋: C(M, k) and the pairs N_k that exist (0 for k = 0).
    let coalitionsOfSize: [Double], pairsOfSize: [Double]
    /// Shapley-kernel weight of one coalition of size k (or M − k), the kernel normalised to sum 1.
    let kernelWeight: [Double]
    /// The expected number of coalitions so far and its scale c.
    private(set) var expectedRows = 0.0, scale = 0.0
    /// Probability p_k that a pair of size pair k is in the sample.
    private(set) var probability: [Double]
    /// Coalition masks [rows, M]: pairs (S, S̄) in order of drawing, S first.
    private(set) var masks: [UInt8] = []
    /// Size pair of each pair of rows (rows 2i and 2i + 1).
    private(set) var pairSize: [Int] = []
    /// Pairs kept per size pair.
    private(set) var keptOfSize: [Double]
    /// The S mask of every pair kept.
    private var kept: Set<[UInt8]> = []

    /// Rows so far.
    var rowCount: Int { masks.count / featureCount }

    /// - Parameter m: features, at least 2.
    init(features m: Int) {
        featureCount = m
        let pairCount = m / 2
        coalitionsOfSize = (0...pairCount).map { binomial(m, $0) }
        pairsOfSize = (0...pairCount).map { k in k == 0 ? 0 : 2 * k == m ? binomial(m, k) / 2 : binomial(m, k) }
        let total = (1..<m).reduce(0.0) { $0 + shapleyKernelSizeWeight(features: m, size: $1) }
        kernelWeight = (0...pairCount).map { k in k == 0 ? 0 : shapleyKernelSizeWeight(features: m, size: k) / binomial(m, k) / total }
        probability = [Double](repeating: 0, count: pairCount + 1)
        keptOfSize = probability
    }

    /// The scale c with Σ_{s=1}^{M−1} min(C(M, s), c) = `rows` (rows at most 2^M − 2): sizes whose
    /// C(M, s) is below the level are saturated first, the rest share what is left equally.
    static func scale(features m: Int, expectedRows rows: Double) -> Double {
        let counts = (1..<m).map { binomial(m, $0) }.sorted()
        var left = rows, open = Double(counts.count)
        for count in counts {
            let level = left / open
            if level <= count { return level }
            left -= count
            open -= 1
        }
        return counts.last ?? 0
    }

    /// Grows the sample to `rows` expected coalitions (never shrinks it): new probabilities p′_k from
    /// the new scale, and for each size pair a Binomial(N_k − kept_k, (p′ − p)/(1 − p)) count of new
    /// pairs, uniform among those not kept yet.
    /// - Parameter rows: expected coalitions, at most 2^M − 2.
    mutating func grow(toExpectedRows rows: Double, using rng: inout ShapleyRandom) {
        guard rows > expectedRows else { return }
        expectedRows = rows
        scale = Self.scale(features: featureCount, expectedRows: rows)
        for k in 1..<probability.count {
            let old = probability[k], new = min(1, scale / coalitionsOfSize[k])
            guard new > old else { continue }
            probability[k] = new
            let open = pairsOfSize[k] - keptOfSize[k]
            let count = new >= 1 ? open : rng.binomial(open, (new - old) / (1 - old))
            add(count, pairsOfSize: k, using: &rng)
        }
    }

    /// Adds `count` pairs of size pair k not kept yet, uniformly: by rejection while at most half of
    /// the size's pairs will be kept (so at least half the tries succeed), otherwise from the list of
    /// the pairs left (then N_k is at most twice the rows kept, so listing them is cheap).
    private mutating func add(_ count: Double, pairsOfSize k: Int, using rng: inout ShapleyRandom) {
        guard count > 0 else { return }
        let m = featureCount, selfPaired = 2 * k == m
        if 2 * (keptOfSize[k] + count) <= pairsOfSize[k] {
            var added = 0.0
            while added < count {
                // S: k features, or for k = M/2 the last feature and k − 1 of the others.
                let pool = selfPaired ? m - 1 : m, take = selfPaired ? k - 1 : k
                var order = Array(0..<pool), mask = [UInt8](repeating: 0, count: m)
                if selfPaired { mask[m - 1] = 1 }
                for i in 0..<take {
                    order.swapAt(i, i + rng.below(pool - i))
                    mask[order[i]] = 1
                }
                if keep(mask, pairsOfSize: k) { added += 1 }
            }
        } else {
            var open: [[UInt8]] = []
            forEachSubset(of: selfPaired ? m - 1 : m, size: selfPaired ? k - 1 : k) { part in
                let mask = selfPaired ? part + [1] : part
                if !kept.contains(mask) { open.append(mask) }
            }
            let take = min(Int(count), open.count)
            for i in 0..<take {
                open.swapAt(i, i + rng.below(open.count - i))
                _ = keep(open[i], pairsOfSize: k)
            }
        }
    }

    /// Appends S and S̄ as a pair of size pair k unless S is kept already; whether it was new.
    private mutating func keep(_ mask: [UInt8], pairsOfSize k: Int) -> Bool {
        guard kept.insert(mask).inserted else { return false }
        masks += mask
        masks += mask.map { 1 - $0 }
        pairSize.append(k)
        keptOfSize[k] += 1
        return true
    }

    /// Every row's regression weight: its kernel weight / the probability that its pair was kept.
    func rowWeights() -> [Double] {
        pairSize.flatMap { k in [kernelWeight[k] / probability[k], kernelWeight[k] / probability[k]] }
    }

    /// The pairs kept with probability below 1 (the sampled part), as their two rows and size pair.
    var sampledPairs: [(rows: (Int, Int), size: Int)] {
        pairSize.enumerated().filter { probability[$0.element] < 1 }.map { ((2 * $0.offset, 2 * $0.offset + 1), $0.element) }
    }
}

extension ShapleyRandom {
    /// A Binomial(n, q) count (n may exceed Int's exact range in Double): the successes among n trials
    /// counted by geometric skips between them, or between the failures when q > 1/2, so the work is
    /// O(min(n q, n (1 − q)) + 1).
    mutating func binomial(_ n: Double, _ q: Double) -> Double {
        guard n > 0, q > 0 else { return 0 }
        guard q < 1 else { return n }
        let rare = min(q, 1 - q), logMiss = log1p(-rare)
        var position = 0.0, hits = 0.0
        while true {
            // The gap to the next rare outcome is Geometric(rare): ⌊log U / log(1 − rare)⌋ + 1, U in (0, 1].
            position += (log(1 - unit()) / logMiss).rounded(.down) + 1
            guard position <= n else { break }
            hits += 1
        }
        return q > 0.5 ? n - hits : hits
    }
}
