import Foundation
import PrismFormats
import PrismGraph
import SwiftProtobuf

/// ONNX models (https://onnx.ai) read as Prism model descriptions: the graph of a PyTorch export
/// (`torch.onnx.export`, TorchScript-based or `dynamo=True`) mapped onto Prism's op kinds, and its
/// float32 initializers as the parameters, named `<node>.weight`, `<node>.bias`, ….
///
/// Shape arithmetic on constants (`Shape`, `Gather`, `Unsqueeze`, `Concat`, … feeding a `Reshape`)
/// is folded at import; a `MatMul` by a constant matrix and the `Add` of a constant bias after it
/// become one linear layer. The input's first axis is the batch, symbolic or fixed (a model exported
/// with a fixed batch of 1 runs at any batch size); every other axis must be fixed. Tensors stored in
/// external data files are read from beside the model (see `readingExternalData`). What cannot be
/// imported is refused in one line naming the node, the op and the opset (see `ONNXImporter`).
public enum ONNXModel {
    /// The opsets of the default domain that import.
    public static let opsets: ClosedRange<Int> = 13...20

    /// Whether `path` names an ONNX file (by its `.onnx` extension, as PyTorch writes them).
    public static func isONNX(path: String) -> Bool { path.lowercased().hasSuffix(".onnx") }

    /// Reads an ONNX file as a model description and its parameters.
    /// - Returns: a validated spec (architecture `onnx`) and the tensors its nodes' parameters take.
    /// - Throws: `DataError` naming the file: unreadable, not a protobuf ModelProto, or a graph that
    ///   does not import (the node, op and opset, and what is supported).
    /// - Parameter input: the graph input that becomes the model's input (the one explained), by name;
    ///   nil takes the first. The other inputs become `input` nodes, fed by name.
    public static func read(path: String, input: String? = nil) throws -> (spec: ModelSpec, tensors: [String: HostTensor]) {
        let folder = (path as NSString).deletingLastPathComponent
        return try read(bytes: readFile(path), source: path, folder: folder.isEmpty ? "." : folder, input: input)
    }

    /// Reads the bytes of an ONNX file (see `read(path:)`); `source` names it in errors.
    /// - Parameter folder: where tensors stored in external data files are read from (the model
    ///   file's folder); without one such tensors are refused.
    public static func read(bytes: [UInt8], source: String, folder: String? = nil, input: String? = nil) throws -> (spec: ModelSpec, tensors: [String: HostTensor]) {
        let model: Onnx_ModelProto
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 64
            model = try Onnx_ModelProto(serializedBytes: bytes, options: options)
        } catch {
            throw DataError("\(source): not an ONNX model: the protobuf does not decode (\(error))")
        }
        var importer = try ONNXImporter(model: model, source: source, folder: folder, input: input)
        return try importer.run()
    }
}

/// A value of the ONNX graph during import: a Prism graph value (a node's output or the model's
/// input), a view of one through a layout change not emitted (see `ONNXView`), or a constant (an
/// initializer, a `Constant` node, folded shape arithmetic).
enum ONNXValue {
    case node(String)
    case view(ONNXView)
    case float(HostTensor)
    case int(IntConstant)
}

/// One entry of an integer constant, or the size of an axis: a number, or the batch size (unknown
/// until run time) times a number.
enum Dim: Equatable, CustomStringConvertible {
    case fixed(Int)
    case batch(times: Int)

    var description: String {
        switch self {
        case let .fixed(n): "\(n)"
        case let .batch(k): k == 1 ? "batch" : "batch×\(k)"
        }
    }

    var value: Int? { if case let .fixed(n) = self { return n } else { return nil } }
}

/// An int64 or int32 constant (shapes, axes, indices), entries possibly the batch size.
struct IntConstant {
    var shape: [Int]
    var values: [Dim]
}

/// The ONNX tensor element types by number (TensorProto.DataType), for messages.
func dataTypeName(_ code: Int32) -> String {
    Onnx_TensorProto.DataType(rawValue: Int(code)).map { String(describing: $0).uppercased() } ?? "type \(code)"
}

extension Onnx_TensorProto {
    /// The tensor as a constant value.
    /// - Throws: `DataError` (message without the file) naming the tensor: external data (which
    ///   `readingExternalData` reads first for initializers), a dtype
    ///   other than float32/int64/int32, negative or overflowing dims, or data of the wrong length.
    func constant() throws -> ONNXValue {
        let label = name.isEmpty ? "a constant tensor" : "tensor '\(name)'"
        if isExternal {
            let location = externalData.first { $0.key == "location" }?.value ?? "?"
            throw DataError("\(label) is stored in an external data file ('\(location)'); Prism reads external data for initializers only")
        }
        if hasSegment { throw DataError("\(label) is a segment of a larger tensor, which is not supported") }
        guard dims.allSatisfy({ $0 >= 0 && $0 <= Int64(Int32.max) }), let count = HostMemory.product(dims.map { Int($0) }) else {
            throw DataError("\(label) has dims \(dims), not a valid shape")
        }
        let shape = dims.map { Int($0) }
        func raw(_ width: Int) throws -> Bool {
            guard hasRawData else { return false }
            guard let bytes = HostMemory.product([count, width]), rawData.count == bytes else {
                throw DataError("\(label) of shape \(shape) holds \(rawData.count) bytes of raw data, expected \(count) × \(width)")
            }
            return true
        }
        func check(_ n: Int) throws {
            guard n == count else { throw DataError("\(label) of shape \(shape) holds \(n) values, expected \(count)") }
        }
        switch Onnx_TensorProto.DataType(rawValue: Int(dataType)) {
        case .float:
            if try raw(4) {
                let values = rawData.withUnsafeBytes { buffer in
                    (0..<count).map { Float(bitPattern: UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
                }
                return .float(HostTensor(shape: shape, values: values))
            }
            try check(floatData.count)
            return .float(HostTensor(shape: shape, values: floatData))
        case .int64:
            if try raw(8) {
                let values = rawData.withUnsafeBytes { buffer in
                    (0..<count).map { Int64(littleEndian: buffer.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
                }
                return .int(IntConstant(shape: shape, values: values.map { .fixed(Int($0)) }))
            }
            try check(int64Data.count)
            return .int(IntConstant(shape: shape, values: int64Data.map { .fixed(Int($0)) }))
        case .int32:
            if try raw(4) {
                let values = rawData.withUnsafeBytes { buffer in
                    (0..<count).map { Int32(littleEndian: buffer.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
                }
                return .int(IntConstant(shape: shape, values: values.map { .fixed(Int($0)) }))
            }
            try check(int32Data.count)
            return .int(IntConstant(shape: shape, values: int32Data.map { .fixed(Int($0)) }))
        case .int8, .uint8:
            // Quantized weights and zero points (DequantizeLinear): one byte each raw, else in int32_data.
            let signed = Int(dataType) == Onnx_TensorProto.DataType.int8.rawValue
            if try raw(1) {
                return .int(IntConstant(shape: shape, values: rawData.map { .fixed(signed ? Int(Int8(bitPattern: $0)) : Int($0)) }))
            }
            try check(int32Data.count)
            let range = signed ? -128...127 : 0...255
            guard int32Data.allSatisfy({ range.contains(Int($0)) }) else { throw DataError("\(label) holds values outside \(range)") }
            return .int(IntConstant(shape: shape, values: int32Data.map { .fixed(Int($0)) }))
        default:
            throw DataError("\(label) has dtype \(dataTypeName(dataType)); Prism imports float32 tensors (int8/uint8 quantized ones, and int64/int32 shape constants)")
        }
    }
}
