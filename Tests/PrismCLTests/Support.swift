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

/// An `explanation.json` document as a Python user reads it: methods by name, arrays flattened.
struct ExplainDocumentReader {
    let json: [String: Any]

    init(path: String) throws {
        json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] ?? [:]
    }

    var methods: [[String: Any]] { json["methods"] as? [[String: Any]] ?? [] }
    var methodNames: [String] { methods.compactMap { $0["method"] as? String } }

    /// The entry of `name`, or the only method.
    func method(_ name: String? = nil) -> [String: Any] {
        methods.first { name == nil || $0["method"] as? String == name } ?? [:]
    }

    /// An array field {"shape", "values"} of a method, flattened row-major, and its shape.
    func array(_ field: String, of name: String? = nil) -> (values: [Double], shape: [Int])? {
        guard let entry = method(name)[field] as? [String: Any], let shape = entry["shape"] as? [Int] else { return nil }
        return (flatten(entry["values"] as Any), shape)
    }

    /// A method's values [examples, features, outputs], flattened.
    func values(_ name: String? = nil) -> [Double] { array("values", of: name)?.values ?? [] }

    /// The typed settings of a method.
    func settings(_ name: String? = nil) -> [String: Any] { method(name)["settings"] as? [String: Any] ?? [:] }

    /// The shape of a method's values.
    func shape(_ name: String? = nil) -> [Int] { array("values", of: name)?.shape ?? [] }

    var featureNames: [String]? { (json["features"] as? [String: Any])?["names"] as? [String] }
    var background: [String: Any] { json["background"] as? [String: Any] ?? [:] }
    var inputs: [String: Any] { json["inputs"] as? [String: Any] ?? [:] }

    private func flatten(_ value: Any) -> [Double] {
        if let list = value as? [Any] { return list.flatMap(flatten) }
        if let number = value as? NSNumber { return [number.doubleValue] }
        return [.nan]
    }
}
