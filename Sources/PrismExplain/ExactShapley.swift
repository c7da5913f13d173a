import Foundation
import Prism

/// Exact Shapley values from all 2^M coalitions:
///
///     φᵢ = Σ_{S ⊆ N∖{i}} |S|! (M − |S| − 1)! / M! · (v(S ∪ {i}) − v(S))
///
/// computed in Double as one pass over the coalitions: each v(S) adds w(|S| − 1)·v(S) to the features
/// in S and subtracts w(|S|)·v(S) from the others, so no table of values is kept and coalitions go to
/// the game in chunks of `coalitionsPerCall`.
///
/// Cost: 2^M coalitions (× the background rows in model evaluations) and 2^M·M·O host operations.
/// The practical limit is `ExactShapley.featureLimit` = 20 features (about a million coalitions;
/// with 100 background rows that is 10^8 model rows — minutes on a GPU for a small network);
/// more features are refused with an error that suggests Kernel SHAP.
/// M = 0 gives no values (base value = output); M = 1 gives φ = v({1}) − v(∅), as shap does.
public struct ExactShapley: ShapleyEstimator {
    /// The largest feature count accepted by default.
    public static let featureLimit = 20

    public let method = "exact-shap"
    /// Features accepted (at most 30: the coalitions are numbered by a machine word).
    public var maxFeatures: Int
    /// Coalitions handed to the game per call (bounds host memory; the game chunks device work itself).
    public var coalitionsPerCall: Int

    public init(maxFeatures: Int = ExactShapley.featureLimit, coalitionsPerCall: Int = 65_536) {
        self.maxFeatures = maxFeatures
        self.coalitionsPerCall = coalitionsPerCall
    }

    public func explain(_ game: CoalitionGame) throws -> Explanation {
        var counter = try CountingGame(game)
        let m = counter.featureCount, o = counter.outputCount
        guard m <= min(maxFeatures, 30) else {
            throw ExplainError("exact-shap: \(m) features need 2^\(m) coalitions, above the limit of \(min(maxFeatures, 30)) features; use kernel-shap (or permutation-shap) for this many")
        }
        guard coalitionsPerCall > 0 else { throw ExplainError("exact-shap: coalitions per call must be positive, got \(coalitionsPerCall)") }
        // w[s] = s!(M − s − 1)!/M! = 1 / (M · C(M − 1, s)) for a coalition of size s not containing i.
        let weight = (0..<max(m, 1)).map { 1 / (Double(max(m, 1)) * binomial(m - 1, $0)) }
        var phi = [Double](repeating: 0, count: m * o)
        var empty = [Double](repeating: 0, count: o), full = empty
        let total = 1 << m
        try requireHostMemory(HostMemory.product([min(coalitionsPerCall, total), m + 8 * o]),
                              "exact-shap: \(min(coalitionsPerCall, total)) coalitions per call × \(m) features", for: "the coalition matrix")
        var start = 0
        while start < total {
            let count = min(coalitionsPerCall, total - start)
            var masks = [UInt8](repeating: 0, count: count * m)
            for r in 0..<count {
                let s = start + r
                for j in 0..<m where s & (1 << j) != 0 { masks[r * m + j] = 1 }
            }
            let v = try counter.values(masks, count: count)
            for r in 0..<count {
                let s = start + r
                let size = s.nonzeroBitCount
                if s == 0 { empty = Array(v[0..<o]) }
                if s == total - 1 { full = Array(v[(r * o)..<((r + 1) * o)]) }
                let inside = size > 0 ? weight[size - 1] : 0, outside = size < m ? weight[size] : 0
                for j in 0..<m {
                    let w = s & (1 << j) != 0 ? inside : -outside
                    for k in 0..<o { phi[j * o + k] += w * v[r * o + k] }
                }
            }
            start += count
        }
        return try Explanation(method: method, instanceCount: 1, featureCount: m, outputCount: o, values: phi,
                               baseValues: empty, outputs: full, modelEvaluations: counter.modelEvaluations,
                               seconds: counter.seconds, settings: ["coalitions": .int(total)])
    }
}
