import Foundation
import Testing
import PrismFormats
import Prism
import PrismGraph
@testable import PrismONNX
import PrismTestSupport

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
        // F.pad(y, (1, 2, 0, 1), value=0.5): TorchScript computes the ONNX pads by ConstantOfShape,
        // Concat, Reshape, a reversing Slice and Transpose, folded at import.
        let pad = try #require(spec.nodes.first { $0.op == PadSchema.kind })
        #expect(pad.attributes["pad"] == .array([.int(1), .int(2), .int(0), .int(1)]) && pad.attributes["value"] == .double(0.5), "\(pad.attributes)")
        let sampled = spec.nodes.filter { $0.op == UpsampleSchema.kind }.map { $0.attributes["mode"] ?? .string("nearest") }
        #expect(sampled == [.string("nearest"), .string("bilinear")], "\(sampled)")
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
            ("ConvTranspose", { Self.setInts(&$0, "group", [4]) }, "group 4 does not divide the weight's 6 input channels"),
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

    /// Prism's export of the three ops (every mode): run by onnxruntime against Prism's logits, and
    /// imported again as the same ops with the same logits.
    @Test func exportRunsInONNXRuntimeAndReimports() throws {
        let json = """
        {"format": 2, "input_shape": [2, 5, 4], "outputs": 4, "nodes": [
          {"name": "up", "op": "conv_transpose2d", "in_channels": 2, "out_channels": 3, "kernel_size": [3, 2], "stride": 2, "padding": [1, 0], "output_padding": 1},
          {"name": "grouped", "op": "conv_transpose2d", "in_channels": 3, "out_channels": 3, "kernel_size": 2, "groups": 3, "bias": false},
          {"name": "near", "op": "upsample", "scale_factor": 2},
          {"name": "corners", "op": "upsample", "size": [7, 9], "mode": "bilinear", "align_corners": true},
          {"name": "half", "op": "upsample", "scale_factor": 1.5, "mode": "bilinear"},
          {"name": "sized", "op": "upsample", "size": [13, 11]},
          {"name": "zero", "op": "pad", "pad": [1, 0, 2, 1], "value": 0.5},
          {"name": "mirror", "op": "pad", "pad": [2, 1], "mode": "reflect"},
          {"name": "edge", "op": "pad", "pad": [1, 1, 1, 1], "mode": "replicate"},
          {"name": "flat", "op": "flatten"}, {"name": "fc", "op": "linear", "in_features": 918, "out_features": 4}]}
        """
        let engine = try testEngine()
        let export = ONNXExportTests()
        let model = try Model(spec: try ModelSpec.decode(json: json), seed: 43, engine: engine)
        var random = SeededRandom(seed: 44)
        let shape = [3, 2, 5, 4], x = random.floats(shape.reduce(1, *), -2, 2)
        let expected = try export.prismLogits(model, x, shape: shape)
        let bytes = try export.exportAndCompare(model, input: x, shape: shape, expected: expected, label: "upsampling")
        let (imported, tensors) = try ONNXModel.read(bytes: bytes, source: "upsampling")
        #expect(imported.nodes.map(\.op) == model.spec.nodes.map(\.op))
        let again = try Model(spec: imported, seed: 0, engine: engine)
        try again.loadStateDict(tensors, source: "upsampling")
        expectClose(try export.prismLogits(again, x, shape: shape), expected, "upsampling: re-imported vs original")
    }
}
