import Foundation
import Prism
import PrismExplain
@testable import prism
import PrismTestSupport
import Testing

/// A method known only to this test: φ = 2·x for every input element (a closed form to check).
struct DoubledInput: AttributionMethod {
    var name: String { "doubled-input" }

    func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation {
        let n = targets.outputCount
        let values = instances.flatMap { v in [Double](repeating: 2 * Double(v), count: n) }
        return try Explanation(method: name, instanceCount: instances.count / 4, featureCount: 4, outputCount: n, values: values,
                               modelEvaluations: 0, seconds: 0, settings: ["factor": 2])
    }
}

/// A method registered once appears in `--method` and its help, in the JSON document, in the `.npy`
/// folder and in the report, with the values it computed.
@Suite(.serialized) struct MethodRegistryTests {
    @Test func aRegisteredMethodReachesEveryOutput() throws {
        let dir = try scratchDirectory("registry")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/t.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", ExplainCLITests.csv, "--label", "species", "--arch", "mlp",
                                  "--hidden", "8", "--epochs", "1", "--batch", "16", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")

        try MethodRegistry.shared.register(ExplainMethod(name: "doubled-input", title: "Doubled input",
                                                         kind: .attribution { _ in DoubledInput() }, options: ["seed"]))
        defer { MethodRegistry.shared.unregister("doubled-input") }
        #expect(throws: (any Error).self) {
            try MethodRegistry.shared.register(ExplainMethod(name: "doubled-input", title: "again", kind: .attribution { _ in DoubledInput() }))
        }
        #expect(ExplainCommand.helpMessage(columns: 1000).contains("doubled-input (--seed)"))

        let command = try ExplainCommand.parse(["--device", "cpu", "--data", ExplainCLITests.csv, "--label", "species", "--model", model,
                                                "--index", "2,5", "--method", "doubled-input,saliency", "--background", "5",
                                                "--out", dir + "/report"])
        try command.explain()

        let doc = try ExplainDocumentReader(path: dir + "/report/explanation.json")
        #expect(doc.methodNames == ["doubled-input", "saliency"])
        #expect(doc.settings("doubled-input")["factor"] as? Int == 2)
        // The inputs in the document are the standardized test rows; the method doubled them.
        let inputs = try #require((doc.inputs["values"] as? [String: Any])?["values"] as? [[Double]])
        #expect(inputs.count == 2 && inputs[0].count == 4)
        let expected = inputs.flatMap { $0.map { 2 * $0 } }
        let values = doc.values("doubled-input")
        #expect(values.count == 8)
        for (a, b) in zip(values, expected) { #expect(abs(a - b) <= 1e-6 * max(1, abs(b))) }

        let npy = try Data(contentsOf: URL(fileURLWithPath: dir + "/report/npy/doubled-input/values.npy"))
        #expect(npy.count == 128 + 8 * 8)
        let stored = npy.suffix(64).withUnsafeBytes { raw in (0..<8).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) } }
        for (a, b) in zip(stored, values) { #expect(abs(a - b) <= 1e-12 * max(1, abs(b))) }
        let html = try String(contentsOfFile: dir + "/report/index.html", encoding: .utf8)
        #expect(html.contains("Doubled input") && html.contains("npy/doubled-input/values.npy"))
    }
}
