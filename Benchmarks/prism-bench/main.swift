import ArgumentParser
import Foundation
import Prism
import PrismFiles
import PrismCL

/// The kernel benchmark: median device-event times, GFLOP/s and the share of the device's measured
/// peak, with peers (CLBlast) on the same device in the same run.
struct PrismBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prism-bench",
        abstract: "Benchmark Prism's OpenCL kernels against the device's measured peak and against peers.",
        subcommands: [PeakCommand.self, KernelsCommand.self, TrainCommand.self, AllCommand.self, AttentionCommand.self, ShapCommand.self, ScalingCommand.self, ScaleCommand.self, TuneCommand.self, ONNXCommand.self, BringUpCommand.self])
}

struct CommonOptions: ParsableArguments {
    @Option(help: "Device: index, type (gpu, cpu) or name substring (default: PRISM_DEVICE, else the best device).")
    var device: String?

    @Option(help: "Write the results as JSON to this file (atomically).")
    var json: String?

    @Option(name: .customLong("repeat"), help: "Timed runs per case (the median is reported).")
    var repeats: Int = 10

    @Option(help: "Untimed warm-up runs per case.")
    var warmup: Int = 2

    @Flag(help: "Also print each case's median time per kernel.")
    var breakdown = false

    @Option(help: "Run only the cases whose name contains this text (e.g. sgemm, conv2, backward).")
    var filter: String?

    @Option(help: "A peer's result file (Benchmarks/peers/*.py --json): its rows go into the matching cases' peer field (repeatable; the fastest peer is kept).")
    var peer: [String] = []

    @Option(name: .customLong("define"), help: "Override a kernel tunable: FILE.cl:NAME=VALUE (repeatable), e.g. conv2d.cl:CONV_FWD_NP=6.")
    var defines: [String] = []

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeat must be at least 1") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative") }
    }

    func makeBench(bufferPool: Bool = true) throws -> Bench {
        // Refuse an unwritable --json before any timing.
        if let json { _ = try OutputFile(path: json) }
        var settings = Settings.current
        if let device { settings.device = device }
        if !bufferPool { settings.bufferPoolEnabled = false }
        let engine = try Engine(settings: settings)
        for define in defines {
            let parts = define.split(separator: ":", maxSplits: 1).map(String.init)
            let assignment = parts.count == 2 ? parts[1].split(separator: "=", maxSplits: 1).map(String.init) : []
            guard parts.count == 2, parts[0].hasSuffix(".cl"), assignment.count == 2, !assignment[0].isEmpty else {
                throw ValidationError("--define: '\(define)' is not FILE.cl:NAME=VALUE")
            }
            engine.defineOverrides[parts[0], default: [:]][assignment[0]] = assignment[1]
        }
        say("device: \(engine.device.summary)")
        let bench = Bench(engine: engine, warmup: warmup, repeats: repeats)
        bench.breakdown = breakdown
        bench.filter = filter
        return bench
    }

    func finish(_ bench: Bench) throws {
        for path in peer { try bench.attachPeers(file: path) }
        guard let json else { return }
        let command = (["prism-bench"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try OutputFile(path: json).write(try encoder.encode(bench.report(command: command)))
        say("wrote \(json)")
    }
}

struct PeakCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "peak", abstract: "Measure the FMA peak and the copy bandwidth.")
    @OptionGroup var options: CommonOptions

    func run() throws {
        try runReportingErrors {
            let bench = try options.makeBench()
            bench.peak = try measurePeak(bench)
            try options.finish(bench)
        }
    }
}

