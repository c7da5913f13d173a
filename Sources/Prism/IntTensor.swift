import PrismCL

/// The logical type of an `IntTensor`'s elements (PyTorch's `torch.int64`, `int32`, `int8`, `bool`).
///
/// Every type is held as Int32 on the device; the type says which values are allowed and what a
/// cast to it checks.
public enum IntegerType: String, CaseIterable, Sendable {
    case int64, int32, int8, bool

    /// The values the type holds on the device. int64 values must fit 32 bits there.
    public var range: ClosedRange<Int64> {
        switch self {
        case .int64, .int32: Int64(Int32.min)...Int64(Int32.max)
        case .int8: -128...127
        case .bool: 0...1
        }
    }

    /// Why `value` cannot be held as this type, or nil when it can.
    func problem(with value: Int64) -> String? {
        guard !range.contains(value) else { return nil }
        switch self {
        case .int64: return "\(value) does not fit 32 bits (int64 values must fit 32 bits on the device)"
        case .int32: return "\(value) is outside int32's range \(range.lowerBound)…\(range.upperBound)"
        case .int8: return "\(value) is outside int8's range -128…127"
        case .bool: return "\(value) is not a bool (0 or 1)"
        }
    }
}

/// An integer tensor on the device: indices, token ids, masks and comparison results.
///
/// Values of every `dtype` are held as Int32 in a contiguous row-major buffer; creation refuses
/// values the type cannot hold (never wraps them). Integer tensors carry no gradients: ops that
/// read them (`gather`, `embedding`, `Tensor.where`) differentiate only their float inputs.
public final class IntTensor: CustomStringConvertible {
    public let engine: Engine
    public let shape: [Int]
    /// The device storage (shared by views).
    public let storage: Buffer<Int32>
    /// The logical element type.
    public let dtype: IntegerType

