// Fuzz target: a safetensors file's bytes (header length, JSON header, tensor data) decoded.
// A thrown DataError is the expected answer to a bad file; a trap or a sanitizer report is a defect.
import PrismFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    if let file = try? SafetensorsFile.decode(bytes, name: "fuzz.safetensors") {
        // What decodes and encodes must decode again and decode to the same tensors and metadata.
        if let encoded = try? file.encoded() {
            let again = try! SafetensorsFile.decode(encoded, name: "fuzz.safetensors")
            precondition(again.metadata == file.metadata && Set(again.tensors.keys) == Set(file.tensors.keys))
        }
    }
    return 0
}