struct KernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "SGEMM 1024³ and 2048³ (Prism, CLBlast as its peer), the reference network's convolutions, grouped convolutions, layernorm, softmax, pool, and int8 against float32 at the reference network's shapes.")
    @OptionGroup var options: CommonOptions

    @Option(help: "Batch size of the convolution cases.")
    var batch: Int = 256

    @Option(help: "Only cases whose group is listed: peak, sgemm, conv, grouped, layernorm, softmax, pool, int8 (comma-separated).")
    var only: String = "peak,sgemm,conv,grouped,layernorm,softmax,pool,int8"

    func run() throws {
        try runReportingErrors {
            let groups = Set(only.split(separator: ",").map(String.init))
            let unknown = groups.subtracting(["peak", "sgemm", "conv", "grouped", "layernorm", "softmax", "pool", "int8"])
            guard unknown.isEmpty else { throw ValidationError("--only: unknown group \(unknown.sorted().joined(separator: ", "))") }
            guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
            let bench = try options.makeBench()
            if groups.contains("peak") { bench.peak = try measurePeak(bench) }
            if groups.contains("sgemm") { try benchSGEMM(bench, sizes: [1024, 2048]) }
            if groups.contains("conv") { try benchConvolutions(bench, batch: batch) }
            if groups.contains("grouped") { try benchGrouped(bench, batch: batch) }
            if groups.contains("layernorm") { try benchLayerNorm(bench, rows: 8192, n: 768) }
            if groups.contains("softmax") { try benchSoftmax(bench, rows: 8192, c: 1000) }
            if groups.contains("pool") {
                try benchPool(bench, shape: [batch, 32, 26, 26])
                try benchPoolWindows(bench, batch: batch)
            }
            if groups.contains("int8") { try benchQuantized(bench, batch: batch) }
            try options.finish(bench)
        }
    }
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training steps of the reference CNN (and an MLP) on random data: images/s and device time per kernel.")
    @OptionGroup var options: CommonOptions

    @Option(help: "Batch size.")
    var batch: Int = 64

    @Option(help: "Architecture: cnn, mlp or vit.")
    var arch: String = "cnn"

    func run() throws {
        try runReportingErrors {
            guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
            guard ["cnn", "mlp", "vit"].contains(arch) else { throw ValidationError("--arch: cnn, mlp or vit") }
            let bench = try options.makeBench()
            try benchTrainStep(bench, architecture: arch, batch: batch, steps: options.repeats)
            try options.finish(bench)
        }
    }
}

struct AllCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all", abstract: "Every case: the peaks, the kernels (with peers), attention, the training steps and the SHAP evaluator, in one run.")
    @OptionGroup var options: CommonOptions

    func run() throws {
        try runReportingErrors {
            let bench = try options.makeBench()
            bench.peak = try measurePeak(bench)
            try benchSGEMM(bench, sizes: [1024, 2048])
            try benchConvolutions(bench, batch: 256)
            try benchLayerNorm(bench, rows: 8192, n: 768)
            try benchSoftmax(bench, rows: 8192, c: 1000)
            try benchPool(bench, shape: [256, 32, 26, 26])
            try benchPoolWindows(bench, batch: 256)
            try benchAttention(bench, shapes: [(8, 8, 256, 64), (8, 8, 1024, 64)])
            for arch in ["cnn", "mlp", "vit"] { try benchTrainStep(bench, architecture: arch, batch: 64, steps: options.repeats) }
            try benchShap(bench, chunkSizes: [256, 1024, 4096, 16384], exact20: false)
            try options.finish(bench)
        }
    }
}

struct AttentionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Fused attention forward and forward+backward against materialized attention (matmul + softmax), B8 H8 d64 at T 256 and 1024.")
    @OptionGroup var options: CommonOptions

    @Option(help: "Sequence lengths, comma-separated.")
    var lengths: String = "256,1024"

    func run() throws {
        try runReportingErrors {
            let ts = lengths.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !ts.isEmpty, ts.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--lengths: positive lengths, comma-separated") }
            let bench = try options.makeBench()
            bench.peak = try measurePeak(bench)
            try benchAttention(bench, shapes: ts.map { (8, 8, $0, 64) })
            try options.finish(bench)
        }
    }
}

