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
    ///   element type, dimensions whose size overflows or exceeds the host memory, a file shorter
    ///   than its header says, or bytes beyond the size its header declares.
    public static func read(path: String) throws -> IDXArray {
        let reader = try IDXReader(path: path)
        let values = try reader.readLeading(reader.dimensions[0])
        try reader.expectEnd()
        return IDXArray(type: reader.type, dimensions: reader.dimensions, values: values)
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
