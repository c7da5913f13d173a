import Foundation

/// An array read from a NumPy `.npy` file: its dtype, shape and raw little-endian element bytes.
///
/// Reads format versions 1.0 to 3.0, C order, little-endian or single-byte dtypes: booleans
/// (`|b1`), signed and unsigned integers of 1, 2, 4 or 8 bytes, and float32 / float64. Big-endian
/// data, Fortran order, object arrays, structured dtypes and float16 are refused.
public struct NumPyArray: Equatable, Sendable {
    /// The dtype's kind: `b` boolean, `i` signed integer, `u` unsigned integer, `f` float.
    public var kind: Character
    /// Bytes per element.
    public var itemSize: Int
    /// The dtype as the header wrote it, e.g. `<f4` or `|u1`.
    public var descr: String
    public var shape: [Int]
    /// count × itemSize bytes, little-endian, row-major.
    public var bytes: [UInt8]

    /// The number of elements (1 for a scalar of shape []).
    public var count: Int { bytes.count / itemSize }

    /// Reads a `.npy` file.
    /// - Throws: `DataError` naming the file: missing, a directory, unreadable, or any problem
    ///   `parse` reports.
    public static func read(path: String) throws -> NumPyArray {
        return try parse(try readFile(path), name: path)
    }

    /// Parses the bytes of a `.npy` file. Sizes are computed with checked arithmetic and compared
    /// with the bytes present before anything is allocated.
    /// - Parameter name: the file's name, for messages.
    /// - Throws: `DataError` naming the file: bad magic, an unsupported version, a truncated or
    ///   malformed header, Fortran order, an unsupported dtype, a shape whose size overflows or
    ///   does not match the data present.
    public static func parse(_ bytes: [UInt8], name: String) throws -> NumPyArray {
        guard bytes.count >= 10, bytes[0] == 0x93, bytes[1..<6].elementsEqual("NUMPY".utf8) else {
            throw DataError("\(name): not a .npy file (bad magic)")
        }
        let major = bytes[6]
        guard (1...3).contains(major) else { throw DataError("\(name): .npy format version \(major) is not supported (1 to 3)") }
        let headerLength: Int, start: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            start = 10
        } else {
            guard bytes.count >= 12 else { throw DataError("\(name): truncated .npy header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            start = 12
        }
        guard headerLength <= bytes.count - start else { throw DataError("\(name): truncated .npy header") }
        let bodyStart = start + headerLength
        guard let header = String(bytes: bytes[start..<bodyStart], encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw DataError("\(name): .npy header is not text")
        }
        let (descr, fortran, shape) = try parseHeader(header, name: name)
        guard !fortran else { throw DataError("\(name): Fortran-ordered .npy arrays are not supported (save with C order)") }

        let order = descr.first!
        let kind = descr.dropFirst().first!
        guard let itemSize = Int(descr.dropFirst(2)), order != ">" else {
            throw DataError("\(name): .npy dtype \(descr) is not supported (little-endian bool, integers or float32/float64)")
        }
        let supported: Bool
        switch kind {
        case "b": supported = itemSize == 1
        case "i", "u": supported = [1, 2, 4, 8].contains(itemSize)
        case "f": supported = itemSize == 4 || itemSize == 8
        default: supported = false
        }
        guard supported, order == "<" || order == "|" || (order == "=" && itemSize == 1) else {
            throw DataError("\(name): .npy dtype \(descr) is not supported (little-endian bool, integers or float32/float64)")
        }
        guard let count = HostMemory.product(shape) else { throw DataError("\(name): .npy shape \(shape) has more elements than can be addressed") }
        let (size, overflow) = count.multipliedReportingOverflow(by: itemSize)
        let present = bytes.count - bodyStart
        guard !overflow else { throw DataError("\(name): .npy shape \(shape) of dtype \(descr) needs more bytes than can be addressed") }
        guard size <= present else {
            throw DataError("\(name): .npy data holds \(present) bytes, fewer than the \(size)-byte array of shape \(shape) and dtype \(descr)")
        }
        guard size == present else {
            throw DataError("\(name): .npy data holds \(present) bytes, more than the \(size) bytes of shape \(shape) and dtype \(descr)")
        }
        return NumPyArray(kind: kind, itemSize: itemSize, descr: descr, shape: shape, bytes: Array(bytes[bodyStart...]))
    }

    /// The dtype, Fortran flag and shape of a header such as
    /// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
    private static func parseHeader(_ header: String, name: String) throws -> (descr: String, fortran: Bool, shape: [Int]) {
        func field(_ key: String) -> Substring? {
            for quote in ["'", "\""] {
                if let range = header.range(of: "\(quote)\(key)\(quote)"),
                   let colon = header[range.upperBound...].firstIndex(of: ":") {
                    return header[header.index(after: colon)...].drop(while: { $0 == " " })
                }
            }
            return nil
        }
        guard let descrField = field("descr"), let quote = descrField.first, quote == "'" || quote == "\"",
              let end = descrField.dropFirst().firstIndex(of: quote) else {
            throw DataError("\(name): .npy header has no dtype (structured dtypes are not supported)")
        }
        let descr = String(descrField[descrField.index(after: descrField.startIndex)..<end])
        guard descr.count >= 3, let order = descr.first, "<>|=".contains(order) else {
            throw DataError("\(name): .npy dtype \(descr) is not supported (little-endian bool, integers or float32/float64)")
        }
        guard let fortranField = field("fortran_order"), fortranField.hasPrefix("True") || fortranField.hasPrefix("False") else {
            throw DataError("\(name): .npy header has no fortran_order")
        }
        guard let shapeField = field("shape"), shapeField.first == "(", let close = shapeField.firstIndex(of: ")") else {
            throw DataError("\(name): .npy header has no shape")
        }
        let parts = shapeField[shapeField.index(after: shapeField.startIndex)..<close].split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let shape = try parts.map { part -> Int in
            guard let d = Int(part.hasSuffix("L") ? String(part.dropLast()) : part), d >= 0 else {
                throw DataError("\(name): .npy shape has a bad dimension '\(part)'")
            }
            return d
        }
        return (descr, fortranField.hasPrefix("True"), shape)
    }

    /// The raw bits of element `i`, little-endian, zero-extended to 64 bits.
    @inline(__always) private func bits(_ i: Int) -> UInt64 {
        var v: UInt64 = 0
        for b in 0..<itemSize { v |= UInt64(bytes[i * itemSize + b]) << (8 * UInt64(b)) }
        return v
    }

    /// Element `i` as a Double (integers exactly up to 2^53; booleans 0 or 1).
    public func double(at i: Int) -> Double {
        let raw = bits(i)
        switch kind {
        case "f": return itemSize == 8 ? Double(bitPattern: raw) : Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw)))
        case "i":
            let shift = UInt64(64 - 8 * itemSize)
            return Double(Int64(bitPattern: raw << shift) >> Int64(shift))
        default: return Double(raw)
        }
    }

    /// The elements as Float, row-major (float64 rounded to the nearest float; integers converted).
    public func floats() -> [Float] {
        if kind == "f" && itemSize == 4 {
            return (0..<count).map { Float(bitPattern: UInt32(truncatingIfNeeded: bits($0))) }
        }
        return (0..<count).map { Float(double(at: $0)) }
    }

    /// The elements as Int, row-major: integers, booleans, or floats holding whole numbers.
    /// - Throws: `DataError` naming the file (`name`) and the index of an unsigned value above
    ///   Int.max or a float that is not a whole number below 10^15 in magnitude.
    public func integers(name: String) throws -> [Int] {
        try (0..<count).map { i in
            let raw = bits(i)
            switch kind {
            case "i":
                let shift = UInt64(64 - 8 * itemSize)
                return Int(Int64(bitPattern: raw << shift) >> Int64(shift))
            case "u", "b":
                guard raw <= UInt64(Int.max) else { throw DataError("\(name): value \(raw) at index \(i) is too large") }
                return Int(raw)
            default:
                let v = double(at: i)
                guard v.isFinite, v == v.rounded(), abs(v) < 1e15 else { throw DataError("\(name): value \(v) at index \(i) is not a whole number") }
                return Int(v)
            }
        }
    }
}
