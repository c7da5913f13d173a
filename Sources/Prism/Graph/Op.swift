import Foundation

/// The attributes of one op kind, as a graph node's JSON carries them (PyTorch's constructor
/// argument names, snake_case; omitted attributes take PyTorch's defaults).
public protocol OpConfig: Codable, Equatable, Sendable {
    /// Every attribute name the config reads (for the message naming an unknown one).
    static var attributes: [String] { get }
}

/// What an op's static checks see: the per-example shapes (without the batch) of its inputs.
public typealias Shapes = [[Int]]

/// One kind of graph node: its config, the shapes it produces, its parameters under PyTorch's names,
/// and its forward pass (the backward is the autograd tape's, recorded by the tensor ops it runs).
///
/// An op kind is registered by name in `OpRegistry`; a model description names it in a node's `op`.
public protocol Op: AnyObject {
    associatedtype Config: OpConfig
    /// The registry name (`conv2d`, `batchnorm2d`, …): PyTorch's module class name in lower case.
    static var kind: String { get }
    /// How many inputs a node of this kind takes.
    static var arity: ClosedRange<Int> { get }
    /// The output shape for one example.
    /// - Throws: `TensorError` when the inputs do not fit the config (the registry names the node).
    static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int]
    /// Parameter and buffer shapes under PyTorch's names (`weight`, `running_mean`), in state-dict order.
    static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])]
    /// Floats per example alive inside the op beyond its inputs and output (for batch sizing).
    static func workspaceElements(_ config: Config, inputs: Shapes, output: [Int]) -> Int
    /// Multiply-adds × 2 per example of one forward pass (benchmarks' GFLOP/s; 0 when negligible).
    static func flops(_ config: Config, inputs: Shapes, output: [Int]) -> Double

    /// Builds the op with PyTorch's default initialization, seeded.
    init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws

    /// The config the op was built from.
    var config: Config { get }
    /// Trainable tensors under PyTorch's names.
    var parameters: [(name: String, tensor: Tensor)] { get }
    /// State the op keeps that is saved but not trained (BatchNorm's running statistics).
    var buffers: [(name: String, tensor: Tensor)] { get }
    /// Applies the op to a batch (first axis of every input the batch).
    func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor
}

extension Op {
    public static var arity: ClosedRange<Int> { 1...1 }
    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] { [] }
    public static func workspaceElements(_ config: Config, inputs: Shapes, output: [Int]) -> Int { 0 }
    public static func flops(_ config: Config, inputs: Shapes, output: [Int]) -> Double { 0 }
    public var parameters: [(name: String, tensor: Tensor)] { [] }
    public var buffers: [(name: String, tensor: Tensor)] { [] }
    /// The registry name of this op's kind.
    public var kind: String { Self.kind }
}

/// An op with no attributes.
public struct NoConfig: OpConfig {
    public static let attributes: [String] = []
    public init() {}
}

/// One registered op kind, with its config erased: what the graph checks and builds nodes through.
public struct OpDefinition: Sendable {
    public let kind: String
    public let arity: ClosedRange<Int>
    public let attributes: [String]
    let analyze: @Sendable ([String: JSONValue], Shapes) throws -> NodeAnalysis
    let make: @Sendable ([String: JSONValue], Shapes, UInt64, Engine) throws -> any Op

    init<T: Op>(_ type: T.Type) {
        kind = T.kind
        arity = T.arity
        attributes = T.Config.attributes
        analyze = { object, inputs in
            let config = try JSONValue.decode(T.Config.self, from: object)
            let output = try T.outputShape(config, inputs: inputs)
            return NodeAnalysis(output: output, parameters: T.parameterShapes(config, inputs: inputs),
                                workspace: T.workspaceElements(config, inputs: inputs, output: output),
                                flops: T.flops(config, inputs: inputs, output: output))
        }
        make = { object, inputs, seed, engine in
            try T(config: try JSONValue.decode(T.Config.self, from: object), inputs: inputs, seed: seed, engine: engine)
        }
    }
}

/// What static analysis knows about one node.
public struct NodeAnalysis: Sendable {
    /// Output shape per example.
    public var output: [Int]
    /// Parameter and buffer shapes under the op's names (without the node's prefix).
    public var parameters: [(name: String, shape: [Int])]
    /// See `Op.workspaceElements`.
    public var workspace: Int
    /// See `Op.flops`.
    public var flops: Double
}

/// The op kinds a model description may name, by name. `standard` holds Prism's; `register` adds
/// more (before models using them are built).
public enum OpRegistry {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var table: [String: OpDefinition] = Dictionary(
        uniqueKeysWithValues: standardOps.map { ($0.kind, $0) })

    /// Adds (or replaces) an op kind.
    public static func register<T: Op>(_ type: T.Type) {
        lock.withLock { table[T.kind] = OpDefinition(type) }
    }

    /// The definition of `kind`, if registered.
    public static func definition(_ kind: String) -> OpDefinition? {
        lock.withLock { table[kind] }
    }

    /// Every registered kind, sorted.
    public static var kinds: [String] {
        lock.withLock { table.keys.sorted() }
    }
}
