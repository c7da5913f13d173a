import Foundation
import Prism
import PrismFiles
import PrismCL
import PrismExplain
import PrismReference

/// Floating-point operations of one forward pass of `spec` for one example: each op's `flops`
/// (multiply-adds × 2 of convolutions, Linear layers and transformer blocks; element-wise ops not counted).
func forwardFLOPs(_ spec: ModelSpec) throws -> Double {
    try spec.analysis().nodes.reduce(0) { $0 + $1.info.flops }
}

/// The SHAP evaluator: Kernel SHAP explanations of the reference CNN (49 superpixels, 50 background
/// images) and of a 30-feature MLP (100 background rows), Exact Shapley values of the MLP at M = 16
/// (and 20 with `exact20`), the same coalitions through the CPU reference evaluator (`HostGame`), and
/// the evaluator's model evaluations per second over chunk sizes. Timed from the host (an explanation
/// is many kernels and host work); GFLOP/s counts the model's forward FLOPs × evaluations.
func benchShap(_ bench: Bench, chunkSizes: [Int], exact20: Bool, only: String? = nil) throws {
    let engine = bench.engine
    /// Whether case `name` runs: `--filter`, and `only` (a prefix) when given.
    func wants(_ name: String) -> Bool { bench.wants(name) && (only.map { name.hasPrefix($0) } ?? true) }
    func record(_ name: String, shape: String, seconds: [Double], evaluations: Int, flopsPerEvaluation: Double) {
        let (median, minimum) = medianAndMinimum(seconds)
        let gflops = Double(evaluations) * flopsPerEvaluation / (median * 1e9)
        bench.add(BenchResult(name: name, shape: shape, library: "prism", medianMs: median * 1e3, minMs: minimum * 1e3, runs: seconds.count,
                              gflops: gflops, gbps: nil, peakFraction: bench.peak.map { gflops / $0.gflops }))
        say(String(format: "    %.0f model evaluations/s", Double(evaluations) / median))
    }
    func timed(_ body: () throws -> Explanation) throws -> (seconds: [Double], evaluations: Int) {
        for _ in 0..<min(bench.warmup, 1) { _ = try body() }
        var seconds: [Double] = [], evaluations = 0
        for _ in 0..<max(1, min(bench.repeats, 5)) {
            let start = DispatchTime.now().uptimeNanoseconds
            evaluations = try body().modelEvaluations
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
        }
        return (seconds, evaluations)
    }

    // Image: the cnn, one test-like image, 50 background images.
    let cnnSpec = try ModelSpec.cnn()
    let cnn = try Model(spec: cnnSpec, seed: 1, engine: engine)
    let cnnFLOPs = try forwardFLOPs(cnnSpec)
    var rng = SplitMix64(seed: 11)
    let image = (0..<784).map { _ in rng.nextFloat() }
    let images = (0..<(50 * 784)).map { _ in rng.nextFloat() }
    let grid = try FeatureGroups.grid(channels: 1, height: 28, width: 28, cell: 4)
    if wants("shap_kernel_cnn") {
        let t = try timed { try KernelShap(seed: 1).explain(try DeviceGame(model: cnn, instance: image, background: images, groups: grid)) }
        record("shap_kernel_cnn", shape: "M 49, N 50, budget 2146", seconds: t.seconds, evaluations: t.evaluations, flopsPerEvaluation: cnnFLOPs)
    }
    // The evaluator alone over chunk sizes: 2048 random coalitions of the image.
    if wants("shap_chunk") {
        let coalitions = (0..<(2048 * 49)).map { _ in UInt8(rng.next() & 1) }
        for rows in chunkSizes {
            let game = try DeviceGame(model: cnn, instance: image, background: images, groups: grid, rowsPerChunk: rows)
            _ = try game.values(coalitions: Array(coalitions[0..<(64 * 49)]), count: 64)
            var seconds: [Double] = []
            if bench.breakdown { EventLog.shared.start() }
            for _ in 0..<max(1, min(bench.repeats, 3)) {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try game.values(coalitions: coalitions, count: 2048)
                seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
            }
            if bench.breakdown {
                let kernels = try EventLog.shared.stop()
                let runs = Double(seconds.count)
                say(String(format: "    device time %.1f ms per 2048 coalitions (wall %.1f ms)", kernels.values.reduce(0, +) / runs,
                           1e3 * seconds.reduce(0, +) / runs))
                for (label, total) in kernels.sorted(by: { $0.value > $1.value }).prefix(16) {
                    say("    " + label.padding(toLength: 34, withPad: " ", startingAt: 0) + String(format: " %9.1f ms", total / runs))
                }
            }
            record("shap_chunk", shape: "\(rows) rows per chunk (cnn, 2048 coalitions × 50 rows)", seconds: seconds, evaluations: 2048 * 50,
                   flopsPerEvaluation: cnnFLOPs)
        }
    }

    // Tabular: a 30-feature MLP (64, 32 hidden), 100 background rows.
    let mlpSpec = try ModelSpec.mlp(inputShape: [30], hidden: [64, 32], classes: 2)
    let mlp = try Model(spec: mlpSpec, seed: 2, engine: engine)
    let mlpFLOPs = try forwardFLOPs(mlpSpec)
    let row = (0..<30).map { _ in 2 * rng.nextFloat() - 1 }
    let rows = (0..<(100 * 30)).map { _ in 2 * rng.nextFloat() - 1 }
    if wants("shap_kernel_mlp") {
        let t = try timed { try KernelShap(budget: 2048, seed: 1).explain(try DeviceGame(model: mlp, instance: row, background: rows)) }
        record("shap_kernel_mlp", shape: "M 30, N 100, budget 2048", seconds: t.seconds, evaluations: t.evaluations, flopsPerEvaluation: mlpFLOPs)
    }
    if wants("shap_kernel_mlp_host") {
        // The CPU reference evaluator: the same model run by PrismReference on the host.
        let state = try mlp.stateDict()
        let host = try HostGame(instance: row, background: rows, groups: .elements(30), outputCount: 2) { x, n in
            try hostMLP(x, rows: n, state: state, layers: [1, 3, 5])
        }
        let t = try timed { try KernelShap(budget: 2048, seed: 1).explain(host) }
        record("shap_kernel_mlp_host", shape: "M 30, N 100, budget 2048 (host)", seconds: t.seconds, evaluations: t.evaluations, flopsPerEvaluation: mlpFLOPs)
    }
    for m in exact20 ? [16, 20] : [16] where wants("shap_exact_mlp_\(m)") {
        let groups = try FeatureGroups(elementFeature: (0..<30).map { Int32($0 < m ? $0 : -1) }, featureCount: m)
        let t = try timed { try ExactShapley().explain(try DeviceGame(model: mlp, instance: row, background: rows, groups: groups)) }
        record("shap_exact_mlp_\(m)", shape: "M \(m), N 100, 2^\(m) coalitions", seconds: t.seconds, evaluations: t.evaluations, flopsPerEvaluation: mlpFLOPs)
    }
}

