import Foundation
import PrismFormats

/// One node of a model description: a name, an op kind from `OpSchemaRegistry`, the values it reads and
/// the op's attributes. In JSON all of these are keys of one object:
/// `{"name": "conv1", "op": "conv2d", "inputs": ["input"], "in_channels": 3, …}`.
public struct NodeSpec: Codable, Equatable, Sendable, CustomStringConvertible {
    /// The node's name: its output value's name and its parameters' prefix (`conv1.weight`).
    public var name: String
    /// The op kind (`OpSchemaRegistry`).
    public var op: String
    /// The values read: node names or `"input"`; nil means the previous node's output (the model's
    /// input for the first node).
    public var inputs: [String]?
    /// The op's attributes, as written.
    public var attributes: [String: JSONValue]

    private static let reserved: Set<String> = ["name", "op", "inputs"]

    public init(name: String, op: String, inputs: [String]? = nil, attributes: [String: JSONValue] = [:]) {
        self.name = name
        self.op = op
        self.inputs = inputs
        self.attributes = attributes
    }

    /// A node of op kind `S` with a typed config.
    public init<S: OpSchema>(_ name: String, _ schema: S.Type, _ config: S.Config, inputs: [String]? = nil) throws {
        self.init(name: name, op: S.kind, inputs: inputs, attributes: try JSONValue.object(config))
    }

    public var description: String { "'\(name)' (\(op))" }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        name = try container.decode(String.self, forKey: Key("name"))
        op = try container.decode(String.self, forKey: Key("op"))
        inputs = try container.decodeIfPresent([String].self, forKey: Key("inputs"))
        var attributes: [String: JSONValue] = [:]
        for key in container.allKeys where !Self.reserved.contains(key.stringValue) {
            attributes[key.stringValue] = try container.decode(JSONValue.self, forKey: key)
        }
        self.attributes = attributes
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(name, forKey: Key("name"))
        try container.encode(op, forKey: Key("op"))
        try container.encodeIfPresent(inputs, forKey: Key("inputs"))
        for (key, value) in attributes { try container.encode(value, forKey: Key(key)) }
    }
}

/// A model description checked as a graph: every node's op found, its attributes decoded, its inputs
/// resolved to earlier values and its output shape inferred.
public struct GraphAnalysis: Sendable {
    /// One checked node. Values are numbered 0 for the model's input and i + 1 for node i's output.
    public struct Node: Sendable {
        public var spec: NodeSpec
        public var definition: OpDefinition
        /// The values read (see above).
        public var inputs: [Int]
        public var info: NodeAnalysis
    }

    public var nodes: [Node]
    /// The value the model outputs.
    public var output: Int

    /// The name of the model's input value.
    public static let inputName = "input"

    /// The model input's element type.
    public var inputType: ElementType = .float32

    /// Shape of value `v` for one example.
    public func shape(ofValue v: Int, input: [Int]) -> [Int] { v == 0 ? input : nodes[v - 1].info.output }

    /// Element type of value `v`.
    public func type(ofValue v: Int) -> ElementType { v == 0 ? inputType : nodes[v - 1].info.type }

    /// Whether every value of the graph is float32 (what the attribution methods walk).
    public var isFloat: Bool { inputType == .float32 && nodes.allSatisfy { $0.info.type == .float32 } }

