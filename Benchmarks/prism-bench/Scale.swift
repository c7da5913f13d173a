import ArgumentParser
import Foundation
import Prism

/// `prism-bench scale`: the same work on one device, on two devices of this machine (`--device all`
/// with `POCL_DEVICES="pthread pthread"` on PoCL) and on two mpirun ranks, each run end to end by
/// the `prism` built beside this tool (wall clock, median of `--repeats` after a warm-up run):
/// Kernel SHAP on test images of a trained cnn (evaluations/s, each rank's time in MPI, bytes per
/// example sent to rank 0) and an epoch of data-parallel cnn training (step time, all-reduce seconds
/// and bytes per step). On a machine whose devices share the same cores (two PoCL devices, two ranks
/// on two cores) this is a check of correctness and overhead, not of speed-up. Then a model of
/// explaining all 70,000 Fashion-MNIST images with Kernel SHAP over 1–64 devices, from the measured
/// per-device rate and communication volume, and of training's all-reduce on a 25 GB/s link.
struct ScaleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "One device vs two devices vs two mpirun ranks (Kernel SHAP on the cnn, an epoch of training), time in MPI, bytes moved, and a model of 1–64 devices.")

    @Option(help: "A trained cnn (safetensors) to explain.")
    var model: String

    @Option(help: "Test images explained per run (--index 0-(N-1), one per shard).")
    var images: Int = 4

    @Option(help: "Kernel SHAP coalitions per image.")
    var samples: Int = 2048

    @Option(help: "Background images (each coalition is evaluated on all of them).")
    var background: Int = 50

    @Option(help: "Training examples of the epoch (--limit).")
    var trainExamples: Int = 2048

    @Option(help: "Training batch.")
    var batch: Int = 256

    @Option(help: "Timed runs per setting, after one warm-up run.")
    var repeats: Int = 3

    @Option(help: "Folder for the runs' outputs (default: a temporary folder).")
    var work: String?

    @Option(help: "Write the measurements and the model as JSON here.")
    var json: String?

    func validate() throws {
        guard images >= 2, samples >= 64, background >= 1, trainExamples >= batch, batch >= 2, repeats >= 1 else {
            throw ValidationError("--images ≥ 2, --samples ≥ 64, --background ≥ 1, --batch ≥ 2, --train-examples ≥ --batch, --repeats ≥ 1")
        }
    }

    /// One setting: how `prism` is started.
    struct Setting {
        var name: String
        var launcher: [String]
        var device: String
        var environment: [String: String]
    }

    struct Measurement: Codable {
        var setting: String
        var task: String
        var medianSeconds: Double
        var seconds: [Double]
        var evaluations: Int?
        /// Explain: the explaining alone (prism's own "explained N examples in T"), median seconds.
        var explainSeconds: Double?
        /// Over `explainSeconds`.
        var evaluationsPerSecond: Double?
        /// Per rank: seconds in MPI over seconds of work (explain), or all-reduce seconds over the epoch (train).
        var communicationFraction: [Double]?
        var bytesPerExample: Double?
        var steps: Int?
        var stepSeconds: Double?
        var allreduceBytesPerStep: Double?
    }

    func run() throws {
        try runReportingErrors {
            let bin = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            let prism = bin.appendingPathComponent("prism").path
            guard FileManager.default.isExecutableFile(atPath: prism) else {
                throw ValidationError("\(prism): not built; run swift build -c release --product prism first")
            }
            let folder = work ?? NSTemporaryDirectory() + "prism-scale-\(getpid())"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            // Two ranks on PoCL share this machine's cores: each process gets half of them
            // (POCL_MAX_PTHREAD_COUNT), as an MPI job sets OMP_NUM_THREADS, so that they do not
            // oversubscribe the cores. Two PoCL devices of one process share PoCL's one pool of
            // worker threads (with the limit at half, both devices would run on half the cores).
            let half = "\(max(1, ProcessInfo.processInfo.activeProcessorCount / 2))"
            let mpi = ["OMPI_MCA_btl_vader_single_copy_mechanism": "none", "POCL_MAX_PTHREAD_COUNT": half]
            let settings = [
                Setting(name: "1 device", launcher: [], device: "0", environment: [:]),
                Setting(name: "2 devices", launcher: [], device: "all", environment: ["POCL_DEVICES": "pthread pthread"]),
                Setting(name: "2 ranks", launcher: ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2"], device: "0", environment: mpi),
            ]
            let cpuFlags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
                .first { $0.hasPrefix("flags") }.map { $0.split(separator: " ").filter { ["avx2", "avx512f", "fma"].contains($0) }.joined(separator: " ") } ?? "?"
            say("prism-bench scale: \(ProcessInfo.processInfo.activeProcessorCount) cores (\(cpuFlags)); \(images) images × \(samples) coalitions × \(background) background rows; an epoch of \(trainExamples) examples, batch \(batch)")
            var results: [Measurement] = []
            for setting in settings {
                results.append(try explain(setting, prism: prism, folder: folder))
                results.append(try train(setting, prism: prism, folder: folder))
            }
            for m in results {
                var line = String(format: "  %-9@ %-7@ median %7.2f s end to end", m.setting, m.task, m.medianSeconds)
                if let e = m.explainSeconds { line += String(format: ", %.2f s explaining", e) }
                if let rate = m.evaluationsPerSecond { line += String(format: "  %9.0f evaluations/s", rate) }
                if let step = m.stepSeconds { line += String(format: "  %.3f s per step", step) }
                if let f = m.communicationFraction { line += "  in MPI " + f.map { String(format: "%.1f%%", 100 * $0) }.joined(separator: "/") }
                if let b = m.bytesPerExample { line += String(format: "  %.0f bytes sent per example", b) }
                if let b = m.allreduceBytesPerStep { line += String(format: "  %.0f bytes all-reduced per step", b) }
                say(line)
            }
            let model = try scalingModel(results)
            for line in model { say(line) }
            if let json {
                struct Document: Codable { var date: String; var cpuFlags: String; var measurements: [Measurement]; var model: [String] }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                let data = try encoder.encode(Document(date: ISO8601DateFormatter().string(from: Date()), cpuFlags: cpuFlags, measurements: results, model: model))
                try data.write(to: URL(fileURLWithPath: json), options: .atomic)
                say("wrote \(json)")
            }
        }
    }

    /// Runs `arguments` under the setting's launcher `repeats + 1` times (the first a warm-up; `prepare`
    /// before each): the timed runs' wall-clock seconds and standard output.
    func timed(_ setting: Setting, prism: String, _ arguments: [String], prepare: () throws -> Void) throws -> [(seconds: Double, stdout: String)] {
        var runs: [(seconds: Double, stdout: String)] = []
        for attempt in 0...repeats {
            try prepare()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = setting.launcher + [prism] + arguments
            var environment = ProcessInfo.processInfo.environment
            for (k, v) in setting.environment { environment[k] = v }
            process.environment = environment
            let out = Pipe(), err = Pipe()
            process.standardOutput = out
            process.standardError = err
            let start = Date()
            try process.run()
            // Standard error is small; standard output is read after it (both are a few lines).
            let stderr = err.fileHandleForReading.readDataToEndOfFile()
            let stdout = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                let text = String(decoding: stderr, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
                throw ValidationError("\(setting.name): prism \(arguments.first ?? "") failed (status \(process.terminationStatus)): \(text)")
            }
            if attempt > 0 { runs.append((Date().timeIntervalSince(start), String(decoding: stdout, as: UTF8.self))) }
        }
        return runs
    }

    func explain(_ setting: Setting, prism: String, folder: String) throws -> Measurement {
        let out = folder + "/explain-" + setting.name.replacingOccurrences(of: " ", with: "-")
        let arguments = ["explain", "--device", setting.device, "--model", model, "--index", "0-\(images - 1)", "--shard-size", "1",
                         "--method", "kernel-shap", "--samples", "\(samples)", "--background", "\(background)", "--out", out, "--json", out + "/e.json"]
        let runs = try timed(setting, prism: prism, arguments) { try? FileManager.default.removeItem(atPath: out) }
        let seconds = runs.map(\.seconds)
        // The explaining alone, as prism reports it: "explained N examples in T (R examples/s)".
        let phase = runs.compactMap { run -> Double? in
            guard let line = run.stdout.split(separator: "\n").first(where: { $0.hasPrefix("explained ") }),
                  let open = line.lastIndex(of: "("), let rate = Double(line[line.index(after: open)...].split(separator: " ").first ?? "") else { return nil }
            return Double(images) / rate
        }
        let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/e.json"))) as? [String: Any] ?? [:]
        let methods = document["methods"] as? [[String: Any]] ?? []
        let evaluations = methods.compactMap { ($0["model_evaluations"] as? Int) ?? (($0["settings"] as? [String: Any])?["model_evaluations"] as? Int) }.reduce(0, +)
        let median = medianAndMinimum(seconds).median
        let phaseMedian = phase.count == runs.count ? medianAndMinimum(phase).median : median
        var m = Measurement(setting: setting.name, task: "explain", medianSeconds: median, seconds: seconds,
                            evaluations: evaluations > 0 ? evaluations : nil,
                            evaluationsPerSecond: evaluations > 0 ? Double(evaluations) / phaseMedian : nil)
        m.explainSeconds = phaseMedian
        if let ranks = document["ranks"] as? [[String: Any]] {
            m.communicationFraction = ranks.map { (($0["communication_seconds"] as? Double) ?? 0) / max(($0["seconds"] as? Double) ?? 0, 1e-9) }
            let sent = ranks.dropFirst().compactMap { $0["bytes_sent"] as? Int }.reduce(0, +)
            let examples = ranks.dropFirst().compactMap { $0["examples"] as? Int }.reduce(0, +)
            m.bytesPerExample = examples > 0 ? Double(sent) / Double(examples) : nil
        }
        return m
    }

    func train(_ setting: Setting, prism: String, folder: String) throws -> Measurement {
        let out = folder + "/train-" + setting.name.replacingOccurrences(of: " ", with: "-") + ".safetensors"
        let arguments = ["train", "--device", setting.device, "--arch", "cnn", "--epochs", "1", "--limit", "\(trainExamples)", "--batch", "\(batch)",
                         "--optimizer", "sgd", "--lr", "0.05", "--seed", "0", "--out", out]
        let seconds = try timed(setting, prism: prism, arguments) {
            for suffix in ["", ".ckpt", ".log.jsonl"] { try? FileManager.default.removeItem(atPath: out + suffix) }
        }.map(\.seconds)
        let log = try String(contentsOfFile: out + ".log.jsonl", encoding: .utf8)
        let epoch = try JSONSerialization.jsonObject(with: Data((log.split(separator: "\n").last ?? "").utf8)) as? [String: Any] ?? [:]
        let steps = (trainExamples + batch - 1) / batch
        var m = Measurement(setting: setting.name, task: "train", medianSeconds: medianAndMinimum(seconds).median, seconds: seconds, steps: steps)
        if let epochSeconds = epoch["seconds"] as? Double { m.stepSeconds = epochSeconds / Double(steps) }
        if let allreduce = epoch["allreduce_seconds"] as? Double, let epochSeconds = epoch["seconds"] as? Double {
            m.communicationFraction = [allreduce / max(epochSeconds, 1e-9)]
        }
        if let bytes = epoch["allreduce_bytes"] as? Int { m.allreduceBytesPerStep = Double(bytes) / Double(steps) }
        return m
    }

    /// Explaining 70,000 images with Kernel SHAP on 1–64 devices, from the one-device rate measured here
    /// (and a GPU roofline estimate), and training's all-reduce on a 25 GB/s link.
    func scalingModel(_ results: [Measurement]) throws -> [String] {
        var lines = ["model (not measured): all 70,000 Fashion-MNIST images with Kernel SHAP, \(samples) coalitions × \(background) background rows each"]
        guard let one = results.first(where: { $0.setting == "1 device" && $0.task == "explain" }), let rate = one.evaluationsPerSecond,
              let evaluations = one.evaluations else { return lines }
        let perImage = Double(evaluations) / Double(images)
        let total = 70_000 * perImage
        let bytes = results.first { $0.setting == "2 ranks" && $0.task == "explain" }?.bytesPerExample ?? 0
        // A GPU's rate from the cnn's forward FLOPs at an assumed 30% of an H100's 67 TFLOP/s FP32 (no tensor cores).
        let flops = try forwardFLOPs(try ModelSpec.cnn())
        let gpuRate = 0.3 * 67e12 / flops
        lines.append(String(format: "  %.0f evaluations per image, %.3g in all; this CPU device: %.0f evaluations/s (measured, the explaining alone); a GPU: %.3g evaluations/s (assumed: 30%% of an H100's 67 TFLOP/s FP32 at %.2f MFLOP per evaluation)",
                            perImage, total, rate, gpuRate, flops / 1e6))
        lines.append(String(format: "  rank 0 receives %.0f bytes per example (%.2f GB for all) and writes it to disk; at 25 GB/s that is %.2f s in all", bytes,
                            bytes * 70_000 / 1e9, bytes * 70_000 / 25e9))
        for devices in [1, 2, 4, 8, 16, 32, 64] {
            let d = Double(devices)
            let cpu = total / (rate * d), gpu = total / (gpuRate * d)
            // Rank 0 must take in every example's shard: its ingest rate needed at the GPU pace.
            lines.append(String(format: "  %2d devices: CPU devices like this one %@; GPUs %@ (rank 0 takes in %.2f MB/s)", devices,
                                formatSpan(cpu), formatSpan(gpu), bytes * 70_000 / gpu / 1e6))
        }
        if let step = results.first(where: { $0.setting == "1 device" && $0.task == "train" })?.stepSeconds,
           let reduce = results.first(where: { $0.setting == "2 ranks" && $0.task == "train" })?.allreduceBytesPerStep {
            lines.append(String(format: "training: %.0f bytes all-reduced per step; a ring all-reduce moves 2(D-1)/D of them per device: on a 25 GB/s link", reduce))
            for devices in [2, 8, 64] {
                let d = Double(devices)
                let time = 2 * (d - 1) / d * reduce / 25e9
                lines.append(String(format: "  %2d devices: %.3f ms per step, against %.1f ms of compute per step on one device like this one split %d ways", devices,
                                    1e3 * time, 1e3 * step / d, devices))
            }
        }
        return lines
    }
}

/// Seconds as "42 s", "12.5 min" or "3.4 h".
func formatSpan(_ seconds: Double) -> String {
    seconds < 120 ? String(format: "%.0f s", seconds) : seconds < 7200 ? String(format: "%.1f min", seconds / 60) : String(format: "%.1f h", seconds / 3600)
}
