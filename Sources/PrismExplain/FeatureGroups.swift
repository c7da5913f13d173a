import Foundation

/// How input elements form the features (players) of an explanation: each element belongs to one
/// feature index in 0..<featureCount, or to none (−1: always taken from the instance).
public struct FeatureGroups: Equatable, Sendable {
    /// For each input element, its feature index or −1.
    public let elementFeature: [Int32]
    /// Number of features.
    public let featureCount: Int

    /// Groups from an explicit element → feature map.
    /// - Throws: `ExplainError` when an index is below −1 or some feature in 0..<featureCount owns no element.
    public init(elementFeature: [Int32], featureCount: Int) throws {
        if let bad = elementFeature.first(where: { $0 < -1 || Int($0) >= featureCount }) {
            throw ExplainError("feature groups: element feature \(bad) outside -1..<\(featureCount)")
        }
        var owned = [Bool](repeating: false, count: featureCount)
        for f in elementFeature where f >= 0 { owned[Int(f)] = true }
        if let empty = owned.firstIndex(of: false) {
            throw ExplainError("feature groups: feature \(empty) owns no input element")
        }
        self.elementFeature = elementFeature
        self.featureCount = featureCount
    }

    /// For maps that are valid by construction.
    private init(checked elementFeature: [Int32], featureCount: Int) {
        self.elementFeature = elementFeature
        self.featureCount = featureCount
    }

    /// Every input element is its own feature (tabular columns, single pixels).
    public static func elements(_ count: Int) -> FeatureGroups {
        FeatureGroups(checked: (0..<count).map(Int32.init), featureCount: count)
    }

    /// Square superpixels of `cell`×`cell` pixels over a [channels, height, width] image, numbered
    /// row by row; all channels of a pixel share its superpixel. Edge cells may be smaller
    /// (28×28 with cell 4 gives 7×7 = 49 features).
    /// - Throws: `ExplainError` for a non-positive size.
    public static func grid(channels: Int, height: Int, width: Int, cell: Int) throws -> FeatureGroups {
        guard channels > 0, height > 0, width > 0, cell > 0 else {
            throw ExplainError("grid superpixels: sizes must be positive (channels \(channels), \(height)×\(width), cell \(cell))")
        }
        let rows = (height + cell - 1) / cell, cols = (width + cell - 1) / cell
        var map = [Int32](repeating: 0, count: channels * height * width)
        for c in 0..<channels {
            for h in 0..<height {
                for w in 0..<width {
                    map[(c * height + h) * width + w] = Int32((h / cell) * cols + w / cell)
                }
            }
        }
        return FeatureGroups(checked: map, featureCount: rows * cols)
    }

    /// Groups from a segmentation map: one integer label per pixel of a [height, width] image (all
    /// channels share it); labels are renumbered 0..<count in order of first appearance.
    public static func segments(_ labels: [Int], channels: Int, height: Int, width: Int) throws -> FeatureGroups {
        guard labels.count == height * width else {
            throw ExplainError("segmentation map has \(labels.count) labels for a \(height)×\(width) image")
        }
        var index: [Int: Int32] = [:]
        let perPixel = labels.map { label -> Int32 in
            if let i = index[label] { return i }
            let i = Int32(index.count)
            index[label] = i
            return i
        }
        var map: [Int32] = []
        map.reserveCapacity(channels * labels.count)
        for _ in 0..<channels { map += perPixel }
        return try FeatureGroups(elementFeature: map, featureCount: index.count)
    }
}

extension FeatureGroups {
    /// Groups from a segmentation map file (see `segments(_:channels:height:width:)`): a NumPy `.npy`
    /// array of integers (int8…int64, uint8…uint64, or floats holding whole numbers; C order) or a JSON
    /// array of integers, flat or nested, with height × width labels.
    /// - Throws: `ExplainError` naming the file: unreadable, not a .npy or JSON array of integers, an
    ///   unsupported dtype, or a label count that does not fit the image.
    public static func segments(file path: String, channels: Int, height: Int, width: Int) throws -> FeatureGroups {
        guard let data = FileManager.default.contents(atPath: path) else { throw ExplainError("\(path): cannot read the segmentation map") }
        let labels: [Int]
        if path.lowercased().hasSuffix(".npy") {
            let array = try npyIntegers(Array(data), path: path)
            guard [[height, width], [height * width], [1, height, width]].contains(array.shape) else {
                throw ExplainError("\(path): segmentation map has shape \(array.shape), the image needs [\(height), \(width)] (or [\(height * width)])")
            }
            labels = array.values
        } else {
            labels = try jsonIntegers(data, path: path)
        }
        guard labels.count == height * width else {
            throw ExplainError("\(path): segmentation map has \(labels.count) labels, the \(height)×\(width) image needs \(height * width)")
        }
        return try segments(labels, channels: channels, height: height, width: width)
    }

