import CZlib
import Foundation
import Prism
import Testing

/// Hostile inputs given to the built `prism`: each ends with exit status 1 and one line naming the
/// file, row and column or option, before any runaway allocation.
@Suite(.serialized) struct HostileCLITests {
    static let csv = TrainCLITests.fixtures + "/tabular.csv"
    static let images = TrainCLITests.images

    func train(_ arguments: [String], out: String) throws -> String {
        let run = try runPrism(["train", "--device", "cpu", "--arch", "mlp", "--hidden", "8", "--epochs", "1", "--out", out] + arguments)
        #expect(run.status == 0, "\(run.stderr)")
        return out
    }

    /// A gzip file of `header` then `zeros` zero bytes.
    func writeGzip(_ path: String, header: [UInt8], zeros: Int) throws {
        let file = try #require(gzopen(path, "wb"))
        defer { gzclose(file) }
        var header = header
        _ = gzwrite(file, &header, UInt32(header.count))
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var left = zeros
        while left > 0 {
            let n = min(left, chunk.count)
            _ = gzwrite(file, &chunk, UInt32(n))
            left -= n
        }
    }

    func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    @Test func gzipBombIsReadOnlyAsFarAsTheLimit() throws {
        let dir = try scratchDirectory("hostile-idx")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 2·10^9 images of 28×28 declared by each file, 64 MB of zeros present (about 64 kB of gzip).
        let n: UInt32 = 2_000_000_000
        for split in ["train", "t10k"] {
            try writeGzip(dir + "/\(split)-images-idx3-ubyte.gz", header: [0, 0, 8, 3] + be32(n) + be32(28) + be32(28), zeros: 64 << 20)
            try writeGzip(dir + "/\(split)-labels-idx1-ubyte.gz", header: [0, 0, 8, 1] + be32(n), zeros: 1 << 20)
        }
        let start = Date()
        let limited = try runPrism(["train", "--device", "cpu", "--data", dir, "--limit", "10", "--test-limit", "10", "--arch", "mlp",
                                    "--hidden", "4", "--epochs", "1", "--out", dir + "/m.safetensors"])
        #expect(limited.status == 0, "\(limited.stderr)")
        #expect(limited.stderr.contains("10 training, 10 test examples"), "\(limited.stderr)")
        #expect(Date().timeIntervalSince(start) < 60)
        let all = try runPrism(["train", "--device", "cpu", "--data", dir, "--arch", "mlp", "--out", dir + "/n.safetensors"])
        expectOneLineError(all, "-images-idx3-ubyte.gz: 2000000000 images of 28×28 need 19 TB to load; ")
        // A bad magic: one short line naming the expected magic.
        try Data([0, 0, 8, 0xFF] + [UInt8](repeating: 0xAB, count: 1200)).write(to: URL(fileURLWithPath: dir + "/t10k-images-idx3-ubyte"))
        try FileManager.default.removeItem(atPath: dir + "/t10k-images-idx3-ubyte.gz")
        let magic = try runPrism(["train", "--device", "cpu", "--data", dir, "--limit", "10", "--arch", "mlp", "--out", dir + "/n.safetensors"])
        expectOneLineError(magic, "t10k-images-idx3-ubyte: not an IDX file: magic number 0x000008ff, expected 0x00000803 for images")
        #expect(magic.stderr.count < 200)
    }

    @Test func runawayBudgetsAreRefusedUpFront() throws {
        let dir = try scratchDirectory("hostile-budget")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try train(["--data", Self.images, "--limit", "200"], out: dir + "/m.safetensors")
        let base = ["explain", "--device", "cpu", "--data", Self.images, "--model", model, "--index", "0", "--background", "4"]
        // 49 superpixels of 4×4: kernel-shap's coalition matrix for 10^12 coalitions.
        expectOneLineError(try runPrism(base + ["--method", "kernel-shap", "--samples", "1000000000000"]),
                           "kernel-shap: a budget of 1000000000000 coalitions × 49 features needs ")
        expectOneLineError(try runPrism(base + ["--method", "leverage-shap", "--samples", "1000000000000"]),
                           "leverage-shap: a budget of 1000000000000 coalitions × 49 features needs ")
        expectOneLineError(try runPrism(base + ["--method", "ig", "--steps", "1000000000"]),
                           "integrated gradients: 1000000000 steps are above the gauss-legendre rule's limit of 10000")
        expectOneLineError(try runPrism(base + ["--method", "ig", "--ig-rule", "left", "--steps", "1000000000000"]),
                           "integrated gradients: 1000000000000 steps needs 16 TB for the quadrature points and weights; ")
        // 10^12 weights in the middle layer.
        let wide = try runPrism(["train", "--device", "cpu", "--data", Self.images, "--limit", "10", "--arch", "mlp",
                                 "--hidden", "1000000,1000000", "--out", dir + "/w.safetensors"])
        expectOneLineError(wide, "--arch mlp: 1000796000010 parameters need 16 TB on the device (4 copies); ")
        #expect(!FileManager.default.fileExists(atPath: dir + "/w.safetensors"))
    }

