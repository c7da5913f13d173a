import Foundation
import Prism
import Testing

/// The feature files of `prism explain` read from bytes (segmentation maps, column groups) and
/// tuning tables: answers written out by hand, and hostile files refused in one line.
@Suite struct FeatureFileTests {
    func message(_ body: () throws -> Any) -> String {
        do { _ = try body(); return "no error" } catch { return "\(error)" }
    }

    @Test func segmentationLabelsComeFlatFromNestedJSONAndShapedNpy() throws {
        #expect(try SegmentationMap.labels(Array("[[4, -1], [4, 7]]".utf8), path: "s.json", height: 2, width: 2) == [4, -1, 4, 7])
        #expect(try SegmentationMap.labels(Array("[[[1], 2], [3, [[4]]]]".utf8), path: "s.json", height: 1, width: 4) == [1, 2, 3, 4])
        var header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 3), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        let npy = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8) + [9, 8, 7, 9, 8, 0]
        #expect(try SegmentationMap.labels(npy, path: "m.NPY", height: 2, width: 3) == [9, 8, 7, 9, 8, 0])
        #expect(message { try SegmentationMap.labels(npy, path: "m.npy", height: 3, width: 2) }
            == "m.npy: segmentation map has shape [1, 2, 3], the image needs [3, 2] (or [6])")
    }

    @Test func hostileSegmentationMapsAreRefusedInOneLine() {
        #expect(message { try SegmentationMap.labels(Array("[1, 2]".utf8), path: "s.json", height: Int.max, width: 2) }
            == "s.json: a \(Int.max)×2 image cannot take a segmentation map")
        #expect(message { try SegmentationMap.labels(Array("[1, 2.5]".utf8), path: "s.json", height: 1, width: 2) }
            == "s.json: not a JSON array of integer labels")
        #expect(message { try SegmentationMap.labels(Array("[99999999999999999999]".utf8), path: "s.json", height: 1, width: 1) }
            == "s.json: not a JSON array of integer labels")
        // Deeply nested arrays are refused by the JSON reader, not by running out of stack.
        let deep = String(repeating: "[", count: 100_000) + "1" + String(repeating: "]", count: 100_000)
        #expect(message { try SegmentationMap.labels(Array(deep.utf8), path: "s.json", height: 1, width: 1) }
            == "s.json: not a JSON array of integer labels")
    }

    @Test func columnGroupsResolveNamesAndIndices() throws {
        let names = ["a", "b", "c", "d"]
        let groups = try ColumnGroups.parse(Array(#"[{"name": "g", "columns": ["d", 0]}, {"name": "h", "columns": [2]}]"#.utf8),
                                            path: "g.json", columnNames: names)
        #expect(groups.map(\.name) == ["g", "h"] && groups.map(\.columns) == [[3, 0], [2]])
        let (map, features) = try ColumnGroups.featureMap(groups, columnNames: names)
        #expect(map == [0, 2, 1, 0] && features == ["g", "h", "b"])
        #expect(message { try ColumnGroups.parse(Array(#"[{"name": "g", "columns": ["e"]}]"#.utf8), path: "g.json", columnNames: names) }
            == "g.json: group 'g' names column 'e', not among a, b, c, d")
        #expect(message { try ColumnGroups.parse(Array(#"[{"name": "g", "columns": [1]}, {"name": "g", "columns": [2]}]"#.utf8), path: "g.json", columnNames: names) }
            == "g.json: two groups are named 'g'")
        #expect(message { try ColumnGroups.parse(Array(#"{"name": "g"}"#.utf8), path: "g.json", columnNames: names) }
            == #"g.json: not a JSON array of {"name": …, "columns": [names or indices]} groups"#)
        #expect(message { try ColumnGroups.featureMap([("g", [Int.min])], columnNames: names) }
            == "feature groups: group 'g' names column \(Int.min), the data has 4")
        // Two columns of one name left in no group cannot be told apart.
        #expect(message { try ColumnGroups.featureMap([], columnNames: ["x", "x"]) }.hasPrefix("feature groups: group 'x' has the name of column 'x'"))
    }

    @Test func tuningTablesParseAndBadOnesAreNamed() throws {
        let table = try TuningTable.parse(Data(#"{"vendors": {"NVIDIA": {"devices": {"H100": {"m.cl": {"T": "8"}}}}}, "default": {"m.cl": {"T": "4"}}}"#.utf8), source: "t.json")
        #expect(table.defines(for: "m.cl", vendor: "NVIDIA Corporation", deviceName: "NVIDIA H100 PCIe") == ["T": "8"])
        #expect(table.defines(for: "m.cl", vendor: "AMD", deviceName: "H100") == ["T": "4"])
        #expect(table.defines(for: "other.cl", vendor: "NVIDIA", deviceName: "H100") == nil)
        #expect(message { try TuningTable.parse(Data(#"{"default": {"m.cl": {"T": 8}}}"#.utf8), source: "t.json") }.hasPrefix("tuning table t.json: not a valid table ("))
    }
}
