import Foundation
import Testing

/// A fresh folder for one test's files (the test removes it).
func scratchDirectory(_ label: String) throws -> String {
    let dir = NSTemporaryDirectory() + "prism-\(label)-\(getpid())-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// Expects exit status 1 and exactly one line on standard error that contains `expected`.
func expectOneLineError(_ result: (status: Int32, stdout: String, stderr: String), _ expected: String,
                        sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.status == 1, sourceLocation: sourceLocation)
    #expect(result.stderr.split(separator: "\n").count == 1, "stderr: \(result.stderr)", sourceLocation: sourceLocation)
    #expect(result.stderr.contains(expected), "stderr: \(result.stderr)", sourceLocation: sourceLocation)
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

    /// A method's model evaluations (0 when absent).
    func modelEvaluations(_ name: String? = nil) -> Int { method(name)["model_evaluations"] as? Int ?? 0 }

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

/// Records an issue unless every |a − b| ≤ tol · max(1, |b|) (NaN fails).
func expectNear(_ a: [Double], _ b: [Double], _ tol: Double, _ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count && !a.isEmpty, "\(label): \(a.count) vs \(b.count) values", sourceLocation: sourceLocation)
    for (i, (x, y)) in zip(a, b).enumerated() where !(abs(x - y) <= tol * max(1, abs(y))) {
        Issue.record("\(label): value \(i) \(x) vs \(y)", sourceLocation: sourceLocation)
        return
    }
}
