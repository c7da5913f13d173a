import Foundation

/// Examples read from the user's files, ready for a model: values, where each came from, and what
/// was done to them.
public struct InputBatch: Sendable {
    /// Row-major, count × shape.
    public var values: [Float]
    public var count: Int
    /// The shape of one example (the model's input shape).
    public var shape: [Int]
    /// One name per example: "shoe.png", "x.npy[3]", "rows.csv row 2".
    public var sources: [String]
    /// One line per transform applied (resizing, channel mapping, scaling of uint8 data, …).
    public var notes: [String]

    public init(values: [Float], count: Int, shape: [Int], sources: [String], notes: [String]) {
        self.values = values
        self.count = count
        self.shape = shape
        self.sources = sources
        self.notes = notes
    }

    mutating func append(_ other: InputBatch) {
        values += other.values
        count += other.count
        sources += other.sources
        notes += other.notes
    }
}

/// Reads a model's inputs from PNG, JPEG, NumPy `.npy` and CSV files.
///
/// PNG and JPEG are recognised by their first bytes and `.npy` by its magic, whatever the file's
/// name; a file that is none of these is read as CSV when its name ends in `.csv`.
/// - Images (models with inputs [C, H, W]): samples scaled to [0, 1] as torchvision's `ToTensor`,
///   channels mapped as `ImageFile.mapped(toChannels:policy:name:)` says, then resized to H × W
///   with `resize` (see `ResizeFilter.bilinear`, which matches PIL and torchvision).
/// - `.npy` (float32, float64 or uint8; uint8 divided by 255): shape N × inputShape, or inputShape
///   for a single example.
/// - CSV with a header row and no label column: columns matched by name to `featureNames`.
public enum InputFiles {
    /// Reads every file in `paths`, in order, into one batch.
    /// - Parameters:
    ///   - inputShape: the model's input shape without the batch axis ([C, H, W] or [F]).
    ///   - featureNames: the model's feature names, needed for CSV files.
    ///   - ignoring: CSV columns that are not features and may be present.
    ///   - channels: whether an RGB image may be reduced to luma for a 1-channel model.
    ///   - resize: how an image of another size is brought to H × W.
    ///   - integers: the model's input is integer (token ids): .npy files may hold integers, taken as
    ///     they are, and images are refused.
    /// - Throws: `DataError`, one line naming the file and what does not fit.
    public static func load(paths: [String], inputShape: [Int], featureNames: [String]? = nil, ignoring: [String] = [],
                            channels: ImageFile.ChannelPolicy = .strict, resize: ResizeFilter = .bilinear, integers: Bool = false) throws -> InputBatch {
        guard !paths.isEmpty else { throw DataError("inputs: no files given") }
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 > 0 }), let size = HostMemory.product(inputShape), size <= ImageFile.maximumSamples else {
            throw DataError("inputs: the model's input shape \(inputShape) is not usable (1 to \(ImageFile.maximumSamples) values per example)")
        }
        var batch = InputBatch(values: [], count: 0, shape: inputShape, sources: [], notes: [])
        for path in paths {
            let bytes = try readFile(path)
            let name = (path as NSString).lastPathComponent
            if integers, !bytes.starts(with: [0x93] + Array("NUMPY".utf8)) {
                throw DataError("\(name): the model takes integers (token ids) of shape \(inputShape); give them as a .npy array")
            }
            if ImageFile.format(of: bytes) != nil {
                let image = try ImageFile.decode(bytes, name: name)
                let (values, note) = try fit(image, name: name, inputShape: inputShape, channels: channels, resize: resize)
                batch.append(InputBatch(values: values, count: 1, shape: inputShape, sources: [name], notes: note.map { [$0] } ?? []))
            } else if bytes.starts(with: [0x93] + Array("NUMPY".utf8)) {
                batch.append(try examples(try NumPyArray.parse(bytes, name: name), name: name, inputShape: inputShape, integers: integers))
            } else if name.lowercased().hasSuffix(".csv") {
                guard let featureNames else { throw DataError("\(name): CSV inputs need the model's feature names (this model takes \(inputShape))") }
                guard inputShape == [featureNames.count] else {
                    throw DataError("\(name): CSV rows hold features, the model takes inputs of shape \(inputShape)")
                }
                batch.append(try csvRows(bytes, name: name, featureNames: featureNames, ignoring: ignoring))
            } else {
                throw DataError("\(name): not a PNG, JPEG, .npy or .csv file")
            }
        }
        return batch
    }

    /// Reads CSV rows of features (a header row, no label column), matching columns by name to the
    /// model's features; the values come in the order of `featureNames`.
    /// - Parameters:
    ///   - featureNames: the model's features, in its input order.
    ///   - ignoring: other columns that may be present and are skipped.
    /// - Throws: `DataError` naming the file: a missing feature column, a column that is neither a
    ///   feature nor ignored, a repeated column name, a row of the wrong width, a cell that is not a
    ///   finite number (with its row, 1-based counting the header, and column), no data rows.
    public static func loadCSV(path: String, featureNames: [String], ignoring: [String] = []) throws -> InputBatch {
        let name = (path as NSString).lastPathComponent
        return try csvRows(try readFile(path), name: name, featureNames: featureNames, ignoring: ignoring)
    }

    /// An image brought to the model's [C, H, W]: channels mapped, then resized; and the note.
    static func fit(_ image: ImageFile, name: String, inputShape: [Int], channels policy: ImageFile.ChannelPolicy,
                    resize: ResizeFilter) throws -> (values: [Float], note: String?) {
        let (values, steps) = try fitSteps(image, name: name, inputShape: inputShape, channels: policy, resize: resize)
        guard !steps.isEmpty else { return (values, nil) }
        let depth = image.bitDepth == 16 ? " 16-bit" : ""
        return (values, "\(name): \(image.height)×\(image.width) (height×width)\(depth) \(image.colorType) image: " + steps.joined(separator: ", "))
    }

    /// An image brought to the model's [C, H, W], and the steps taken (none when it fitted as is).
    static func fitSteps(_ image: ImageFile, name: String, inputShape: [Int], channels policy: ImageFile.ChannelPolicy,
                         resize: ResizeFilter) throws -> (values: [Float], steps: [String]) {
        guard inputShape.count == 3 else {
            throw DataError("\(name): an image, but the model takes inputs of shape \(inputShape), not [channels, height, width]")
        }
        let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        let (mapped, channelNote) = try image.mapped(toChannels: c, policy: policy, name: name)
        var steps = channelNote.map { [$0] } ?? []
        var values = mapped.values
        if (mapped.height, mapped.width) != (h, w) {
            guard resize == .bilinear else {
                throw DataError("\(name): the image is \(image.height)×\(image.width) (height×width), the model takes \(h)×\(w)")
            }
            values = ImageResize.bilinear(values, channels: c, height: mapped.height, width: mapped.width, toHeight: h, toWidth: w)
            steps.append("resized to \(h)×\(w) (bilinear, antialiased as PIL and torchvision)")
        }
        return (values, steps)
    }

    /// The examples of a .npy array: shape N × inputShape, or inputShape for one.
    static func examples(_ array: NumPyArray, name: String, inputShape: [Int], integers: Bool = false) throws -> InputBatch {
        if integers {
            guard array.kind == "i" || array.kind == "u" || array.kind == "f" else {
                throw DataError("\(name): .npy dtype \(array.descr) is not accepted for token ids (integers, or floats of whole numbers)")
            }
        } else {
            guard (array.kind == "f") || (array.kind == "u" && array.itemSize == 1) else {
                throw DataError("\(name): .npy dtype \(array.descr) is not accepted for inputs (float32, float64 or uint8)")
            }
        }
        let count: Int, sources: [String]
        if array.shape == inputShape {
            (count, sources) = (1, [name])
        } else if array.shape.count == inputShape.count + 1, Array(array.shape.dropFirst()) == inputShape {
            count = array.shape[0]
            sources = (0..<count).map { "\(name)[\($0)]" }
        } else {
            throw DataError("\(name): shape \(array.shape) does not fit the model's inputs \(inputShape) (expected [N, \(inputShape.map(String.init).joined(separator: ", "))] or \(inputShape))")
        }
        guard count > 0 else { throw DataError("\(name): holds no examples (shape \(array.shape))") }
        var values = array.floats(), notes: [String] = []
        if integers {
            // Ids as floats are exact below 2^24; larger ones are refused rather than rounded.
            if let i = (0..<array.count).first(where: { abs(array.double(at: $0)) >= 16_777_216 || array.double(at: $0).rounded() != array.double(at: $0) }) {
                throw DataError("\(name): value \(array.double(at: i)) at flat index \(i) is not a token id (a whole number below 2^24)")
            }
        } else if array.kind == "u" {
            values = values.map { $0 / 255 }
            notes.append("\(name): uint8 values divided by 255 to [0, 1]")
        } else if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw DataError("\(name): value \(values[i]) at flat index \(i) is not finite")
        }
        return InputBatch(values: values, count: count, shape: inputShape, sources: sources, notes: notes)
    }

    /// Feature rows of a CSV file's bytes (see `loadCSV`).
    static func csvRows(_ bytes: [UInt8], name: String, featureNames: [String], ignoring: [String]) throws -> InputBatch {
        let csv = try CSVTable.parse(bytes, name: name)
        let header = csv.header
        let missing = featureNames.filter { !header.contains($0) }
        guard missing.isEmpty else {
            throw DataError("\(name): no column \(missing.map { "'\($0)'" }.joined(separator: ", ")) (the model's features: \(featureNames.joined(separator: ", ")))")
        }
        let extra = header.filter { !featureNames.contains($0) && !ignoring.contains($0) }
        guard extra.isEmpty else {
            throw DataError("\(name): column \(extra.map { "'\($0)'" }.joined(separator: ", ")) is not one of the model's features (list it as ignored to skip it)")
        }
        let indices = featureNames.map { header.firstIndex(of: $0)! }
        var values: [Float] = [], sources: [String] = []
        let blank = csv.blankLines
        values.reserveCapacity(csv.rows.count * indices.count)
        for (line, row) in csv.rows {
            for c in indices { values.append(try csv.number(row, column: c, line: line, name: name)) }
            sources.append("\(name) row \(line)")
        }
        guard !sources.isEmpty else { throw DataError("\(name): no data rows") }
        var notes: [String] = []
        if blank > 0 { notes.append("\(name): \(blank) blank row\(blank > 1 ? "s" : "") skipped") }
        let ignored = header.filter { ignoring.contains($0) }
        if !ignored.isEmpty { notes.append("\(name): column\(ignored.count > 1 ? "s" : "") \(ignored.joined(separator: ", ")) ignored") }
        if indices != indices.sorted() { notes.append("\(name): columns taken in the model's order (\(featureNames.joined(separator: ", ")))") }
        return InputBatch(values: values, count: sources.count, shape: [featureNames.count], sources: sources, notes: notes)
    }
}
