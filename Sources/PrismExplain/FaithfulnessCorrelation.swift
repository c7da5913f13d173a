import Foundation
import Prism
import PrismCL

/// Faithfulness correlation (Bhatt et al., IJCAI 2020, eq. 3; Quantus's `FaithfulnessCorrelation`):
/// for `runs` random subsets S of `subsetSize` input elements, the Pearson correlation between
/// Σ_{i∈S} φ_i and f_c(x) − f_c(x with S set to the baseline). Quantus's defaults: 100 runs, subsets of
/// 224 elements, the baseline "black" (the instance's smallest value). A faithful explanation gives
/// the elements whose removal lowers the output the most the largest values: correlation near 1.
/// All of an instance's perturbed inputs run as one device batch (in chunks of `rowsPerChunk`).
public struct FaithfulnessCorrelation {
    public let model: DifferentiableModel
    public var runs: Int
    public var subsetSize: Int
    public var seed: UInt64
    public var rowsPerChunk: Int?

    public init(model: DifferentiableModel, runs: Int = 100, subsetSize: Int = 224, seed: UInt64 = 0, rowsPerChunk: Int? = nil) {
        self.model = model
        self.runs = runs
        self.subsetSize = subsetSize
        self.seed = seed
        self.rowsPerChunk = rowsPerChunk
    }

    /// The random subsets of instance `i`: `runs` lists of `min(subsetSize, elements)` distinct
    /// elements (a partial Fisher–Yates shuffle seeded by (seed, i)).
    public func subsets(instance i: Int) -> [[Int]] {
        let n = model.elementCount, size = Swift.min(subsetSize, n)
        var rng = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: i) &* 0x9E37_79B9_7F4A_7C15))
        return (0..<runs).map { _ in
            var pool = Array(0..<n)
            for k in 0..<size {
                let j = k + Int(rng.next() % UInt64(n - k))
                pool.swapAt(k, j)
            }
            return Array(pool[0..<size])
        }
    }

    /// The correlation for one instance x ([elements]) with attributions φ ([elements]) of output
    /// `target`, over the given subsets (the seeded ones by default).
    /// - Returns: the Pearson correlation, or nil when either side does not vary over the runs.
    /// - Throws: `ExplainError` for sizes that disagree, fewer than 2 runs or an index out of range.
    public func score(instance x: [Float], attributions phi: [Double], target: Int, subsets given: [[Int]]? = nil, index: Int = 0) throws -> Double? {
        let n = model.elementCount
        guard x.count == n, phi.count == n else { throw ExplainError("faithfulness correlation: \(x.count) inputs and \(phi.count) attributions for \(n) elements") }
        let subsets = given ?? self.subsets(instance: index)
        guard subsets.count >= 2 else { throw ExplainError("faithfulness correlation: needs at least 2 runs, got \(subsets.count)") }
        guard (0..<model.classCount).contains(target) else { throw ExplainError("faithfulness correlation: target \(target) outside 0..<\(model.classCount)") }
        let black = x.min()!
        var rows = x
        rows.reserveCapacity((subsets.count + 1) * n)
        for subset in subsets {
            var perturbed = x
            for i in subset {
                guard (0..<n).contains(i) else { throw ExplainError("faithfulness correlation: element \(i) outside 0..<\(n)") }
                perturbed[i] = black
            }
            rows += perturbed
        }
        let count = subsets.count + 1, chunk = rowsPerChunk ?? Swift.max(1, model.defaultRowsPerChunk() * 4)
        var outputs: [Float] = []
        var first = 0
        while first < count {
            let size = Swift.min(chunk, count - first)
            outputs += try model.outputs(Array(rows[(first * n)..<((first + size) * n)]), rows: size)
            first += size
        }
        let c = model.classCount, fx = Double(outputs[target])
        let drops = subsets.indices.map { fx - Double(outputs[(1 + $0) * c + target]) }
        let sums = subsets.map { $0.reduce(0.0) { $0 + phi[$1] } }
        return Self.pearson(sums, drops)
    }

    /// Pearson's correlation of two samples, nil when either is constant.
    static func pearson(_ a: [Double], _ b: [Double]) -> Double? {
        let n = Double(a.count), ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for (u, v) in zip(a, b) {
            sab += (u - ma) * (v - mb)
            saa += (u - ma) * (u - ma)
            sbb += (v - mb) * (v - mb)
        }
        guard saa > 0, sbb > 0 else { return nil }
        return sab / (saa * sbb).squareRoot()
    }
}