    @Test func forgedModelFilesNameTheFile() throws {
        let dir = try scratchDirectory("hostile-model")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try train(["--data", Self.csv, "--label", "species"], out: dir + "/t.safetensors")
        // The description claims 2^40 outputs over the file's [3, 8] last weight.
        var file = try SafetensorsFile.read(path: model)
        var spec = try ModelSpec.decode(json: try #require(file.metadata[Model.specMetadataKey]))
        let last = spec.nodes.count - 1
        spec.nodes[last] = LayerSpec.linear(inFeatures: 8, outFeatures: 1 << 40).node(name: "\(last)")
        spec.classCount = 1 << 40
        file.metadata[Model.specMetadataKey] = try spec.json()
        try file.write(path: dir + "/forged.safetensors")
        expectOneLineError(try runPrism(["predict", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", dir + "/forged.safetensors"]),
                           "forged.safetensors: tensor '\(last).weight' has shape [3, 8], the model expects [1099511627776, 8]")
        // A PyTorch checkpoint.
        try Data([0x50, 0x4B, 0x03, 0x04] + [UInt8](repeating: 0, count: 60)).write(to: URL(fileURLWithPath: dir + "/model.pt"))
        expectOneLineError(try runPrism(["predict", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", dir + "/model.pt"]),
                           "model.pt: a PyTorch checkpoint (torch.save's zip archive of pickles), not a safetensors file; convert it in Python: safetensors.torch.save_file(model.state_dict(), \"m.safetensors\")")
        // Two groups of one name.
        try #"[{"name": "g", "columns": [0]}, {"name": "g", "columns": [1]}]"#.write(toFile: dir + "/g.json", atomically: true, encoding: .utf8)
        expectOneLineError(try runPrism(["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model,
                                         "--method", "exact-shap", "--groups", dir + "/g.json"]),
                           "g.json: two groups are named 'g'")
    }

    @Test func badCSVFilesNameTheRow() throws {
        let dir = try scratchDirectory("hostile-csv")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func trainOn(_ bytes: [UInt8]) throws -> (status: Int32, stdout: String, stderr: String) {
            try Data(bytes).write(to: URL(fileURLWithPath: dir + "/bad.csv"))
            return try runPrism(["train", "--device", "cpu", "--data", dir + "/bad.csv", "--label", "y", "--arch", "mlp",
                                 "--out", dir + "/m.safetensors"])
        }
        let open = "a,b,y\n1,2,0\n3,\"4,1\n" + String(repeating: "5,6,1\n", count: 150)
        expectOneLineError(try trainOn(Array(open.utf8)), "bad.csv: row 3: a quoted cell opened on line 3 is never closed")
        expectOneLineError(try trainOn(Array("a,b,y\n\n1,2,0\n\n3,4,1,9\n".utf8)), "bad.csv: row 5 has 4 cells, the header has 3")
        expectOneLineError(try trainOn([]), "bad.csv: empty file (a CSV file starts with a header row)")
        expectOneLineError(try trainOn(Array("a,b,y\n1,".utf8) + [0xC0, 0xAF] + Array(",0\n".utf8)), "bad.csv: row 2, column 'b': not UTF-8 text")
        expectOneLineError(try trainOn(Array("a,a,y\n1,2,0\n".utf8)), "bad.csv: column 'a' appears twice in the header (columns 1 and 2)")
    }

    @Test func negativeOptionValuesAreCheckedAsNumbers() throws {
        let missing = "/nonexistent/m.safetensors"
        expectOneLineError(try runPrism(["predict", "--device", "cpu", "--model", missing, "--index", "-1"]), "--index must be at least 0")
        expectOneLineError(try runPrism(["explain", "--device", "cpu", "--model", missing, "--index", "-1"]),
                           "--index '-1' is not a list of non-negative integers")
        expectOneLineError(try runPrism(["explain", "--device", "cpu", "--model", missing, "--background", "-5"]), "--background must be at least 1")
        expectOneLineError(try runPrism(["explain", "--device", "cpu", "--model", missing, "--samples", "-3"]), "--samples must be at least 1")
        expectOneLineError(try runPrism(["train", "--device", "cpu", "--data", Self.csv, "--limit", "-1"]), "--limit must be at least 1")
        expectOneLineError(try runPrism(["train", "--device", "cpu", "--data", Self.csv, "--seed", "-1"]), "'-1' is invalid for '--seed <seed>'")
    }
}

extension HostileCLITests {
    /// A one-row CSV has no row to hold out: refused, instead of training and testing on the same row.
    @Test func oneRowCSVIsNotItsOwnTestSet() throws {
        let dir = try scratchDirectory("one-row")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "a,b,y\n1,2,0\n".write(toFile: dir + "/one.csv", atomically: true, encoding: .utf8)
        let run = try runPrism(["train", "--device", "cpu", "--data", dir + "/one.csv", "--label", "y", "--arch", "mlp", "--out", dir + "/m.safetensors"])
        expectOneLineError(run, "one.csv: 1 data row; holding out a test set needs at least 2 (or give --test-data FILE.csv)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/m.safetensors"))
    }
}

extension HostileCLITests {
    /// --resume continues the checkpoint's model and settings: other values of them are refused, not
    /// ignored, and so is a total of epochs below those already done.
    @Test func resumeRefusesSettingsItWouldIgnore() throws {
        let dir = try scratchDirectory("resume")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = ["train", "--device", "cpu", "--data", TrainCLITests.fixtures + "/tabular.csv", "--label", "species",
                    "--out", dir + "/m.safetensors"]
        let first = try runPrism(base + ["--arch", "mlp", "--hidden", "8", "--epochs", "2"])
        #expect(first.status == 0, "\(first.stderr)")
        let changed = try runPrism(base + ["--resume", "--epochs", "3", "--arch", "mlp", "--lr", "0.1", "--seed", "4"])
        expectOneLineError(changed, "--arch, --lr, --seed apply to a new run; --resume continues with the checkpoint's model and training settings")
        let fewer = try runPrism(base + ["--resume", "--epochs", "1"])
        expectOneLineError(fewer, "--epochs 1: the checkpoint \(dir)/m.safetensors.ckpt has already done 2 epochs (--epochs is the total)")
        let more = try runPrism(base + ["--resume", "--epochs", "3"])
        #expect(more.status == 0 && more.stderr.contains("resuming"), "\(more.stderr)")
    }
}

extension HostileCLITests {
    /// A run killed after its checkpoint but before its log line loses no epoch: resuming rewrites the
    /// log from the reports the checkpoint holds.
    @Test func resumeRebuildsALogThatLostItsLastLine() throws {
        let dir = try scratchDirectory("log")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = ["train", "--device", "cpu", "--data", TrainCLITests.fixtures + "/tabular.csv", "--label", "species",
                    "--out", dir + "/m.safetensors"]
        let first = try runPrism(base + ["--arch", "mlp", "--hidden", "8", "--epochs", "2"])
        #expect(first.status == 0, "\(first.stderr)")
        let log = dir + "/m.safetensors.log.jsonl"
        let full = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(full.count == 2)
        // As if killed between the checkpoint of epoch 2 and its log line.
        try (full[0] + "\n").write(toFile: log, atomically: true, encoding: .utf8)
        let resumed = try runPrism(base + ["--resume", "--epochs", "3"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == 3 && Array(lines.prefix(2)) == full, "\(lines)")
        let epochs = lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }.compactMap { $0["epoch"] as? Int }
        #expect(epochs == [1, 2, 3])
    }
}
