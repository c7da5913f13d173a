import PrismTestSupport
import Testing

/// Records an issue unless `actual` matches `expected` within `atol + rtol·|expected|` (NaN fails).
func expectClose(_ actual: [Double], _ expected: [Double], atol: Double = 1e-6, rtol: Double = 1e-5, _ label: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    let result = closeness(actual.map { Float($0) }, expected, atol: atol, rtol: rtol, label: label)
    // Compare in Double too, so float rounding does not hide a small error.
    var bad: Int?
    for i in actual.indices where i < expected.count && !(abs(actual[i] - expected[i]) <= atol + rtol * abs(expected[i])) {
        bad = i; break
    }
    if actual.count != expected.count || bad != nil {
        let detail = bad.map { "index \($0): \(actual[$0]) vs \(expected[$0])" } ?? result.message
        Issue.record(Comment(rawValue: "\(label) \(detail)"), sourceLocation: sourceLocation)
    }
}
