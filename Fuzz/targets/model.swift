// Fuzz target: a model description (the JSON of a model file's `prism.model` metadata) decoded and
// checked as a graph — ops, attributes, inputs, types, shapes, parameter counts, peak activations.
// A thrown error is the expected answer to a bad description; a trap or a sanitizer report is a defect.
import PrismGraph

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzModel(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let spec = try? ModelSpec.decode(json: text, source: "fuzz.json") {
        _ = try? spec.validate()
        _ = spec.peakActivationElements
        _ = spec.namedParameterShapes
        _ = try? spec.checkedParameterCount(source: "fuzz.json")
        _ = try? spec.json()
    }
    return 0
}
