// Fuzz target: a tuning table (`PRISM_TUNING_FILE`, `Kernels/tuning.json`) decoded, looked up for a
// few devices, extended with a setting and written back, which must read back as the same table.
// A thrown DataError is the expected answer to a bad table; a trap or a sanitizer report is a defect.
import Foundation
import PrismFormats

let devices = [("NVIDIA Corporation NVIDIA CUDA", "NVIDIA H100 PCIe"), ("AuthenticAMD Portable Computing Language", "cpu-x86-64"), ("", "")]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTuning(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(UnsafeBufferPointer(start: data, count: size))
    guard let table = try? TuningTable.parse(bytes, source: "fuzz.json") else { return 0 }
    for (vendor, name) in devices {
        for file in ["matmul.cl", "conv2d.cl", ""] { _ = table.defines(for: file, vendor: vendor, deviceName: name) }
    }
    let extended = table.setting(["TILE": "16"], file: "matmul.cl", vendor: "NVIDIA", device: "H100")
    for t in [table, extended] {
        guard let json = try? t.json() else { fatalError("a decoded table does not encode") }
        guard let back = try? TuningTable.parse(json, source: "fuzz.json"), back == t else {
            fatalError("a table does not read back as written: \(String(decoding: json, as: UTF8.self))")
        }
    }
    return 0
}
