import Foundation
import Prism

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
    /// array of integers, flat or nested, with height × width labels (read by `SegmentationMap`).
    /// - Throws: `ExplainError` naming the file: unreadable, not a .npy or JSON array of integers, an
    ///   unsupported dtype, or a label count that does not fit the image.
    public static func segments(file path: String, channels: Int, height: Int, width: Int) throws -> FeatureGroups {
        guard let data = FileManager.default.contents(atPath: path) else { throw ExplainError("\(path): cannot read the segmentation map") }
        let labels: [Int]
        do {
            labels = try SegmentationMap.labels(Array(data), path: path, height: height, width: width)
        } catch let error as DataError {
            throw ExplainError(error.message)
        }
        return try segments(labels, channels: channels, height: height, width: width)
    }

    /// Tabular groups of columns: each group is one feature; columns in no group are features of their
    /// own, after the groups (see `ColumnGroups.featureMap`). Returns the groups and the features'
    /// names (group names, then the remaining columns' names).
    /// - Parameters:
    ///   - groups: (name, column indices) per group, in order.
    ///   - columnNames: every column's name.
    /// - Throws: `ExplainError` for an empty group, a column outside the data or in two groups, two
    ///   groups of one name, or a group named as a column that is in no group.
    public static func columns(_ groups: [(name: String, columns: [Int])], columnNames: [String]) throws -> (groups: FeatureGroups, names: [String]) {
        let map: [Int32], names: [String]
        do {
            (map, names) = try ColumnGroups.featureMap(groups, columnNames: columnNames)
        } catch let error as DataError {
            throw ExplainError(error.message)
        }
        return (try FeatureGroups(elementFeature: map, featureCount: names.count), names)
    }
}
