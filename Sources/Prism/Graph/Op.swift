import Foundation

/// One kind of graph node, run on a device: the op's schema (`OpSchema`: config, shapes, parameter
/// names), how it is built, its parameters and buffers, and its forward pass (the backward is the
/// autograd tape's, recorded by the tensor ops it runs).
///
/// Registered with `OpRegistry.register`, an op kind can be named in a model description's `op`.
public protocol Op: AnyObject {
    associatedtype Schema: OpSchema
    /// Builds the op with PyTorch's default initialization, seeded.
    init(config: Schema.Config, inputs: Shapes, seed: UInt64, engine: Engine) throws

    /// The config the op was built from.
    var config: Schema.Config { get }
    /// Trainable tensors under PyTorch's names.
    var parameters: [(name: String, tensor: Tensor)] { get }
    /// State the op keeps that is saved but not trained (BatchNorm's running statistics).
    var buffers: [(name: String, tensor: Tensor)] { get }
    /// Applies the op to a batch (first axis of every input the batch).
    func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor
}

extension Op {
    public var parameters: [(name: String, tensor: Tensor)] { [] }
    public var buffers: [(name: String, tensor: Tensor)] { [] }
    /// The registry name of this op's kind.
    public static var kind: String { Schema.kind }
    /// The registry name of this op's kind.
    public var kind: String { Schema.kind }
}

/// How each op kind is built on a device, by name; its schema lives in `OpSchemaRegistry`.
public enum OpRegistry {
    typealias Maker = @Sendable ([String: JSONValue], Shapes, UInt64, Engine) throws -> any Op

    private static let lock = NSLock()
    nonisolated(unsafe) private static var makers: [String: Maker] = Dictionary(uniqueKeysWithValues: standardOps.map { ($0.kind, $0.make) })

    /// Adds (or replaces) an op kind: its schema for descriptions and its type for models.
    public static func register<T: Op>(_ type: T.Type) {
        OpSchemaRegistry.register(T.Schema.self)
        lock.withLock { makers[T.Schema.kind] = maker(T.self) }
    }

    static func maker<T: Op>(_ type: T.Type) -> Maker {
        { object, inputs, seed, engine in
            try T(config: try JSONValue.decode(T.Schema.Config.self, from: object), inputs: inputs, seed: seed, engine: engine)
        }
    }

    /// Builds a node of `kind` from its attributes.
    /// - Throws: `TensorError` when no op type runs `kind`, or the op's own errors.
    static func make(_ kind: String, _ attributes: [String: JSONValue], _ inputs: Shapes, seed: UInt64, engine: Engine) throws -> any Op {
        guard let make = lock.withLock({ makers[kind] }) else {
            throw TensorError("op '\(kind)' has a schema but no implementation registered (OpRegistry.register)")
        }
        return try make(attributes, inputs, seed, engine)
    }
}
