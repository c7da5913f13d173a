import Foundation
import Prism
import PrismTestSupport
import Testing

@Suite struct TabularDatasetTests {
    func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "prism-csv-\(UUID().uuidString).csv"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func readsFeaturesAndLabelsByName() throws {
        let path = try write("a,species,b\n1.5,0,2\n-3,2,4e1\n0,1,\"5\"\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let data = try TabularDataset.loadCSV(path: path, label: "species")
        #expect(data.featureNames == ["a", "b"])
        #expect(data.features == [1.5, 2, -3, 40, 0, 5])
        #expect(data.labels == [0, 2, 1])
        #expect(data.classCount == 3)
        #expect(try TabularDataset.loadCSV(path: path, label: "species", limit: 2).count == 2)
    }

    @Test func standardizationMatchesMeanAndStd() throws {
        let path = try write("x,y,label\n1,7,0\n2,7,1\n3,7,0\n6,7,1\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let data = try TabularDataset.loadCSV(path: path, label: "label")
        let s = data.standardization()
        #expect(s.mean == [3, 7])
        // population std of 1, 2, 3, 6 = sqrt(3.5); the constant column gets 1
        #expect(abs(s.std[0] - Float(3.5).squareRoot()) < 1e-6)
        #expect(s.std[1] == 1)
        let z = try data.standardized(with: s)
        #expect(abs(z.features[0] - (1 - 3) / Float(3.5).squareRoot()) < 1e-6)
        #expect(z.features[1] == 0)
    }

    @Test func badCellsNameRowAndColumn() throws {
        func message(_ text: String, label: String = "y", classes: Int? = nil) throws -> String {
            let path = try write(text)
            defer { try? FileManager.default.removeItem(atPath: path) }
            do { _ = try TabularDataset.loadCSV(path: path, label: label, classCount: classes); return "no error" } catch let e as DataError {
                return e.description.replacingOccurrences(of: (path as NSString).lastPathComponent, with: "f.csv")
            }
        }
        #expect(try message("a,y\n1,0\nfoo,1\n") == "f.csv: row 3, column 'a': 'foo' is not a finite number")
        #expect(try message("a,y\n1,0\n2,1.5\n") == "f.csv: row 3, column 'y': '1.5' is not a class index (a non-negative integer)")
        #expect(try message("a,y\n1,0\n2,5\n", classes: 3) == "f.csv: row 3, column 'y': label 5 outside 0..<3")
        // A short row is refused as such (it is not padded with empty cells).
        #expect(try message("a,y\n1,0\n2\n") == "f.csv: row 3 has 1 cells, the header has 2")
        #expect(try message("a,b,y\n1,2,0\n3\n") == "f.csv: row 3 has 1 cells, the header has 3")
        #expect(try message("a,b\n1,0\n", label: "y") == "f.csv: no label column 'y' (columns: a, b)")
        #expect(try message("a,y\n") == "f.csv: no data rows")
    }
}
