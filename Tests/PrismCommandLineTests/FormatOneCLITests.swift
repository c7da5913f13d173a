import Foundation
import Testing

/// Model files written before models were graphs (description format 1, `Tests/Fixtures/format1`,
/// made by the commands in its README) load unchanged: explaining them now gives the documents
/// written then — the same outputs and attributions — and a format-1 checkpoint resumes.
@Suite struct FormatOneCLITests {
    static let folder = TrainCLITests.fixtures + "/format1"

    /// The old document's outputs and every method's values against a new run of the same command.
    func expectSameDocument(_ name: String, _ arguments: [String]) throws {
        let dir = try scratchDirectory("format1-\(name)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try runPrism(["explain", "--device", "cpu", "--model", "\(Self.folder)/\(name).safetensors"] + arguments + ["--json", dir + "/e.json"])
        #expect(run.status == 0, "\(run.stderr)")
        let old = try ExplainDocumentReader(path: "\(Self.folder)/\(name).json"), new = try ExplainDocumentReader(path: dir + "/e.json")
        let oldOutputs = ((old.json["predictions"] as? [String: Any])?["outputs"] as? [String: Any])?["values"] as? [[Double]] ?? []
        let newOutputs = ((new.json["predictions"] as? [String: Any])?["outputs"] as? [String: Any])?["values"] as? [[Double]] ?? []
        #expect(!oldOutputs.isEmpty && oldOutputs.count == newOutputs.count, "\(name)")
        for (a, b) in zip(oldOutputs.joined(), newOutputs.joined()) { #expect(abs(a - b) <= 1e-5 + 1e-5 * abs(a), "\(name): output \(b), was \(a)") }
        #expect(old.methodNames == new.methodNames && !old.methodNames.isEmpty, "\(name)")
        for method in old.methodNames {
            let a = old.values(method), b = new.values(method)
            #expect(a.count == b.count && !a.isEmpty, "\(name) \(method)")
            let scale = a.map(abs).max() ?? 0
            for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-5 * max(scale, 1e-3), "\(name) \(method): \(y), was \(x)") }
        }
        if old.methodNames.contains("gradcam") {
            #expect(new.settings("gradcam")["layer"] as? String == old.settings("gradcam")["layer"] as? String)
        }
    }

    @Test func oldModelFilesExplainAsTheyDid() throws {
        try expectSameDocument("format1_mlp", ["--input", Self.folder + "/x_mnist.npy", "--method", "gradxinput,lrp"])
        try expectSameDocument("format1_vit", ["--input", Self.folder + "/x_mnist.npy", "--method", "gradxinput,attention-rollout"])
        try expectSameDocument("format1_cnn_rgb", ["--input", Self.folder + "/x_rgb.npy", "--method", "gradxinput,lrp,gradcam"])
        try expectSameDocument("format1_regression", ["--data", TrainCLITests.fixtures + "/tabular.csv", "--label", "petal_width",
                                                       "--method", "gradxinput,lrp"])
    }

    @Test func anOldCheckpointResumes() throws {
        let dir = try scratchDirectory("format1-resume")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: Self.folder + "/format1_mlp.safetensors.ckpt", toPath: dir + "/m.safetensors.ckpt")
        let run = try runPrism(["train", "--device", "cpu", "--data", TrainCLITests.fixtures + "/fashion-mnist-subset", "--limit", "300",
                                "--epochs", "3", "--resume", "--out", dir + "/m.safetensors"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("epoch 3/3") && !run.stdout.contains("epoch 1/3"), "\(run.stdout)")
        // The model written now is a format-2 description of the same chain.
        let header = try Data(contentsOf: URL(fileURLWithPath: dir + "/m.safetensors")).prefix(4096)
        #expect(String(decoding: header, as: UTF8.self).contains("\\\"format\\\":2"))
    }
}
