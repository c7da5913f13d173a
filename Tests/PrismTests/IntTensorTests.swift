import Prism
import PrismReference
import PrismTestSupport
import Testing

/// A comparison's operands: a's shape and b's (b broadcasts over a's trailing axes, as in NumPy).
struct CompareCase: CustomStringConvertible, Sendable {
    var a: [Int]
    var b: [Int]
    var description: String { "\(a) vs \(b)" }
}

/// b expanded to a's shape by NumPy's rule (b aligned with a's trailing axes, its 1s repeated):
/// an answer worked out without `Broadcast`.
func numpyExpanded(_ b: [Double], shape bShape: [Int], to aShape: [Int]) -> [Double] {
    let padded = [Int](repeating: 1, count: aShape.count - bShape.count) + bShape
    let bStrides = Reference.strides(padded)
    let aStrides = Reference.strides(aShape)
    return (0..<aShape.reduce(1, *)).map { i in
        var src = 0
        for k in aShape.indices where padded[k] != 1 { src += (i / aStrides[k]) % aShape[k] * bStrides[k] }
        return b[src]
    }
}

/// Integer tensors: creation and its range checks, reading back, views, comparisons and casts.
@Suite struct IntTensorTests {
    @Test func valuesRoundTripForEveryType() throws {
        let engine = try testEngine()
        let cases: [(IntegerType, [Int64])] = [
            (.int64, [0, -1, 2_147_483_647, -2_147_483_648, 12345, -7, 31]),
            (.int32, [5, -2_147_483_648, 2_147_483_647, 0, 1, -1, 9]),
            (.int8, [-128, 127, 0, -1, 1, 100, -100]),
            (.bool, [0, 1, 1, 0, 0, 1, 1]),
        ]
        for (dtype, values) in cases {
            let t = try IntTensor(values, shape: [7], dtype: dtype, engine: engine)
            #expect(t.dtype == dtype)
            #expect(try t.toArray() == values, "\(dtype)")
        }
        let fromInt32 = try IntTensor([Int32(3), -4, 5, 6, 7, 8], shape: [2, 3], dtype: .int32, engine: engine)
        #expect(try fromInt32.toArray() == [3, -4, 5, 6, 7, 8])
        let mask = try IntTensor([true, false, true], shape: [3], engine: engine)
        #expect(mask.dtype == .bool)
        #expect(try mask.toArray() == [1, 0, 1])
    }

