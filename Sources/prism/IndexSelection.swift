import ArgumentParser
import Foundation

/// The test-set rows `--index` names: `I`, a list `I,J,…`, inclusive ranges `A-B` mixed with single
/// rows (`0-9,20,30-39`), or `all`. Ranges and `all` make a whole-data-set run (shards, resume,
/// global views); a plain list explains its rows in one go, as before.
struct IndexSelection: Equatable {
    /// One comma-separated part: a row, an inclusive range of rows, or every row.
    enum Part: Equatable {
        case row(Int)
        case range(Int, Int)
        case all
    }

    var parts: [Part]
    /// The text as given, for messages.
    var text: String

    /// Whether the selection makes a whole-data-set run: `all`, or at least one range.
    var isWholeSet: Bool {
        parts.contains { if case .row = $0 { false } else { true } }
    }

    /// Parses `--index`. Checks the syntax only; `resolve` checks the rows against the test set.
    /// - Throws: `ValidationError` naming `--index` and the part that is not a row, a range or `all`,
    ///   a range that runs backwards, or `all` mixed with other parts.
    init(parsing text: String) throws {
        self.text = text
        let pieces = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        func row(_ s: Substring) -> Int? {
            guard !s.isEmpty, s.allSatisfy(\.isASCII), s.allSatisfy(\.isNumber) else { return nil }
            return Int(s)
        }
        var parts: [Part] = []
        for piece in pieces {
            if piece == "all" {
                parts.append(.all)
            } else if let dash = piece.firstIndex(of: "-"), dash != piece.startIndex {
                guard let a = row(piece[..<dash]), let b = row(piece[piece.index(after: dash)...]) else {
                    throw ValidationError("--index '\(text)': '\(piece)' is not a range A-B of non-negative integers")
                }
                guard a <= b else { throw ValidationError("--index '\(text)': the range \(piece) runs backwards (write \(b)-\(a))") }
                parts.append(.range(a, b))
            } else if let i = row(Substring(piece)) {
                parts.append(.row(i))
            } else {
                throw ValidationError("--index '\(text)' is not a list of non-negative integers and ranges (I, I,J,…, A-B, 0-9,20,30-39 or all): '\(piece)'")
            }
        }
        if parts.contains(.all) && parts.count > 1 {
            throw ValidationError("--index '\(text)': 'all' names every row; give it alone")
        }
        self.parts = parts
    }

    /// The rows in the order given, checked against a test set of `count` rows.
    /// - Parameter source: the test set's name, for messages.
    /// - Throws: `ValidationError` naming `--index` for a row outside `0..<count` or a row named twice.
    func resolve(count: Int, source: String) throws -> [Int] {
        var rows: [Int] = []
        for part in parts {
            switch part {
            case let .row(i):
                guard i < count else { throw ValidationError("--index \(i) outside 0..<\(count) (the test set of \(source))") }
                rows.append(i)
            case let .range(a, b):
                guard b < count else { throw ValidationError("--index \(a)-\(b) reaches outside 0..<\(count) (the test set of \(source))") }
                rows += Array(a...b)
            case .all:
                guard count > 0 else { throw ValidationError("--index all: the test set of \(source) is empty") }
                rows += Array(0..<count)
            }
        }
        var seen = Set<Int>()
        for r in rows where !seen.insert(r).inserted {
            throw ValidationError("--index '\(text)' names row \(r) twice")
        }
        return rows
    }
}
