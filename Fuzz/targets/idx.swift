// Fuzz target: an IDX file (plain or gzip; zlib tells them apart) read from disk, whole and in
// pieces, as the dataset loaders read it. The reader takes a path, so the bytes go through one
// temporary file per process.
// A thrown DataError is the expected answer to a bad file; a trap or a sanitizer report is a defect.
import Foundation
import PrismFormats

private let path = NSTemporaryDirectory() + "/prism-fuzz-idx-\(getpid()).idx"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes: data, count: size)) else {
        fatalError("cannot write \(path)")
    }
    _ = try? IDXArray.read(path: path)
    if let reader = try? IDXReader(path: path) {
        _ = try? reader.readLeading(1)
        _ = try? reader.readLeading(2)
        _ = try? reader.expectEnd()
    }
    return 0
}
