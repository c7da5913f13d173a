import CZlib
import Foundation

/// An IDX file (gzip or plain) read in pieces: the header first, then as many leading entries
/// (slices along the first dimension) as asked for, so that a caller wanting 10 examples of a file
/// declaring billions inflates only the header and those 10 examples' bytes.
///
/// Sizes are computed with checked arithmetic and compared with the host memory before any
/// allocation. Reading stops at the size the header declares: `expectEnd()` refuses bytes beyond
/// it; a caller that reads fewer entries than declared (`--limit`) leaves the rest of the file
/// unread, so neither a short file nor trailing bytes past that point are detected.
public final class IDXReader {
    /// The file's element type and declared dimensions.
    public let type: IDXArray.ElementType
    public let dimensions: [Int]
    /// The bytes inflated (read from the decompressed stream) so far: header plus entries read.
    public private(set) var bytesRead = 0
    /// The bytes of one entry (the product of all dimensions but the first, times the element size).
    public let entryBytes: Int
    private var entriesRead = 0
    private let file: gzFile
    private let name: String

    /// Opens `path` and reads its header.
    /// - Parameters:
    ///   - path: the IDX file, gzip or plain.
    ///   - expected: the element type and rank the caller needs (checked on the 4-byte magic,
    ///     before the dimensions are read), with what such a file holds ("images", "labels").
    /// - Throws: `DataError` naming the file: missing, not IDX (with the expected magic), a header
    ///   cut short, a declared size that overflows, or a plain file shorter than declared.
    public init(path: String, expected: (type: IDXArray.ElementType, rank: Int, holds: String)? = nil) throws {
        let name = (path as NSString).lastPathComponent
        guard FileManager.default.fileExists(atPath: path) else { throw DataError("\(path): no such file") }
        guard let file = gzopen(path, "rb") else { throw DataError("\(name): cannot open") }
        do {
            (type, dimensions, entryBytes, bytesRead) = try Self.header(file, name: name, path: path, expected: expected)
        } catch {
            // deinit does not run for an instance whose stored properties are not all set.
            gzclose(file)
            throw error
        }
        self.file = file
        self.name = name
    }

    deinit { gzclose(file) }

    /// Reads and checks the header: (type, dimensions, bytes per entry, header bytes).
    private static func header(_ file: gzFile, name: String, path: String, expected: (type: IDXArray.ElementType, rank: Int, holds: String)?)
        throws -> (IDXArray.ElementType, [Int], Int, Int) {
        let magic = try Self.read(file, name, count: 4)
        guard magic.count == 4 else {
            throw DataError("\(name): truncated IDX file: expected at least a 4-byte header, found \(magic.count) bytes")
        }
        guard magic[0] == 0, magic[1] == 0, let type = IDXArray.ElementType(rawValue: magic[2]), magic[3] >= 1 else {
            let hex = magic.map { String(format: "%02x", $0) }.joined()
            throw DataError("\(name): not an IDX file: magic number 0x\(hex), expected 0x000008RR (0x00000803 for images, 0x00000801 for labels: 2 zero bytes, a type code 08-0e, a rank)")
        }
        if let expected, magic != [0, 0, expected.type.rawValue, UInt8(expected.rank)] {
            let hex = magic.map { String(format: "%02x", $0) }.joined()
            let want = String(format: "%02x%02x", expected.type.rawValue, expected.rank)
            throw DataError("\(name): not an IDX file: magic number 0x\(hex), expected 0x0000\(want) for \(expected.holds) (\(expected.type) elements, rank \(expected.rank))")
        }
        let rank = Int(magic[3])
        let header = try Self.read(file, name, count: 4 * rank)
        guard header.count == 4 * rank else {
            throw DataError("\(name): truncated IDX file: expected a \(4 + 4 * rank)-byte header for rank \(rank), found \(4 + header.count) bytes")
        }
        var dimensions: [Int] = []
        for d in 0..<rank {
            let o = 4 * d
            dimensions.append(Int(header[o]) << 24 | Int(header[o + 1]) << 16 | Int(header[o + 2]) << 8 | Int(header[o + 3]))
        }
        let headerBytes = 4 + 4 * rank
        guard let entry = HostMemory.product(Array(dimensions.dropFirst()) + [type.size]),
              let total = HostMemory.product([dimensions[0], entry]), total <= Int.max - headerBytes else {
            throw DataError("\(name): IDX dimensions \(Self.describe(dimensions)) declare a size that overflows a 64-bit count")
        }
        // A plain file's size is known: compare it with the header before reading anything.
        if gzdirect(file) == 1, let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int,
           size < headerBytes + total {
            throw DataError("\(name): truncated IDX file: dimensions \(Self.describe(dimensions)) need \(headerBytes + total) bytes, found \(size)")
        }
        return (type, dimensions, entry, headerBytes)
    }

