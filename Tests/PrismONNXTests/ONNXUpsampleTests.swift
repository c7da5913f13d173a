import Foundation
import Testing
import PrismFormats
import PrismGraph
@testable import PrismONNX

/// An encoder–decoder CNN exported from PyTorch (`Tests/Fixtures/make_onnx_upsample.py`):
/// ConvTranspose, Resize (nearest as asymmetric/floor, linear as half_pixel) and Pad from both
/// exporters; logits against onnxruntime's, input gradients against PyTorch's; the variants Prism
/// does not import refused in one line naming the node.
@Suite struct ONNXUpsampleTests {
    @Test(arguments: ["torchscript", "dynamo"])
    func decoderMatchesOnnxruntimeAndPyTorch(export: String) throws {
        let spec = try ONNXTransformerTests().importAndCheck("upsample_cnn_\(export).onnx", prefix: "", export: export, golden: "onnx_upsample.safetensors")
        #expect(spec.inputShape == [3, 12, 10] && spec.classCount == 5)
        let ops = spec.nodes.map(\.op)
        #expect(ops.filter { $0 == ConvTranspose2DSchema.kind }.count == 1, "\(ops)")
        #expect(ops.filter { $0 == UpsampleSchema.kind }.count == 2, "\(ops)")
        #expect(ops.filter { $0 == PadSchema.kind }.count == 1, "\(ops)")
    }

    /// The dynamo export with one attribute of a node changed, read back.
    func readChanged(_ op: String, _ change: (inout Onnx_NodeProto) -> Void) throws -> String {
        let path = ONNXTransformerTests.folder + "/upsample_cnn_dynamo.onnx"
        var model = try Onnx_ModelProto(serializedBytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
        let i = try #require(model.graph.node.firstIndex { $0.opType == op })
        change(&model.graph.node[i])
        do {
            _ = try ONNXModel.read(bytes: [UInt8](try model.serializedData()), source: "u.onnx")
            return "imported"
        } catch let error as DataError { return error.message }
    }

    static func setString(_ node: inout Onnx_NodeProto, _ name: String, _ value: String) {
        node.attribute.removeAll { $0.name == name }
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .string
        a.s = Data(value.utf8)
        node.attribute.append(a)
    }

    static func setInts(_ node: inout Onnx_NodeProto, _ name: String, _ values: [Int]) {
        node.attribute.removeAll { $0.name == name }
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = values.count == 1 && name == "group" ? .int : .ints
        if a.type == .int { a.i = Int64(values[0]) } else { a.ints = values.map { Int64($0) } }
        node.attribute.append(a)
    }

    @Test func unsupportedVariantsAreRefusedInOneLine() throws {
        let cases: [(op: String, change: (inout Onnx_NodeProto) -> Void, message: String)] = [
            ("Resize", { Self.setString(&$0, "mode", "cubic") }, "mode cubic; Prism imports Resize in modes nearest and linear"),
            ("Resize", { Self.setString(&$0, "nearest_mode", "round_prefer_floor") }, "nearest_mode round_prefer_floor"),
            ("Resize", { Self.setString(&$0, "coordinate_transformation_mode", "tf_crop_and_resize") }, "coordinate_transformation_mode tf_crop_and_resize"),
            ("ConvTranspose", { Self.setInts(&$0, "group", [2]) }, "group 2; Prism imports ConvTranspose with one group"),
            ("ConvTranspose", { Self.setInts(&$0, "output_shape", [24, 20]) }, "output_shape is set"),
            ("ConvTranspose", { Self.setInts(&$0, "output_padding", [2, 1]) }, "output_padding [2, 1]"),
            ("ConvTranspose", { Self.setString(&$0, "auto_pad", "SAME_UPPER") }, "auto_pad SAME_UPPER"),
            ("Pad", { Self.setString(&$0, "mode", "wrap") }, "mode 'wrap'; Prism imports Pad in modes constant, reflect and edge"),
        ]
        for c in cases {
            let message = try readChanged(c.op, c.change)
            #expect(message.hasPrefix("u.onnx: node '") && message.contains("(\(c.op), opset 20): ") && message.contains(c.message)
                    && !message.contains("\n"), "\(c.op): \(message)")
        }
    }
}
