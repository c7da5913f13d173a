import Foundation
import PrismFiles

/// A tensor held on the host, as stored in a file.
public struct HostTensor: Equatable, Sendable {
    public var shape: [Int]
    public var values: [Float]
    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }
}

/// An integer tensor of a safetensors file (indices, counters, token ids), values widened to Int64.
public struct IntegerTensor: Equatable, Sendable {
    /// The file's dtype (`I64`, `I32`, `I16`, `I8`, `U8`, `BOOL`).
    public var dtype: String
    public var shape: [Int]
    public var values: [Int64]
    public init(dtype: String, shape: [Int], values: [Int64]) {
        self.dtype = dtype
        self.shape = shape
        self.values = values
    }
}

/// A safetensors file (https://github.com/huggingface/safetensors): named tensors plus string
/// metadata. Reads F32, F16, BF16 and F64 (converted to Float) into `tensors`, and I64, I32, I16,
/// I8, U8 and BOOL into `integerTensors`; writes F32.
///
/// Layout: an 8-byte little-endian header length N, N bytes of JSON
/// (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`), then the data.
public struct SafetensorsFile: Equatable, Sendable {
    public var tensors: [String: HostTensor]
    /// The integer tensors (e.g. BatchNorm's `num_batches_tracked` counters in a PyTorch state dict).
    public var integerTensors: [String: IntegerTensor] = [:]
    public var metadata: [String: String]

    public init(tensors: [String: HostTensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor called `name`, checked against `shape` when given.
    /// - Throws: `DataError` naming the tensor when it is missing or has another shape.
    public func tensor(_ name: String, shape: [Int]? = nil, file: String = "safetensors file") throws -> HostTensor {
        guard let tensor = tensors[name] else {
            throw DataError("\(file): missing tensor '\(name)' (has: \(tensors.keys.sorted().joined(separator: ", ")))")
        }
        if let shape, tensor.shape != shape {
            throw DataError("\(file): tensor '\(name)' has shape \(tensor.shape), expected \(shape)")
        }
        return tensor
    }

    // MARK: reading

    /// The largest header accepted, as in the format's reference implementation (100 MB).
    public static let maximumHeaderBytes = 100_000_000

    /// Reads and validates a safetensors file.
    /// - Throws: `DataError` naming the file (and the tensor where one is at fault); see `decode`.
    public static func read(path: String) throws -> SafetensorsFile {
        let name = (path as NSString).lastPathComponent
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError("\(path): cannot read file") }
        return try decode([UInt8](data), name: name)
    }

    /// One tensor's header entry, checked against the data before any value is read.
    private struct Entry {
        var name: String
        var dtype: String
        var elementSize: Int
        var shape: [Int]
        var count: Int
        var begin: Int
        var end: Int
    }

    /// Decodes and validates a safetensors file's bytes, following the format's specification:
    /// a header of at most `maximumHeaderBytes` of strict JSON (no duplicate keys, only whitespace
    /// after it); per tensor a dtype, a shape of non-negative integers and integer `data_offsets`
    /// [begin, end] inside the data whose length is the dtype's size × the shape's product (checked
    /// arithmetic); the tensors, sorted by offset, cover the data exactly (no overlap, no hole, no
    /// trailing bytes).
    /// - Throws: `DataError` naming `name` and the tensor at fault, before anything is allocated for values.
    public static func decode(_ bytes: [UInt8], name: String = "safetensors file") throws -> SafetensorsFile {
        guard bytes.count >= 8 else { throw DataError("\(name): truncated safetensors file (\(bytes.count) bytes, no header length)") }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        if headerLength > UInt64(maximumHeaderBytes) || headerLength > UInt64(bytes.count - 8), let kind = otherFormat(bytes) {
            throw DataError("\(name): \(kind), not a safetensors file (save the state dict with safetensors.torch.save_file)")
        }
        guard headerLength <= UInt64(maximumHeaderBytes) else {
            throw DataError("\(name): safetensors header of \(headerLength) bytes, more than the format's limit of \(maximumHeaderBytes)")
        }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw DataError("\(name): truncated safetensors file: header of \(headerLength) bytes, file has \(bytes.count - 8) after the length")
        }
        let headerEnd = 8 + Int(headerLength)
        guard headerEnd > 8, bytes[8] == UInt8(ascii: "{") else {
            throw DataError("\(name): malformed safetensors header (it must start with '{'; this is not a safetensors file)")
        }
        let json: HeaderJSON
        do {
            json = try HeaderJSON.parse(bytes[8..<headerEnd])
        } catch let e as HeaderJSON.SyntaxError {
            throw DataError("\(name): malformed safetensors header: \(e.reason) (byte \(e.offset) of the header)")
        }
        guard case let .object(header) = json else { throw DataError("\(name): malformed safetensors header (not an object)") }
        let dataSize = bytes.count - headerEnd
        var file = SafetensorsFile()
        var entries: [Entry] = []
        for (key, value) in header {
            if key == "__metadata__" {
                guard case let .object(meta) = value else { throw DataError("\(name): __metadata__ is not an object") }
                for (k, v) in meta {
                    guard case let .string(s) = v else { throw DataError("\(name): metadata \(displayed(k)) is not a string") }
                    file.metadata[k] = s
                }
                continue
            }
            entries.append(try entry(key, value, dataSize: dataSize, file: name))
        }
        // Sorted by offsets, each tensor starts where the previous one ends and the last ends the data.
        var position = 0
        var previous: Entry?
        for e in entries.sorted(by: { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }) {
            if e.begin < position, let p = previous {
                throw DataError("\(name): tensor \(displayed(e.name)): data [\(e.begin), \(e.end)] overlaps tensor \(displayed(p.name)) [\(p.begin), \(p.end)]")
            }
            if e.begin > position {
                throw DataError("\(name): tensor \(displayed(e.name)): data starts at byte \(e.begin), but the tensors before it end at \(position) (a hole the format does not allow)")
            }
            position = e.end
            previous = e
        }
        if position != dataSize {
            let last = previous.map { "tensor \(displayed($0.name)) ends at byte \($0.end)" } ?? "no tensor holds data"
            let n = dataSize - position
            throw DataError("\(name): \(n) trailing byte\(n == 1 ? "" : "s") after the tensors' data (\(last) of \(dataSize))")
        }
        bytes.withUnsafeBufferPointer { raw in
            for e in entries {
                if Self.integerTypes.contains(e.dtype) {
                    file.integerTensors[e.name] = IntegerTensor(dtype: e.dtype, shape: e.shape, values: integers(of: e, in: raw, at: headerEnd + e.begin))
                } else {
                    file.tensors[e.name] = HostTensor(shape: e.shape, values: values(of: e, in: raw, at: headerEnd + e.begin))
                }
            }
        }
        return file
    }

