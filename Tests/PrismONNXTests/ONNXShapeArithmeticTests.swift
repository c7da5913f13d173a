import Testing
import PrismFormats
@testable import PrismONNX

/// The folding of integer shape arithmetic whose entries may be multiples of the batch size
/// (`bsz * num_heads` in PyTorch's exports of attention), against values worked by hand.
@Suite struct ONNXShapeArithmeticTests {
    let site = Site(node: Onnx_NodeProto.with { $0.name = "n"; $0.opType = "Mul" }, opset: 17, source: "f.onnx")

    @Test func numbersFoldAsONNXDefinesThem() throws {
        #expect(try arithmetic("Add", .fixed(7), .fixed(-3), site: site) == .fixed(4))
        #expect(try arithmetic("Div", .fixed(-7), .fixed(2), site: site) == .fixed(-3))
        // Mod with fmod 0 takes the divisor's sign, as Python's %.
        #expect(try arithmetic("Mod", .fixed(-7), .fixed(3), site: site) == .fixed(2))
        #expect(try arithmetic("Mod", .fixed(7), .fixed(-3), site: site) == .fixed(-2))
        #expect(try arithmetic("Mod", .fixed(6), .fixed(3), site: site) == .fixed(0))
    }

    @Test func multiplesOfTheBatchScale() throws {
        #expect(try arithmetic("Mul", .batch(times: 1), .fixed(2), site: site) == .batch(times: 2))
        #expect(try arithmetic("Mul", .fixed(3), .batch(times: 2), site: site) == .batch(times: 6))
        #expect(try arithmetic("Div", .batch(times: 6), .fixed(3), site: site) == .batch(times: 2))
        #expect(try arithmetic("Add", .batch(times: 2), .fixed(0), site: site) == .batch(times: 2))
    }

    @Test func otherArithmeticOnTheBatchIsRefusedByName() {
        for (op, p, q) in [("Add", Dim.batch(times: 1), Dim.fixed(1)), ("Div", .batch(times: 3), .fixed(2)), ("Mul", .batch(times: 1), .batch(times: 1)),
                           ("Mod", .batch(times: 1), .fixed(2)), ("Div", .fixed(1), .fixed(0))] {
            var message = "folded"
            do { _ = try arithmetic(op, p, q, site: site) } catch let error as DataError { message = error.message } catch { message = "\(error)" }
            #expect(message.hasPrefix("f.onnx: node 'n' (Mul, opset 17): "), "\(op) \(p) \(q): \(message)")
        }
    }
}

/// Range, Equal, Where and ConstantOfShape on integer constants fold at import: a model adding
/// where(range(4) == 2, 5, range(4)) = [0, 1, 5, 3] to its input.
@Suite struct ONNXIntegerFoldingTests {
    static func ints(_ name: String, _ values: [Int64], shape: [Int]? = nil) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = (shape ?? [values.count]).map { Int64($0) }
        t.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        t.int64Data = values
        return t
    }

    @Test func rangeEqualWhereAndConstantOfShapeFold() throws {
        typealias M = ONNXMalformedTests
        var fill = Onnx_AttributeProto()
        fill.name = "value"
        fill.type = .tensor
        fill.t = Self.ints("", [5], shape: [1])
        var constantOfShape = M.node("ConstantOfShape", ["four"], "fives", name: "fill")
        constantOfShape.attribute = [fill]
        let nodes = [
            M.node("Range", ["zero", "four_scalar", "one"], "range", name: "range"),
            M.node("Equal", ["range", "two"], "is_two", name: "equal"),
            constantOfShape,
            M.node("Where", ["is_two", "fives", "range"], "chosen", name: "where"),
            M.node("Cast", ["chosen"], "offsets", name: "cast", ints: ["to": 1]),
            M.node("Add", ["input", "offsets"], "out", name: "add"),
        ]
        let initializers = [Self.ints("zero", [0], shape: []), Self.ints("four_scalar", [4], shape: []), Self.ints("one", [1], shape: []),
                            Self.ints("two", [2], shape: []), Self.ints("four", [4])]
        let bytes = try M.model(nodes, initializers, output: M.info("out", [nil, 4]))
        let (spec, tensors) = try ONNXModel.read(bytes: bytes, source: "fold.onnx")
        let add = try #require(spec.nodes.first { $0.op == "add" })
        let offsets = try #require(tensors["\(add.name).other"])
        #expect(offsets.values == [0, 1, 5, 3], "\(offsets)")
    }
}