/// A ReLU MLP on the host from a state dict, through `PrismReference.linear` (Double): Linear layers
/// at the given indices, ReLU between them.
func hostMLP(_ x: [Float], rows: Int, state: [String: HostTensor], layers: [Int]) throws -> [Float] {
    var h = x.map(Double.init)
    for (position, index) in layers.enumerated() {
        guard let w = state["\(index).weight"], let b = state["\(index).bias"] else { throw BenchError("host MLP: no layer \(index)") }
        h = Reference.linear(x: h, weight: w.values.map(Double.init), bias: b.values.map(Double.init), rows: rows,
                             inFeatures: w.shape[1], outFeatures: w.shape[0], relu: position + 1 < layers.count)
    }
    return h.map(Float.init)
}

/// The tabular problem of the SHAP peers (`Benchmarks/peers/shap_tabular.py`): the 30-feature MLP
/// (64, 32 hidden, 2 classes, seeded), one instance and 100 background rows, written to `directory`
/// as `mlp.safetensors` and `problem.json` together with a high-precision reference (antithetic
/// permutation SHAP over `referencePermutations` permutations, its standard errors alongside). Then
/// Prism's estimators on it, each over `seeds` seeds: median seconds per explanation and mean
/// relative error ‖φ − φ_ref‖ / ‖φ_ref‖ (all features and classes) against the reference.
func benchShapTabular(_ bench: Bench, directory: String, seeds: Int, referencePermutations: Int) throws {
    let engine = bench.engine
    let spec = try ModelSpec.mlp(inputShape: [30], hidden: [64, 32], classes: 2)
    let mlp = try Model(spec: spec, seed: 2, engine: engine)
    var rng = SplitMix64(seed: 11)
    let row = (0..<30).map { _ in 2 * rng.nextFloat() - 1 }
    let rows = (0..<(100 * 30)).map { _ in 2 * rng.nextFloat() - 1 }
    let flops = try forwardFLOPs(spec)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try mlp.save(path: (directory as NSString).appendingPathComponent("mlp.safetensors"))
    func game() throws -> DeviceGame { try DeviceGame(model: mlp, instance: row, background: rows) }

    let perPermutation = PermutationShap.coalitionsPerPermutation(features: 30)
    let start = DispatchTime.now().uptimeNanoseconds
    let reference = try PermutationShap(budget: 2 + referencePermutations * perPermutation, seed: 987_654_321,
                                        permutationsPerRound: 256).explain(try game())
    let referenceSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    let norm = reference.values.reduce(0) { $0 + $1 * $1 }.squareRoot()
    say(String(format: "    reference: %d permutations, %d model evaluations in %.1f s; largest standard error %.2e (%.3f%% of ‖φ‖)",
               referencePermutations, reference.modelEvaluations, referenceSeconds,
               reference.standardErrors?.max() ?? 0, 100 * (reference.standardErrors.map { $0.reduce(0) { $0 + $1 * $1 }.squareRoot() } ?? 0) / norm))
    let problem: [String: Any] = [
        "description": "prism-bench shap --problem: 30-feature MLP (64, 32 hidden, 2 classes), one instance, 100 background rows",
        "instance": row.map(Double.init), "background": stride(from: 0, to: rows.count, by: 30).map { rows[$0..<($0 + 30)].map(Double.init) },
        "reference": reference.values, "reference_standard_errors": reference.standardErrors ?? [],
        "reference_method": "permutation-shap, \(referencePermutations) antithetic permutations",
        "base_value": reference.baseValues ?? [], "output": reference.outputs ?? [], "features": 30, "classes": 2,
    ]
    let data = try JSONSerialization.data(withJSONObject: problem, options: [.prettyPrinted, .sortedKeys])
    try OutputFile(path: (directory as NSString).appendingPathComponent("problem.json")).write(data)
    say("    wrote \(directory)/mlp.safetensors and problem.json")

    func relativeError(_ e: Explanation) -> Double {
        zip(e.values, reference.values).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() / norm
    }
    let cases: [(String, String, (UInt64) -> ShapleyEstimator)] = [
        ("shap_tabular_kernel", "M 30, N 100, budget 2048", { KernelShap(budget: 2048, seed: $0) }),
        ("shap_tabular_kernel_500", "M 30, N 100, budget 500", { KernelShap(budget: 500, seed: $0) }),
        ("shap_tabular_permutation", "M 30, N 100, 8 permutations (max_evals 500)", { PermutationShap(seed: $0) }),
        ("shap_tabular_permutation_32", "M 30, N 100, 32 permutations (max_evals 2000)", { PermutationShap(budget: 2 + 32 * perPermutation, seed: $0) }),
    ]
    for (name, shape, make) in cases where bench.wants(name) {
        _ = try make(0).explain(try game())  // warm-up: programs built
        var seconds: [Double] = [], errors: [Double] = [], evaluations = 0
        for seed in 1...UInt64(max(seeds, 1)) {
            let g = try game()
            let t0 = DispatchTime.now().uptimeNanoseconds
            let e = try make(seed).explain(g)
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
            errors.append(relativeError(e))
            evaluations = e.modelEvaluations
        }
        let (median, minimum) = medianAndMinimum(seconds)
        let gflops = Double(evaluations) * flops / (median * 1e9)
        bench.add(BenchResult(name: name, shape: shape, library: "prism", medianMs: median * 1e3, minMs: minimum * 1e3, runs: seconds.count,
                              gflops: gflops, gbps: nil, peakFraction: bench.peak.map { gflops / $0.gflops },
                              relError: errors.reduce(0, +) / Double(errors.count)))
        say(String(format: "    %d model evaluations per explanation; error over %d seeds: mean %.2f%%, max %.2f%%", evaluations, errors.count,
                   100 * errors.reduce(0, +) / Double(errors.count), 100 * (errors.max() ?? 0)))
    }
}

