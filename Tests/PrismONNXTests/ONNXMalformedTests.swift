import Foundation
import Testing
import Prism
import PrismFormats
import PrismGraph
@testable import PrismONNX
import PrismTestSupport

/// Malformed ONNX files, built here from the protobuf types, each refused in one line naming the
/// problem; tensors in external data files read from beside the model, and refused when they point
/// elsewhere or past their file.
@Suite struct ONNXMalformedTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/onnx").path

    // MARK: building models

    static func floats(_ name: String, _ shape: [Int], _ values: [Float]) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = shape.map { Int64($0) }
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        t.floatData = values
        return t
    }

    static func info(_ name: String, _ dims: [Int?], type: Onnx_TensorProto.DataType = .float) -> Onnx_ValueInfoProto {
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = Int32(type.rawValue)
        var shape = Onnx_TensorShapeProto()
        shape.dim = dims.map { n in
            var d = Onnx_TensorShapeProto.Dimension()
            if let n { d.dimValue = Int64(n) } else { d.dimParam = "batch" }
            return d
        }
        tensor.shape = shape
        var v = Onnx_ValueInfoProto()
        v.name = name
        v.type.tensorType = tensor
        return v
    }

    static func node(_ op: String, _ inputs: [String], _ output: String, name: String, ints: [String: Int] = [:]) -> Onnx_NodeProto {
        var n = Onnx_NodeProto()
        n.opType = op
        n.input = inputs
        n.output = [output]
        n.name = name
        n.attribute = ints.sorted { $0.key < $1.key }.map { Attribute.int($0.key, $0.value) }
        return n
    }

    /// A model of input [batch, 4] (unless `input` says otherwise) and output "out" [batch, `outputs`].
    static func model(_ nodes: [Onnx_NodeProto], _ initializers: [Onnx_TensorProto], input: Onnx_ValueInfoProto = info("input", [nil, 4]),
                      output: Onnx_ValueInfoProto = info("out", [nil, 3])) throws -> [UInt8] {
        var graph = Onnx_GraphProto()
        graph.name = "g"
        graph.node = nodes
        graph.initializer = initializers
        graph.input = [input]
        graph.output = [output]
        var model = Onnx_ModelProto()
        model.irVersion = 8
        var opset = Onnx_OperatorSetIdProto()
        opset.version = 17
        model.opsetImport = [opset]
        model.graph = graph
        return try model.serializedBytes()
    }

    static let weight = floats("fc.weight", [3, 4], (0..<12).map { Float($0) / 10 - 0.5 })
    static let bias = floats("fc.bias", [3], [0.1, -0.2, 0.3])
    static let gemm = node("Gemm", ["input", "fc.weight", "fc.bias"], "out", name: "fc", ints: ["transB": 1])

    /// The one-line error of importing `bytes`.
    func refusal(_ bytes: [UInt8], folder: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        do {
            _ = try ONNXModel.read(bytes: bytes, source: "m.onnx", folder: folder)
            Issue.record("imported", sourceLocation: sourceLocation)
            return ""
        } catch let error as DataError {
            #expect(!error.message.contains("\n") && error.message.hasPrefix("m.onnx: "), "\(error.message)", sourceLocation: sourceLocation)
            return error.message
        } catch {
            Issue.record("not a DataError: \(error)", sourceLocation: sourceLocation)
            return ""
        }
    }

    @Test func theWellFormedModelImports() throws {
        let (spec, tensors) = try ONNXModel.read(bytes: try Self.model([Self.gemm], [Self.weight, Self.bias]), source: "m.onnx")
        #expect(spec.nodes.map(\.op) == ["linear"] && tensors["fc.weight"] == HostTensor(shape: [3, 4], values: Self.weight.floatData))
    }

    @Test func aNodeReadingAnUndefinedNameIsRefused() throws {
        let message = refusal(try Self.model([Self.gemm], [Self.bias]))
        #expect(message == "m.onnx: node 'fc' (Gemm, opset 17): reads 'fc.weight', which no node, initializer or input defines (a missing initializer?)")
    }

    @Test func aCycleIsRefused() throws {
        let nodes = [Self.node("Add", ["input", "c"], "a", name: "first"), Self.node("Relu", ["a"], "b", name: "second"),
                     Self.node("Relu", ["b"], "c", name: "third"), Self.node("Gemm", ["b", "fc.weight", "fc.bias"], "out", name: "fc", ints: ["transB": 1])]
        let message = refusal(try Self.model(nodes, [Self.weight, Self.bias]))
        #expect(message == "m.onnx: node 'first' (Add, opset 17): is on a cycle ('first' → 'second' → 'third' → 'first'); an ONNX graph is acyclic")
        // Out of order without a cycle.
        let swapped = refusal(try Self.model([Self.node("Relu", ["h"], "r", name: "act"), Self.node("Relu", ["input"], "h", name: "pre"),
                                              Self.node("Gemm", ["r", "fc.weight", "fc.bias"], "out", name: "fc", ints: ["transB": 1])],
                                             [Self.weight, Self.bias]))
        #expect(swapped == "m.onnx: node 'act' (Relu, opset 17): reads 'h' before the node that computes it; ONNX lists a graph's nodes in topological order")
        // A name computed twice.
        let twice = refusal(try Self.model([Self.node("Relu", ["input"], "h", name: "a"), Self.node("Relu", ["input"], "h", name: "b"),
                                            Self.node("Gemm", ["h", "fc.weight", "fc.bias"], "out", name: "fc", ints: ["transB": 1])],
                                           [Self.weight, Self.bias]))
        #expect(twice == "m.onnx: node 'b' (Relu, opset 17): computes 'h', which node 'a' (Relu, opset 17) computes too")
    }

    @Test func shapesThatDoNotFitAreRefused() throws {
        // A Gemm weight for 5 features over an input of 4.
        let wide = Self.floats("fc.weight", [3, 5], [Float](repeating: 0.1, count: 15))
        let gemm = refusal(try Self.model([Self.gemm], [wide, Self.bias]))
        #expect(gemm.hasPrefix("m.onnx: node 'fc' (Gemm, opset 17): as a Prism linear: expects 5 features on the last axis"), "\(gemm)")
        // A bias of the wrong length.
        let bias = refusal(try Self.model([Self.gemm], [Self.weight, Self.floats("fc.bias", [4], [0, 0, 0, 0])]))
        #expect(bias.contains("node 'fc' (Gemm, opset 17): C of shape [4]"), "\(bias)")
        // Add of [batch, 3] and [batch, 4].
        let add = refusal(try Self.model([Self.node("Gemm", ["input", "fc.weight", "fc.bias"], "h", name: "fc", ints: ["transB": 1]),
                                          Self.node("Add", ["h", "input"], "out", name: "sum")], [Self.weight, Self.bias]))
        #expect(add.contains("node 'sum' (Add, opset 17): inputs of shapes [batch] + [3] and [batch] + [4]"), "\(add)")
        // An output declared with another size than the graph computes.
        let declared = refusal(try Self.model([Self.gemm], [Self.weight, Self.bias], output: Self.info("out", [nil, 10])))
        #expect(declared == "m.onnx: output 'out' is declared [batch, 10], but the graph computes [batch] + [3]")
        // An initializer whose data does not fill its shape.
        let short = refusal(try Self.model([Self.gemm], [Self.floats("fc.weight", [3, 4], [1, 2, 3]), Self.bias]))
        #expect(short == "m.onnx: tensor 'fc.weight' of shape [3, 4] holds 3 values, expected 12")
    }

    @Test func integerAndBoolWhereAFloatIsNeededAreRefused() throws {
        var integer = Onnx_TensorProto()
        integer.name = "fc.weight"
        integer.dims = [3, 4]
        integer.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        integer.int64Data = [Int64](repeating: 1, count: 12)
        let int64Weight = refusal(try Self.model([Self.gemm], [integer, Self.bias]))
        #expect(int64Weight == "m.onnx: node 'fc' (Gemm, opset 17): its weight (input 1) must be a float32 initializer or constant")
        var flag = Onnx_TensorProto()
        flag.name = "fc.bias"
        flag.dims = [3]
        flag.dataType = Int32(Onnx_TensorProto.DataType.bool.rawValue)
        flag.int32Data = [1, 0, 1]
        let bool = refusal(try Self.model([Self.gemm], [Self.weight, flag]))
        #expect(bool == "m.onnx: tensor 'fc.bias' has dtype BOOL; Prism imports float32 tensors (int8/uint8 quantized ones, and int64/int32 shape constants)")
        // An int8 weight outside a DequantizeLinear is refused where a float is needed.
        var quantized = integer
        quantized.dataType = Int32(Onnx_TensorProto.DataType.int8.rawValue)
        quantized.int64Data = []
        quantized.int32Data = [Int32](repeating: -3, count: 12)
        #expect(refusal(try Self.model([Self.gemm], [quantized, Self.bias])) == "m.onnx: node 'fc' (Gemm, opset 17): its weight (input 1) must be a float32 initializer or constant")
        let int32Input = refusal(try Self.model([Self.gemm], [Self.weight, Self.bias], input: Self.info("input", [nil, 4], type: .int32)))
        #expect(int32Input == "m.onnx: node 'fc' (Gemm, opset 17): as a Prism linear: takes float32 inputs, got int32 (cast it first) (input shape [batch] + [4])")
        let float16Input = refusal(try Self.model([Self.gemm], [Self.weight, Self.bias], input: Self.info("input", [nil, 4], type: .float16)))
        #expect(float16Input == "m.onnx: input 'input' has dtype FLOAT16; Prism imports float32, int64, int32 and bool inputs")
        let int64Output = refusal(try Self.model([Self.gemm], [Self.weight, Self.bias], output: Self.info("out", [nil, 3], type: .int64)))
        #expect(int64Output == "m.onnx: output 'out' is declared INT64; Prism's outputs are float32")
    }

    // MARK: external data

    @Test func externalDataBesideTheModelIsRead() throws {
        // Written by onnx's own external-data writer (make_onnx_external.py), answers from onnxruntime.
        let engine = try testEngine()
        let (spec, tensors) = try ONNXModel.read(path: Self.folder + "/external_weights.onnx")
        let model = try Model(spec: spec, seed: 0, engine: engine)
        try model.loadStateDict(tensors)
        let golden = try SafetensorsFile.read(path: Self.folder + "/external_weights_golden.safetensors")
        let x = try golden.tensor("x"), logits = try golden.tensor("logits")
        let output = try engine.noGrad { try model(try Tensor(x.values, shape: x.shape, engine: engine)).toArray() }
        expectClose(output, logits.values, "external_weights.onnx vs onnxruntime")
    }

    /// A model whose Gemm weight lies in `data.bin` in a fresh folder, with these external-data entries.
    func externalModel(_ entries: [(String, String)], data: [UInt8]) throws -> (bytes: [UInt8], folder: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("prism-onnx-external-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data(data).write(to: URL(fileURLWithPath: folder + "/data.bin"))
        var w = Onnx_TensorProto()
        w.name = "fc.weight"
        w.dims = [3, 4]
        w.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        w.dataLocation = .external
        w.externalData = entries.map { key, value in
            var e = Onnx_StringStringEntryProto()
            (e.key, e.value) = (key, value)
            return e
        }
        return (try Self.model([Self.gemm], [w, Self.bias]), folder)
    }

    /// The weight's bytes after `padding` bytes of something else.
    static func weightBytes(padding: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0xEE, count: padding)
        for v in weight.floatData { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        return bytes + [0xEE, 0xEE]
    }

    @Test func externalDataAtAnOffsetIsReadAndComputesTheGemm() throws {
        let (bytes, folder) = try externalModel([("location", "data.bin"), ("offset", "10"), ("length", "48")], data: Self.weightBytes(padding: 10))
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (spec, tensors) = try ONNXModel.read(bytes: bytes, source: "m.onnx", folder: folder)
        #expect(tensors["fc.weight"] == HostTensor(shape: [3, 4], values: Self.weight.floatData))
        // Its logits against x·Wᵀ + b computed here.
        let engine = try testEngine()
        let model = try Model(spec: spec, seed: 0, engine: engine)
        try model.loadStateDict(tensors)
        let x: [Float] = [0.5, -1, 2, 0.25, 1, 1, -1, 0]
        let output = try engine.noGrad { try model(try Tensor(x, shape: [2, 4], engine: engine)).toArray() }
        let (w, b) = (Self.weight.floatData, Self.bias.floatData)
        var expected: [Float] = []
        for n in 0..<2 {
            for o in 0..<3 {
                var sum = b[o]
                for i in 0..<4 { sum += x[n * 4 + i] * w[o * 4 + i] }
                expected.append(sum)
            }
        }
        expectClose(output, expected, "external Gemm")
    }

    @Test func externalDataOutsideTheModelsFolderOrPastItsFileIsRefused() throws {
        let data = Self.weightBytes(padding: 0)
        let cases: [([(String, String)], String)] = [
            ([("location", "/etc/passwd")], "external data location '/etc/passwd' is not a plain relative path"),
            ([("location", "../data.bin")], "external data location '../data.bin' is not a plain relative path"),
            ([("location", "sub/../../data.bin")], "is not a plain relative path"),
            ([("location", "absent.bin")], "its external data file 'absent.bin' does not exist beside the model"),
            ([("location", "data.bin"), ("offset", "40"), ("length", "48")], "external data range 40..<40 + 48 is past the end of 'data.bin' (50 bytes)"),
            ([("location", "data.bin"), ("offset", "51")], "external data offset 51 is past the end of 'data.bin' (50 bytes)"),
            ([("location", "data.bin"), ("offset", "0"), ("length", "9223372036854775807")], "is past the end of 'data.bin'"),
            ([("location", "data.bin"), ("offset", "-4")], "external data offset '-4' is not a non-negative integer"),
            ([("location", "data.bin"), ("length", "40")], "tensor 'fc.weight' of shape [3, 4] needs 48 bytes; its external data in 'data.bin' holds 40"),
            ([("location", "data.bin")], "needs 48 bytes; its external data in 'data.bin' holds 50"),
            ([("offset", "0")], "external data without a 'location'"),
            ([("location", "data.bin"), ("basepath", "/")], "external data key 'basepath' is not one Prism reads"),
        ]
        for (entries, expected) in cases {
            let (bytes, folder) = try externalModel(entries, data: data)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let message = refusal(bytes, folder: folder)
            #expect(message.hasPrefix("m.onnx: tensor 'fc.weight'") && message.contains(expected), "\(entries): \(message)")
        }
        // A folder given as the data file's location.
        let (bytes, folder) = try externalModel([("location", "sub")], data: data)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/sub", withIntermediateDirectories: true)
        #expect(refusal(bytes, folder: folder).contains("its external data file 'sub' is not a regular file"))
        // A link beside the model leading out of its folder.
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("prism-onnx-outside-\(UUID().uuidString).bin").path
        try Data(data).write(to: URL(fileURLWithPath: outside))
        defer { try? FileManager.default.removeItem(atPath: outside) }
        let (linked, linkFolder) = try externalModel([("location", "link.bin")], data: data)
        defer { try? FileManager.default.removeItem(atPath: linkFolder) }
        try FileManager.default.createSymbolicLink(atPath: linkFolder + "/link.bin", withDestinationPath: outside)
        let link = refusal(linked, folder: linkFolder)
        #expect(link.contains("its external data file 'link.bin' is a link to ") && link.contains("outside the model's folder"), "\(link)")
        // Bytes without a folder to read from.
        #expect(refusal(bytes).contains("is stored in an external data file ('sub'), which is read only from beside a model file"))
    }
}
