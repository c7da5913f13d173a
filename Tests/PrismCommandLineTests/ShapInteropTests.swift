import Foundation
import PrismTestSupport
import Testing

/// Whether `python3` can import shap (the interop check needs it; it is not a dependency of Prism).
let pythonHasShap: Bool = {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", "import shap, matplotlib"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return false }
    process.waitUntilExit()
    return process.terminationStatus == 0
}()

/// `Benchmarks/peers/prism_to_shap.py` (the README's lines as a script) turns `explanation.json` into
/// `shap.Explanation` objects whose values and base values add up to the predicted f(x), and shap's
/// plots accept them.
@Suite(.serialized) struct ShapInteropTests {
    @Test(.enabled(if: pythonHasShap, "needs python3 with shap and matplotlib (pip install shap)"))
    func explanationDocumentBecomesShapExplanations() throws {
        let dir = try scratchDirectory("shap")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/t.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", ExplainCLITests.csv, "--label", "species", "--arch", "mlp",
                                  "--hidden", "8", "--epochs", "2", "--batch", "16", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        let explain = try runPrism(["explain", "--device", "cpu", "--data", ExplainCLITests.csv, "--label", "species", "--model", model,
                                    "--index", "0,3,9", "--method", "kernel-shap,exact-shap,ig", "--background", "10", "--json", dir + "/e.json"])
        #expect(explain.status == 0, "\(explain.stderr)")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Benchmarks/peers/prism_to_shap.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, dir + "/e.json", "--check"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(message)")
    }
}
