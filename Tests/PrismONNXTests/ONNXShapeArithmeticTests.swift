import Testing
import PrismFormats
import Prism
import PrismTestSupport
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

/// Slice of a value with steps other than 1 (every other column, a reversed row order): an
/// `index_select` of constant positions, its values and gradient against the positions worked by hand.
@Suite struct ONNXStridedSliceTests {
    @Test func stridedAndReversedSlicesImportAsConstantSelections() throws {
        typealias M = ONNXMalformedTests
        typealias I = ONNXIntegerFoldingTests
        // input [batch, 4, 6] → columns 5, 3, 1 (start -1, end -7, step -2) of rows 3, 1 (start 3,
        // end 0, step -2) → flatten → [batch, 6].
        let nodes = [
            M.node("Slice", ["input", "starts", "ends", "axes", "steps"], "sliced", name: "slice"),
            M.node("Flatten", ["sliced"], "out", name: "flatten", ints: ["axis": 1]),
        ]
        let initializers = [I.ints("starts", [-1, 3]), I.ints("ends", [-7, 0]), I.ints("axes", [2, 1]), I.ints("steps", [-2, -2])]
        let bytes = try M.model(nodes, initializers, input: M.info("input", [nil, 4, 6]), output: M.info("out", [nil, 6]))
        let (spec, tensors) = try ONNXModel.read(bytes: bytes, source: "m.onnx")
        #expect(spec.nodes.filter { $0.op == "index_select" }.count == 2, "\(spec.nodes.map(\.op))")
        let engine = try testEngine()
        let model = try Model(spec: spec, seed: 0, engine: engine)
        try model.loadStateDict(tensors, source: "m.onnx")
        let values = (0..<48).map { Float($0) }
        let x = try Tensor(values, shape: [2, 4, 6], engine: engine, requiresGrad: true)
        let y = try model(x)
        var expected: [Float] = []
        for n in 0..<2 { for r in [3, 1] { for c in [5, 3, 1] { expected.append(values[n * 24 + r * 6 + c]) } } }
        #expect(try y.toArray() == expected)
        // The gradient: each selected element gets its weight, the others zero.
        let w = (0..<12).map { Float($0 + 1) }
        try y.backward(try Tensor(w, shape: [2, 6], engine: engine))
        var grad = [Float](repeating: 0, count: 48), k = 0
        for n in 0..<2 { for r in [3, 1] { for c in [5, 3, 1] { grad[n * 24 + r * 6 + c] = w[k]; k += 1 } } }
        #expect(try #require(x.grad).toArray() == grad)
    }
}
