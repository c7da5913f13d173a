// Fuzz target: a CSV file's bytes parsed whole and with a row limit.
// A thrown DataError is the expected answer to a bad file; a trap or a sanitizer report is a defect.
import PrismFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    if let table = try? CSVTable.parse(bytes, name: "fuzz.csv") {
        for row in table.rows { for cell in row.cells { _ = CSVTable.excerpt(cell) } }
    }
    _ = try? CSVTable.parse(bytes, name: "fuzz.csv", limit: 1)
    return 0
}
