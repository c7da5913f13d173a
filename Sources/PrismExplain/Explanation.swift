import Foundation
import Prism
import PrismFiles

/// What every explainer returns: one attribution per (instance, feature, output), with the base value
/// and model output they add up to where the method is additive (Shapley values), standard errors
/// where the method samples, and the cost of computing it.
///
/// Values are stored flat, row-major [instances][features][outputs]; `value(instance:feature:output:)`
/// reads one. For gradient methods the features are the input elements (or the groups given).
public struct Explanation: Codable, Equatable, Sendable {
    /// The method, e.g. `kernel-shap`, `integrated-gradients`.
    public var method: String
    public var instanceCount: Int
    public var featureCount: Int
    public var outputCount: Int
    /// [instances][features][outputs].
    public var values: [Double]
    /// E f over the background (or f(baseline)) per instance and output: [instances][outputs]; nil when
    /// the method has none.
    public var baseValues: [Double]?
    /// f(x): [instances][outputs].
    public var outputs: [Double]?
    /// Standard errors of `values` for sampled estimates, same layout; nil for exact methods.
    public var standardErrors: [Double]?
    /// Names of the features (columns, or `superpixel 12`), when known.
    public var featureNames: [String]?
    /// Model rows evaluated (forward passes count one per row; a backward pass counts as one more).
    public var modelEvaluations: Int
    /// Wall-clock seconds.
    public var seconds: Double
    /// Method-specific settings worth recording (budget, seed, background rows, steps…), snake_case
    /// keys with typed values (numbers stay numbers in JSON).
    public var settings: [String: SettingValue]

    public init(method: String, instanceCount: Int, featureCount: Int, outputCount: Int, values: [Double],
                baseValues: [Double]? = nil, outputs: [Double]? = nil, standardErrors: [Double]? = nil,
                featureNames: [String]? = nil, modelEvaluations: Int, seconds: Double, settings: [String: SettingValue] = [:]) throws {
        let count = instanceCount * featureCount * outputCount
        guard values.count == count else {
            throw ExplainError("explanation: \(values.count) values for \(instanceCount) instances × \(featureCount) features × \(outputCount) outputs")
        }
        if let baseValues, baseValues.count != instanceCount * outputCount {
            throw ExplainError("explanation: \(baseValues.count) base values for \(instanceCount) instances × \(outputCount) outputs")
        }
        if let outputs, outputs.count != instanceCount * outputCount {
            throw ExplainError("explanation: \(outputs.count) outputs for \(instanceCount) instances × \(outputCount) outputs")
        }
        if let standardErrors, standardErrors.count != count {
            throw ExplainError("explanation: \(standardErrors.count) standard errors for \(count) values")
        }
        if let featureNames, featureNames.count != featureCount {
            throw ExplainError("explanation: \(featureNames.count) feature names for \(featureCount) features")
        }
        self.method = method
        self.instanceCount = instanceCount
        self.featureCount = featureCount
        self.outputCount = outputCount
        self.values = values
        self.baseValues = baseValues
        self.outputs = outputs
        self.standardErrors = standardErrors
        self.featureNames = featureNames
        self.modelEvaluations = modelEvaluations
        self.seconds = seconds
        self.settings = settings
    }

    public func value(instance i: Int, feature j: Int, output o: Int) -> Double {
        values[(i * featureCount + j) * outputCount + o]
    }

    /// The attributions of one instance for one output, one per feature.
    public func attributions(instance i: Int, output o: Int) -> [Double] {
        (0..<featureCount).map { value(instance: i, feature: $0, output: o) }
    }

    /// Σ_features φ + base − f(x) for one instance and output: zero for an additive method.
    public func additivityGap(instance i: Int, output o: Int) -> Double? {
        guard let baseValues, let outputs else { return nil }
        return attributions(instance: i, output: o).reduce(0, +) + baseValues[i * outputCount + o] - outputs[i * outputCount + o]
    }

    /// The explanation as pretty-printed JSON, written atomically.
    public func writeJSON(path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try OutputFile(path: path).write(try encoder.encode(self))
    }

    /// Writes `values.npy` [instances, features, outputs] and, where present, `base_values.npy`,
    /// `outputs.npy` [instances, outputs] and `standard_errors.npy` (float64, NumPy format 1.0) into
    /// `directory`, creating it.
    public func writeNumPy(directory: String) throws {
        let folder = try OutputFolder(path: directory, create: true)
        func path(_ name: String) -> String { folder.path(name) }
        let shape3 = [instanceCount, featureCount, outputCount], shape2 = [instanceCount, outputCount]
        try writeNpy(values, shape: shape3, path: path("values.npy"))
        if let baseValues { try writeNpy(baseValues, shape: shape2, path: path("base_values.npy")) }
        if let outputs { try writeNpy(outputs, shape: shape2, path: path("outputs.npy")) }
        if let standardErrors { try writeNpy(standardErrors, shape: shape3, path: path("standard_errors.npy")) }
    }
}

/// Writes a little-endian float64 array as a NumPy `.npy` file (format version 1.0), atomically.
public func writeNpy(_ values: [Double], shape: [Int], path: String) throws {
    guard values.count == shape.reduce(1, *) else {
        throw ExplainError("npy: \(values.count) values do not fill shape \(shape)")
    }
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var header = "{'descr': '<f8', 'fortran_order': False, 'shape': \(shapeText), }"
    // Magic (6) + version (2) + header length (2) + header + newline, padded to a multiple of 64.
    let unpadded = 10 + header.utf8.count + 1
    header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
    let length = UInt16(header.utf8.count)
    bytes += [UInt8(length & 0xFF), UInt8(length >> 8)]
    bytes += Array(header.utf8)
    bytes.reserveCapacity(bytes.count + 8 * values.count)
    for v in values {
        withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
    }
    try OutputFile(path: path).write(bytes)
}

/// One setting of an explanation: a string, an integer, a real number or a flag; encoded in JSON as
/// the value itself (`"budget": 2146`, `"relu": true`).
public enum SettingValue: Codable, Equatable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral,
    ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    /// A size or shape, e.g. a window's [height, width].
    case ints([Int])

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let a = try? c.decode([Int].self) { self = .ints(a) }
        else { self = .string(try c.decode(String.self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case let .string(s): try c.encode(s)
        case let .int(i): try c.encode(i)
        case let .double(d): try c.encode(d)
        case let .bool(b): try c.encode(b)
        case let .ints(a): try c.encode(a)
        }
    }

    /// The value as text (as a caption shows it).
    public var description: String {
        switch self {
        case let .string(s): s
        case let .int(i): String(i)
        case let .double(d): String(d)
        case let .bool(b): String(b)
        case let .ints(a): a.map(String.init).joined(separator: "×")
        }
    }

    /// An unsigned integer (a seed): a number when it fits in `Int`, else its decimal text.
    public static func unsigned(_ value: UInt64) -> SettingValue {
        value <= UInt64(Int.max) ? .int(Int(value)) : .string(String(value))
    }

    /// The integer, when the value is one.
    public var intValue: Int? { if case let .int(i) = self { i } else { nil } }

    /// The number (an integer or a real), when the value is one.
    public var doubleValue: Double? {
        switch self {
        case let .int(i): Double(i)
        case let .double(d): d
        default: nil
        }
    }
}

/// An error in setting up or running an explanation.
public struct ExplainError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
