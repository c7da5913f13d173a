import Foundation
import PrismFormats

// Models of several inputs (token ids and an attention mask): the inputs besides the model's input
// are nodes of kind `input`; and the ops their masks go through (a value broadcast along axes of
// size 1, comparisons and `where` with numbers).

/// A number in a config that may be infinite or NaN (an attention mask's −∞): a JSON number, or
/// one of the strings `"inf"`, `"-inf"`, `"nan"` (JSON has no such numbers).
public struct Scalar: Codable, Equatable, Sendable, CustomStringConvertible {
    public var value: Double

    public init(_ value: Double) { self.value = value }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let v = try? container.decode(Double.self) {
            value = v
            return
        }
        let text = try container.decode(String.self)
        switch text.lowercased() {
        case "inf", "+inf", "infinity": value = .infinity
        case "-inf", "-infinity": value = -.infinity
        case "nan": value = .nan
        default:
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not a number, \"inf\", \"-inf\" or \"nan\"")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        if value.isFinite { try container.encode(value) } else { try container.encode(description) }
    }

    public var description: String { value.isNaN ? "nan" : value == .infinity ? "inf" : value == -.infinity ? "-inf" : "\(value)" }

    /// NaN equals NaN here (configs compare by what they say).
    public static func == (a: Scalar, b: Scalar) -> Bool { a.value == b.value || (a.value.isNaN && b.value.isNaN) }

    /// As JSON in a node's attributes.
    public var json: JSONValue { value.isFinite ? .double(value) : .string(description) }
}

/// One more input of the model, fed by name beside the model's input (`Model.forward(_:inputs:)`):
/// an attention mask beside token ids, say. The node's name is the input's name; per example it has
/// `shape`, of element type `dtype`.
public enum InputSchema: OpSchema {
    public struct Config: OpConfig {
        public var shape: [Int]
        public var dtype: ElementType
        public static let attributes = ["shape", "dtype"]
        public init(shape: [Int], dtype: ElementType) { (self.shape, self.dtype) = (shape, dtype) }
    }
    public static let kind = "input"
    public static let arity = 0...0

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard !config.shape.isEmpty, config.shape.allSatisfy({ $0 > 0 }), HostMemory.product(config.shape) != nil else {
            throw TensorError("shape \(config.shape) must be non-empty with positive sizes")
        }
        return config.shape
    }

    public static func outputType(_ config: Config, inputs: [ElementType]) throws -> ElementType { config.dtype }
}

/// `x.expand(batch, *shape)` of a value: axes of size 1 repeated to `shape` (per example, the
/// input's rank); the gradient sums over the repeated axes.
public enum BroadcastToSchema: OpSchema {
    public struct Config: OpConfig {
        public var shape: [Int]
        public static let attributes = ["shape"]
        public init(shape: [Int]) { self.shape = shape }
    }
    public static let kind = "broadcast_to"

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard config.shape.count == inputs[0].count, config.shape.allSatisfy({ $0 > 0 }), HostMemory.product(config.shape) != nil else {
            throw TensorError("shape \(config.shape) must have the input's rank (\(inputs[0].count)) and positive sizes")
        }
        for (have, want) in zip(inputs[0], config.shape) where have != want && have != 1 {
            throw TensorError("an axis of size \(have) cannot be broadcast to \(want) (only axes of size 1 are repeated)")
        }
        guard config.shape.count <= 5 else { throw TensorError("rank \(config.shape.count + 1) with the batch; broadcast_to takes rank 6 at most") }
        return config.shape
    }
}