    /// Reads the next `count` entries (`count` is capped at those the header declares) as Doubles.
    /// - Throws: `DataError` when the values would not fit in the host memory (checked before
    ///   allocating), or the file ends early or its compressed data is corrupt.
    public func readLeading(_ count: Int) throws -> [Double] {
        let count = max(0, min(count, dimensions[0] - entriesRead))
        guard let bytes = HostMemory.product([count, entryBytes]),
              let doubles = HostMemory.product([count, entryBytes / type.size, MemoryLayout<Double>.size]),
              HostMemory.fits(doubles) else {
            let need = HostMemory.product([count, entryBytes / type.size, MemoryLayout<Double>.size])
            throw DataError("\(name): \(count) IDX entries of \(Self.describe(Array(dimensions.dropFirst()))) need \(HostMemory.describe(need)) as values; \(HostMemory.availableDescription)")
        }
        var values: [Double] = []
        values.reserveCapacity(bytes / type.size)
        let size = type.size
        var remaining = bytes
        var carry: [UInt8] = []
        while remaining > 0 {
            // Read in pieces so that a short file fails before the whole size has been allocated.
            let piece = try Self.read(file, name, count: min(remaining, 1 << 20))
            bytesRead += piece.count
            guard !piece.isEmpty else {
                throw DataError("\(name): truncated IDX file: dimensions \(Self.describe(dimensions)) need \(bytesRead + remaining) bytes, found \(bytesRead)")
            }
            remaining -= piece.count
            let chunk = carry + piece
            let whole = chunk.count / size * size
            chunk.withUnsafeBufferPointer { raw in
                var o = 0
                while o < whole { values.append(decode(raw, o)); o += size }
            }
            carry = Array(chunk[whole...])
        }
        entriesRead += count
        return values
    }

    /// Checks that the stream ends at the size the header declares.
    /// - Throws: `DataError` when entries remain unread, or bytes follow the declared data.
    public func expectEnd() throws {
        if entriesRead < dimensions[0] {
            throw DataError("\(name): \(dimensions[0] - entriesRead) IDX entries left unread")
        }
        let extra = try Self.read(file, name, count: 1)
        if !extra.isEmpty {
            throw DataError("\(name): IDX file has bytes beyond the \(bytesRead) its dimensions \(Self.describe(dimensions)) declare")
        }
    }

    @inline(__always)
    private func decode(_ raw: UnsafeBufferPointer<UInt8>, _ o: Int) -> Double {
        switch type {
        case .uint8: return Double(raw[o])
        case .int8: return Double(Int8(bitPattern: raw[o]))
        case .int16: return Double(Int16(bitPattern: UInt16(raw[o]) << 8 | UInt16(raw[o + 1])))
        case .int32: return Double(Int32(bitPattern: bigEndian32(raw, o)))
        case .float32: return Double(Float(bitPattern: bigEndian32(raw, o)))
        case .float64:
            let hi = UInt64(bigEndian32(raw, o)), lo = UInt64(bigEndian32(raw, o + 4))
            return Double(bitPattern: hi << 32 | lo)
        }
    }

    /// Dimensions for a message: up to four written out, otherwise the rank and the first few.
    static func describe(_ dimensions: [Int]) -> String {
        if dimensions.count <= 4 { return "[" + dimensions.map(String.init).joined(separator: ", ") + "]" }
        return "of rank \(dimensions.count) [" + dimensions.prefix(3).map(String.init).joined(separator: ", ") + ", …]"
    }

    /// Up to `count` bytes from the decompressed stream (fewer only at its end).
    /// - Throws: `DataError` for corrupt or truncated compressed data.
    private static func read(_ file: gzFile, _ name: String, count: Int) throws -> [UInt8] {
        guard count > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = out.withUnsafeMutableBytes { gzread(file, $0.baseAddress! + filled, UInt32(count - filled)) }
            if n < 0 {
                var code: Int32 = 0
                let message = gzerror(file, &code).map { String(cString: $0) } ?? "read error"
                throw DataError("\(name): corrupt or truncated compressed data (\(message))")
            }
            if n == 0 { break }
            filled += Int(n)
        }
        if filled < count {
            // A gzip stream cut short reads as a clean end of file in zlib; detect it.
            var code: Int32 = 0
            _ = gzerror(file, &code)
            if code != Z_OK && code != Z_STREAM_END { throw DataError("\(name): corrupt or truncated compressed data") }
        }
        return Array(out[0..<filled])
    }
}

@inline(__always)
private func bigEndian32(_ raw: UnsafeBufferPointer<UInt8>, _ o: Int) -> UInt32 {
    UInt32(raw[o]) << 24 | UInt32(raw[o + 1]) << 16 | UInt32(raw[o + 2]) << 8 | UInt32(raw[o + 3])
}
