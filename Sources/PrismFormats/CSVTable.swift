/// A CSV file (RFC 4180: comma-separated, `"` quotes, `""` inside quotes for a quote, CRLF or LF
/// line ends) read as a header and rows of cells, each row with the line it starts on.
///
/// Blank lines are skipped; a UTF-8 byte-order mark is dropped. Refused, in one line naming the
/// file and where: an empty file, a quote left open at the end of the file (the line it opened
/// on), characters after a closing quote, a cell that is not UTF-8 text (row and column), a
/// column name given twice, a row whose width differs from the header's.
public struct CSVTable: Sendable {
    /// The header's cells, spaces around them trimmed.
    public var header: [String]
    /// The data rows: the 1-based line each starts on, and its cells (as written, not trimmed).
    public var rows: [(line: Int, cells: [String])]
    /// Blank lines skipped after the header.
    public var blankLines: Int

    /// Parses `bytes`.
    /// - Parameters:
    ///   - name: the file, for messages.
    ///   - limit: keep only the first `limit` data rows (the rest is not parsed).
    /// - Throws: `DataError` as the type's description lists.
    public static func parse(_ bytes: [UInt8], name: String, limit: Int? = nil) throws -> CSVTable {
        var parser = Parser(bytes: bytes, name: name)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { parser.index = 3 }
        var header: [String]?
        var table = CSVTable(header: [], rows: [], blankLines: 0)
        while !(header != nil && limit.map { table.rows.count >= $0 } == true), let (line, raw) = try parser.nextRecord() {
            if raw.count == 1, raw[0].allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
                if header != nil { table.blankLines += 1 }
                continue
            }
            if let header {
                guard raw.count == header.count else {
                    throw DataError("\(name): row \(line) has \(raw.count) cells, the header has \(header.count)")
                }
                let cells = try raw.enumerated().map { c, cell in
                    try text(cell, name: name, line: line, column: "'\(header[c])'")
                }
                table.rows.append((line, cells))
            } else {
                let names = try raw.enumerated().map { c, cell in
                    try text(cell, name: name, line: line, column: "\(c + 1)").trimmingCharacters(in: .whitespaces)
                }
                var seen: [String: Int] = [:]
                for (c, column) in names.enumerated() {
                    if let first = seen[column] {
                        throw DataError("\(name): column '\(CSVTable.excerpt(column))' appears twice in the header (columns \(first + 1) and \(c + 1))")
                    }
                    seen[column] = c
                }
                header = names
                table.header = names
            }
        }
        guard header != nil else { throw DataError("\(name): empty file (a CSV file starts with a header row)") }
        return table
    }

    /// The finite number in `cells[column]` of the row starting on `line`.
    /// - Throws: `DataError` naming the file (`name`), the row and the column when the cell is not one.
    public func number(_ cells: [String], column: Int, line: Int, name: String) throws -> Float {
        let cell = cells[column].trimmingCharacters(in: .whitespaces)
        guard let value = Float(cell), value.isFinite else {
            throw DataError("\(name): row \(line), column '\(header[column])': '\(Self.excerpt(cell))' is not a finite number")
        }
        return value
    }

    /// A cell for a message: at most 40 characters, the rest elided.
    public static func excerpt(_ cell: String) -> String {
        cell.count <= 40 ? cell : String(cell.prefix(40)) + "…"
    }

    private static func text(_ bytes: [UInt8], name: String, line: Int, column: String) throws -> String {
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw DataError("\(name): row \(line), column \(column): not UTF-8 text")
        }
        return s
    }

    /// A byte-level record reader that counts lines.
    private struct Parser {
        let bytes: [UInt8]
        let name: String
        var index = 0
        var line = 1

        init(bytes: [UInt8], name: String) {
            self.bytes = bytes
            self.name = name
        }

        /// The next record's first line and raw cells; nil at the end of the input.
        mutating func nextRecord() throws -> (Int, [[UInt8]])? {
            guard index < bytes.count else { return nil }
            let start = line
            var cells: [[UInt8]] = []
            var cell: [UInt8] = []
            while true {
                if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                    // A quoted cell: up to the closing quote, then a comma or the end of the record.
                    let opened = line
                    index += 1
                    while true {
                        guard index < bytes.count else {
                            throw DataError("\(name): row \(start): a quoted cell opened on line \(opened) is never closed")
                        }
                        let b = bytes[index]
                        index += 1
                        if b == UInt8(ascii: "\"") {
                            if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                                cell.append(b)
                                index += 1
                            } else {
                                break
                            }
                        } else {
                            if b == 0x0A { line += 1 }
                            cell.append(b)
                        }
                    }
                    guard index == bytes.count || [UInt8(ascii: ","), 0x0A, 0x0D].contains(bytes[index]) else {
                        throw DataError("\(name): row \(start), column \(cells.count + 1): characters after a closing quote")
                    }
                }
                // An unquoted cell (or what follows a quoted one): up to a comma or a line end.
                while index < bytes.count, bytes[index] != UInt8(ascii: ","), bytes[index] != 0x0A {
                    if bytes[index] == UInt8(ascii: "\"") {
                        throw DataError("\(name): row \(line), column \(cells.count + 1): a quote inside an unquoted cell")
                    }
                    cell.append(bytes[index])
                    index += 1
                }
                if index < bytes.count, bytes[index] == UInt8(ascii: ",") {
                    cells.append(cell)
                    cell = []
                    index += 1
                    continue
                }
                // A line end or the end of the input: the record is complete.
                if cell.last == 0x0D { cell.removeLast() }
                cells.append(cell)
                if index < bytes.count { index += 1 }
                line += 1
                return (start, cells)
            }
        }
    }
}