/// DeepSHAP on the cnn (seed 1): 4 seeded images explained for all 10 outputs against 50 seeded
/// background images, wall clock per explanation of the 4 (case `deepshap_cnn`). Writes the model
/// (`model.safetensors`), the images and Prism's values (`problem.safetensors`: `instances`,
/// `background`, `values` [4, 784, 10]) to `directory`, for `Benchmarks/peers/deepshap_peers.py`,
/// whose rows (shap's DeepExplainer, Captum's DeepLiftShap) `--peer` attaches.
func benchDeepShap(_ bench: Bench, directory: String) throws {
    let engine = bench.engine
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let spec = try ModelSpec.cnn()
    let cnn = try Model(spec: spec, seed: 1, engine: engine)
    var rng = SplitMix64(seed: 12)
    let instances = (0..<(4 * 784)).map { _ in rng.nextFloat() }
    let background = (0..<(50 * 784)).map { _ in rng.nextFloat() }
    let method = DeepLift(model: cnn, references: .background(background))
    let targets = AttributionTargets.classes(Array(0..<10))
    var explanation = try method.explain(instances: instances, targets: targets)
    for _ in 1..<max(1, bench.warmup) { explanation = try method.explain(instances: instances, targets: targets) }
    var seconds: [Double] = []
    for _ in 0..<bench.repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        explanation = try method.explain(instances: instances, targets: targets)
        seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
    }
    guard case let .double(gap)? = explanation.settings["summation_gap"], gap <= 1e-4 * max(1, explanation.outputs!.map(abs).max()!) else {
        throw BenchError("deepshap_cnn: the values do not sum to f(x) − E f(background) (\(explanation.settings["summation_gap"].map { "\($0)" } ?? "none"))")
    }
    try cnn.save(path: directory + "/model.safetensors")
    try SafetensorsFile(tensors: [
        "instances": HostTensor(shape: [4, 1, 28, 28], values: instances),
        "background": HostTensor(shape: [50, 1, 28, 28], values: background),
        "values": HostTensor(shape: [4, 784, 10], values: explanation.values.map(Float.init)),
    ]).write(path: directory + "/problem.safetensors")
    let (median, minimum) = medianAndMinimum(seconds)
    bench.add(BenchResult(name: "deepshap_cnn", shape: "N 4, references 50, outputs 10", library: "prism", medianMs: median * 1e3,
                          minMs: minimum * 1e3, runs: seconds.count, gflops: nil, gbps: nil, peakFraction: nil))
    say(String(format: "    %.1f explanations/s (all 10 outputs), summation gap %.1e", 4 / median, gap))
}
