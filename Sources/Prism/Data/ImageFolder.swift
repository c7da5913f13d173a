import Foundation

extension ImageDataset {
    /// Reads a folder of images with one subfolder per class, as torchvision's `ImageFolder`: the
    /// classes are the subfolders' names in sorted order (by Unicode code points, as Python sorts),
    /// label i for the i-th; each class's images are its files, recursively, in sorted order (a
    /// folder's files before its subfolders'). Hidden files and folders (names starting with ".")
    /// are skipped. Images are decoded, mapped to `channels` and resized to height × width as
    /// `InputFiles.load` does.
    /// - Parameters:
    ///   - channels: the channels every image is brought to (1 or 3, say).
    ///   - policy: whether RGB images may be reduced to luma for `channels == 1`.
    ///   - resize: how images of another size are brought to height × width.
    /// - Returns: the dataset, the class names in label order, and one note per kind of transform
    ///   applied with how many images it applied to.
    /// - Throws: `DataError`, one line naming the folder or file: not a folder, a plain file beside
    ///   the class folders, no classes, an empty class, a file that is not a PNG or JPEG image or
    ///   cannot be decoded or mapped.
    public static func loadImageFolder(directory: String, height: Int, width: Int, channels: Int,
                                       policy: ImageFile.ChannelPolicy = .strict, resize: ResizeFilter = .bilinear)
        throws -> (dataset: ImageDataset, classes: [String], notes: [String]) {
        guard height > 0, width > 0, channels > 0, let size = HostMemory.product([channels, height, width]), size <= ImageFile.maximumSamples else {
            throw DataError("\(directory): image size \(channels)×\(height)×\(width) is not usable")
        }
        let classEntries = try imageFolderFiles(directory: directory)
        let shape = [channels, height, width]
        var pixels: [Float] = [], labels: [Int32] = [], stepCounts: [String: Int] = [:], stepOrder: [String] = []
        for (label, entry) in classEntries.enumerated() {
            for file in entry.files {
                let image = try ImageFile.decode(try readFile(file), name: file)
                let (values, steps) = try InputFiles.fitSteps(image, name: file, inputShape: shape, channels: policy, resize: resize)
                pixels += values
                labels.append(Int32(label))
                for step in steps {
                    if stepCounts[step] == nil { stepOrder.append(step) }
                    stepCounts[step, default: 0] += 1
                }
            }
        }
        let dataset = try ImageDataset(pixels: pixels, labels: labels, channels: channels, height: height, width: width,
                                       classCount: classEntries.count)
        let notes = stepOrder.map { "\(directory): \(stepCounts[$0]!) of \(labels.count) images \($0)" }
        return (dataset, classEntries.map(\.name), notes)
    }

    /// The classes of an image folder and their files, in the order `loadImageFolder` reads them
    /// (without reading the files).
    /// - Throws: `DataError`, one line naming the folder: not a folder, a plain file beside the
    ///   class folders, no classes, an empty class.
    public static func imageFolderFiles(directory: String) throws -> [(name: String, files: [String])] {
        let classEntries = try visibleEntries(directory)
        if let file = classEntries.first(where: { !$0.isDirectory }) {
            throw DataError("\(file.path): a file beside the class folders (an image folder holds one subfolder per class)")
        }
        guard !classEntries.isEmpty else { throw DataError("\(directory): no class folders (an image folder holds one subfolder per class)") }
        return try classEntries.map { entry in
            let files = try imageFiles(entry.path)
            guard !files.isEmpty else { throw DataError("\(entry.path): class '\(entry.name)' holds no images") }
            return (entry.name, files)
        }
    }

    /// The entries of a folder not starting with ".", sorted by code points.
    private static func visibleEntries(_ directory: String) throws -> [(name: String, path: String, isDirectory: Bool)] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else { throw DataError("\(directory): no such folder") }
        guard isDirectory.boolValue else { throw DataError("\(directory): not a folder") }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { throw DataError("\(directory): cannot list the folder") }
        return names.filter { !$0.hasPrefix(".") }
            .sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
            .map { name in
                let path = (directory as NSString).appendingPathComponent(name)
                var isDirectory: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
                return (name, path, isDirectory.boolValue)
            }
    }

    /// A class folder's files, recursively: its own files in sorted order, then each subfolder's.
    /// Links are followed, but a folder already visited (a link to a folder above) is refused.
    private static func imageFiles(_ directory: String, visited: Set<String> = []) throws -> [String] {
        let real = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
        guard !visited.contains(real) else { throw DataError("\(directory): a link back to a folder it is in") }
        let entries = try visibleEntries(directory)
        var files = entries.filter { !$0.isDirectory }.map(\.path)
        for folder in entries where folder.isDirectory { files += try imageFiles(folder.path, visited: visited.union([real])) }
        return files
    }
}

extension LabeledData {
    /// Examples from a `.npy` array and integer labels from another: inputs of shape [N, …]
    /// (float32, float64, or uint8 divided by 255 to [0, 1], stated in the notes), labels of
    /// shape [N] (signed or unsigned integers, 0..<classCount).
    /// - Parameter classCount: the number of classes; the largest label + 1 when nil.
    /// - Returns: the data and the notes on transforms applied.
    /// - Throws: `DataError` naming the file: anything `NumPyArray.read` refuses, another dtype,
    ///   inputs of rank < 2, labels not of shape [N] or not integers, counts that differ, a
    ///   negative or out-of-range label.
    public static func loadNumPy(inputs: String, labels: String, classCount: Int? = nil) throws -> (data: LabeledData, notes: [String]) {
        let x = try NumPyArray.read(path: inputs), y = try NumPyArray.read(path: labels)
        guard x.shape.count >= 2, x.shape.dropFirst().allSatisfy({ $0 > 0 }) else {
            throw DataError("\(inputs): inputs of shape \(x.shape); expected [examples, …] with at least one value per example")
        }
        let batch = try InputFiles.examples(x, name: inputs, inputShape: Array(x.shape.dropFirst()))
        guard y.kind == "i" || y.kind == "u" else { throw DataError("\(labels): labels of dtype \(y.descr); expected integers") }
        guard y.shape.count == 1 else { throw DataError("\(labels): labels of shape \(y.shape); expected [\(x.shape[0])]") }
        guard y.shape[0] == batch.count else {
            throw DataError("\(labels): \(y.shape[0]) labels, but \(inputs) holds \(batch.count) examples")
        }
        let values = try y.integers(name: labels)
        if let i = values.firstIndex(where: { $0 < 0 || $0 > Int(Int32.max) }) {
            throw DataError("\(labels): label \(values[i]) at index \(i) is not a class index")
        }
        let classes = classCount ?? (values.max() ?? -1) + 1
        if let i = values.firstIndex(where: { $0 >= classes }) {
            throw DataError("\(labels): label \(values[i]) at index \(i) outside 0..<\(classes)")
        }
        let data = try LabeledData(features: batch.values, labels: values.map { Int32($0) }, exampleShape: batch.shape, classCount: classes)
        return (data, batch.notes)
    }
}
