import ArgumentParser
import Foundation
import Prism

/// Where examples come from: an MNIST-format folder (Fashion-MNIST by default), a CSV file, a .npy
/// array with its labels, or an image folder with one subfolder per class.
struct DataOptions: ParsableArguments {
    @Option(help: "An MNIST-format folder (train-/t10k- IDX files, gzip or plain), a CSV file, a .npy array of examples [N, …] (with --labels), or an image folder with one subfolder of PNG/JPEG images per class (torchvision's ImageFolder: classes in sorted order). Default: Fashion-MNIST from Debian's dataset-fashion-mnist.")
    var data: String?

    @Option(help: "CSV only: the name of the label column (class indices, or the numeric target of a regression model).")
    var label: String?

    @Option(help: ".npy only: the examples' integer class labels, a .npy array [N].")
    var labels: String?

    @Option(help: "A separate test set of the same kind as --data: a CSV file, a .npy array (with --test-labels) or an image folder. Default: a CSV's last 20% of rows; 20% of a .npy array's or an image folder's examples drawn by a permutation with a fixed seed.")
    var testData: String?

    @Option(help: ".npy only: --test-data's integer class labels.")
    var testLabels: String?

    @Option(help: "Image folders, training a new model: the height and width every image is resized to (bilinear, antialiased as PIL), as H,W. Default: the first image's. A saved model's input shape decides otherwise.")
    var imageSize: String?

    @Option(parsing: .unconditional, help: "Image folders, training a new model: the channels every image is brought to, 1 (RGB converted to luma) or 3 (gray replicated). Default: the first image's.")
    var channels: Int?

    @Option(parsing: .unconditional, help: "Use only the first N training examples.")
    var limit: Int?