struct ShapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shap",
        abstract: "The SHAP evaluator: Kernel SHAP on the cnn and an MLP, Exact at M = 16, the host evaluator, evaluations/s per chunk size.")
    @OptionGroup var options: CommonOptions

    @Option(help: "Chunk sizes (model rows per forward pass) of the evaluator sweep, comma-separated.")
    var chunks: String = "256,1024,4096,16384,65536"

    @Flag(help: "Also Exact Shapley values at M = 20 (2^20 coalitions × 100 rows).")
    var exact20 = false

    @Option(help: "Write the tabular problem (30-feature MLP, instance, background, a high-precision reference) to this folder for Benchmarks/peers/shap_tabular.py, and time Prism's estimators on it with their errors.")
    var problem: String?

    @Option(help: "Write the DeepSHAP problem (the cnn, 4 images, 50 background images, Prism's values) to this folder for Benchmarks/peers/deepshap_peers.py, and time Prism's DeepSHAP on it (all 10 outputs).")
    var deepshap: String?

    @Option(help: "Seeds per estimator in the --problem cases.")
    var seeds: Int = 5

    @Option(help: "Error against model evaluations of every Shapley estimator on the trained cnn (--model) and the 30-feature MLP, written to this folder (curves.json, resumable) with the problems for Benchmarks/peers/shap_curves.py.")
    var curves: String?

    @Option(help: "--curves: a cnn trained on Fashion-MNIST (prism train --arch cnn).")
    var model: String?

    @Option(help: "--curves: budgets as powers of two, e.g. 9-15.")
    var budgets: String = "9-15"

    @Option(help: "--curves: seeds per budget and instance.")
    var curveSeeds: Int = 2

    @Option(help: "--curves: instances per problem.")
    var curveInstances: Int = 2

    @Option(help: "--curves: estimators, comma-separated.")
    var estimators: String = "kernel-shap,leverage-shap,permutation-shap,sampling-shap"

    @Option(help: "--curves: coalitions of the Kernel SHAP reference.")
    var referenceBudget: Int = 65_536

    @Flag(help: "--curves: make the reference with Kernel SHAP stratified by background row (the budget per row; a smaller error for the same evaluations).")
    var stratifiedReference = false

    @Flag(help: "--curves: only draw the SVGs and the equal-error table from the folder's curves.json and curves-peers.json.")
    var plot = false

    @Option(help: "Permutations of the --problem reference.")
    var referencePermutations: Int = 4096

    func run() throws {
        try runReportingErrors {
            let sizes = chunks.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !sizes.isEmpty, sizes.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--chunks: positive sizes, comma-separated") }
            if let curves, plot { return try plotShapCurves(directory: curves) }
            let bench = try options.makeBench()
            if let curves {
                guard let model else { throw ValidationError("--curves needs --model (a cnn trained on Fashion-MNIST)") }
                let ends = budgets.split(separator: "-").compactMap { Int($0) }
                guard ends.count == 2 || ends.count == 1, let lo = ends.first, let hi = ends.last, lo >= 1, lo <= hi, hi <= 24 else {
                    throw ValidationError("--budgets: powers of two as LO-HI, e.g. 9-15")
                }
                let names = estimators.split(separator: ",").map(String.init)
                guard !names.isEmpty, names.allSatisfy({ n in curveEstimators.contains { $0.0 == n } }) else {
                    throw ValidationError("--estimators: some of \(curveEstimators.map(\.0).joined(separator: ", "))")
                }
                guard curveSeeds >= 1, curveInstances >= 1, referenceBudget >= 1024 else {
                    throw ValidationError("--curve-seeds and --curve-instances must be at least 1, --reference-budget at least 1024")
                }
                try benchShapCurves(bench, directory: curves, modelPath: model, budgets: (lo...hi).map { 1 << $0 }, seeds: curveSeeds,
                                    instances: curveInstances, estimators: names, referenceBudget: referenceBudget,
                                    stratifiedReference: stratifiedReference)
                return try plotShapCurves(directory: curves)
            }
            bench.peak = try measurePeak(bench)
            if let deepshap {
                try benchDeepShap(bench, directory: deepshap)
            } else if let problem {
                guard seeds >= 1, referencePermutations >= 2 else { throw ValidationError("--seeds ≥ 1 and --reference-permutations ≥ 2") }
                try benchShapTabular(bench, directory: problem, seeds: seeds, referencePermutations: referencePermutations)
            } else {
                try benchShap(bench, chunkSizes: sizes, exact20: exact20)
            }
            try options.finish(bench)
        }
    }
}

/// Turns a library error into one line on stderr and exit status 1.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ValidationError {
        throw error
    } catch {
        FileHandle.standardError.write(Data("prism-bench: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

PrismBench.main()
