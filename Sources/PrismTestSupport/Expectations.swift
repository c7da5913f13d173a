import Testing

/// Records an issue unless `actual` matches `expected` within `atol + rtol·|expected|` (NaN fails),
/// naming the first bad index and the largest difference.
public func expectClose(_ actual: [Float], _ expected: [Double], atol: Double = 1e-5, rtol: Double = 1e-4, _ label: String = "",
                        sourceLocation: SourceLocation = #_sourceLocation) {
    let result = closeness(actual, expected, atol: atol, rtol: rtol, label: label)
    if !result.passed { Issue.record(Comment(rawValue: result.message), sourceLocation: sourceLocation) }
}

/// `expectClose` for single-precision expectations.
public func expectClose(_ actual: [Float], _ expected: [Float], atol: Double = 1e-5, rtol: Double = 1e-4, _ label: String = "",
                        sourceLocation: SourceLocation = #_sourceLocation) {
    expectClose(actual, expected.map(Double.init), atol: atol, rtol: rtol, label, sourceLocation: sourceLocation)
}

/// `expectClose` in double precision (references against closed forms), compared in Double so that
/// float rounding cannot hide a small error.
public func expectClose(_ actual: [Double], _ expected: [Double], atol: Double = 1e-6, rtol: Double = 1e-5, _ label: String = "",
                        sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record(Comment(rawValue: "\(label) count \(actual.count) != expected \(expected.count)"), sourceLocation: sourceLocation)
        return
    }
    var bad: Int?, worst = 0.0
    for i in actual.indices {
        let diff = abs(actual[i] - expected[i])
        if !(diff <= atol + rtol * abs(expected[i])) && bad == nil { bad = i }
        if !(diff <= worst) { worst = diff.isNaN ? .nan : max(worst, diff) }
    }
    if let i = bad {
        Issue.record(Comment(rawValue: "\(label) first mismatch at \(i): \(actual[i]) vs \(expected[i]); max |diff| \(worst)"), sourceLocation: sourceLocation)
    }
}

/// Single-precision values as doubles.
public func doubles(_ x: [Float]) -> [Double] { x.map(Double.init) }
