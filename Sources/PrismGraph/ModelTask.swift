import Foundation
import PrismFormats

/// What a model's outputs mean: class scores (logits) or predicted values. Stored in the model's
/// spec (`ModelSpec.task`); a file without it holds a classifier.
public enum ModelTask: Codable, Equatable, Sendable {
    /// One logit per class; `classes` names them when known.
    case classification(classes: [String]?)
    /// One predicted value per output, in the target's units; `outputs` names them (a CSV's target column).
    case regression(outputs: [String])

    /// Which of the two, without the names.
    public var kind: Kind {
        switch self {
        case .classification: .classification
        case .regression: .regression
        }
    }

    /// The two kinds of task.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case classification, regression
    }
}

/// How a CSV label column was read, and why.
public struct LabelColumnDecision: Equatable, Sendable {
    public var kind: ModelTask.Kind
    /// Classification: the number of classes (largest label + 1).
    public var classCount: Int?
    /// What was taken and how, for a person to read (nil when nothing was inferred).
    public var note: String?

    /// The default largest number of classes an integer column may make before it is refused.
    public static let defaultMaxClasses = 100

    /// Decides how to read the values of a label column: as class indices or as a regression target.
    /// Integer values become classes 0…max only up to `maxClasses` classes, and always with a note;
    /// non-integer values are never classes. Nothing is guessed without saying so.
    /// - Parameters:
    ///   - column: the column's name (for messages).
    ///   - source: the file it comes from, prefixed to messages when given.
    ///   - values: the column's values.
    ///   - requested: the kind asked for, or nil to decide by the values.
    ///   - maxClasses: the largest number of classes accepted.
    /// - Throws: `DataError` naming the column: no values; classification asked for (or inferred) but a
    ///   value is not a non-negative integer; more classes than `maxClasses`.
    public static func decide(column: String, source: String? = nil, values: [Float], requested: ModelTask.Kind?,
                              maxClasses: Int = defaultMaxClasses) throws -> LabelColumnDecision {
        let column = (source.map { $0 + ": " } ?? "") + "column '\(column)'"
        guard !values.isEmpty else { throw DataError("\(column): no values") }
        if requested == .regression { return LabelColumnDecision(kind: .regression) }
        if let i = values.firstIndex(where: { !($0 >= 0 && $0 == $0.rounded() && $0 < Float(1 << 24)) }) {
            let value = values[i]
            if requested == .classification {
                throw DataError("\(column): value \(value) (data row \(i + 1)) is not a class index (a non-negative integer); for a numeric target use --task regression")
            }
            throw DataError("\(column) holds values that are not class indices (\(value) at data row \(i + 1)): pass --task regression to predict it as a number (class labels are non-negative integers)")
        }
        let largest = Int(values.max()!)
        let (classes, overflow) = largest.addingReportingOverflow(1)
        let distinct = Set(values).count
        guard !overflow, classes <= maxClasses else {
            throw DataError("\(column): \(distinct) distinct integer values up to \(largest) would make \(classes) classes, more than the limit of \(maxClasses) (--max-classes); for a numeric target use --task regression")
        }
        let note = "\(column): \(distinct) distinct integer values taken as classes 0…\(largest) (\(classes) classes)"
            + (requested == nil ? "; pass --task regression to predict it as a number instead" : "")
        return LabelColumnDecision(kind: .classification, classCount: classes, note: note)
    }

    public init(kind: ModelTask.Kind, classCount: Int? = nil, note: String? = nil) {
        self.kind = kind
        self.classCount = classCount
        self.note = note
    }
}