    /// Checks `nodes` over an input of shape `inputShape`.
    /// - Throws: `TensorError` naming the node: a duplicate or reserved name, an unknown op (listing the
    ///   registered ones), an unknown attribute (listing the op's), a missing or mistyped attribute, an
    ///   input that is not an earlier value, a wrong number of inputs, or shapes that do not fit.
    public init(nodes specs: [NodeSpec], output: String?, inputShape: [Int], inputType: ElementType = .float32) throws {
        var index: [String: Int] = [Self.inputName: 0]
        var nodes: [Node] = []
        for (i, spec) in specs.enumerated() {
            func fail(_ what: String) -> TensorError { TensorError("model: node \(i) \(spec): \(what)") }
            guard !spec.name.isEmpty, index[spec.name] == nil else {
                throw fail(spec.name.isEmpty ? "needs a name" : "the name '\(spec.name)' is \(spec.name == Self.inputName ? "reserved for the model's input" : "used twice")")
            }
            guard let definition = OpSchemaRegistry.definition(spec.op) else {
                throw fail("unknown op '\(spec.op)'; supported ops: \(OpSchemaRegistry.kinds.joined(separator: ", "))")
            }
            let unknown = spec.attributes.keys.filter { !definition.attributes.contains($0) }.sorted()
            if !unknown.isEmpty {
                let takes = definition.attributes.isEmpty ? "takes no attributes" : "takes \(definition.attributes.joined(separator: ", "))"
                throw fail("unknown attribute\(unknown.count == 1 ? "" : "s") \(unknown.map { "'\($0)'" }.joined(separator: ", ")); \(spec.op) \(takes)")
            }
            let names = spec.inputs ?? (definition.arity.upperBound == 0 ? [] : [i == 0 ? Self.inputName : specs[i - 1].name])
            var inputs: [Int] = []
            for name in names {
                guard let v = index[name] else {
                    throw fail("input '\(name)' is not the model's input or an earlier node")
                }
                inputs.append(v)
            }
            guard definition.arity.contains(inputs.count) else {
                let (low, high) = (definition.arity.lowerBound, definition.arity.upperBound)
                let wanted = low == high ? "\(low)" : high == Int.max ? "at least \(low)" : "\(low) to \(high)"
                throw fail("takes \(wanted) input\(low == 1 && high == 1 ? "" : "s"), got \(inputs.count)")
            }
            let shapes = inputs.map { $0 == 0 ? inputShape : nodes[$0 - 1].info.output }
            let types = inputs.map { $0 == 0 ? inputType : nodes[$0 - 1].info.type }
            let info: NodeAnalysis
            do {
                info = try definition.analyze(spec.attributes, shapes, types)
            } catch let error as DecodingError {
                throw fail(Self.describe(error))
            } catch let error as TensorError {
                throw fail("\(error.message), input shape\(shapes.count == 1 ? "" : "s") \(shapes.count == 1 ? "\(shapes[0])" : "\(shapes)")")
            }
            for (name, shape) in info.parameters {
                guard shape.allSatisfy({ $0 > 0 }) else { throw fail("parameter '\(name)' of shape \(shape) has a size that is not positive") }
                guard HostMemory.product(shape) != nil else { throw fail("parameter '\(name)' of shape \(shape) overflows a 64-bit count") }
            }
            guard info.output.allSatisfy({ $0 > 0 }), HostMemory.product(info.output) != nil else {
                throw fail("output shape \(info.output) is empty or too large, input shape\(shapes.count == 1 ? "" : "s") \(shapes.count == 1 ? "\(shapes[0])" : "\(shapes)")")
            }
            index[spec.name] = i + 1
            nodes.append(Node(spec: spec, definition: definition, inputs: inputs, info: info))
        }
        guard !nodes.isEmpty else { throw TensorError("model: the description has no nodes") }
        if let output {
            guard let v = index[output], v > 0 else { throw TensorError("model: output '\(output)' is not a node") }
            self.output = v
        } else {
            self.output = nodes.count
        }
        self.nodes = nodes
        self.inputType = inputType
    }

    /// A one-line account of a config that did not decode.
    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case let .keyNotFound(key, _): return "attribute '\(key.stringValue)' is missing"
        case let .typeMismatch(type, context): return "attribute '\(path(context))' is not \(type == Int.self ? "an integer" : type == Bool.self ? "true or false" : type == String.self ? "a string" : type == Double.self || type == Float.self ? "a number" : "of the expected type (\(type))")"
        case let .valueNotFound(_, context): return "attribute '\(path(context))' is null"
        case let .dataCorrupted(context): return "attribute '\(path(context))': \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
