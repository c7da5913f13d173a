import Foundation
import PrismCL

/// A float32 tensor on the device: a shape and a contiguous row-major buffer.
///
/// Views (`reshaped`, `flattened`) share the buffer. When any input requires gradients and the
/// engine is recording, an op's result carries a `GradNode` that knows how to send its gradient
/// back to its inputs; `backward()` walks those nodes.
public final class Tensor: CustomStringConvertible {
    public let engine: Engine
    public let shape: [Int]
    /// The device storage (shared by views).
    public let storage: Buffer<Float>
    /// Whether gradients with respect to this tensor are wanted.
    public var requiresGrad: Bool
    /// The accumulated gradient, after `backward()`; for non-leaf tensors only with `retainGrad()`.
    public internal(set) var grad: Tensor?
    /// A name for the tensor (layers name their activations, so attributions can ask for them).
    public var name: String?
    var node: GradNode?
    var retainsGrad = false

    /// Wraps `storage` (which must hold at least `shape`'s element count).
    public init(engine: Engine, shape: [Int], storage: Buffer<Float>, requiresGrad: Bool = false) throws {
        let count = shape.reduce(1, *)
        guard shape.allSatisfy({ $0 >= 0 }) else { throw TensorError("tensor: negative dimension in shape \(shape)") }
        guard storage.count >= count else {
            throw TensorError("tensor: buffer of \(storage.count) elements is too small for shape \(shape)")
        }
        self.engine = engine
        self.shape = shape
        self.storage = storage
        self.requiresGrad = requiresGrad
    }

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// Number of dimensions.
    public var rank: Int { shape.count }
    /// Whether this tensor was produced by a recorded op (it is not a leaf).
    public var isLeaf: Bool { node == nil }

    public var description: String { "Tensor(\(shape)\(name.map { ", \($0)" } ?? ""))" }

    // MARK: creation

    /// A tensor holding `values` with `shape`.
    public convenience init(_ values: [Float], shape: [Int], engine: Engine, requiresGrad: Bool = false) throws {
        let count = shape.reduce(1, *)
        guard values.count == count else {
            throw TensorError("tensor: \(values.count) values do not fill shape \(shape) (\(count) elements)")
        }
        try self.init(engine: engine, shape: shape, storage: try engine.context.buffer(values), requiresGrad: requiresGrad)
    }

    /// An uninitialized tensor (contents undefined until written).
    public static func empty(_ shape: [Int], engine: Engine) throws -> Tensor {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw TensorError("tensor: negative dimension in shape \(shape)") }
        return try Tensor(engine: engine, shape: shape, storage: try engine.buffer(count: shape.reduce(1, *)))
    }

    /// A tensor with every element equal to `value`.
    public static func full(_ shape: [Int], _ value: Float, engine: Engine, requiresGrad: Bool = false) throws -> Tensor {
        let t = try empty(shape, engine: engine)
        // A kernel rather than clEnqueueFillBuffer: simulators such as Oclgrind do not count a
        // fill command as initializing memory.
        let n = t.count
        try engine.launch("elementwise.cl", "fill_f32", global: [ElementwiseFamily.vectorItems(engine, n)], [t.storage, value, Int32(n)])
        t.requiresGrad = requiresGrad
        return t
    }

    public static func zeros(_ shape: [Int], engine: Engine, requiresGrad: Bool = false) throws -> Tensor {
        try full(shape, 0, engine: engine, requiresGrad: requiresGrad)
    }

    public static func ones(_ shape: [Int], engine: Engine, requiresGrad: Bool = false) throws -> Tensor {
        try full(shape, 1, engine: engine, requiresGrad: requiresGrad)
    }

    /// Normal(mean, std) values from a seeded generator (the same seed gives the same tensor on any device).
    public static func randn(_ shape: [Int], mean: Float = 0, std: Float = 1, seed: UInt64, engine: Engine,
                             requiresGrad: Bool = false) throws -> Tensor {
        var rng = SplitMix64(seed: seed)
        let values = (0..<shape.reduce(1, *)).map { _ in mean + std * rng.nextNormal() }
        return try Tensor(values, shape: shape, engine: engine, requiresGrad: requiresGrad)
    }

    /// Uniform values in [low, high) from a seeded generator.
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, seed: UInt64, engine: Engine,
                               requiresGrad: Bool = false) throws -> Tensor {
        var rng = SplitMix64(seed: seed)
        let values = (0..<shape.reduce(1, *)).map { _ in low + (high - low) * rng.nextFloat() }
        return try Tensor(values, shape: shape, engine: engine, requiresGrad: requiresGrad)
    }

    // MARK: reading

    /// The elements, in row-major order (waits for the device).
    public func toArray() throws -> [Float] {
        try storage.read(0..<count)
    }

    /// The single element of a one-element tensor.
    public func item() throws -> Float {
        guard count == 1 else { throw TensorError("item: tensor has \(count) elements, shape \(shape)") }
        return try toArray()[0]
    }

    // MARK: views

    /// A view with another shape of the same element count; one dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        let resolved = try reshapeTarget(newShape, of: shape)
        let view = try Tensor(engine: engine, shape: resolved, storage: storage)
        let original = shape
        view.record(inputs: [self]) { g in [try g.reshaped(original)] }
        return view
    }

    /// A view as [shape[0], rest] (Flatten of a batch), or 1-D with `keepBatch: false`.
    public func flattened(keepBatch: Bool = true) throws -> Tensor {
        if keepBatch, rank >= 1 { return try reshaped([shape[0], count / max(shape[0], 1)]) }
        return try reshaped([count])
    }

    /// The same values without autograd history.
    public func detached() throws -> Tensor {
        try Tensor(engine: engine, shape: shape, storage: storage)
    }
}

/// `newShape` with its one -1 (if any) inferred, for a reshape of a tensor of `shape`.
/// - Throws: `TensorError` naming both shapes when the target is invalid or counts differ.
func reshapeTarget(_ newShape: [Int], of shape: [Int]) throws -> [Int] {
    let count = shape.reduce(1, *)
    var resolved = newShape
    let known = newShape.filter { $0 != -1 }.reduce(1, *)
    let inferred = newShape.indices.filter { newShape[$0] == -1 }
    guard inferred.count <= 1, newShape.allSatisfy({ $0 >= -1 }) else {
        throw TensorError.shape("reshape", "invalid target shape", shape, newShape)
    }
    if let i = inferred.first {
        guard known > 0, count % known == 0 else { throw TensorError.shape("reshape", "cannot infer -1", shape, newShape) }
        resolved[i] = count / known
    }
    guard resolved.reduce(1, *) == count else {
        throw TensorError.shape("reshape", "element counts differ", shape, newShape)
    }
    return resolved
}
