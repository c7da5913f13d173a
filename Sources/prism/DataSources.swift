import ArgumentParser
import Foundation
import Prism

/// What `--data` names.
enum DataKind {
    /// An MNIST-format folder (train-/t10k- IDX files), or Fashion-MNIST when `--data` is absent.
    case mnist
    case csv
    /// A .npy array of examples, with `--labels`.
    case numpy
    /// A folder with one subfolder of images per class (torchvision's ImageFolder).
    case imageFolder

    var description: String {
        switch self {
        case .mnist: "an MNIST-format folder"
        case .csv: "a CSV file"
        case .numpy: "a .npy file"
        case .imageFolder: "an image folder"
        }
    }
}

/// The seed of the permutation that holds out a test set when no `--test-data` is given (.npy
/// arrays and image folders): fixed, so that eval, predict and explain find the same split as train.
let heldOutSplitSeed: UInt64 = 0

extension DataOptions {
    /// The kind of `--data`: by suffix (.csv, .npy), else a folder holding train-/t10k- IDX files is
    /// MNIST-format and any other folder an image folder; a path that is neither is read as
    /// MNIST-format (whose reader names what is missing).
    var kind: DataKind {
        guard let data else { return .mnist }
        let lower = data.lowercased()
        if lower.hasSuffix(".csv") { return .csv }
        if lower.hasSuffix(".npy") { return .numpy }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: data, isDirectory: &isDirectory), isDirectory.boolValue else { return .mnist }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: data)) ?? []
        let stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
        return names.contains { name in stems.contains { name.hasPrefix($0) } } ? .mnist : .imageFolder
    }

    /// Refuses options that do not apply to `--data`'s kind, each with one line.
    func checkCombination() throws {
        let kind = self.kind
        if labels != nil && kind != .numpy {
            let hint = kind == .csv ? " (a CSV file's label column is --label NAME)" : ""
            throw ValidationError("--labels is for .npy inputs (--data x.npy); \(sourceName) is \(kind.description)\(hint)")
        }
        if testLabels != nil && kind != .numpy {
            throw ValidationError("--test-labels is for .npy test inputs (--test-data xt.npy); \(sourceName) is \(kind.description)")
        }
        if (imageSize != nil || channels != nil) && kind != .imageFolder {
            throw ValidationError("--image-size and --channels are for image folders; \(sourceName) is \(kind.description)")
        }
        if testData != nil && kind == .mnist {
            throw ValidationError("--test-data is for CSV, .npy and image-folder data; \(sourceName) is \(kind.description) with its own t10k- test files")
        }
        if kind == .numpy {
            guard labels != nil else {
                throw ValidationError("\(path): .npy inputs need --labels y.npy (integer class labels, one per example)")
            }
            if let testData {
                guard testData.lowercased().hasSuffix(".npy") else {
                    throw ValidationError("--test-data \(testData): .npy inputs take a .npy test file (with --test-labels)")
                }
                guard testLabels != nil else {
                    throw ValidationError("\(testData): .npy test inputs need --test-labels yt.npy (integer class labels, one per example)")
                }
            } else if testLabels != nil {
                throw ValidationError("--test-labels needs --test-data xt.npy (the test inputs they label)")
            }
        }
    }

    /// `--image-size` as (height, width).
    func parsedImageSize() throws -> (height: Int, width: Int)? {
        guard let imageSize else { return nil }
        let parts = imageSize.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let h = parts[0], let w = parts[1], h > 0, w > 0 else {
            throw ValidationError("--image-size '\(imageSize)' is not H,W (two positive integers, height then width)")
        }
        return (h, w)
    }

    /// An image folder's sets, read at `inputShape` (a saved model's [C, H, W]) or, when nil, at
    /// `--image-size`/`--channels` or the first image's size and channels (stated in a note). The
    /// test set is `--test-data`'s folder or the held-out part of `--data` (`heldOut`). Notes go to
    /// standard error.
    /// - Parameters:
    ///   - classes: a saved model's class names, which the folder's must equal.
    ///   - classCount: a saved model's number of classes, which the folder's may not exceed.
    /// - Returns: the sets (no training set unless `needTrain`) and the class names.
    /// - Throws: `DataError` naming the folder or file: what `loadImageFolder` refuses, classes that
    ///   differ between the folders or from the model's.
    func loadImageFolderSets(inputShape: [Int]?, classes expected: [String]?, classCount: Int?, needTrain: Bool) throws
        -> (train: LabeledData?, test: LabeledData, classes: [String]) {
        let shape: [Int], policy: ImageFile.ChannelPolicy
        if let inputShape {
            guard inputShape.count == 3 else {
                throw DataError("\(path): an image folder, but the model takes inputs of shape \(inputShape), not [channels, height, width]")
            }
            if let size = try parsedImageSize(), [size.height, size.width] != Array(inputShape.dropFirst()) {
                throw ValidationError("--image-size \(size.height),\(size.width): the model takes \(inputShape[1])×\(inputShape[2]) images")
            }
            if let channels, channels != inputShape[0] {
                throw ValidationError("--channels \(channels): the model takes \(inputShape[0])-channel images")
            }
            (shape, policy) = (inputShape, .convert)
        } else {
            shape = try chosenImageShape()
            policy = channels == nil ? .strict : .convert
        }
        func read(_ directory: String) throws -> (data: LabeledData, classes: [String]) {
            let images: ImageDataset, classes: [String], notes: [String]
            do {
                (images, classes, notes) = try ImageDataset.loadImageFolder(directory: directory, height: shape[1], width: shape[2],
                                                                            channels: shape[0], policy: policy, resize: .bilinear)
            } catch let error as DataError where policy == .strict && shape[0] == 1 && error.message.contains("channels (") {
                // An RGB image in a folder whose first image is gray: say how to choose.
                throw DataError(error.message + "; --channels 1 converts every image to luma, --channels 3 keeps colour")
            }
            if let expected, classes != expected {
                throw DataError("\(directory): classes \(classes) differ from the model's \(expected)")
            }
            if let classCount, classes.count > classCount {
                throw DataError("\(directory): \(classes.count) classes, the model has \(classCount)")
            }
            for note in notes { printError("note: " + note) }
            var data = try LabeledData(images)
            if let classCount { data.classCount = classCount }
            return (data, classes)
        }
        if let testData {
            guard needTrain else {
                let test = try read(testData)
                return (nil, try cut(test.data, to: testLimit), test.classes)
            }
            let train = try read(path), test = try read(testData)
            guard train.classes == test.classes else {
                throw DataError("\(testData): classes \(test.classes) differ from \(path)'s \(train.classes)")
            }
            return (try cut(train.data, to: limit), try cut(test.data, to: testLimit), train.classes)
        }
        let all = try read(path)
        let split = try heldOut(all.data)
        return (needTrain ? try cut(split.train, to: limit) : nil, try cut(split.test, to: testLimit), all.classes)
    }

    /// The [C, H, W] a new model is trained at: `--image-size` and `--channels`, each defaulting to
    /// the first image's (in the folder's sorted order), with a note saying what was taken.
    private func chosenImageShape() throws -> [Int] {
        let size = try parsedImageSize()
        if let channels, !(channels == 1 || channels == 3) {
            throw ValidationError("--channels \(channels): images are brought to 1 (gray) or 3 (RGB) channels")
        }
        if let size, let channels { return [channels, size.height, size.width] }
        guard let first = try ImageDataset.imageFolderFiles(directory: path).first?.files.first else {
            throw DataError("\(path): no images")
        }
        let image = try ImageFile.read(path: first)
        let c = channels ?? (image.channels == 2 || image.channels == 4 ? image.channels - 1 : image.channels)
        var taken: [String] = []
        if size == nil { taken.append("size \(image.height)×\(image.width) (height×width)") }
        if channels == nil { taken.append("\(c) channel\(c == 1 ? "" : "s")") }
        printError("note: \(path): \(taken.joined(separator: " and ")) taken from the first image, \(first) (--image-size H,W and --channels C choose others)")
        return [c, size?.height ?? image.height, size?.width ?? image.width]
    }

    /// A .npy array's sets: `--data` with `--labels`, and `--test-data` with `--test-labels` or the
    /// held-out part of `--data` (`heldOut`). Notes go to standard error.
    /// - Parameters:
    ///   - classCount: a saved model's number of classes (labels must lie below it); else the
    ///     largest label of either set + 1.
    ///   - inputShape: a saved model's input shape, which the examples must have.
    /// - Throws: `DataError` naming the file: what `LabeledData.loadNumPy` refuses, test examples of
    ///   another shape than the training ones', examples of another shape than the model's.
    func loadNumPySets(classCount: Int?, inputShape: [Int]?, needTrain: Bool) throws -> (train: LabeledData?, test: LabeledData) {
        func read(_ inputs: String, _ labels: String) throws -> LabeledData {
            let (data, notes) = try LabeledData.loadNumPy(inputs: inputs, labels: labels, classCount: classCount)
            for note in notes { printError("note: " + note) }
            if let inputShape, data.exampleShape != inputShape {
                throw DataError("\(inputs): examples of shape \(data.exampleShape), the model expects \(inputShape)")
            }
            return data
        }
        var train: LabeledData?, test: LabeledData
        if let testData, let testLabels {
            test = try read(testData, testLabels)
            if needTrain || inputShape == nil {
                let t = try read(path, labels!)
                guard t.exampleShape == test.exampleShape else {
                    throw DataError("\(testData): examples of shape \(test.exampleShape) differ from \(path)'s \(t.exampleShape)")
                }
                train = t
            }
        } else {
            (train, test) = try heldOut(try read(path, labels!))
        }
        if classCount == nil, var t = train {
            let classes = max(t.classCount, test.classCount)
            t.classCount = classes
            test.classCount = classes
            train = t
        }
        return (needTrain ? try cut(train!, to: limit) : nil, try cut(test, to: testLimit))
    }

    /// Training and test sets from one set: a permutation of its examples with `heldOutSplitSeed`
    /// (`seededPermutation`) puts its first 20% (at least one example) in the test set and the rest in
    /// the training set, each kept in the examples' order — not the last 20%, which in a folder sorted
    /// by class would be whole classes. A note says so.
    /// - Throws: `DataError` naming `--data` when it holds fewer than two examples.
    func heldOut(_ all: LabeledData) throws -> (train: LabeledData, test: LabeledData) {
        let n = all.count
        guard n >= 2 else {
            throw DataError("\(path): \(n) example\(n == 1 ? "" : "s"); holding out a test set needs at least 2 (or pass --test-data)")
        }
        let testCount = n - max(1, n * 4 / 5)
        let order = seededPermutation(n, seed: heldOutSplitSeed)
        let test = try all.subset(order[0..<testCount].sorted()), train = try all.subset(order[testCount...].sorted())
        printError("note: \(path): no --test-data, so \(testCount) of the \(n) examples (20%, drawn by a permutation with seed \(heldOutSplitSeed)) \(testCount == 1 ? "is" : "are") the test set and the other \(n - testCount) the training set")
        return (train, test)
    }

    /// The first `limit` examples (all when nil).
    private func cut(_ data: LabeledData, to limit: Int?) throws -> LabeledData {
        guard let limit, limit < data.count else { return data }
        return try data.prefix(limit)
    }
}

extension LabeledData {
    /// The examples at `indices`, in that order (classification data).
    func subset(_ indices: [Int]) throws -> LabeledData {
        var features: [Float] = [], labels: [Int32] = []
        gather(indices[...], into: &features, labels: &labels)
        return try LabeledData(features: features, labels: labels, exampleShape: exampleShape, classCount: classCount)
    }
}
