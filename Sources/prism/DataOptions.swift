import ArgumentParser
import Foundation
import Prism

/// Where examples come from: an MNIST-format folder (Fashion-MNIST by default) or a CSV file.
struct DataOptions: ParsableArguments {
    @Option(help: "An MNIST-format folder (train-/t10k- IDX files, gzip or plain) or a CSV file. Default: Fashion-MNIST from Debian's dataset-fashion-mnist.")
    var data: String?

    @Option(help: "CSV only: the name of the label column.")
    var label: String?

    @Option(help: "CSV only: a separate test file (default: the last 20% of --data's rows).")
    var testData: String?

    @Option(help: "Use only the first N training examples.")
    var limit: Int?

    @Option(help: "Use only the first N test examples.")
    var testLimit: Int?

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let testLimit, testLimit < 1 { throw ValidationError("--test-limit must be at least 1") }
    }

    var path: String { data ?? ImageDataset.fashionMNISTDirectory }
    var isCSV: Bool { path.lowercased().hasSuffix(".csv") }

    /// Human-readable source name.
    var sourceName: String { data == nil ? "Fashion-MNIST (\(path))" : path }

    /// The class names, when known.
    var classNames: [String]? { data == nil ? ImageDataset.fashionMNISTClasses : nil }

    /// Loads the training and test sets; a CSV's standardization is computed on its training rows
    /// unless one is given (from a saved model).
    func load(standardization given: TabularDataset.Standardization? = nil, needTrain: Bool = true) throws
        -> (train: LabeledData?, test: LabeledData, standardization: TabularDataset.Standardization?) {
        if isCSV {
            guard let label else { throw ValidationError("--label is required with a CSV file (the name of the class column)") }
            let all = try TabularDataset.loadCSV(path: path, label: label)
            var train = all, test = all
            if let testData {
                test = try TabularDataset.loadCSV(path: testData, label: label, classCount: all.classCount)
                guard test.featureNames == all.featureNames else {
                    throw DataError("\(testData): columns \(test.featureNames) differ from \(path)'s \(all.featureNames)")
                }
            } else {
                let cut = max(1, all.count * 4 / 5)
                train = subset(all, 0..<cut)
                test = all.count - cut > 0 ? subset(all, cut..<all.count) : subset(all, 0..<cut)
            }
            if let limit { train = subset(train, 0..<min(limit, train.count)) }
            if let testLimit { test = subset(test, 0..<min(testLimit, test.count)) }
            let s = given ?? train.standardization()
            return (needTrain ? try LabeledData(try train.standardized(with: s)) : nil, try LabeledData(try test.standardized(with: s)), s)
        }
        if data == nil && !FileManager.default.fileExists(atPath: path) {
            throw DataError("\(path): Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist), or pass --data DIR")
        }
        let train = needTrain ? try LabeledData(try ImageDataset.loadMNISTFormat(directory: path, split: .train, limit: limit)) : nil
        let test = try LabeledData(try ImageDataset.loadMNISTFormat(directory: path, split: .test, limit: testLimit))
        return (train, test, nil)
    }

    private func subset(_ t: TabularDataset, _ range: Range<Int>) -> TabularDataset {
        var copy = t
        copy.features = Array(t.features[(range.lowerBound * t.featureCount)..<(range.upperBound * t.featureCount)])
        copy.labels = Array(t.labels[range])
        return copy
    }
}

/// The metadata key of a CSV model's standardization.
let standardizationKey = "prism.standardization"

/// A terminal progress line on stderr (rewritten in place), silent when stderr is not a terminal.
struct ProgressLine {
    let enabled = isatty(STDERR_FILENO) == 1
    private var lastWidth = 0

    mutating func show(_ text: String) {
        guard enabled else { return }
        let pad = max(0, lastWidth - text.count)
        FileHandle.standardError.write(Data(("\r" + text + String(repeating: " ", count: pad)).utf8))
        lastWidth = text.count
    }

    mutating func clear() {
        guard enabled, lastWidth > 0 else { return }
        FileHandle.standardError.write(Data(("\r" + String(repeating: " ", count: lastWidth) + "\r").utf8))
        lastWidth = 0
    }
}

func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
}
