/// How far two explanations of the same instances agree (a compressed model's against the
/// original's): per instance, Spearman's rank correlation of the attributions (signed, and of their
/// magnitudes) and the overlap of their k largest |φ|; the means over the instances.
public struct ExplanationAgreement: Codable, Equatable, Sendable {
    /// Means over the instances.
    public var spearman: Double
    public var spearmanAbsolute: Double
    /// |top-k(a) ∩ top-k(b)| / k of the features' |φ| (k at most the feature count).
    public var topKOverlap: Double
    public var k: Int
    public var instances: Int

    enum CodingKeys: String, CodingKey {
        case spearman, k, instances
        case spearmanAbsolute = "spearman_absolute", topKOverlap = "top_k_overlap"
    }

    /// Compares `a` and `b`, explanations of the same instances and targets ([instances][features][outputs]),
    /// output by output.
    /// - Throws: `ExplainError` when their shapes differ.
    public init(_ a: Explanation, _ b: Explanation, k: Int = 10) throws {
        guard a.instanceCount == b.instanceCount, a.featureCount == b.featureCount, a.outputCount == b.outputCount,
              a.instanceCount > 0, a.featureCount > 0, a.outputCount > 0 else {
            throw ExplainError("agreement: explanations of shapes [\(a.instanceCount), \(a.featureCount), \(a.outputCount)] and [\(b.instanceCount), \(b.featureCount), \(b.outputCount)]")
        }
        let m = a.featureCount, o = a.outputCount, cases = Double(a.instanceCount * o)
        let top = min(max(k, 1), m)
        var signed = 0.0, absolute = 0.0, overlap = 0.0
        for i in 0..<a.instanceCount {
            for t in 0..<o {
                let x = (0..<m).map { a.values[(i * m + $0) * o + t] }, y = (0..<m).map { b.values[(i * m + $0) * o + t] }
                signed += try ParameterRandomization.spearman(x, y)
                absolute += try ParameterRandomization.spearman(x.map(abs), y.map(abs))
                overlap += Self.topOverlap(x, y, k: top)
            }
        }
        (spearman, spearmanAbsolute, topKOverlap, self.k, instances) = (signed / cases, absolute / cases, overlap / cases, top, a.instanceCount)
    }

    /// |top-k(|a|) ∩ top-k(|b|)| / k, ties in |φ| broken by position.
    public static func topOverlap(_ a: [Double], _ b: [Double], k: Int) -> Double {
        func top(_ v: [Double]) -> Set<Int> {
            Set(v.indices.sorted { abs(v[$0]) != abs(v[$1]) ? abs(v[$0]) > abs(v[$1]) : $0 < $1 }.prefix(k))
        }
        return k == 0 ? 0 : Double(top(a).intersection(top(b)).count) / Double(k)
    }
}
