// Fuzz target: an ONNX file (protobuf ModelProto) imported as a model description — decoding,
// initializers, constant folding, op translation, shapes and the graph check. External data is
// refused without a folder, so no file is read. A thrown error is the expected answer to a bad file;
// a trap or a sanitizer report is a defect.
import PrismGraph
import PrismONNX

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let (spec, tensors) = try? ONNXModel.read(bytes: bytes, source: "fuzz.onnx") {
        _ = spec.peakActivationElements
        _ = try? spec.checkedParameterCount(source: "fuzz.onnx")
        _ = tensors.count
    }
    return 0
}
