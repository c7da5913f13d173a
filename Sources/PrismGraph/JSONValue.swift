import Foundation
import PrismFormats

/// A JSON value kept as read: how a graph node holds its attributes until its op decodes them.
/// Integers stay integers (so `3` is written back as `3`), other numbers are doubles.
public enum JSONValue: Codable, Equatable, Sendable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? container.decode(Int.self) {
            self = .int(i)
        } else if let d = try? container.decode(Double.self) {
            self = .double(d)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case let .bool(b): try container.encode(b)
        case let .int(i): try container.encode(i)
        case let .double(d): try container.encode(d)
        case let .string(s): try container.encode(s)
        case let .array(a): try container.encode(a)
        case let .object(o): try container.encode(o)
        }
    }

    public var description: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? "?"
    }

    /// `value` as JSON values (through its `Codable` encoding).
    /// - Throws: `EncodingError` when `value` does not encode to a JSON object.
    public static func object<T: Encodable>(_ value: T) throws -> [String: JSONValue] {
        let data = try JSONEncoder().encode(value)
        return try JSONDecoder().decode([String: JSONValue].self, from: data)
    }

    /// Decodes `T` from an object of JSON values.
    public static func decode<T: Decodable>(_ type: T.Type, from object: [String: JSONValue]) throws -> T {
        try JSONDecoder().decode(T.self, from: try JSONEncoder().encode(object))
    }
}

/// A size that PyTorch accepts as one int or a (height, width) pair (`kernel_size=3`,
/// `padding=(0, 1)`); written back as one int when both are equal.
public struct SizePair: Codable, Equatable, Sendable, CustomStringConvertible {
    public var h: Int
    public var w: Int

    public init(_ h: Int, _ w: Int) { (self.h, self.w) = (h, w) }
    public init(_ both: Int) { (h, w) = (both, both) }

    public var pair: (Int, Int) { (h, w) }
    public var description: String { h == w ? "\(h)" : "(\(h), \(w))" }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let n = try? container.decode(Int.self) {
            (h, w) = (n, n)
            return
        }
        let list = try container.decode([Int].self)
        guard list.count == 2 else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected an int or two ints, got \(list.count) ints")
        }
        (h, w) = (list[0], list[1])
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        if h == w { try container.encode(h) } else { try container.encode([h, w]) }
    }
}
