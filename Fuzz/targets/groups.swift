// Fuzz target: the feature files of `prism explain` — a segmentation map (`--segments`, .npy or JSON
// labels checked against an image's size) and column groups (`--groups`, JSON groups of column
// names or indices, resolved and checked against a table's columns).
// A thrown DataError is the expected answer to a bad file; a trap or a sanitizer report is a defect.
import PrismFormats

let columnNames = ["a", "b", "c", "d", "size", "colour", "x1"]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGroups(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    if bytes.starts(with: [0x93] + Array("NUMPY".utf8)) {
        for (h, w) in [(3, 4), (2, 2), (1, 1)] { _ = try? SegmentationMap.labels(bytes, path: "fuzz.npy", height: h, width: w) }
        return 0
    }
    for (h, w) in [(3, 4), (2, 2)] { _ = try? SegmentationMap.labels(bytes, path: "fuzz.json", height: h, width: w) }
    if let groups = try? ColumnGroups.parse(bytes, path: "fuzz.json", columnNames: columnNames),
       let (map, names) = try? ColumnGroups.featureMap(groups, columnNames: columnNames) {
        // Every column has a feature and every feature a name.
        guard map.count == columnNames.count, map.allSatisfy({ $0 >= 0 && Int($0) < names.count }) else {
            fatalError("feature map \(map) does not fit \(names.count) names")
        }
    }
    return 0
}
