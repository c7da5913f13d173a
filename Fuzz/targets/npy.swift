// Fuzz target: a .npy file's bytes parsed, and each value read back.
// A thrown DataError is the expected answer to a bad file; a trap or a sanitizer report is a defect.
import PrismFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNumPy(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    if let array = try? NumPyArray.parse(bytes, name: "fuzz.npy") {
        _ = array.floats()
        _ = try? array.integers(name: "fuzz.npy")
    }
    return 0
}
