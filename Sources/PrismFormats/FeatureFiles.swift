import Foundation

/// The segmentation map files of `prism explain --segments`: one integer label per pixel of a
/// [height, width] image, as a NumPy `.npy` array or a JSON array (flat or nested).
public enum SegmentationMap {
    /// The labels of a segmentation map file's bytes, checked against the image's size.
    /// - Parameters:
    ///   - bytes: the file's contents; a `.npy` file (by `path`'s extension) holds integers (int8…int64,
    ///     uint8…uint64, booleans, or floats holding whole numbers; C order), any other file a JSON
    ///     array of integers, flat or nested.
    ///   - path: the file's path, for messages and to tell `.npy` from JSON.
    ///   - height: the image's height.
    ///   - width: the image's width.
    /// - Throws: `DataError` naming the file: not a .npy or JSON array of integers, an unsupported
    ///   dtype, a .npy shape other than [height, width], [height × width] or [1, height, width], or a
    ///   label count other than height × width.
    /// - Returns: height × width labels, row by row.
    public static func labels(_ bytes: [UInt8], path: String, height: Int, width: Int) throws -> [Int] {
        let (pixels, overflow) = height.multipliedReportingOverflow(by: width)
        guard !overflow else {
            throw DataError("\(path): a \(height)×\(width) image cannot take a segmentation map")
        }
        let labels: [Int]
        if path.lowercased().hasSuffix(".npy") {
            let array = try NumPyArray.parse(bytes, name: path)
            let values = try array.integers(name: path)
            guard [[height, width], [pixels], [1, height, width]].contains(array.shape) else {
                throw DataError("\(path): segmentation map has shape \(array.shape), the image needs [\(height), \(width)] (or [\(pixels)])")
            }
            labels = values
        } else {
            labels = try jsonIntegers(bytes, path: path)
        }
        guard labels.count == pixels else {
            throw DataError("\(path): segmentation map has \(labels.count) labels, the \(height)×\(width) image needs \(pixels)")
        }
        return labels
    }

    /// The integers of a JSON array, flat or nested.
    /// - Throws: `DataError` naming the file when the bytes are not such an array.
    static func jsonIntegers(_ bytes: [UInt8], path: String) throws -> [Int] {
        /// An integer or an array of them, nested.
        enum Labels: Decodable {
            case one(Int)
            case many([Labels])
            init(from decoder: Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let n = try? container.decode(Int.self) { self = .one(n) } else { self = .many(try container.decode([Labels].self)) }
            }
            func flatten(into list: inout [Int]) {
                switch self {
                case let .one(n): list.append(n)
                case let .many(items): for item in items { item.flatten(into: &list) }
                }
            }
        }
        guard let labels = try? JSONDecoder().decode([Labels].self, from: Data(bytes)) else {
            throw DataError("\(path): not a JSON array of integer labels")
        }
        var list: [Int] = []
        for label in labels { label.flatten(into: &list) }
        return list
    }
}

/// The column groups of `prism explain --groups`: a JSON array of
/// `{"name": …, "columns": [column names or 0-based indices]}`; each group is one feature, and
/// columns in no group are features of their own, after the groups.
public enum ColumnGroups {
    /// The groups of a groups file's bytes, with column names resolved to indices.
    /// - Parameters:
    ///   - bytes: the file's contents.
    ///   - path: the file's path, for messages.
    ///   - columnNames: every column's name.
    /// - Throws: `DataError` naming the file and the group for malformed JSON, two groups of one
    ///   name, or a column name that is not among `columnNames` (indices are checked by `featureMap`).
    /// - Returns: (name, column indices) per group, in the file's order.
    public static func parse(_ bytes: [UInt8], path: String, columnNames: [String]) throws -> [(name: String, columns: [Int])] {
        /// A column by name or index.
        enum Column: Decodable {
            case name(String), index(Int)
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let i = try? c.decode(Int.self) { self = .index(i) } else { self = .name(try c.decode(String.self)) }
            }
        }
        struct Group: Decodable { let name: String; let columns: [Column] }
        guard let groups = try? JSONDecoder().decode([Group].self, from: Data(bytes)) else {
            throw DataError("\(path): not a JSON array of {\"name\": …, \"columns\": [names or indices]} groups")
        }
        var seen = Set<String>()
        for group in groups where !seen.insert(group.name).inserted {
            throw DataError("\(path): two groups are named '\(group.name)'")
        }
        return try groups.map { group in
            (group.name, try group.columns.map { column in
                switch column {
                case let .index(i): return i
                case let .name(n):
                    guard let i = columnNames.firstIndex(of: n) else {
                        throw DataError("\(path): group '\(group.name)' names column '\(n)', not among \(columnNames.joined(separator: ", "))")
                    }
                    return i
                }
            })
        }
    }

    /// Each column's feature index and the features' names (group names, then the remaining
    /// columns' names).
    /// - Parameters:
    ///   - groups: (name, column indices) per group, in order.
    ///   - columnNames: every column's name.
    /// - Throws: `DataError` for an empty group, a column outside the data or in two groups, two
    ///   groups of one name, or a group named as a column that is in no group.
    public static func featureMap(_ groups: [(name: String, columns: [Int])], columnNames: [String]) throws -> (map: [Int32], names: [String]) {
        var map = [Int32](repeating: -1, count: columnNames.count)
        var names: [String] = []
        for (g, group) in groups.enumerated() {
            guard !group.columns.isEmpty else { throw DataError("feature groups: group '\(group.name)' has no columns") }
            for c in group.columns {
                guard c >= 0, c < columnNames.count else {
                    throw DataError("feature groups: group '\(group.name)' names column \(c), the data has \(columnNames.count)")
                }
                guard map[c] < 0 else {
                    throw DataError("feature groups: column '\(columnNames[c])' is in group '\(groups[Int(map[c])].name)' and in '\(group.name)'")
                }
                map[c] = Int32(g)
            }
            names.append(group.name)
        }
        var seen = Set<String>()
        for name in names where !seen.insert(name).inserted {
            throw DataError("feature groups: two groups are named '\(name)'")
        }
        for c in map.indices where map[c] < 0 {
            guard !seen.contains(columnNames[c]) else {
                throw DataError("feature groups: group '\(columnNames[c])' has the name of column '\(columnNames[c])', which is in no group (name the group otherwise or put the column in it)")
            }
            map[c] = Int32(names.count)
            names.append(columnNames[c])
            seen.insert(columnNames[c])
        }
        return (map, names)
    }
}
