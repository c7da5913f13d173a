import Foundation
import PrismFormats

/// The attributes of one op kind, as a graph node's JSON carries them (PyTorch's constructor
/// argument names, snake_case; omitted attributes take PyTorch's defaults).
public protocol OpConfig: Codable, Equatable, Sendable {
    /// Every attribute name the config reads (for the message naming an unknown one).
    static var attributes: [String] { get }
}

/// What an op's static checks see: the per-example shapes (without the batch) of its inputs.
public typealias Shapes = [[Int]]

/// The element type of a graph value (PyTorch's dtype names). int64 values are held in 32 bits on
/// the device (larger ones are refused when the tensor is made).
public enum ElementType: String, Codable, Sendable, CaseIterable {
    case float32, int64, int32, int8, bool

    /// Whether the type holds integers (indices, token ids, masks).
    public var isInteger: Bool { self != .float32 }
}

/// What a model description knows about one op kind without a device: its config, the shapes it
/// produces and its parameters under PyTorch's names. (Prism's `Op` types run it; each names its
/// schema.)
public protocol OpSchema {
    associatedtype Config: OpConfig
    /// The registry name (`conv2d`, `batchnorm2d`, …): PyTorch's module class name in lower case.
    static var kind: String { get }
    /// How many inputs a node of this kind takes.
    static var arity: ClosedRange<Int> { get }
    /// The output shape for one example.
    /// - Throws: `TensorError` when the inputs do not fit the config (the graph names the node).
    static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int]
    /// Parameter and buffer shapes under PyTorch's names (`weight`, `running_mean`), in state-dict order.
    static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])]
    /// Floats per example alive inside the op beyond its inputs and output (for batch sizing).
    static func workspaceElements(_ config: Config, inputs: Shapes, output: [Int]) -> Int
    /// Multiply-adds × 2 per example of one forward pass (benchmarks' GFLOP/s; 0 when negligible).
    static func flops(_ config: Config, inputs: Shapes, output: [Int]) -> Double
    /// The output's element type; the default takes float32 inputs and gives float32.
    /// - Throws: `TensorError` when an input has a type the op does not take.
    static func outputType(_ config: Config, inputs: [ElementType]) throws -> ElementType
}

extension OpSchema {
    public static var arity: ClosedRange<Int> { 1...1 }
    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] { [] }
    public static func workspaceElements(_ config: Config, inputs: Shapes, output: [Int]) -> Int { 0 }
    public static func flops(_ config: Config, inputs: Shapes, output: [Int]) -> Double { 0 }
    public static func outputType(_ config: Config, inputs: [ElementType]) throws -> ElementType {
        if let other = inputs.first(where: { $0 != .float32 }) {
            throw TensorError("takes float32 inputs, got \(other.rawValue) (cast it first)")
        }
        return .float32
    }
}

/// An op applied element by element: the output has the input's shape.
public protocol ElementwiseSchema: OpSchema {}
extension ElementwiseSchema {
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] { inputs[0] }
}

/// An op with no attributes.
public struct NoConfig: OpConfig {
    public static let attributes: [String] = []
    public init() {}
}

/// One registered op kind, with its config erased: what a graph is checked through.
public struct OpDefinition: Sendable {
    public let kind: String
    public let arity: ClosedRange<Int>
    public let attributes: [String]
    let analyze: @Sendable ([String: JSONValue], Shapes, [ElementType]) throws -> NodeAnalysis

    public init<S: OpSchema>(_ schema: S.Type) {
        kind = S.kind
        arity = S.arity
        attributes = S.Config.attributes
        analyze = { object, inputs, types in
            let config = try JSONValue.decode(S.Config.self, from: object)
            let type = try S.outputType(config, inputs: types)
            let output = try S.outputShape(config, inputs: inputs)
            return NodeAnalysis(output: output, type: type, parameters: S.parameterShapes(config, inputs: inputs),
                                workspace: S.workspaceElements(config, inputs: inputs, output: output),
                                flops: S.flops(config, inputs: inputs, output: output))
        }
    }

    /// A node of this kind checked alone: its attributes decoded against inputs of these shapes and types.
    /// - Throws: `DecodingError` for attributes that do not decode, `TensorError` for inputs that do not fit.
    public func check(attributes: [String: JSONValue], shapes: Shapes, types: [ElementType]) throws -> NodeAnalysis {
        try analyze(attributes, shapes, types)
    }
}

/// What static analysis knows about one node.
public struct NodeAnalysis: Sendable {
    /// Output shape per example.
    public var output: [Int]
    /// Output element type.
    public var type: ElementType
    /// Parameter and buffer shapes under the op's names (without the node's prefix).
    public var parameters: [(name: String, shape: [Int])]
    /// See `OpSchema.workspaceElements`.
    public var workspace: Int
    /// See `OpSchema.flops`.
    public var flops: Double
}

/// The op kinds a model description may name, by name: the standard ones and those registered
/// since (`register`, or Prism's `OpRegistry.register`, which also registers how to run them).
public enum OpSchemaRegistry {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var table: [String: OpDefinition] = Dictionary(
        uniqueKeysWithValues: standardSchemas.map { ($0.kind, $0) })

    /// Adds (or replaces) an op kind.
    public static func register<S: OpSchema>(_ schema: S.Type) {
        lock.withLock { table[S.kind] = OpDefinition(schema) }
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

/// The checked length of a window sliding over `length` (sizes come from files): PyTorch's
/// ⌊(length + 2·padding − dilation·(kernel − 1) − 1) / stride⌋ + 1, or with `ceil` the ceiling,
/// dropping a last window that would start in the right padding.
/// - Throws: `TensorError` for a non-positive kernel, stride or dilation, a negative padding, an
///   overflow, or an empty output.
public func slidingLength(_ length: Int, kernel: Int, stride: Int, padding: Int, dilation: Int = 1, ceil: Bool = false) throws -> Int {
    guard kernel > 0, stride > 0, dilation > 0, padding >= 0 else {
        throw TensorError("needs a positive kernel, stride and dilation and a non-negative padding (kernel \(kernel), stride \(stride), padding \(padding), dilation \(dilation))")
    }
    guard let span = HostMemory.product([dilation, kernel - 1]), let twice = HostMemory.product([padding, 2]),
          case let (padded, false) = length.addingReportingOverflow(twice), padded <= Int(Int32.max) else {
        throw TensorError("padding \(padding) or dilation \(dilation) is too large")
    }
    let reach = padded - span - 1
    guard reach >= 0 else { throw TensorError("output is empty (window \(span + 1) over \(padded) padded elements)") }
    var out = (ceil ? (reach + stride - 1) / stride : reach / stride) + 1
    if ceil, (out - 1) * stride >= length + padding { out -= 1 }
    return out
}

/// The per-example shape is [C, H, W] (a 2-D op's input).
func requireImage(_ inputs: Shapes, channels: Int? = nil) throws -> (c: Int, h: Int, w: Int) {
    guard let x = inputs.first, x.count == 3, channels == nil || x[0] == channels else {
        throw TensorError("expects [\(channels.map(String.init) ?? "C"), H, W]")
    }
    return (x[0], x[1], x[2])
}
