import Foundation
@testable import PrismCL
import Testing

/// One context on the CPU device (PoCL) for the whole test process, with its own cache folder.
let sharedContext: Result<Context, any Error> = Result {
    var settings = Settings.current
    settings.device = settings.device ?? "cpu"
    settings.cacheDirectory = temporaryDirectory("cache")
    return try Context(settings: settings)
}

func testContext() throws -> Context { try sharedContext.get() }

/// A fresh, empty folder under the system's temporary directory.
func temporaryDirectory(_ label: String) -> String {
    let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("prism-tests-\(label)-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Deterministic pseudo-random floats in [-1, 1) (SplitMix64).
func seededFloats(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(Double(z >> 40) / Double(1 << 24) * 2 - 1)
    }
}

/// Fails unless every `actual[i]` is within `atol + rtol·|expected[i]|` (NaN fails), reporting the
/// first bad index and the largest difference.
func expectClose(_ actual: [Float], _ expected: [Float], atol: Float = 1e-6, rtol: Float = 1e-5,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record("count \(actual.count) != expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    var firstBad: Int?
    var worst: Float = 0
    for i in actual.indices {
        let diff = abs(actual[i] - expected[i])
        let ok = diff <= atol + rtol * abs(expected[i])
        if !ok, firstBad == nil { firstBad = i }
        if !(diff <= worst) { worst = diff.isNaN ? .nan : max(worst, diff) }
    }
    if let i = firstBad {
        Issue.record("first mismatch at \(i): \(actual[i]) vs \(expected[i]); max |diff| \(worst)", sourceLocation: sourceLocation)
    }
}