    /// Tabular groups of columns: each group is one feature; columns in no group are features of their
    /// own, after the groups. Returns the groups and the features' names (group names, then the
    /// remaining columns' names).
    /// - Parameters:
    ///   - groups: (name, column indices) per group, in order.
    ///   - columnNames: every column's name.
    /// - Throws: `ExplainError` for an empty group, a column outside the data or in two groups.
    public static func columns(_ groups: [(name: String, columns: [Int])], columnNames: [String]) throws -> (groups: FeatureGroups, names: [String]) {
        var map = [Int32](repeating: -1, count: columnNames.count)
        var names: [String] = []
        for (g, group) in groups.enumerated() {
            guard !group.columns.isEmpty else { throw ExplainError("feature groups: group '\(group.name)' has no columns") }
            for c in group.columns {
                guard c >= 0, c < columnNames.count else {
                    throw ExplainError("feature groups: group '\(group.name)' names column \(c), the data has \(columnNames.count)")
                }
                guard map[c] < 0 else {
                    throw ExplainError("feature groups: column '\(columnNames[c])' is in group '\(groups[Int(map[c])].name)' and in '\(group.name)'")
                }
                map[c] = Int32(g)
            }
            names.append(group.name)
        }
        for c in map.indices where map[c] < 0 {
            map[c] = Int32(names.count)
            names.append(columnNames[c])
        }
        return (try FeatureGroups(elementFeature: map, featureCount: names.count), names)
    }
}

/// The integers of a NumPy .npy file (format 1.0–3.0, little-endian or single-byte types, C order)
/// and the array's shape.
func npyIntegers(_ bytes: [UInt8], path: String) throws -> (values: [Int], shape: [Int]) {
    guard bytes.count >= 10, bytes[0] == 0x93, String(decoding: bytes[1..<6], as: UTF8.self) == "NUMPY" else {
        throw ExplainError("\(path): not a .npy file (bad magic)")
    }
    let major = bytes[6]
    guard (1...3).contains(major) else { throw ExplainError("\(path): .npy format version \(major) is not supported (1 to 3)") }
    let headerLength: Int, start: Int
    if major == 1 {
        headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        start = 10
    } else {
        guard bytes.count >= 12 else { throw ExplainError("\(path): truncated .npy header") }
        headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        start = 12
    }
    guard bytes.count >= start + headerLength else { throw ExplainError("\(path): truncated .npy header") }
    let header = String(decoding: bytes[start..<(start + headerLength)], as: UTF8.self)
    func field(_ key: String) -> String? {
        guard let range = header.range(of: "'\(key)':") else { return nil }
        return String(header[range.upperBound...]).trimmingCharacters(in: .whitespaces)
    }
    guard let descrField = field("descr"), let quote = descrField.first, quote == "'" || quote == "\"",
          let end = descrField.dropFirst().firstIndex(of: quote) else { throw ExplainError("\(path): .npy header has no dtype") }
    let descr = String(descrField[descrField.index(after: descrField.startIndex)..<end])
    if field("fortran_order")?.hasPrefix("True") == true { throw ExplainError("\(path): Fortran-ordered .npy arrays are not supported") }
    guard let shapeField = field("shape"), shapeField.first == "(", let close = shapeField.firstIndex(of: ")") else {
        throw ExplainError("\(path): .npy header has no shape")
    }
    let shape = shapeField[shapeField.index(after: shapeField.startIndex)..<close].split(separator: ",")
        .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.compactMap { Int($0) }
    let body = Array(bytes[(start + headerLength)...])
    func little(_ i: Int, _ size: Int) -> UInt64 { (0..<size).reduce(UInt64(0)) { $0 | UInt64(body[i * size + $1]) << (8 * UInt64($1)) } }
    guard descr.count >= 3, let size = Int(descr.dropFirst(2)), [1, 2, 4, 8].contains(size),
          descr.first == "<" || descr.first == "|" || (size == 1 && descr.first == "=") else {
        throw ExplainError("\(path): .npy dtype \(descr) is not supported (integers or floats, little-endian)")
    }
    let count = shape.reduce(1, *)
    guard body.count >= count * size else { throw ExplainError("\(path): .npy data holds fewer than the \(count) values of shape \(shape)") }
    let values: [Int]
    switch descr.dropFirst().first {
    case "i":
        values = (0..<count).map { i in
            let raw = little(i, size), shift = UInt64(64 - 8 * size)
            return Int(Int64(bitPattern: raw << shift) >> Int64(shift))
        }
    case "u":
        values = try (0..<count).map { i in
            let raw = little(i, size)
            guard raw <= UInt64(Int.max) else { throw ExplainError("\(path): label \(raw) is too large") }
            return Int(raw)
        }
    case "f":
        guard size == 4 || size == 8 else { throw ExplainError("\(path): .npy dtype \(descr) is not supported") }
        values = try (0..<count).map { i in
            let v = size == 8 ? Double(bitPattern: little(i, 8)) : Double(Float(bitPattern: UInt32(little(i, 4))))
            guard v.isFinite, v == v.rounded(), abs(v) < 1e15 else { throw ExplainError("\(path): value \(v) at \(i) is not a whole number") }
            return Int(v)
        }
    default:
        throw ExplainError("\(path): .npy dtype \(descr) is not supported (integers or floats)")
    }
    return (values, shape)
}

/// The integers of a JSON array, flat or nested.
func jsonIntegers(_ data: Data, path: String) throws -> [Int] {
    /// An integer or an array of them, nested.
    enum Labels: Decodable {
        case one(Int)
        case many([Labels])
        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let n = try? container.decode(Int.self) { self = .one(n) } else { self = .many(try container.decode([Labels].self)) }
        }
        var flat: [Int] {
            switch self {
            case let .one(n): return [n]
            case let .many(list): return list.flatMap(\.flat)
            }
        }
    }
    guard let labels = try? JSONDecoder().decode([Labels].self, from: data) else {
        throw ExplainError("\(path): not a JSON array of integer labels")
    }
    return labels.flatMap(\.flat)
}

/// An error in setting up or running an explanation.
public struct ExplainError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
