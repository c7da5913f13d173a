import ArgumentParser
import Foundation
import Prism
import PrismCL

/// The default models of `prism-bench onnx`: the imported residual CNN and, when its fixture is
/// there, the transformer encoder classifier (both exported from PyTorch by the TorchScript exporter).
let defaultONNXBenchModels = [
    "Tests/Fixtures/onnx/residual_cnn_torchscript.onnx",
    "Tests/Fixtures/onnx/transformer_torchscript.onnx",
]

/// Model evaluations per second of imported ONNX models: one inference forward pass (no autograd
/// recording) of a batch of seeded random inputs, from the host array to the logits back on the host (wall clock, as the peer
/// script `Benchmarks/peers/onnxruntime_eval.py` times onnxruntime's `session.run`).
struct ONNXCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "onnx",
        abstract: "Evaluations/s of imported ONNX models at several batch sizes (peer: Benchmarks/peers/onnxruntime_eval.py --json, given with --peer).")
    @OptionGroup var options: CommonOptions

    @Option(name: .customLong("model"), help: "An ONNX file (repeatable; default: the fixtures' residual CNN and transformer, those present).")
    var models: [String] = []

    @Option(help: "Batch sizes, comma-separated.")
    var batches: String = "256,1024,4096"

    func run() throws {
        try runReportingErrors {
            let sizes = batches.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !sizes.isEmpty, sizes.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--batches: positive sizes, comma-separated") }
            let paths = models.isEmpty ? defaultONNXBenchModels.filter { FileManager.default.fileExists(atPath: $0) } : models
            guard !paths.isEmpty else { throw ValidationError("--model: no ONNX file given and no fixture found (run from the repository root)") }
            let bench = try options.makeBench()
            for path in paths { try benchONNX(bench, path: path, batches: sizes) }
            try options.finish(bench)
        }
    }
}

/// The case name of an ONNX file in results: `onnx_` and the file's name without `.onnx`
/// (the peer script names its rows the same way).
func onnxCaseName(_ path: String) -> String {
    let file = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
    return "onnx_" + file
}

/// Times `path` imported into Prism at each batch size: median and minimum wall-clock time of one
/// batch's evaluation (upload, forward pass, logits read back) over `repeats` runs after `warmup`.
func benchONNX(_ bench: Bench, path: String, batches: [Int]) throws {
    let name = onnxCaseName(path)
    guard bench.wants(name) else { return }
    let (model, _) = try Model.load(path: path, engine: bench.engine)
    let perExample = model.spec.inputShape.reduce(1, *)
    let flops = try forwardFLOPs(model.spec)
    say("\(name): input [batch] + \(model.spec.inputShape), \(model.parameterCount) parameters, \(String(format: "%.2f", flops / 1e6)) MFLOP per example")
    for batch in batches {
        guard let count = HostMemory.product([batch, perExample]) else { throw BenchError("\(name): batch \(batch) is too large") }
        var rng = SplitMix64(seed: 7)
        let host = (0..<count).map { _ in rng.nextFloat() * 2 - 1 }
        func evaluate() throws {
            let x = try Tensor(host, shape: [batch] + model.spec.inputShape, engine: bench.engine)
            _ = try bench.engine.noGrad { try model(x).toArray() }
        }
        for _ in 0..<bench.warmup { try evaluate() }
        var seconds: [Double] = []
        if bench.breakdown { EventLog.shared.start() }
        for _ in 0..<bench.repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            try evaluate()
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
        }
        if bench.breakdown {
            // Where the time goes: device time per kernel against the wall clock.
            let events = EventLog.shared.stopEvents()
            var kernels: [String: Double] = [:]
            var durations: [Double] = []
            for event in events {
                let ms = Double(try event.durationNanoseconds()) * 1e-6
                kernels[event.label ?? "?", default: 0] += ms
                durations.append(ms)
            }
            let runs = Double(seconds.count)
            say(String(format: "    device time %.1f ms per batch (wall %.1f ms)", kernels.values.reduce(0, +) / runs, 1e3 * seconds.reduce(0, +) / runs))
            for (label, total) in kernels.sorted(by: { $0.value > $1.value }).prefix(12) {
                say("    " + label.padding(toLength: 34, withPad: " ", startingAt: 0) + String(format: " %9.2f ms", total / runs))
            }
            // Every launch of one batch in order (the mean over the timed batches, whose launches repeat).
            if events.count % seconds.count == 0 {
                let perBatch = events.count / seconds.count
                say("    launches of one batch, in order:")
                for i in 0..<perBatch {
                    let mean = stride(from: i, to: events.count, by: perBatch).map { durations[$0] }.reduce(0, +) / runs
                    say("      " + (events[i].label ?? "?").padding(toLength: 34, withPad: " ", startingAt: 0) + String(format: " %9.3f ms", mean))
                }
            }
        }
        let (median, minimum) = medianAndMinimum(seconds)
        let gflops = Double(batch) * flops / (median * 1e9)
        bench.add(BenchResult(name: name, shape: "batch \(batch)", library: "prism", medianMs: median * 1e3, minMs: minimum * 1e3, runs: seconds.count,
                              gflops: gflops, gbps: nil, peakFraction: bench.peak.map { gflops / $0.gflops }))
        say(String(format: "    %.0f model evaluations/s", Double(batch) / median))
    }
}
