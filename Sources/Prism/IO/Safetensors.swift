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

/// A safetensors file (https://github.com/huggingface/safetensors): named tensors plus string
/// metadata. Reads F32, F16, BF16 and F64 (converted to Float); writes F32.
///
/// Layout: an 8-byte little-endian header length N, N bytes of JSON
/// (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`), then the data.
public struct SafetensorsFile: Equatable, Sendable {
    public var tensors: [String: HostTensor]
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

    /// Reads and validates a safetensors file.
    /// - Throws: `DataError` naming the file (and the tensor where one is at fault): truncated file,
    ///   malformed header, unknown dtype, offsets outside the data or not matching the shape.
    public static func read(path: String) throws -> SafetensorsFile {
        let name = (path as NSString).lastPathComponent
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError("\(path): cannot read file") }
        return try decode([UInt8](data), name: name)
    }

    public static func decode(_ bytes: [UInt8], name: String = "safetensors file") throws -> SafetensorsFile {
        guard bytes.count >= 8 else { throw DataError("\(name): truncated safetensors file (\(bytes.count) bytes, no header length)") }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw DataError("\(name): truncated safetensors file: header of \(headerLength) bytes, file has \(bytes.count - 8) after the length")
        }
        let headerEnd = 8 + Int(headerLength)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(bytes[8..<headerEnd]))
        } catch {
            throw DataError("\(name): malformed safetensors header (not JSON)")
        }
        guard let header = json as? [String: Any] else { throw DataError("\(name): malformed safetensors header (not an object)") }
        let dataSize = bytes.count - headerEnd
        var file = SafetensorsFile()
        for (key, value) in header {
            if key == "__metadata__" {
                guard let meta = value as? [String: Any] else { throw DataError("\(name): __metadata__ is not an object") }
                for (k, v) in meta {
                    guard let s = v as? String else { throw DataError("\(name): metadata '\(k)' is not a string") }
                    file.metadata[k] = s
                }
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shapeValues = entry["shape"] as? [Any], let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
                  let begin = (offsets[0] as? NSNumber)?.intValue, let end = (offsets[1] as? NSNumber)?.intValue
            else { throw DataError("\(name): tensor '\(key)': malformed header entry") }
            let shape = try shapeValues.map { v -> Int in
                guard let n = (v as? NSNumber)?.intValue, n >= 0 else { throw DataError("\(name): tensor '\(key)': bad shape \(shapeValues)") }
                return n
            }
            let elementSize: Int
            switch dtype {
            case "F32": elementSize = 4
            case "F16", "BF16": elementSize = 2
            case "F64": elementSize = 8
            default: throw DataError("\(name): tensor '\(key)': unsupported dtype \(dtype) (supported: F32, F16, BF16, F64)")
            }
            let count = shape.reduce(1, *)
            guard begin >= 0, end >= begin, end <= dataSize else {
                throw DataError("\(name): tensor '\(key)': data offsets [\(begin), \(end)] outside the \(dataSize) data bytes")
            }
            guard end - begin == count * elementSize else {
                throw DataError("\(name): tensor '\(key)': \(end - begin) bytes for shape \(shape) of \(dtype) (expected \(count * elementSize))")
            }
            var values = [Float](repeating: 0, count: count)
            let base = headerEnd + begin
            bytes.withUnsafeBufferPointer { raw in
                for i in 0..<count {
                    let o = base + i * elementSize
                    switch dtype {
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
            }
            file.tensors[key] = HostTensor(shape: shape, values: values)
        }
        return file
    }

    // MARK: writing

    /// The file's bytes (F32 tensors in name order, header padded to 8 bytes).
    public func encoded() throws -> [UInt8] {
        var header: [String: Any] = [:]
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            guard t.values.count == t.shape.reduce(1, *) else {
                throw DataError("safetensors: tensor '\(name)' has \(t.values.count) values for shape \(t.shape)")
            }
            let size = t.values.count * 4
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + size]] as [String: Any]
            offset += size
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while json.count % 8 != 0 { json.append(0x20) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + json.count + offset)
        let length = UInt64(json.count)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: length >> (8 * UInt64(i)))) }
        out += json
        for name in names {
            for v in tensors[name]!.values {
                let b = v.bitPattern
                out += [UInt8(b & 0xFF), UInt8(b >> 8 & 0xFF), UInt8(b >> 16 & 0xFF), UInt8(b >> 24)]
            }
        }
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
