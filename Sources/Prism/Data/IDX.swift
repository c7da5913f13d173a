import CZlib
import PrismFiles
import Foundation

/// An array read from an IDX file (the MNIST format): its dimensions and raw element values.
public struct IDXArray: Equatable, Sendable {
    /// IDX element type codes.
    public enum ElementType: UInt8, Sendable {
        case uint8 = 0x08, int8 = 0x09, int16 = 0x0B, int32 = 0x0C, float32 = 0x0D, float64 = 0x0E

        var size: Int {
            switch self {
            case .uint8, .int8: return 1
            case .int16: return 2
            case .int32, .float32: return 4
            case .float64: return 8
            }
        }
    }

    public var type: ElementType
    public var dimensions: [Int]
    /// The elements converted to Double, row-major.
    public var values: [Double]

    public init(type: ElementType, dimensions: [Int], values: [Double]) {
        self.type = type
        self.dimensions = dimensions
        self.values = values
    }

    /// Reads an IDX file, gzip-compressed (`.gz`) or plain: zlib reads both.
    /// - Throws: `DataError` naming the file for a missing file, a wrong magic number, an unknown
    ///   element type, or a file shorter than its header says.
    public static func read(path: String) throws -> IDXArray {
        let bytes = try readDecompressed(path: path)
        let name = (path as NSString).lastPathComponent
        guard bytes.count >= 4 else {
            throw DataError("\(name): truncated IDX file: expected at least a 4-byte header, found \(bytes.count) bytes")
        }
        guard bytes[0] == 0, bytes[1] == 0, let type = ElementType(rawValue: bytes[2]), bytes[3] >= 1 else {
            let magic = bytes[0..<4].map { String(format: "%02x", $0) }.joined()
            throw DataError("\(name): not an IDX file: magic number 0x\(magic) (expected 0x00000801-0x0000080e style: 2 zero bytes, a type code, a rank)")
        }
        let rank = Int(bytes[3])
        let headerSize = 4 + 4 * rank
        guard bytes.count >= headerSize else {
            throw DataError("\(name): truncated IDX file: expected a \(headerSize)-byte header, found \(bytes.count) bytes")
        }
        var dimensions: [Int] = []
        for d in 0..<rank {
            let o = 4 + 4 * d
            dimensions.append(Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3]))
        }
        let count = dimensions.reduce(1, *)
        let expected = headerSize + count * type.size
        guard bytes.count >= expected else {
            throw DataError("\(name): truncated IDX file: dimensions \(dimensions) need \(expected) bytes, found \(bytes.count)")
        }
        guard bytes.count == expected else {
            throw DataError("\(name): IDX file has \(bytes.count - expected) bytes beyond its dimensions \(dimensions)")
        }
        var values = [Double](repeating: 0, count: count)
        bytes.withUnsafeBufferPointer { raw in
            let base = headerSize
            for i in 0..<count {
                let o = base + i * type.size
                switch type {
                case .uint8: values[i] = Double(raw[o])
                case .int8: values[i] = Double(Int8(bitPattern: raw[o]))
                case .int16: values[i] = Double(Int16(bitPattern: UInt16(raw[o]) << 8 | UInt16(raw[o + 1])))
                case .int32: values[i] = Double(Int32(bitPattern: bigEndian32(raw, o)))
                case .float32: values[i] = Double(Float(bitPattern: bigEndian32(raw, o)))
                case .float64:
                    let hi = UInt64(bigEndian32(raw, o)), lo = UInt64(bigEndian32(raw, o + 4))
                    values[i] = Double(bitPattern: hi << 32 | lo)
                }
            }
        }
        return IDXArray(type: type, dimensions: dimensions, values: values)
    }

    /// The file's bytes, encoded as IDX (big-endian), for writing fixtures.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = [0, 0, type.rawValue, UInt8(dimensions.count)]
        func be32(_ v: UInt32) { out += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        for d in dimensions { be32(UInt32(d)) }
        for v in values {
            switch type {
            case .uint8: out.append(UInt8(v))
            case .int8: out.append(UInt8(bitPattern: Int8(v)))
            case .int16: let x = UInt16(bitPattern: Int16(v)); out += [UInt8(x >> 8), UInt8(x & 0xFF)]
            case .int32: be32(UInt32(bitPattern: Int32(v)))
            case .float32: be32(Float(v).bitPattern)
            case .float64: let b = v.bitPattern; be32(UInt32(b >> 32)); be32(UInt32(b & 0xFFFF_FFFF))
            }
        }
        return out
    }

    /// Writes the array as an IDX file, gzip-compressed when `path` ends in `.gz`, atomically.
    public func write(path: String) throws {
        try OutputFile(path: path, gzip: path.hasSuffix(".gz")).write(encoded())
    }
}

@inline(__always)
private func bigEndian32(_ raw: UnsafeBufferPointer<UInt8>, _ o: Int) -> UInt32 {
    UInt32(raw[o]) << 24 | UInt32(raw[o + 1]) << 16 | UInt32(raw[o + 2]) << 8 | UInt32(raw[o + 3])
}

/// Reads a whole file through zlib, which passes plain files through unchanged.
/// - Throws: `DataError` when the file cannot be opened or its compressed stream is corrupt.
func readDecompressed(path: String) throws -> [UInt8] {
    let name = (path as NSString).lastPathComponent
    guard FileManager.default.fileExists(atPath: path) else { throw DataError("\(path): no such file") }
    guard let file = gzopen(path, "rb") else { throw DataError("\(name): cannot open") }
    defer { gzclose(file) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
        if n < 0 {
            var code: Int32 = 0
            let message = gzerror(file, &code).map { String(cString: $0) } ?? "read error"
            throw DataError("\(name): corrupt or truncated compressed data (\(message))")
        }
        if n == 0 { break }
        out += chunk[0..<Int(n)]
    }
    // A gzip stream cut short reads as a clean end of file in zlib; detect it.
    var code: Int32 = 0
    _ = gzerror(file, &code)
    if code != Z_OK && code != Z_STREAM_END {
        throw DataError("\(name): corrupt or truncated compressed data")
    }
    return out
}
