import Foundation
import Prism
import PrismFormats
import Testing

/// `prism train --device all` on two PoCL devices (`POCL_DEVICES="pthread pthread"`): each step's
/// batch is split between them, the log says how many examples each trained on, and the weights
/// equal a one-device run's at the same batch up to summation order.
@Suite struct DataParallelCLITests {
    @Test func twoDevicesTrainAsOne() throws {
        let dir = try scratchDirectory("train-devices")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let twoDevices = ["POCL_DEVICES": "pthread pthread"]
        func train(_ device: String, _ out: String) throws -> (status: Int32, stdout: String, stderr: String) {
            try runPrism(["train", "--device", device, "--data", ExplainCLITests.csv, "--label", "species", "--arch", "mlp", "--hidden", "8",
                          "--epochs", "2", "--batch", "16", "--optimizer", "sgd", "--lr", "0.05", "--seed", "4", "--out", out],
                         environment: twoDevices)
        }
        let shared = try train("all", dir + "/two.safetensors")
        #expect(shared.status == 0, "\(shared.stderr)")
        #expect(shared.stderr.contains("; devices #0 ") && shared.stderr.contains(", #1 ") && shared.stderr.contains("(each step's batch split across them)"),
                "\(shared.stderr)")
        #expect(shared.stdout.contains("examples per device: #0 "), "\(shared.stdout)")
        let alone = try train("0", dir + "/one.safetensors")
        #expect(alone.status == 0, "\(alone.stderr)")

        let a = try SafetensorsFile.read(path: dir + "/two.safetensors"), b = try SafetensorsFile.read(path: dir + "/one.safetensors")
        #expect(Set(a.tensors.keys) == Set(b.tensors.keys) && !a.tensors.isEmpty)
        for (name, tensor) in a.tensors {
            let other = try #require(b.tensors[name])
            let difference = zip(tensor.values, other.values).map { abs($0 - $1) }.max() ?? 0
            #expect(tensor.shape == other.shape && difference <= 1e-5, "\(name): two devices vs one differ by \(difference)")
        }
        // The log's epochs say what each device did: every example once per epoch, split in two.
        let log = try String(contentsOfFile: dir + "/two.safetensors.log.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(log.count == 2)
        for line in log {
            let epoch = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let counts = try #require(epoch["examples_per_device"] as? [Int])
            #expect(counts.count == 2 && counts.allSatisfy { $0 > 0 } && abs(counts[0] - counts[1]) <= (counts[0] + counts[1]) / 16 + 1, "\(counts)")
        }
        let single = try String(contentsOfFile: dir + "/one.safetensors.log.jsonl", encoding: .utf8)
        #expect(!single.contains("examples_per_device"))

        // eval on both devices prints what one device does.
        func eval(_ device: String) throws -> (status: Int32, stdout: String, stderr: String) {
            try runPrism(["eval", "--device", device, "--data", ExplainCLITests.csv, "--label", "species", "--model", dir + "/one.safetensors",
                          "--json"], environment: twoDevices)
        }
        let (both, first) = (try eval("all"), try eval("0"))
        #expect(both.status == 0 && first.status == 0, "\(both.stderr) \(first.stderr)")
        #expect(both.stdout == first.stdout && both.stdout.contains("\"accuracy\""), "\(both.stdout)")
        #expect(both.stderr.contains("evaluating on devices #0 "), "\(both.stderr)")

        // predict on both devices: the examples of a file split between them, the lines one device prints.
        try ExplainInputsCLITests().writeNpy((0..<20).map { Float($0 % 9) * 0.6 + 0.3 }, shape: [5, 4], path: dir + "/x.npy")
        func predict(_ device: String) throws -> (status: Int32, stdout: String, stderr: String) {
            try runPrism(["predict", "--device", device, "--model", dir + "/one.safetensors", "--input", dir + "/x.npy"], environment: twoDevices)
        }
        let (shared2, alone2) = (try predict("all"), try predict("0"))
        #expect(shared2.status == 0 && alone2.status == 0, "\(shared2.stderr) \(alone2.stderr)")
        #expect(shared2.stdout == alone2.stdout && shared2.stdout.contains("x.npy[4]"), "\(shared2.stdout)")
        #expect(shared2.stderr.contains("predicting on devices #0 "), "\(shared2.stderr)")
    }
}