    @Test func valuesOutsideTheTypeAreRefusedNotWrapped() throws {
        let engine = try testEngine()
        #expect(throws: TensorError("int tensor (int64): value at index 1: 2147483648 does not fit 32 bits (int64 values must fit 32 bits on the device)")) {
            try IntTensor([Int64(0), 2_147_483_648], shape: [2], engine: engine)
        }
        #expect(throws: TensorError("int tensor (int64): value at index 0: -2147483649 does not fit 32 bits (int64 values must fit 32 bits on the device)")) {
            try IntTensor([Int64(-2_147_483_649)], shape: [1], engine: engine)
        }
        #expect(throws: TensorError("int tensor (int32): value at index 2: 4294967296 is outside int32's range -2147483648…2147483647")) {
            try IntTensor([Int64(1), 2, 1 << 32], shape: [3], dtype: .int32, engine: engine)
        }
        #expect(throws: TensorError("int tensor (int8): value at index 0: 128 is outside int8's range -128…127")) {
            try IntTensor([128], shape: [1], dtype: .int8, engine: engine)
        }
        #expect(throws: TensorError("int tensor (int8): value at index 1: -129 is outside int8's range -128…127")) {
            try IntTensor([0, -129], shape: [2], dtype: .int8, engine: engine)
        }
        #expect(throws: TensorError("int tensor (bool): value at index 1: 2 is not a bool (0 or 1)")) {
            try IntTensor([1, 2], shape: [2], dtype: .bool, engine: engine)
        }
        #expect(throws: TensorError("int tensor (int64): value 18446744073709551615 at index 0 does not fit 64 bits")) {
            try IntTensor([UInt64.max], shape: [1], engine: engine)
        }
        #expect(throws: TensorError("int tensor: 3 values do not fill shape [2, 2] (4 elements)")) {
            try IntTensor([1, 2, 3], shape: [2, 2], engine: engine)
        }
    }

    @Test func reshapedSharesTheValues() throws {
        let engine = try testEngine()
        let t = try IntTensor(Array(0..<12), shape: [3, 4], dtype: .int32, engine: engine)
        let v = try t.reshaped([2, -1, 3])
        #expect(v.shape == [2, 2, 3])
        #expect(v.dtype == .int32)
        #expect(try v.toArray() == (0..<12).map(Int64.init))
        #expect(throws: TensorError.self) { try t.reshaped([5, -1]) }
    }

    static let castSizes = TestSizes.pick([1, 7, 31, 32, 33, 257, 1031], small: [1, 7, 33])

    @Test(arguments: castSizes)
    func toFloatIsExactBelow2To24(_ n: Int) throws {
        let engine = try testEngine()
        var rng = SeededRandom(seed: UInt64(n) &+ 400)
        let values = (0..<n).map { _ in Int64(rng.uniform(-16_777_215, 16_777_215).rounded(.towardZero)) }
        let y = try IntTensor(values, shape: [n], engine: engine).toFloat()
        #expect(y.shape == [n])
        expectClose(try y.toArray(), values.map(Double.init), atol: 0, rtol: 0, "toFloat n \(n)")
    }

    @Test(arguments: castSizes)
    func toIntegerTruncatesTowardZero(_ n: Int) throws {
        let engine = try testEngine()
        for dtype in [IntegerType.int64, .int32, .int8] {
            let x = seededFloats(n, seed: UInt64(n) &+ 410, low: -128.9, high: 127.9)
            let y = try Tensor(x, shape: [n], engine: engine).toInteger(dtype)
            #expect(y.dtype == dtype)
            let expected = Reference.truncate(doubles(x), range: dtype.range)
            #expect(expected.allSatisfy { $0 != nil })
            #expect(try y.toArray() == expected.map { $0! }, "toInteger(\(dtype)) n \(n)")
        }
        // Halves and the extremes of each range: truncation, not rounding.
        let edges: [Float] = [2.5, -2.5, 0.99, -0.99, -0.0, 2_147_483_520, -2_147_483_648]
        #expect(try Tensor(edges, shape: [7], engine: engine).toInteger(.int64).toArray() == [2, -2, 0, 0, 0, 2_147_483_520, -2_147_483_648])
        #expect(try Tensor([127.99, -128.99, 3.7], shape: [3], engine: engine).toInteger(.int8).toArray() == [127, -128, 3])
        // Whole numbers only (token ids passed as floats): the first other element is flagged, in the same pass.
        let (ids, none) = try Tensor([3, -7, 0, 16_777_215], shape: [4], engine: engine).castToInteger(.int64, wholeNumbers: true)
        let got = try ids.toArray()
        #expect(none == nil && got == [3, -7, 0, 16_777_215])
        let (_, flagged) = try Tensor([3, 4.5, 2, 0.25], shape: [4], engine: engine).castToInteger(.int32, wholeNumbers: true)
        #expect(flagged?.0 == 1 && flagged?.1 == 4.5)
        let bools = try Tensor([0, -0.0, 0.25, -3, .infinity], shape: [5], engine: engine).toInteger(.bool)
        #expect(bools.dtype == .bool)
        #expect(try bools.toArray() == [0, 0, 1, 1, 1])
    }

    @Test func toIntegerRefusesNaNInfinityAndValuesOutsideTheType() throws {
        let engine = try testEngine()
        func refusal(_ values: [Float], _ dtype: IntegerType) throws -> String? {
            do {
                _ = try Tensor(values, shape: [values.count], engine: engine).toInteger(dtype)
                return nil
            } catch let error as TensorError { return error.message }
        }
        #expect(try refusal([1, 2, .nan, .nan], .int32) == "toInteger(int32): value nan at index 2 is NaN")
        #expect(try refusal([1, -.infinity], .int64) == "toInteger(int64): value -inf at index 1 is infinite")
        #expect(try refusal([0, 1, 3e9, 2], .int64)
                == "toInteger(int64): value 3e+09 at index 2: 3000000000 does not fit 32 bits (int64 values must fit 32 bits on the device)")
        #expect(try refusal([2_147_483_648], .int32) == "toInteger(int32): value 2.1474836e+09 at index 0: 2147483648 is outside int32's range -2147483648…2147483647")
        #expect(try refusal([5, 128.5], .int8) == "toInteger(int8): value 128.5 at index 1: 128 is outside int8's range -128…127")
        #expect(try refusal([1e30], .int64)
                == "toInteger(int64): value 1e+30 at index 0: its truncation lies outside int64's range on the device, -2147483648…2147483647")
        #expect(try refusal([1, .nan], .bool) == "toInteger(bool): value nan at index 1 is NaN")
        // The first offender by position, whatever order the device visits them in.
        let many = (0..<257).map { $0 % 3 == 2 ? Float.nan : Float($0) }
        #expect(try refusal(many, .int32) == "toInteger(int32): value nan at index 2 is NaN")
    }

    static let compareCases: [CompareCase] = TestSizes.pick([
        CompareCase(a: [1], b: [1]),
        CompareCase(a: [257], b: [257]),
        CompareCase(a: [7, 33], b: [33]),
        CompareCase(a: [31, 32], b: [31, 32]),
        CompareCase(a: [2, 3, 5], b: [3, 1]),
        CompareCase(a: [3, 7], b: [1]),
        CompareCase(a: [2, 3, 4, 5], b: [1, 3, 1, 1]),
    ], small: [
        CompareCase(a: [7, 33], b: [33]),
        CompareCase(a: [2, 3, 5], b: [3, 1]),
    ])

    @Test(arguments: compareCases)
    func comparisonsMatchTheReference(_ cs: CompareCase) throws {
        let engine = try testEngine()
        // Values on a coarse grid so that equal pairs occur; one NaN in each operand.
        var rng = SeededRandom(seed: UInt64(cs.a.reduce(1, *)) &+ 420)
        var a = (0..<cs.a.reduce(1, *)).map { _ in Float((rng.uniform(-3, 3)).rounded()) }
        var b = (0..<cs.b.reduce(1, *)).map { _ in Float((rng.uniform(-3, 3)).rounded()) }
        a[a.count / 2] = .nan
        b[b.count - 1] = .nan
        let at = try Tensor(a, shape: cs.a, engine: engine), bt = try Tensor(b, shape: cs.b, engine: engine)
        let bx = numpyExpanded(doubles(b), shape: cs.b, to: cs.a)
        let ops: [(String, (Tensor, Tensor) throws -> IntTensor, (Double, Double) -> Bool)] = [
            ("equal", { try $0.equal($1) }, { $0 == $1 }),
            ("less", { try $0.less($1) }, { $0 < $1 }),
            ("greater", { try $0.greater($1) }, { $0 > $1 }),
        ]
        for (name, device, reference) in ops {
            let y = try device(at, bt)
            #expect(y.shape == cs.a)
            #expect(y.dtype == .bool)
            let expected = zip(doubles(a), bx).map { reference($0, $1) ? Int64(1) : 0 }
            #expect(try y.toArray() == expected, "\(name) \(cs)")
        }
        // Integer operands: the same rule on the values truncated to integers (NaN → 0).
        let ai = a.map { $0.isNaN ? Int64(0) : Int64($0) }, bi = b.map { $0.isNaN ? Int64(0) : Int64($0) }
        let ait = try IntTensor(ai, shape: cs.a, engine: engine), bit = try IntTensor(bi, shape: cs.b, engine: engine)
        let bix = numpyExpanded(bi.map(Double.init), shape: cs.b, to: cs.a)
        #expect(try ait.equal(bit).toArray() == zip(ai, bix).map { Double($0) == $1 ? 1 : 0 }, "int equal \(cs)")
        #expect(try ait.less(bit).toArray() == zip(ai, bix).map { Double($0) < $1 ? 1 : 0 }, "int less \(cs)")
        #expect(try ait.greater(bit).toArray() == zip(ai, bix).map { Double($0) > $1 ? 1 : 0 }, "int greater \(cs)")
    }

    @Test func comparisonsRefuseShapesThatDoNotBroadcast() throws {
        let engine = try testEngine()
        let a = try Tensor.zeros([3, 4], engine: engine), b = try Tensor.zeros([3], engine: engine)
        #expect(throws: TensorError("less: second operand does not broadcast over the first: [3, 4] × [3]")) { try a.less(b) }
        let ai = try IntTensor([1, 2], shape: [2], engine: engine), bi = try IntTensor([1, 2, 3], shape: [3], engine: engine)
        #expect(throws: TensorError("equal: second operand does not broadcast over the first: [2] × [3]")) { try ai.equal(bi) }
    }
}
