import Foundation
import Prism
import PrismCL
import PrismTestSupport
import Testing

/// One engine on the CPU device (PoCL) for the whole test process.
let sharedEngine: Result<Engine, any Error> = Result {
    var settings = Settings.current
    settings.device = settings.device ?? "cpu"
    return try Engine(settings: settings)
}

func testEngine() throws -> Engine { try sharedEngine.get() }

/// Records an issue unless `actual` matches `expected` within `atol + rtol·|expected|` (NaN fails).
func expectClose(_ actual: [Float], _ expected: [Double], atol: Double = 1e-5, rtol: Double = 1e-4, _ label: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    let result = closeness(actual, expected, atol: atol, rtol: rtol, label: label)
    if !result.passed { Issue.record(Comment(rawValue: result.message), sourceLocation: sourceLocation) }
}

func expectClose(_ actual: [Float], _ expected: [Float], atol: Double = 1e-5, rtol: Double = 1e-4, _ label: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    expectClose(actual, expected.map(Double.init), atol: atol, rtol: rtol, label, sourceLocation: sourceLocation)
}

func doubles(_ x: [Float]) -> [Double] { x.map(Double.init) }
