import Foundation
import SwiftCSV

/// Rows of numeric features with integer class labels, read from a CSV file.
public struct TabularDataset: Sendable {
    /// Row-major features, [count, featureNames.count].
    public var features: [Float]
    public var labels: [Int32]
    public var featureNames: [String]
    public var labelName: String
    public var classCount: Int

    public var count: Int { labels.count }
    public var featureCount: Int { featureNames.count }

    /// Per-column mean and standard deviation used to standardize features (saved with a model so
    /// that the same transform applies at prediction time).
    public struct Standardization: Codable, Equatable, Sendable {
        public var mean: [Float]
        public var std: [Float]
        public init(mean: [Float], std: [Float]) {
            self.mean = mean
            self.std = std
        }
    }

    /// Reads a CSV file with a header row; every column is numeric; `label` names the class column,
    /// whose values must be integers 0..<classCount (`classCount` defaults to max label + 1).
    /// - Throws: `DataError` naming the file and, for a bad cell, its row (1-based, header = row 1)
    ///   and column: an unreadable or malformed file, a missing label column, a non-numeric cell,
    ///   a row of the wrong width, a label that is not a non-negative integer or is out of range.
    public static func loadCSV(path: String, label: String, classCount: Int? = nil, limit: Int? = nil) throws -> TabularDataset {
        let name = (path as NSString).lastPathComponent
        guard FileManager.default.fileExists(atPath: path) else { throw DataError("\(path): no such file") }
        let csv: CSV<Enumerated>
        do {
            csv = try CSV<Enumerated>(url: URL(fileURLWithPath: path), delimiter: .comma, loadColumns: false)
        } catch {
            throw DataError("\(name): not a readable CSV file (\(error))")
        }
        let header = csv.header.map { $0.trimmingCharacters(in: .whitespaces) }
        guard let labelIndex = header.firstIndex(of: label) else {
            throw DataError("\(name): no label column '\(label)' (columns: \(header.joined(separator: ", ")))")
        }
        let featureIndices = header.indices.filter { $0 != labelIndex }
        guard !featureIndices.isEmpty else { throw DataError("\(name): no feature columns besides '\(label)'") }
        var features: [Float] = []
        var labels: [Int32] = []
        let rows = limit.map { Array(csv.rows.prefix($0)) } ?? csv.rows
        features.reserveCapacity(rows.count * featureIndices.count)
        for (r, row) in rows.enumerated() {
            let line = r + 2
            if row.count == 1 && row[0].trimmingCharacters(in: .whitespaces).isEmpty { continue }  // blank line
            guard row.count == header.count else {
                throw DataError("\(name): row \(line) has \(row.count) cells, the header has \(header.count)")
            }
            for c in featureIndices {
                let cell = row[c].trimmingCharacters(in: .whitespaces)
                guard let value = Float(cell), value.isFinite else {
                    throw DataError("\(name): row \(line), column '\(header[c])': '\(cell)' is not a finite number")
                }
                features.append(value)
            }
            let cell = row[labelIndex].trimmingCharacters(in: .whitespaces)
            guard let value = Double(cell), value >= 0, value == value.rounded(), value < Double(Int32.max) else {
                throw DataError("\(name): row \(line), column '\(label)': '\(cell)' is not a class index (a non-negative integer)")
            }
            labels.append(Int32(value))
        }
        guard !labels.isEmpty else { throw DataError("\(name): no data rows") }
        let classes = classCount ?? Int(labels.max()!) + 1
        if let i = labels.firstIndex(where: { Int($0) >= classes }) {
            throw DataError("\(name): row \(i + 2), column '\(label)': label \(labels[i]) outside 0..<\(classes)")
        }
        return TabularDataset(features: features, labels: labels, featureNames: featureIndices.map { header[$0] },
                              labelName: label, classCount: classes)
    }

    /// The mean and (population) standard deviation of each feature; a constant column gets std 1.
    public func standardization() -> Standardization {
        let m = featureCount, n = count
        var mean = [Double](repeating: 0, count: m), sq = [Double](repeating: 0, count: m)
        for i in 0..<n { for j in 0..<m { mean[j] += Double(features[i * m + j]) } }
        for j in 0..<m { mean[j] /= Double(max(n, 1)) }
        for i in 0..<n { for j in 0..<m { let d = Double(features[i * m + j]) - mean[j]; sq[j] += d * d } }
        let std = sq.map { s -> Float in
            let v = (s / Double(max(n, 1))).squareRoot()
            return v > 1e-12 ? Float(v) : 1
        }
        return Standardization(mean: mean.map(Float.init), std: std)
    }

    /// The dataset with each feature transformed to (x − mean) / std.
    /// - Throws: `DataError` when the transform has another width than the data.
    public func standardized(with s: Standardization) throws -> TabularDataset {
        guard s.mean.count == featureCount, s.std.count == featureCount else {
            throw DataError("standardize: transform for \(s.mean.count) features, data has \(featureCount)")
        }
        var copy = self
        for i in 0..<count {
            for j in 0..<featureCount {
                copy.features[i * featureCount + j] = (features[i * featureCount + j] - s.mean[j]) / s.std[j]
            }
        }
        return copy
    }
}
