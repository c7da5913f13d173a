import Foundation
import Prism
import Testing

/// CSV files built to hurt: each gives one line naming the file and the row (the line it starts
/// on) and column, never the file's contents.
@Suite struct HostileCSVTests {
    func parse(_ bytes: [UInt8], limit: Int? = nil) -> Result<CSVTable, DataError> {
        do { return .success(try CSVTable.parse(bytes, name: "f.csv", limit: limit)) } catch let e as DataError {
            return .failure(e)
        } catch { return .failure(DataError("\(error)")) }
    }

    func message(_ text: String) -> String { message(Array(text.utf8)) }
    func message(_ bytes: [UInt8]) -> String {
        if case let .failure(e) = parse(bytes) { return e.description }
        return "no error"
    }

    @Test func unterminatedQuoteIsOneLineNamingWhereItOpened() {
        // 150 lines after an opening quote: the old reader dumped them all in its message.
        let text = "a,b\n1,2\n3,\"4\n" + String(repeating: "5,6\n", count: 150)
        let m = message(text)
        #expect(m == "f.csv: row 3: a quoted cell opened on line 3 is never closed")
        #expect(message("a,b\n1,\"2\"x\n") == "f.csv: row 2, column 2: characters after a closing quote")
    }

    @Test func rowsAreNamedByTheLineTheyStartOn() {
        // A quoted cell spanning lines and a blank line before the long row: it starts on line 6.
        let text = "a,b\n1,\"x\ny\"\n\n3,4\n5,6,7\n"
        #expect(message(text) == "f.csv: row 6 has 3 cells, the header has 2")
        guard case let .success(table) = parse(Array("a,b\r\n\r\n1,2\r\n  \r\n3,\"4\"\"\"\r\n".utf8)) else {
            Issue.record("should parse"); return
        }
        #expect(table.header == ["a", "b"] && table.blankLines == 2)
        #expect(table.rows.map(\.line) == [3, 5] && table.rows.map(\.cells) == [["1", "2"], ["3", "4\""]])
        guard case let .success(first) = parse(Array("a\n1\n2\n3,3\n".utf8), limit: 2) else { Issue.record("limit"); return }
        #expect(first.rows.map(\.cells) == [["1"], ["2"]])
    }

    @Test func emptyFilesDuplicateColumnsAndNonUTF8CellsAreRefused() {
        #expect(message("") == "f.csv: empty file (a CSV file starts with a header row)")
        #expect(message("\n\n  \n") == "f.csv: empty file (a CSV file starts with a header row)")
        #expect(message([0xEF, 0xBB, 0xBF]) == "f.csv: empty file (a CSV file starts with a header row)")
        #expect(message("x, y ,x\n1,2,3\n") == "f.csv: column 'x' appears twice in the header (columns 1 and 3)")
        #expect(message(Array("a,b\n1,2\n3,".utf8) + [0xFF, 0xFE] + Array("\n".utf8)) == "f.csv: row 3, column 'b': not UTF-8 text")
        #expect(message([0x61, 0xC3, 0x28, 0x0A, 0x31, 0x0A]) == "f.csv: row 1, column 1: not UTF-8 text")
    }

    @Test func loadersTakeTheTableAndItsMessages() throws {
        let dir = NSTemporaryDirectory() + "prism-hostile-csv-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/t.csv"
        try Data("a,y\n\n1,0\n\n2,1\n3,\"".utf8).write(to: URL(fileURLWithPath: path))
        let tabular = { () -> String in
            do { _ = try TabularDataset.loadCSV(path: path, label: "y"); return "no error" } catch { return "\(error)" }
        }()
        #expect(tabular == "t.csv: row 6: a quoted cell opened on line 6 is never closed")
        // Blank lines skipped; rows numbered by their lines; a limit stops before the bad row.
        let two = try TabularDataset.loadCSV(path: path, label: "y", limit: 2)
        #expect(two.features == [1, 2] && two.labels == [0, 1])
        let inputs = { () -> String in
            do { _ = try InputFiles.loadCSV(path: path, featureNames: ["a"], ignoring: ["y"]); return "no error" } catch { return "\(error)" }
        }()
        #expect(inputs == "t.csv: row 6: a quoted cell opened on line 6 is never closed")
        // A long cell is elided in messages.
        try Data(("a,y\n" + String(repeating: "z", count: 5000) + ",0\n").utf8).write(to: URL(fileURLWithPath: path))
        let long = { () -> String in
            do { _ = try TabularDataset.loadCSV(path: path, label: "y"); return "no error" } catch { return "\(error)" }
        }()
        #expect(long == "t.csv: row 2, column 'a': '\(String(repeating: "z", count: 40))…' is not a finite number")
    }
}