    /// What a file whose first bytes are no safetensors header length is, when its magic says:
    /// PyTorch's `torch.save` writes a zip archive (since 1.6) or a bare pickle (before).
    private static func otherFormat(_ bytes: [UInt8]) -> String? {
        if bytes.starts(with: [0x50, 0x4B, 0x03, 0x04]) { return "a zip archive (PyTorch's torch.save format)" }
        if bytes.count >= 2, bytes[0] == 0x80, (2...5).contains(bytes[1]) { return "a Python pickle (PyTorch's older torch.save format)" }
        return nil
    }

    /// Checks one header entry: its fields' types, dtype, shape, and offsets against `dataSize`.
    private static func entry(_ key: String, _ value: HeaderJSON, dataSize: Int, file: String) throws -> Entry {
        let tensor = "\(file): tensor \(displayed(key))"
        guard case let .object(fields) = value else { throw DataError("\(tensor): malformed header entry (not an object)") }
        func field(_ f: String) -> HeaderJSON? { fields.first { $0.key == f }?.value }
        guard case let .string(dtype) = field("dtype"), case let .array(shapeValues) = field("shape"),
              case let .array(offsets) = field("data_offsets")
        else { throw DataError("\(tensor): malformed header entry (needs dtype, shape and data_offsets)") }
        let shape = shapeValues.compactMap(\.nonNegativeInteger)
        guard shape.count == shapeValues.count else {
            throw DataError("\(tensor): shape \(text(shapeValues)) is not a list of non-negative integers")
        }
        guard offsets.count == 2, offsets.allSatisfy(\.isUnsignedIntegerText) else {
            throw DataError("\(tensor): data_offsets \(text(offsets)) are not two non-negative integers")
        }
        // Integers too large for an Int lie past any data this process can hold.
        guard let begin = offsets[0].nonNegativeInteger, let end = offsets[1].nonNegativeInteger else {
            throw DataError("\(tensor): data offsets \(text(offsets)) outside the \(dataSize) data bytes")
        }
        let elementSize: Int
        switch dtype {
        case "F32": elementSize = 4
        case "F16", "BF16": elementSize = 2
        case "F64", "I64": elementSize = 8
        case "I32": elementSize = 4
        case "I16": elementSize = 2
        case "I8", "U8", "BOOL": elementSize = 1
        default:
            throw DataError("\(tensor): unsupported dtype \(displayed(dtype).dropFirst().dropLast()) (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)")
        }
        var count = 1
        for n in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: n)
            guard !overflow else { throw DataError("\(tensor): shape \(shape) has more elements than an Int can count") }
            count = product
        }
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: elementSize)
        guard !overflow else { throw DataError("\(tensor): shape \(shape) of \(dtype) needs more bytes than an Int can count") }
        guard begin <= end, end <= dataSize else {
            throw DataError("\(tensor): data offsets [\(begin), \(end)] outside the \(dataSize) data bytes")
        }
        guard end - begin == byteCount else {
            throw DataError("\(tensor): \(end - begin) bytes for shape \(shape) of \(dtype) (expected \(byteCount))")
        }
        return Entry(name: key, dtype: dtype, elementSize: elementSize, shape: shape, count: count, begin: begin, end: end)
    }

    /// JSON values as they appeared (numbers as written), for messages.
    private static func text(_ values: [HeaderJSON]) -> String {
        "[" + values.map { v in
            switch v {
            case let .number(t): return t
            case let .string(s): return displayed(s)
            case .bool(let b): return String(b)
            case .null: return "null"
            case .array: return "[…]"
            case .object: return "{…}"
            }
        }.joined(separator: ", ") + "]"
    }

    /// The values of a checked entry, converted to Float, from byte `base` of `raw`.
    private static func values(of e: Entry, in raw: UnsafeBufferPointer<UInt8>, at base: Int) -> [Float] {
        var values = [Float](repeating: 0, count: e.count)
        for i in 0..<e.count {
            let o = base + i * e.elementSize
            switch e.dtype {
            case "F32":
                values[i] = Float(bitPattern: UInt32(raw[o]) | UInt32(raw[o + 1]) << 8 | UInt32(raw[o + 2]) << 16 | UInt32(raw[o + 3]) << 24)
            case "F16":
                values[i] = Float(halfBits: UInt16(raw[o]) | UInt16(raw[o + 1]) << 8)
            case "BF16":
                values[i] = Float(bitPattern: (UInt32(raw[o]) | UInt32(raw[o + 1]) << 8) << 16)
            default:
                var b: UInt64 = 0
                for j in 0..<8 { b |= UInt64(raw[o + j]) << (8 * UInt64(j)) }
                values[i] = Float(Double(bitPattern: b))
            }
        }
        return values
    }

    /// The integer dtypes read into `integerTensors`.
    public static let integerTypes: Set<String> = ["I64", "I32", "I16", "I8", "U8", "BOOL"]

    /// The values of a checked integer entry (little-endian, signed but for U8 and BOOL), widened.
    private static func integers(of e: Entry, in raw: UnsafeBufferPointer<UInt8>, at base: Int) -> [Int64] {
        var values = [Int64](repeating: 0, count: e.count)
        for i in 0..<e.count {
            let o = base + i * e.elementSize
            var bits: UInt64 = 0
            for j in 0..<e.elementSize { bits |= UInt64(raw[o + j]) << (8 * UInt64(j)) }
            switch e.dtype {
            case "I64": values[i] = Int64(bitPattern: bits)
            case "I32": values[i] = Int64(Int32(truncatingIfNeeded: bits))
            case "I16": values[i] = Int64(Int16(truncatingIfNeeded: bits))
            case "I8": values[i] = Int64(Int8(truncatingIfNeeded: bits))
            default: values[i] = Int64(bits)
            }
        }
        return values
    }

    // MARK: writing

    /// The file's bytes (F32 tensors and the integer tensors in their dtypes, in name order; header
    /// padded to 8 bytes).
    public func encoded() throws -> [UInt8] {
        var header: [String: Any] = [:]
        var offset = 0
        var data: [UInt8] = []
        let names = (Array(tensors.keys) + Array(integerTensors.keys)).sorted()
        for name in names {
            let shape = tensors[name]?.shape ?? integerTensors[name]!.shape
            let count = tensors[name]?.values.count ?? integerTensors[name]!.values.count
            var product: Int? = 1
            for n in shape {
                let (m, overflow) = (product ?? 0).multipliedReportingOverflow(by: n)
                product = overflow || n < 0 ? nil : m
                if product == nil { break }
            }
            guard count == product else {
                throw DataError("safetensors: tensor '\(name)' has \(count) values for shape \(shape)")
            }
            let dtype: String
            if let t = tensors[name] {
                guard integerTensors[name] == nil else { throw DataError("safetensors: tensor '\(name)' is both a float and an integer tensor") }
                dtype = "F32"
                for v in t.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 } }
            } else {
                let t = integerTensors[name]!
                dtype = t.dtype
                let size: Int
                switch t.dtype {
                case "I64": size = 8
                case "I32": size = 4
                case "I16": size = 2
                case "I8", "U8", "BOOL": size = 1
                default: throw DataError("safetensors: tensor '\(name)' has dtype \(t.dtype), not one Prism writes")
                }
                for v in t.values { withUnsafeBytes(of: UInt64(bitPattern: v).littleEndian) { data += $0.prefix(size) } }
            }
            header[name] = ["dtype": dtype, "shape": shape, "data_offsets": [offset, data.count]] as [String: Any]
            offset = data.count
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while json.count % 8 != 0 { json.append(0x20) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + json.count + offset)
        let length = UInt64(json.count)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: length >> (8 * UInt64(i)))) }
        out += json
        out += data
        return out
    }

    /// Writes the file atomically (temporary file, then rename).
    /// - Throws: `FileError` when `path` cannot be written (see `OutputFile`).
    public func write(path: String) throws {
        try write(to: OutputFile(path: path))
    }

    /// Writes the file to an output file checked beforehand.
    /// - Throws: `FileError` when the write fails.
    public func write(to file: OutputFile) throws {
        try file.write(try encoded())
    }
}

extension Float {
    /// The value of an IEEE 754 half-precision bit pattern.
    init(halfBits h: UInt16) {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            // zero or subnormal: mantissa · 2^-24
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            self = sign != 0 ? -magnitude : magnitude
        } else if exponent == 31 {
            self = Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
        } else {
            self = Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | mantissa << 13)
        }
    }
}
