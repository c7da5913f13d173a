/// A strict JSON reader for safetensors headers. Foundation's `JSONSerialization` keeps one of two
/// duplicate keys without a word and turns `1.5` or `1e30` into numbers that `intValue` truncates, so
/// the header is read here instead: objects keep their keys in order and refuse duplicates, numbers
/// keep their text (an offset must be an integer, not a float that happens to convert), nesting is
/// bounded (no stack overflow on `[[[[…`), and only whitespace may follow the value (the format pads
/// the header with spaces).
enum HeaderJSON {
    case object([(key: String, value: HeaderJSON)])
    case array([HeaderJSON])
    case string(String)
    /// The number's JSON text, e.g. `12`, `-3`, `1.5e3`.
    case number(String)
    case bool(Bool)
    case null

    /// The deepest nesting accepted (a safetensors header needs 3: header, entry, shape).
    static let maximumDepth = 64

    /// Why the text is not JSON, with the byte offset.
    struct SyntaxError: Error {
        var reason: String
        var offset: Int
    }

    /// Parses one JSON value followed only by whitespace.
    /// - Throws: `SyntaxError` on malformed JSON, invalid UTF-8, a duplicate key or too deep nesting.
    static func parse(_ bytes: ArraySlice<UInt8>) throws -> HeaderJSON {
        var reader = Reader(bytes: bytes)
        let value = try reader.value(depth: 0)
        reader.skipWhitespace()
        guard reader.index == bytes.endIndex else { throw reader.error("trailing characters after the JSON value") }
        return value
    }

    /// Whether the value is a number written as digits only (an unsigned integer of any size).
    var isUnsignedIntegerText: Bool {
        guard case let .number(text) = self else { return false }
        return !text.isEmpty && text.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    /// The value as a non-negative integer, when its text is one that fits an `Int` (no sign, no
    /// fraction, no exponent, checked arithmetic).
    var nonNegativeInteger: Int? {
        guard isUnsignedIntegerText, case let .number(text) = self else { return nil }
        var n = 0
        for digit in text.utf8 {
            let (m, o1) = n.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int(digit - 0x30))
            if o1 || o2 { return nil }
            n = s
        }
        return n
    }

    private struct Reader {
        let bytes: ArraySlice<UInt8>
        var index: Int

        init(bytes: ArraySlice<UInt8>) {
            self.bytes = bytes
            index = bytes.startIndex
        }

        func error(_ reason: String) -> SyntaxError { SyntaxError(reason: reason, offset: index - bytes.startIndex) }

        var peek: UInt8? { index < bytes.endIndex ? bytes[index] : nil }

        mutating func skipWhitespace() {
            while let c = peek, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { index += 1 }
        }

        mutating func expect(_ literal: String) throws {
            for c in literal.utf8 {
                guard peek == c else { throw error("expected '\(literal)'") }
                index += 1
            }
        }

        mutating func value(depth: Int) throws -> HeaderJSON {
            guard depth < HeaderJSON.maximumDepth else { throw error("nesting deeper than \(HeaderJSON.maximumDepth)") }
            skipWhitespace()
            guard let c = peek else { throw error("unexpected end") }
            switch c {
            case UInt8(ascii: "{"):
                index += 1
                var members: [(key: String, value: HeaderJSON)] = []
                var seen = Set<String>()
                skipWhitespace()
                if peek == UInt8(ascii: "}") { index += 1; return .object(members) }
                while true {
                    skipWhitespace()
                    guard peek == UInt8(ascii: "\"") else { throw error("expected a key") }
                    let key = try string()
                    guard seen.insert(key).inserted else { throw error("duplicate key \(displayed(key))") }
                    skipWhitespace()
                    try expect(":")
                    members.append((key, try value(depth: depth + 1)))
                    skipWhitespace()
                    if peek == UInt8(ascii: ",") { index += 1; continue }
                    try expect("}")
                    return .object(members)
                }
            case UInt8(ascii: "["):
                index += 1
                var elements: [HeaderJSON] = []
                skipWhitespace()
                if peek == UInt8(ascii: "]") { index += 1; return .array(elements) }
                while true {
                    elements.append(try value(depth: depth + 1))
                    skipWhitespace()
                    if peek == UInt8(ascii: ",") { index += 1; continue }
                    try expect("]")
                    return .array(elements)
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            default: return .number(try number())
            }
        }

        /// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
        mutating func number() throws -> String {
            let start = index
            func digits() throws {
                guard let c = peek, c >= 0x30, c <= 0x39 else { throw error("malformed number") }
                while let c = peek, c >= 0x30, c <= 0x39 { index += 1 }
            }
            if peek == UInt8(ascii: "-") { index += 1 }
            if peek == UInt8(ascii: "0") { index += 1 } else { try digits() }
            if peek == UInt8(ascii: ".") { index += 1; try digits() }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                index += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
                try digits()
            }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        /// A string starting at the opening quote; escapes decoded, UTF-8 checked.
        mutating func string() throws -> String {
            index += 1
            var out: [UInt8] = []
            while true {
                guard let c = peek else { throw error("unterminated string") }
                index += 1
                switch c {
                case UInt8(ascii: "\""):
                    guard let s = String(validating: out, as: UTF8.self) else { throw error("a string is not valid UTF-8") }
                    return s
                case UInt8(ascii: "\\"):
                    guard let e = peek else { throw error("unterminated string") }
                    index += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800..<0xDC00).contains(scalar) {
                            try expect("\\u")
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate in \\u escape") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let u = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                        out += Array(String(Character(u)).utf8)
                    default: throw error("invalid escape")
                    }
                default:
                    guard c >= 0x20 else { throw error("control character in a string") }
                    out.append(c)
                }
            }
        }

        mutating func hex4() throws -> UInt32 {
            var v: UInt32 = 0
            for _ in 0..<4 {
                guard let c = peek, let d = hexValue(c) else { throw error("invalid \\u escape") }
                v = v << 4 | d
                index += 1
            }
            return v
        }

        func hexValue(_ c: UInt8) -> UInt32? {
            switch c {
            case 0x30...0x39: return UInt32(c - 0x30)
            case 0x41...0x46: return UInt32(c - 0x41 + 10)
            case 0x61...0x66: return UInt32(c - 0x61 + 10)
            default: return nil
            }
        }
    }
}

/// A name from a file as it appears in a one-line message: quoted, with control characters and
/// quotes escaped, and cut at 80 characters.
public func displayed(_ name: String) -> String {
    var out = ""
    for scalar in name.unicodeScalars.prefix(80) {
        switch scalar {
        case "'": out += "\\'"
        case "\\": out += "\\\\"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value) || scalar == "\u{2028}" || scalar == "\u{2029}" {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return "'" + out + (name.unicodeScalars.count > 80 ? "…'" : "'")
}