    /// Wraps `storage` (which must hold at least `shape`'s element count); the caller vouches that
    /// its values fit `dtype`.
    public init(engine: Engine, shape: [Int], storage: Buffer<Int32>, dtype: IntegerType) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw TensorError("int tensor: negative dimension in shape \(shape)") }
        let count = shape.reduce(1, *)
        guard storage.count >= count else {
            throw TensorError("int tensor: buffer of \(storage.count) elements is too small for shape \(shape)")
        }
        self.engine = engine
        self.shape = shape
        self.storage = storage
        self.dtype = dtype
    }

    /// A tensor holding `values` (e.g. `[Int64]`, `[Int32]`, `[Int]`) with `shape`.
    /// - Parameters:
    ///   - dtype: the logical type (PyTorch's default for integer data, int64, unless given).
    /// - Throws: `TensorError` when the values do not fill the shape, or naming the first value the
    ///   type cannot hold: int64 values must fit 32 bits on the device, int8 lies in −128…127,
    ///   bool is 0 or 1.
    public convenience init<T: BinaryInteger>(_ values: [T], shape: [Int], dtype: IntegerType = .int64, engine: Engine) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw TensorError("int tensor: negative dimension in shape \(shape)") }
        let count = shape.reduce(1, *)
        guard values.count == count else {
            throw TensorError("int tensor: \(values.count) values do not fill shape \(shape) (\(count) elements)")
        }
        var device = [Int32]()
        device.reserveCapacity(count)
        for (i, value) in values.enumerated() {
            guard let wide = Int64(exactly: value) else {
                throw TensorError("int tensor (\(dtype.rawValue)): value \(value) at index \(i) does not fit 64 bits")
            }
            if let problem = dtype.problem(with: wide) {
                throw TensorError("int tensor (\(dtype.rawValue)): value at index \(i): \(problem)")
            }
            device.append(Int32(wide))
        }
        try self.init(engine: engine, shape: shape, storage: try engine.context.buffer(device), dtype: dtype)
    }

    /// A `.bool` tensor holding `values` (1 for true) with `shape`.
    /// - Throws: `TensorError` when the values do not fill the shape.
    public convenience init(_ values: [Bool], shape: [Int], engine: Engine) throws {
        try self.init(values.map { $0 ? Int32(1) : 0 }, shape: shape, dtype: .bool, engine: engine)
    }

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// Number of dimensions.
    public var rank: Int { shape.count }

    public var description: String { "IntTensor(\(shape), \(dtype.rawValue))" }

    /// The elements, in row-major order (waits for the device).
    public func toArray() throws -> [Int64] {
        try storage.read(0..<count).map(Int64.init)
    }

    /// The elements as the device holds them.
    func deviceValues() throws -> [Int32] {
        try storage.read(0..<count)
    }

    /// A view with another shape of the same element count; one dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) throws -> IntTensor {
        let resolved = try reshapeTarget(newShape, of: shape)
        return try IntTensor(engine: engine, shape: resolved, storage: storage, dtype: dtype)
    }

    /// The values as floats (PyTorch's `.float()`), rounded to nearest: exact for |v| < 2^24 = 16777216,
    /// larger values may round to a neighbouring float.
    public func toFloat() throws -> Tensor {
        let n = count
        let y = try Tensor.empty(shape, engine: engine)
        if n > 0 {
            try engine.launch("index.cl", "i32_to_f32", global: [roundUp(n, flatKernelGroupSize)], local: [flatKernelGroupSize],
                              [storage, y.storage, Int32(n)])
        }
        return y
    }

    // MARK: comparisons

    /// self == other element by element, as a `.bool` tensor; other broadcasts as
    /// `Broadcast.of(_:over:)` describes.
    /// - Throws: `TensorError` naming both shapes when other does not broadcast over self.
    public func equal(_ other: IntTensor) throws -> IntTensor { try compare(.equal, other) }
    /// self < other element by element, as a `.bool` tensor (broadcast as in `equal`).
    public func less(_ other: IntTensor) throws -> IntTensor { try compare(.less, other) }
    /// self > other element by element, as a `.bool` tensor (broadcast as in `equal`).
    public func greater(_ other: IntTensor) throws -> IntTensor { try compare(.greater, other) }

    func compare(_ op: Comparison, _ other: IntTensor) throws -> IntTensor {
        let cast = try comparisonBroadcast(op, shape, other.shape)
        return try launchComparison("compare_i32", op, cast, count: count, shape: shape, engine: engine, storage, other.storage)
    }
}

/// The comparisons of `compare_f32` / `compare_i32` (the raw values are the kernels' op codes).
enum Comparison: Int32 {
    case equal = 0, less = 1, greater = 2

    var name: String {
        switch self {
        case .equal: "equal"
        case .less: "less"
        case .greater: "greater"
        }
    }
}

/// The broadcast of a comparison's second operand over its first, checked for 32-bit indexing.
func comparisonBroadcast(_ op: Comparison, _ a: [Int], _ b: [Int]) throws -> Broadcast {
    guard let cast = Broadcast.of(b, over: a) else {
        throw TensorError.shape(op.name, "second operand does not broadcast over the first", a, b)
    }
    guard a.reduce(1, *) < Int(Int32.max) else { throw TensorError.shape(op.name, "tensor too large for 32-bit indexing", a, b) }
    return cast
}

/// Runs a comparison kernel into a new `.bool` tensor of `shape`.
func launchComparison(_ kernel: String, _ op: Comparison, _ cast: Broadcast, count n: Int, shape: [Int], engine: Engine,
                      _ a: any KernelArgument, _ b: any KernelArgument) throws -> IntTensor {
    let out = try IntTensor(engine: engine, shape: shape, storage: try engine.context.buffer(Int32.self, count: n), dtype: .bool)
    if n > 0 {
        try engine.launch("index.cl", kernel, global: [roundUp(n, flatKernelGroupSize)], local: [flatKernelGroupSize],
                          [a, b, out.storage, op.rawValue, Int32(n), Int32(cast.inner), Int32(cast.bcount)])
    }
    return out
}
