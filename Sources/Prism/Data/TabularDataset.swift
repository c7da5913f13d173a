import Foundation

/// Rows of numeric features with integer class labels or numeric targets, read from a CSV file.
public struct TabularDataset: Sendable {
    /// Row-major features, [count, featureNames.count].
    public var features: [Float]
    /// Class labels (empty when `targets` holds the label column).
    public var labels: [Int32]
    /// The label column read as numbers, one per row, for regression (nil for class labels).
    public var targets: [Float]?
    public var featureNames: [String]
    public var labelName: String
    /// Number of classes (0 for regression data).
    public var classCount: Int

    public var count: Int { targets?.count ?? labels.count }
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
        let table = try readCSV(path: path, label: label, limit: limit, classLabels: true)
        return try table.classified(classCount: classCount, source: (path as NSString).lastPathComponent)
    }

    /// Reads a CSV file as `loadCSV(path:label:classCount:limit:)` does, but the label column as
    /// numbers (a regression target) in `targets`.
    /// - Throws: `DataError` naming the file, row and column of a cell that is not a finite number.
    public static func loadRegressionCSV(path: String, target: String, limit: Int? = nil) throws -> TabularDataset {
        try readCSV(path: path, label: target, limit: limit, classLabels: false)
    }

    /// The dataset with its numeric targets read as class indices 0..<classCount (default: the
    /// largest + 1); a dataset of class labels is returned as it is (its labels checked against `classCount`).
    /// - Parameter source: names the data in messages (a file name).
    /// - Throws: `DataError` naming the row (1-based, header = row 1) and column of a value that is not a
    ///   non-negative integer or is outside 0..<classCount.
    public func classified(classCount: Int? = nil, source: String = "data") throws -> TabularDataset {
        var copy = self
        if let targets {
            var labels: [Int32] = []
            labels.reserveCapacity(targets.count)
            for (i, value) in targets.enumerated() {
                guard value >= 0, value == value.rounded(), value < Float(1 << 24) else {
                    throw DataError("\(source): row \(i + 2), column '\(labelName)': '\(value)' is not a class index (a non-negative integer)")
                }
                labels.append(Int32(value))
            }
            copy.labels = labels
            copy.targets = nil
            copy.classCount = Int(labels.max() ?? -1) + 1
        }
        let classes = classCount ?? copy.classCount
        if let i = copy.labels.firstIndex(where: { Int($0) >= classes }) {
            throw DataError("\(source): row \(i + 2), column '\(labelName)': label \(copy.labels[i]) outside 0..<\(classes)")
        }
        copy.classCount = classes
        return copy
    }

    /// Reads features and the label column as numbers; with `classLabels`, a label cell that is not a
    /// class index is refused as such.
    private static func readCSV(path: String, label: String, limit: Int?, classLabels: Bool) throws -> TabularDataset {
        let name = (path as NSString).lastPathComponent
        guard FileManager.default.fileExists(atPath: path) else { throw DataError("\(path): no such file") }
        let csv = try CSVTable.parse(try readFile(path), name: name, limit: limit)
        let header = csv.header
        guard let labelIndex = header.firstIndex(of: label) else {
            throw DataError("\(name): no label column '\(label)' (columns: \(header.joined(separator: ", ")))")
        }
        let featureIndices = header.indices.filter { $0 != labelIndex }
        guard !featureIndices.isEmpty else { throw DataError("\(name): no feature columns besides '\(label)'") }
        var features: [Float] = []
        var targets: [Float] = []
        features.reserveCapacity(csv.rows.count * featureIndices.count)
        for (line, row) in csv.rows {
            for c in featureIndices { features.append(try csv.number(row, column: c, line: line, name: name)) }
            if classLabels {
                let cell = row[labelIndex].trimmingCharacters(in: .whitespaces)
                guard let value = Double(cell), value >= 0, value == value.rounded(), value < Double(1 << 24) else {
                    throw DataError("\(name): row \(line), column '\(label)': '\(CSVTable.excerpt(cell))' is not a class index (a non-negative integer)")
                }
                targets.append(Float(value))
            } else {
                targets.append(try csv.number(row, column: labelIndex, line: line, name: name))
            }
        }
        guard !targets.isEmpty else { throw DataError("\(name): no data rows") }
        return TabularDataset(features: features, labels: [], targets: targets, featureNames: featureIndices.map { header[$0] },
                              labelName: label, classCount: 0)
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

    /// The mean and (population) standard deviation of the targets (nil for class labels); a
    /// constant target gets std 1.
    public func targetStandardization() -> Standardization? {
        guard let targets, !targets.isEmpty else { return nil }
        let n = Double(targets.count)
        let mean = targets.reduce(0.0) { $0 + Double($1) } / n
        let variance = targets.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
        let std = variance.squareRoot()
        return Standardization(mean: [Float(mean)], std: [std > 1e-12 ? Float(std) : 1])
    }

    /// The dataset with each target transformed to (y − mean) / std (`targetStandardization`'s form);
    /// a dataset of class labels is returned as it is.
    /// - Throws: `DataError` when the transform is not for one target.
    public func targetsStandardized(with s: Standardization) throws -> TabularDataset {
        guard let targets else { return self }
        guard s.mean.count == 1, s.std.count == 1 else {
            throw DataError("standardize: target transform for \(s.mean.count) values, data has 1 target")
        }
        var copy = self
        copy.targets = targets.map { ($0 - s.mean[0]) / s.std[0] }
        return copy
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
