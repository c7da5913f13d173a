import Foundation

/// The value function v(S) of one instance for any model given as a host closure — a model that is
/// not Prism's, or a CPU reference. Like `DeviceGame`: for each coalition the N background rows get
/// the instance's values where a feature is present; the closure evaluates them; the outputs are
/// averaged over the background with its weights (in Double), every output at once.
///
/// Work is cut into calls of at most `rowsPerChunk` rows (whole coalitions); results do not depend
/// on the chunk size.
public final class HostGame: BackgroundRowsGame {
    public let featureCount: Int
    public let outputCount: Int
    /// Background rows N.
    public let backgroundCount: Int
    /// Rows per call of the model.
    public var rowsPerChunk: Int
    /// Model rows evaluated so far (coalitions × background rows).
    public private(set) var modelEvaluations = 0
    public var rowsPerCoalition: Int { backgroundCount }

    private let instance: [Float]
    private let background: [Float]
    private let weights: [Double]
    public var rowWeights: [Double] { weights }
    private let groups: [Int32]
    private let model: ([Float], Int) throws -> [Float]

    /// - Parameters:
    ///   - instance: the input to explain, D values.
    ///   - background: N rows of D values, row-major.
    ///   - backgroundWeights: optional non-negative weights for the rows (default equal).
    ///   - groups: the features: which of the D input elements each covers.
    ///   - outputCount: the model's output width O.
    ///   - rowsPerChunk: rows per call of `model`.
    ///   - model: (rows × D values, rows) → rows × O outputs, row-major.
    /// - Throws: `ExplainError` when sizes disagree.
    public init(instance: [Float], background: [Float], backgroundWeights: [Float]? = nil, groups: FeatureGroups,
                outputCount: Int, rowsPerChunk: Int = 4096, model: @escaping ([Float], Int) throws -> [Float]) throws {
        let d = instance.count
        guard d > 0 else { throw ExplainError("explain: the instance is empty") }
        guard !background.isEmpty, background.count % d == 0 else {
            throw ExplainError("explain: background of \(background.count) values is not a whole number of rows of width \(d)")
        }
        guard groups.elementFeature.count == d else {
            throw ExplainError("explain: feature groups cover \(groups.elementFeature.count) input elements, the instance has \(d)")
        }
        guard outputCount > 0 else { throw ExplainError("explain: the model must have at least one output") }
        guard rowsPerChunk > 0 else { throw ExplainError("explain: rows per chunk must be positive, got \(rowsPerChunk)") }
        let n = background.count / d
        let w = (backgroundWeights ?? [Float](repeating: 1, count: n)).map(Double.init)
        guard w.count == n else { throw ExplainError("explain: \(w.count) background weights for \(n) background rows") }
        guard w.allSatisfy({ $0 >= 0 && $0.isFinite }) else { throw ExplainError("explain: background weights must be finite and non-negative") }
        let total = w.reduce(0, +)
        guard total > 0 else { throw ExplainError("explain: background weights sum to zero") }
        self.instance = instance
        self.background = background
        self.weights = w.map { $0 / total }
        self.groups = groups.elementFeature
        self.featureCount = groups.featureCount
        self.outputCount = outputCount
        self.backgroundCount = n
        self.rowsPerChunk = rowsPerChunk
        self.model = model
    }

    public func values(coalitions: [UInt8], count: Int) throws -> [Double] {
        let m = featureCount, n = backgroundCount, o = outputCount, d = instance.count
        guard coalitions.count == count * m else {
            throw ExplainError("explain: \(coalitions.count) mask entries for \(count) coalitions of \(m) features")
        }
        var result = [Double](repeating: 0, count: count * o)
        let perChunk = max(1, rowsPerChunk / n)
        var rows = [Float]()
        var start = 0
        while start < count {
            let s = min(perChunk, count - start)
            rows.removeAll(keepingCapacity: true)
            rows.reserveCapacity(s * n * d)
            for c in start..<(start + s) {
                for r in 0..<n {
                    for e in 0..<d {
                        let g = Int(groups[e])
                        rows.append(g < 0 || coalitions[c * m + g] != 0 ? instance[e] : background[r * d + e])
                    }
                }
            }
            let y = try model(rows, s * n)
            guard y.count == s * n * o else {
                throw ExplainError("explain: the model returned \(y.count) values for \(s * n) rows × \(o) outputs")
            }
            for c in 0..<s {
                for r in 0..<n {
                    for k in 0..<o { result[(start + c) * o + k] += weights[r] * Double(y[(c * n + r) * o + k]) }
                }
            }
            modelEvaluations += s * n
            start += s
        }
        return result
    }
}

extension HostGame {
    /// v_b(S) of coalition r on background row `rows[r]`: [count, outputCount], in calls of at most
    /// `rowsPerChunk` rows.
    public func rowValues(coalitions: [UInt8], rows which: [Int32]) throws -> [Double] {
        let m = featureCount, o = outputCount, d = instance.count, n = backgroundCount, count = which.count
        guard coalitions.count == count * m else {
            throw ExplainError("explain: \(coalitions.count) mask entries for \(count) coalitions of \(m) features")
        }
        guard which.allSatisfy({ $0 >= 0 && Int($0) < n }) else { throw ExplainError("explain: a background row outside 0..<\(n)") }
        var result: [Double] = []
        result.reserveCapacity(count * o)
        var rows = [Float]()
        var start = 0
        while start < count {
            let s = min(rowsPerChunk, count - start)
            rows.removeAll(keepingCapacity: true)
            rows.reserveCapacity(s * d)
            for c in start..<(start + s) {
                let b = Int(which[c])
                for e in 0..<d {
                    let g = Int(groups[e])
                    rows.append(g < 0 || coalitions[c * m + g] != 0 ? instance[e] : background[b * d + e])
                }
            }
            let y = try model(rows, s)
            guard y.count == s * o else { throw ExplainError("explain: the model returned \(y.count) values for \(s) rows × \(o) outputs") }
            result += y.map(Double.init)
            modelEvaluations += s
            start += s
        }
        return result
    }
}