    @Option(parsing: .unconditional, help: "Use only the first N test examples.")
    var testLimit: Int?

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let testLimit, testLimit < 1 { throw ValidationError("--test-limit must be at least 1") }
    }

    var path: String { data ?? ImageDataset.fashionMNISTDirectory }
    var isCSV: Bool { kind == .csv }

    /// Human-readable source name.
    var sourceName: String { data == nil ? "Fashion-MNIST (\(path))" : path }

    /// The class names, when known.
    var classNames: [String]? { data == nil ? ImageDataset.fashionMNISTClasses : nil }

    /// What `prism train` reads: the sets, the transforms it computed (or was given) and the task.
    struct TrainingData {
        var train: LabeledData
        var test: LabeledData
        /// CSV only: the features' standardization.
        var standardization: TabularDataset.Standardization?
        /// Regression only: the targets' standardization (train and test targets are standardized with it).
        var targetStandardization: TabularDataset.Standardization?
        var task: ModelTask
        /// How the label column was read, for a person to read (notes on image folders and .npy
        /// arrays go to standard error as they are read).
        var note: String?
        /// CSV only: the feature columns in input order.
        var featureNames: [String]?
    }

    /// Loads the sets `prism train` trains on. A CSV's label column is read as `requested` says, or
    /// by its values when nil (`LabelColumnDecision`); features (and regression targets) are
    /// standardized with the given transforms (a resumed run's) or the training rows' own. An image
    /// folder is read at `inputShape` (a resumed model's) when given, its class names checked against
    /// `classes` (a resumed model's) when given; they become the task's.
    func loadForTraining(task requested: ModelTask.Kind?, maxClasses: Int, standardization given: TabularDataset.Standardization? = nil,
                         targetStandardization givenTarget: TabularDataset.Standardization? = nil, inputShape: [Int]? = nil,
                         classes: [String]? = nil) throws -> TrainingData {
        try checkCombination()
        guard isCSV else {
            if requested == .regression {
                throw ValidationError("--task regression needs a CSV file with a numeric target column; \(sourceName) holds class labels")
            }
            switch kind {
            case .imageFolder:
                let sets = try loadImageFolderSets(inputShape: inputShape, classes: classes, classCount: nil, needTrain: true)
                return TrainingData(train: sets.train!, test: sets.test, task: .classification(classes: sets.classes))
            case .numpy:
                let sets = try loadNumPySets(classCount: nil, inputShape: inputShape, needTrain: true)
                return TrainingData(train: sets.train!, test: sets.test, task: .classification(classes: nil))
            default:
                let (train, test, _) = try loadImages(needTrain: true)
                return TrainingData(train: train!, test: test, task: .classification(classes: classNames))
            }
        }
        let label = try labelColumn()
        let raw = try TabularDataset.loadRegressionCSV(path: path, target: label)
        let decision = try LabelColumnDecision.decide(column: label, source: (path as NSString).lastPathComponent, values: raw.targets ?? [], requested: requested, maxClasses: maxClasses)
        let name = (path as NSString).lastPathComponent
        let all = decision.kind == .classification ? try raw.classified(classCount: decision.classCount, source: name) : raw
        var (train, test) = try split(all, classCount: decision.classCount)
        let s = given ?? train.standardization()
        train = try train.standardized(with: s)
        test = try test.standardized(with: s)
        var targetStandardization: TabularDataset.Standardization?
        if decision.kind == .regression, let t = givenTarget ?? train.targetStandardization() {
            targetStandardization = t
            train = try train.targetsStandardized(with: t)
            test = try test.targetsStandardized(with: t)
        }
        let task: ModelTask = decision.kind == .regression ? .regression(outputs: [label]) : .classification(classes: nil)
        return TrainingData(train: try LabeledData(train), test: try LabeledData(test), standardization: s,
                            targetStandardization: targetStandardization, task: task, note: decision.note, featureNames: all.featureNames)
    }

    /// Loads the test set (and the training set when `needTrain`) for a saved model: a CSV's label
    /// column is read as the model's task says, and its features standardized with the model's stored
    /// standardization, never one computed from the data.
    /// - Throws: `DataError` naming the model file when it has no stored standardization for CSV data.
    /// An image folder is read at the model's input shape (RGB converted to luma for a 1-channel
    /// model, with a note), its class names checked against the model's; a .npy array's examples
    /// must have the model's input shape.
    func load(for model: LoadedModel, needTrain: Bool = false) throws -> (train: LabeledData?, test: LabeledData) {
        try checkCombination()
        guard isCSV else {
            if model.task.kind == .regression {
                throw DataError("\(model.path) is a regression model; \(sourceName) holds \(kind == .numpy ? "examples" : "images") with class labels")
            }
            let spec = model.model.spec
            switch kind {
            case .imageFolder:
                let sets = try loadImageFolderSets(inputShape: spec.inputShape, classes: model.classNames, classCount: spec.classCount,
                                                   needTrain: needTrain)
                return (sets.train, sets.test)
            case .numpy:
                return try loadNumPySets(classCount: spec.classCount, inputShape: spec.inputShape, needTrain: needTrain)
            default:
                let (train, test, _) = try loadImages(needTrain: needTrain)
                return (train, test)
            }
        }
        let data = try loadCSVSets(task: model.task.kind, classCount: model.model.spec.classCount, standardization: model.standardization,
                                   inputShape: model.model.spec.inputShape, needTrain: needTrain) {
            DataError("\(model.path) has no stored standardization ('\(ModelFileKey.standardization)'), which CSV inputs need; retrain it with prism train, which stores the training rows' standardization in the model")
        }
        return (data.train, data.test)
    }

    private func labelColumn() throws -> String {
        guard let label else { throw ValidationError("--label is required with a CSV file (the name of the label or target column)") }
        return label
    }

    /// A CSV's sets with the label column read as `task` says (classes checked against `classCount`),
    /// features standardized with `s`; regression targets stay in their units.
    /// - Throws: `DataError` when the rows do not have the model's `inputShape` (when given); `missing()`
    ///   when they do and `s` is nil.
    private func loadCSVSets(task: ModelTask.Kind, classCount: Int?, standardization s: TabularDataset.Standardization?,
                             inputShape: [Int]?, needTrain: Bool, missing: () -> DataError) throws -> (train: LabeledData?, test: LabeledData) {
        let label = try labelColumn()
        let all = task == .regression ? try TabularDataset.loadRegressionCSV(path: path, target: label)
            : try TabularDataset.loadCSV(path: path, label: label, classCount: classCount)
        if let inputShape, inputShape != [all.featureCount] {
            throw DataError("data: examples have shape \([all.featureCount]), the model expects \(inputShape)")
        }
        guard let s else { throw missing() }
        let (train, test) = try split(all, classCount: task == .regression ? nil : all.classCount)
        return (needTrain ? try LabeledData(try train.standardized(with: s)) : nil, try LabeledData(try test.standardized(with: s)))
    }

    /// Training and test rows: `--test-data`'s rows (read like `all`'s) or the last 20% of `all`'s, each cut to its limit.
    private func split(_ all: TabularDataset, classCount: Int?) throws -> (train: TabularDataset, test: TabularDataset) {
        var train = all, test = all
        if let testData {
            test = try TabularDataset.loadRegressionCSV(path: testData, target: all.labelName)
            if all.targets == nil { test = try test.classified(classCount: classCount, source: (testData as NSString).lastPathComponent) }
            guard test.featureNames == all.featureNames else {
                throw DataError("\(testData): columns \(test.featureNames) differ from \(path)'s \(all.featureNames)")
            }
        } else {
            // The last 20% (at least one row) are the test set; a file of one row has none to hold out.
            guard all.count >= 2 else {
                throw DataError("\(path): \(all.count) data row\(all.count == 1 ? "" : "s"); holding out a test set needs at least 2 (or give --test-data FILE.csv)")
            }
            let cut = min(all.count - 1, max(1, all.count * 4 / 5))
            train = subset(all, 0..<cut)
            test = subset(all, cut..<all.count)
        }
        if let limit { train = subset(train, 0..<min(limit, train.count)) }
        if let testLimit { test = subset(test, 0..<min(testLimit, test.count)) }
        return (train, test)
    }

    func loadImages(needTrain: Bool) throws -> (train: LabeledData?, test: LabeledData, standardization: TabularDataset.Standardization?) {
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
        if let targets = t.targets { copy.targets = Array(targets[range]) } else { copy.labels = Array(t.labels[range]) }
        return copy
    }
}


/// The metadata key of a regression checkpoint's target standardization (what `--resume` continues
/// with; the model file itself is written in the targets' units).
let targetStandardizationKey = "prism.target-standardization"

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

extension DataOptions {
    /// A tabular model's feature names: the ones its file stores, else the columns of a `--data`
    /// CSV file without the label column; nil for image models or when neither names them.
    /// - Throws: `DataError` naming the CSV file: unreadable, a header `CSVTable` refuses, another width.
    func featureNames(of loaded: LoadedModel) throws -> [String]? {
        let shape = loaded.model.spec.inputShape
        guard shape.count == 1 else { return nil }
        if let names = loaded.featureNames { return names }
        guard isCSV else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError("\(path): not a readable CSV file") }
        let names = try CSVTable.parse([UInt8](data), name: (path as NSString).lastPathComponent, limit: 0).header.filter { $0 != (label ?? "") }
        guard names.count == shape[0] else { throw DataError("\(path): \(names.count) feature columns, the model has \(shape[0]) inputs") }
        return names
    }
}
