import Foundation
import Prism
import PrismFormats
import Testing

/// `mpirun -np 2 prism …` (Open MPI from Debian's openmpi-bin, loaded by prism at run time): a
/// whole-data-set explain shared between two ranks equals one process's run; a rank lost part way
/// leaves the shards written, and the same command resumes the rest; a stuck rank is reported, not
/// waited for; training splits every batch between the ranks and ends where one process does.
/// Every run is under `timeout`, so a hang fails the test instead of stalling CI.
@Suite(.serialized) struct MPICLITests {
    static let csv = TrainCLITests.fixtures + "/tabular.csv"

    /// `timeout 300 mpirun -np 2 prism ARGUMENTS`, as root in a container (Open MPI 4.1 needs
    /// --allow-run-as-root there, and the vader transport's single-copy mechanism off).
    func mpirun(_ arguments: [String], ranks: Int = 2, environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        var env = ["OMPI_MCA_btl_vader_single_copy_mechanism": "none"]
        for (k, v) in environment { env[k] = v }
        return try runProcess(URL(fileURLWithPath: "/usr/bin/timeout"),
                              ["300", "mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)", prismExecutable().path] + arguments,
                              environment: env)
    }

    func shardFiles(_ out: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: out + "/shards").filter { $0.hasPrefix("shard-") }.sorted()
    }

    /// Kernel SHAP and Integrated Gradients on four test images: two ranks share the shards, each
    /// explains half, and every array equals the one-process run's bit for bit.
    @Test func explainOnTwoRanksEqualsOneProcess() throws {
        let dir = try scratchDirectory("mpi-explain")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/m.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", TrainCLITests.images, "--arch", "mlp", "--hidden", "8",
                                  "--epochs", "1", "--limit", "64", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        func arguments(_ out: String) -> [String] {
            ["explain", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--index", "0-3", "--shard-size", "1",
             "--method", "kernel-shap,ig", "--samples", "200", "--background", "4", "--superpixel", "7", "--steps", "16",
             "--out", out, "--json", out + "/e.json"]
        }
        let shared = try mpirun(arguments(dir + "/two"))
        #expect(shared.status == 0, "\(shared.stderr)")
        #expect(shared.stdout.contains("sharing the shards among the 2 ranks of the mpirun job"), "\(shared.stdout)")
        // Only rank 0 prints: each line once.
        #expect(shared.stdout.components(separatedBy: "wrote \(dir)/two/e.json").count == 2, "\(shared.stdout)")
        let alone = try runPrism(arguments(dir + "/one"))
        #expect(alone.status == 0, "\(alone.stderr)")
        let (a, b) = (try ExplainDocumentReader(path: dir + "/two/e.json"), try ExplainDocumentReader(path: dir + "/one/e.json"))
        for method in ["kernel-shap", "ig"] {
            #expect(a.values(method) == b.values(method) && !a.values(method).isEmpty, "\(method)")
            #expect(a.array("base_values", of: method)?.values == b.array("base_values", of: method)?.values, "\(method)")
        }
        #expect(a.shape("kernel-shap") == [4, 16, 10] && a.shape("ig").first == 4, "\(a.shape("kernel-shap")) \(a.shape("ig"))")
        let devices = try #require(a.json["devices"] as? [[String: Any]])
        let names = devices.compactMap { $0["device"] as? String }, examples = devices.compactMap { $0["examples"] as? Int }
        #expect(names.count == 2 && names[0].hasPrefix("rank 0 on ") && names[1].hasPrefix("rank 1 on "), "\(names)")
        #expect(examples == [2, 2], "\(examples)")
        // Each rank's work in this job: its examples, its time in MPI, the bytes it sent to rank 0.
        let ranks = try #require(a.json["ranks"] as? [[String: Any]])
        #expect(ranks.compactMap { $0["rank"] as? Int } == [0, 1] && ranks.compactMap { $0["examples"] as? Int } == [2, 2], "\(ranks)")
        #expect((ranks[1]["bytes_sent"] as? Int ?? 0) > 1000 && (ranks[0]["bytes_received"] as? Int ?? 0) >= (ranks[1]["bytes_sent"] as? Int ?? 0),
                "\(ranks)")
        #expect(ranks.allSatisfy { ($0["communication_seconds"] as? Double ?? -1) >= 0 && ($0["seconds"] as? Double ?? 0) > 0 }, "\(ranks)")
    }

    /// A rank that leaves part way (the test-only PRISM_MPI_FAULT hook: rank 1 exits after two
    /// examples) ends the job with a non-zero status naming the rank; the shards written stay, and
    /// the same command resumes only the missing ones and writes what one process writes.
    @Test func lostRankResumes() throws {
        let dir = try scratchDirectory("mpi-lost")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/t.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", Self.csv, "--label", "species", "--arch", "mlp",
                                  "--hidden", "8", "--epochs", "3", "--batch", "16", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        func arguments(_ out: String) -> [String] {
            ["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model, "--index", "0-9", "--shard-size", "1",
             "--method", "kernel-shap,ig", "--background", "10", "--out", out, "--json", out + "/e.json"]
        }
        let lost = try mpirun(arguments(dir + "/two"), environment: ["PRISM_MPI_FAULT": "1:2"])
        #expect(lost.status != 0)
        #expect(lost.stderr.contains("rank 1 on ") && lost.stderr.contains("leaving the job after 2 examples"), "\(lost.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/two/e.json"))
        let kept = try shardFiles(dir + "/two")
        // Rank 1 took shards 1, 3, 5, 7, 9 and left before its third.
        #expect(kept.count < 10 && !kept.contains("shard-00005.json") && !kept.contains("shard-00009.json"), "\(kept)")

        let resumed = try mpirun(arguments(dir + "/two"))
        #expect(resumed.status == 0, "\(resumed.stderr)")
        if !kept.isEmpty {
            #expect(resumed.stdout.contains("resuming: \(kept.count) of 10 examples done"), "\(resumed.stdout)")
        }
        #expect(resumed.stdout.contains("explained \(10 - kept.count) examples"), "\(resumed.stdout)")
        let alone = try runPrism(arguments(dir + "/one"))
        #expect(alone.status == 0, "\(alone.stderr)")
        let (a, b) = (try ExplainDocumentReader(path: dir + "/two/e.json"), try ExplainDocumentReader(path: dir + "/one/e.json"))
        for method in ["kernel-shap", "ig"] {
            #expect(a.values(method) == b.values(method) && a.shape(method).prefix(2) == [10, 4], "\(method) \(a.shape(method))")
        }

        // --input FILE.npy with --index all: the file's examples, shared between the ranks; the
        // same as one process explaining rows 2-5 of the file.
        try ExplainInputsCLITests().writeNpy((0..<24).map { Float($0 % 7) * 0.75 + 0.5 }, shape: [6, 4], path: dir + "/x.npy")
        func inputs(_ out: String, _ index: String) -> [String] {
            ["explain", "--device", "cpu", "--model", model, "--input", dir + "/x.npy", "--index", index, "--shard-size", "2",
             "--method", "ig", "--out", out, "--json", out + "/e.json"]
        }
        let fileShared = try mpirun(inputs(dir + "/in2", "all"))
        #expect(fileShared.status == 0, "\(fileShared.stderr)")
        let fileAlone = try runPrism(inputs(dir + "/in1", "2-5"))
        #expect(fileAlone.status == 0, "\(fileAlone.stderr)")
        let (c, d) = (try ExplainDocumentReader(path: dir + "/in2/e.json"), try ExplainDocumentReader(path: dir + "/in1/e.json"))
        let per = c.values("ig").count / 6
        #expect(c.shape("ig").first == 6 && d.shape("ig").first == 4 && Array(c.values("ig")[(2 * per)..<(6 * per)]) == d.values("ig"))
        #expect((c.json["devices"] as? [[String: Any]])?.compactMap { $0["examples"] as? Int } == [4, 2])

        // A stuck rank (the hook's stall: rank 1 stops answering after one example) is reported by
        // rank 0 once PRISM_MPI_TIMEOUT has passed without a word, and the job ends.
        let start = Date()
        let stuck = try mpirun(arguments(dir + "/stuck"), environment: ["PRISM_MPI_FAULT": "1:1:stall", "PRISM_MPI_TIMEOUT": "3"])
        #expect(stuck.status != 0 && Date().timeIntervalSince(start) < 120)
        #expect(stuck.stderr.contains("rank 0 on ") && stuck.stderr.contains("no word from rank 1 on ") && stuck.stderr.contains("for 3 s"),
                "\(stuck.stderr)")
        #expect(try shardFiles(dir + "/stuck").count >= 1)

        // Under mpirun only explain's whole-data-set runs and train run across ranks.
        let predict = try mpirun(["predict", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model, "--index", "0"])
        #expect(predict.status != 0)
        #expect(predict.stderr.components(separatedBy: "prism predict: under mpirun only explain and train run across processes").count == 2,
                "\(predict.stderr)")
        let listed = try mpirun(["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model, "--index", "0,1",
                                 "--method", "ig"])
        #expect(listed.status != 0 && listed.stderr.contains("explain shares the shards of a whole-data-set run among the ranks"), "\(listed.stderr)")
    }

    /// 24 steps (3 epochs of 8 batches of 16) on two ranks, each taking half of every batch: the
    /// weights equal one process's within 1e-5 with SGD and 1e-4 with Adam; the log says each rank
    /// trained on half; only rank 0 writes; a run resumed from rank 0's checkpoint on two ranks ends
    /// where the uninterrupted one does.
    @Test func trainOnTwoRanksEqualsOneProcess() throws {
        let dir = try scratchDirectory("mpi-train")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func train(_ optimizer: String, epochs: Int, out: String, resume: Bool = false) -> [String] {
            ["train", "--device", "cpu", "--data", Self.csv, "--label", "species", "--epochs", "\(epochs)", "--out", out]
                + (resume ? ["--resume"] : ["--arch", "mlp", "--hidden", "8", "--batch", "16", "--optimizer", optimizer, "--lr", "0.05", "--seed", "4"])
        }
        for (optimizer, tolerance) in [("sgd", Float(1e-5)), ("adam", Float(1e-4))] {
            let two = dir + "/two-\(optimizer).safetensors", one = dir + "/one-\(optimizer).safetensors"
            let shared = try mpirun(train(optimizer, epochs: 3, out: two))
            #expect(shared.status == 0, "\(shared.stderr)")
            #expect(shared.stderr.contains("2 processes of an mpirun job"), "\(shared.stderr)")
            #expect(shared.stdout.contains("examples per rank: rank 0 180, rank 1 180"), "\(shared.stdout)")
            let alone = try runPrism(train(optimizer, epochs: 3, out: one))
            #expect(alone.status == 0, "\(alone.stderr)")
            let a = try SafetensorsFile.read(path: two), b = try SafetensorsFile.read(path: one)
            #expect(Set(a.tensors.keys) == Set(b.tensors.keys) && !a.tensors.isEmpty)
            for (name, tensor) in a.tensors {
                let other = try #require(b.tensors[name])
                let difference = zip(tensor.values, other.values).map { abs($0 - $1) }.max() ?? 0
                #expect(tensor.shape == other.shape && difference <= tolerance, "\(optimizer) \(name): two ranks vs one differ by \(difference)")
            }
            let log = try String(contentsOfFile: two + ".log.jsonl", encoding: .utf8).split(separator: "\n")
            #expect(log.count == 3)
            for line in log {
                let epoch = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                #expect(epoch["examples_per_rank"] as? [Int] == [60, 60], "\(line)")
            }
        }
        // Two epochs, then resumed to three from rank 0's checkpoint: the file the uninterrupted run wrote.
        let part = dir + "/part.safetensors"
        let first = try mpirun(train("adam", epochs: 2, out: part))
        #expect(first.status == 0, "\(first.stderr)")
        let rest = try mpirun(train("adam", epochs: 3, out: part, resume: true))
        #expect(rest.status == 0, "\(rest.stderr)")
        let resumed = try SafetensorsFile.read(path: part), whole = try SafetensorsFile.read(path: dir + "/two-adam.safetensors")
        for (name, tensor) in whole.tensors { #expect(resumed.tensors[name]?.values == tensor.values, "\(name)") }
    }
}
