import Foundation
import Prism
import PrismCL
import PrismExplain
import PrismFiles
import PrismReport

/// `prism-bench shap --curves DIR --model cnn.safetensors`: error against model evaluations for each
/// of Prism's Shapley estimators on two problems — the trained cnn (49 superpixels of 4×4 pixels, 50
/// background training images, test images 0, 1, …) and the 30-feature MLP of `--problem` (100
/// background rows) — at budgets 2^9…2^15 coalitions, over instances × seeds. Error is
/// ‖φ − φ_ref‖ / ‖φ_ref‖ over all features and classes against Kernel SHAP at 2^16 coalitions (its
/// own relative standard error recorded). Every finished point is written at once (`curves.json`,
/// atomically), and a run started again skips the points already there, so an interrupted run
/// resumes. The problems (models, instances, background, references) are written beside it for
/// `Benchmarks/peers/shap_curves.py`, whose points (`curves-peers.json`) `--plot` draws together with
/// Prism's (`shap-curves-image.svg`, `shap-curves-tabular.svg`) and compares at equal error.
struct CurvePoint: Codable, Equatable {
    var problem: String
    var library: String
    var estimator: String
    var instance: Int
    var seed: Int
    /// The budget asked for (coalitions; the estimator's own convention).
    var budget: Int
    /// Model evaluations it spent (coalitions × background rows, ∅ and all included).
    var evaluations: Int
    var seconds: Double
    var error: Double

    var key: String { "\(problem)/\(library)/\(estimator)/\(instance)/\(seed)/\(budget)" }
}

struct CurveProblem: Codable, Equatable {
    var name: String
    var description: String
    var features: Int
    var classes: Int
    var instances: Int
    var backgroundRows: Int
    var referenceBudget: Int
    /// ‖standard errors‖ / ‖φ_ref‖ of each instance's reference.
    var referenceRelativeError: [Double]
}

struct CurvesFile: Codable {
    var device: String
    var started: String
    var problems: [CurveProblem]
    var points: [CurvePoint]
}

/// The smallest budget each curve estimator accepts for M features (smaller budgets are skipped).
func curveMinimumBudget(_ name: String, features m: Int) -> Int {
    if name.hasSuffix("permutation-shap") { return PermutationShap.minimumBudget(features: m) }
    if name.hasSuffix("sampling-shap") { return SamplingShap.minimumBudget(features: m) }
    return KernelShap.minimumBudget(features: m)
}

/// The Shapley estimators the curves compare, by method name.
let curveEstimators: [(String, @Sendable (Int, UInt64) -> ShapleyEstimator)] = [
    ("kernel-shap", { KernelShap(budget: $0, seed: $1) }),
    ("leverage-shap", { LeverageShap(budget: $0, seed: $1) }),
    ("permutation-shap", { PermutationShap(budget: $0, seed: $1) }),
    ("sampling-shap", { SamplingShap(budget: $0, seed: $1) }),
    // Stratified by background row: the budget per row, so the same model evaluations as above.
    ("stratified-kernel-shap", { StratifiedShap(KernelShap(budget: $0, seed: $1)) }),
    ("stratified-leverage-shap", { StratifiedShap(LeverageShap(budget: $0, seed: $1)) }),
    ("stratified-permutation-shap", { StratifiedShap(PermutationShap(budget: $0, seed: $1)) }),
]

func benchShapCurves(_ bench: Bench, directory: String, modelPath: String, budgets: [Int], seeds: Int, instances: Int,
                     estimators: [String], referenceBudget: Int, stratifiedReference: Bool = false) throws {
    let engine = bench.engine
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let path = (directory as NSString).appendingPathComponent("curves.json")
    let device = "\(engine.device.name) (\(engine.device.platform))"

    // The problems: the trained cnn on Fashion-MNIST, and the seeded 30-feature MLP.
    let (cnn, _) = try Model.load(path: modelPath, engine: engine)
    guard cnn.spec.inputShape == [1, 28, 28], cnn.spec.classCount == 10 else {
        throw BenchError("--curves: \(modelPath) takes \(cnn.spec.inputShape) to \(cnn.spec.classCount) outputs; it needs a Fashion-MNIST model ([1, 28, 28] → 10)")
    }
    let train = try ImageDataset.loadMNISTFormat(directory: ImageDataset.fashionMNISTDirectory, split: .train)
    let test = try ImageDataset.loadMNISTFormat(directory: ImageDataset.fashionMNISTDirectory, split: .test, limit: instances)
    var rng = SplitMix64(seed: 50)
    var order = Array(0..<train.count)
    for i in 0..<50 { order.swapAt(i, i + Int(rng.next() % UInt64(train.count - i))) }
    let imageBackground = order[0..<50].flatMap { train.pixels[($0 * 784)..<(($0 + 1) * 784)] }
    let grid = try FeatureGroups.grid(channels: 1, height: 28, width: 28, cell: 4)

    let mlp = try Model(spec: try ModelSpec.mlp(inputShape: [30], hidden: [64, 32], classes: 2), seed: 2, engine: engine)
    var tabularRng = SplitMix64(seed: 11)
    let rows = (0..<((instances + 100) * 30)).map { _ in 2 * tabularRng.nextFloat() - 1 }
    let tabularInstances = Array(rows[0..<(instances * 30)]), tabularBackground = Array(rows[(instances * 30)...])

    struct Problem {
        var name: String, description: String, features: Int, classes: Int, width: Int, shape: [Int]
        var instances: [Float], background: [Float], game: (Int) throws -> DeviceGame
    }
    let problems = [
        Problem(name: "image", description: "the cnn of \((modelPath as NSString).lastPathComponent), test images 0–\(instances - 1), 49 superpixels of 4×4, 50 background training images",
                features: 49, classes: 10, width: 784, shape: [1, 28, 28], instances: Array(test.pixels[0..<(instances * 784)]),
                background: imageBackground) { i in
            try DeviceGame(model: cnn, instance: Array(test.pixels[(i * 784)..<((i + 1) * 784)]), background: imageBackground, groups: grid)
        },
        Problem(name: "tabular", description: "30-feature MLP (64, 32 hidden, 2 classes, seed 2), seeded rows in [−1, 1), 100 background rows",
                features: 30, classes: 2, width: 30, shape: [30], instances: tabularInstances, background: tabularBackground) { i in
            try DeviceGame(model: mlp, instance: Array(tabularInstances[(i * 30)..<((i + 1) * 30)]), background: tabularBackground)
        },
    ]

    var file: CurvesFile
    if FileManager.default.fileExists(atPath: path) {
        file = try JSONDecoder().decode(CurvesFile.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        say("    resuming \(path): \(file.points.count) points done")
    } else {
        file = CurvesFile(device: device, started: ISO8601DateFormatter().string(from: Date()), problems: [], points: [])
    }
    func save() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try OutputFile(path: path).write(try encoder.encode(file))
    }

    for problem in problems {
        // The reference of each instance: written once, reused on resume (refused if the problem changed).
        let referencePath = (directory as NSString).appendingPathComponent("\(problem.name).safetensors")
        var references: [[Double]] = []
        let referenceName = stratifiedReference ? "stratified-kernel-shap" : "kernel-shap"
        let stated = CurveProblem(name: problem.name, description: problem.description + (stratifiedReference ? "; reference stratified by background row" : ""), features: problem.features, classes: problem.classes,
                                  instances: instances, backgroundRows: problem.background.count / problem.width,
                                  referenceBudget: referenceBudget, referenceRelativeError: [])
        if let known = file.problems.first(where: { $0.name == problem.name }) {
            var same = known
            same.referenceRelativeError = []
            guard same == stated else {
                throw BenchError("--curves: \(path) holds the \(problem.name) problem with other settings (\(known.description), \(known.instances) instances, reference budget \(known.referenceBudget)); use another folder")
            }
            let saved = try SafetensorsFile.read(path: referencePath)
            guard let values = saved.tensors["reference"]?.values else { throw BenchError("\(referencePath): no 'reference' tensor") }
            let per = problem.features * problem.classes
            references = (0..<instances).map { i in values[(i * per)..<((i + 1) * per)].map(Double.init) }
        } else {
            var relative: [Double] = []
            for i in 0..<instances {
                let start = DispatchTime.now().uptimeNanoseconds
                let reference = KernelShap(budget: referenceBudget, seed: 4242)
                let estimator: ShapleyEstimator = stratifiedReference ? StratifiedShap(reference) : reference
                let e = try estimator.explain(try problem.game(i))
                let norm = e.values.reduce(0) { $0 + $1 * $1 }.squareRoot()
                relative.append((e.standardErrors ?? []).reduce(0) { $0 + $1 * $1 }.squareRoot() / norm)
                references.append(e.values)
                say(String(format: "    %@ reference %d: %@ at %d coalitions, %d evaluations, %.1f s, relative standard error %.3f%%",
                           problem.name, i, referenceName, referenceBudget, e.modelEvaluations, Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9,
                           100 * relative.last!))
            }
            var tensors = [
                "instances": HostTensor(shape: [instances] + problem.shape, values: problem.instances),
                "background": HostTensor(shape: [problem.background.count / problem.width] + problem.shape, values: problem.background),
                "reference": HostTensor(shape: [instances, problem.features, problem.classes], values: references.flatMap { $0.map(Float.init) }),
            ]
            if problem.name == "image" { tensors["groups"] = HostTensor(shape: [784], values: grid.elementFeature.map(Float.init)) }
            try SafetensorsFile(tensors: tensors, metadata: ["prism.curves": problem.description]).write(path: referencePath)
            try (problem.name == "image" ? cnn : mlp).save(path: (directory as NSString).appendingPathComponent("\(problem.name)-model.safetensors"))
            var recorded = stated
            recorded.referenceRelativeError = relative
            file.problems.append(recorded)
            try save()
        }

        let done = Set(file.points.map(\.key))
        for (name, make) in curveEstimators where estimators.contains(name) {
            for budget in budgets {
                let minimum = curveMinimumBudget(name, features: problem.features)
                guard budget >= minimum else {
                    say("    \(problem.name) \(name) budget \(budget): skipped, below its minimum of \(minimum) for \(problem.features) features")
                    continue
                }
                for i in 0..<instances {
                    for seed in 1...seeds {
                        var point = CurvePoint(problem: problem.name, library: "prism", estimator: name, instance: i, seed: seed, budget: budget,
                                               evaluations: 0, seconds: 0, error: 0)
                        if done.contains(point.key) { continue }
                        let game = try problem.game(i)
                        let start = DispatchTime.now().uptimeNanoseconds
                        let e = try make(budget, UInt64(seed)).explain(game)
                        point.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
                        point.evaluations = e.modelEvaluations
                        let reference = references[i]
                        let norm = reference.reduce(0) { $0 + $1 * $1 }.squareRoot()
                        point.error = zip(e.values, reference).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() / norm
                        file.points.append(point)
                        try save()
                        say(String(format: "    %@ %@ budget %d instance %d seed %d: %d evaluations, %.2f s, error %.2f%%", problem.name, name, budget,
                                   i, seed, point.evaluations, point.seconds, 100 * point.error))
                    }
                }
            }
        }
    }
}

/// Mean error, mean evaluations and median seconds per (problem, library, estimator, budget) of
/// `points`, in budget order.
struct CurveSummary {
    var problem: String, library: String, estimator: String, budget: Int
    var evaluations: Double, seconds: Double, error: Double, count: Int
    var label: String { library == "prism" ? "Prism \(estimator)" : "\(library) \(estimator)" }
}

func summarizeCurves(_ points: [CurvePoint]) -> [CurveSummary] {
    let groups = Dictionary(grouping: points) { "\($0.problem)/\($0.library)/\($0.estimator)/\($0.budget)" }
    return groups.values.map { g in
        let first = g[0]
        return CurveSummary(problem: first.problem, library: first.library, estimator: first.estimator, budget: first.budget,
                            evaluations: g.reduce(0) { $0 + Double($1.evaluations) } / Double(g.count),
                            seconds: medianAndMinimum(g.map(\.seconds)).median, error: g.reduce(0) { $0 + $1.error } / Double(g.count),
                            count: g.count)
    }.sorted { ($0.problem, $0.library, $0.estimator, $0.evaluations) < ($1.problem, $1.library, $1.estimator, $1.evaluations) }
}

/// Where a curve (points in evaluation order) first reaches `error`: evaluations and seconds
/// interpolated linearly in log–log between the two budgets around it; nil when it never does.
func curveCrossing(_ curve: [CurveSummary], error target: Double) -> (evaluations: Double, seconds: Double)? {
    if let first = curve.first, first.error <= target { return (first.evaluations, first.seconds) }
    for (a, b) in zip(curve, curve.dropFirst()) where a.error > target && b.error <= target {
        let t = (log(a.error) - log(target)) / (log(a.error) - log(b.error))
        func between(_ x: Double, _ y: Double) -> Double { exp(log(x) + t * (log(y) - log(x))) }
        return (between(a.evaluations, b.evaluations), between(a.seconds, b.seconds))
    }
    return nil
}

/// `--plot`: the SVGs and the equal-error table from `curves.json` and `curves-peers.json` (if there).
func plotShapCurves(directory: String) throws {
    func read(_ name: String) throws -> CurvesFile? {
        let path = (directory as NSString).appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try JSONDecoder().decode(CurvesFile.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
    guard let prism = try read("curves.json") else { throw BenchError("--plot: no \(directory)/curves.json (run --curves first)") }
    let peers = try read("curves-peers.json")
    let summary = summarizeCurves(prism.points + (peers?.points ?? []))
    for problem in ["image", "tabular"] {
        let rows = summary.filter { $0.problem == problem }
        guard !rows.isEmpty else { continue }
        let curves = Dictionary(grouping: rows, by: \.label).sorted { $0.key < $1.key }
        let series = curves.map { label, c in
            LinePlot.Series(name: label, x: c.map { log2($0.evaluations) }, y: c.map { log10(100 * $0.error) }, dashed: !label.hasPrefix("Prism"))
        }
        let plot = LinePlot(series: series, title: "Shapley estimators: \(problem) (\(prism.device))",
                            xLabel: "log₂ model evaluations", yLabel: "log₁₀ relative error (%)")
        let out = (directory as NSString).appendingPathComponent("shap-curves-\(problem).svg")
        try OutputFile(path: out).write(Data(try plot.svg().utf8))
        say("wrote \(out)")
        say("  \(problem): estimator, budget, mean evaluations, median seconds, mean error")
        for r in rows {
            say("    " + r.label.padding(toLength: 32, withPad: " ", startingAt: 0)
                + String(format: " %7d %11.0f %9.3f s %7.2f%%  (%d runs)", r.budget, r.evaluations, r.seconds, 100 * r.error, r.count))
        }
        // Equal error: shap KernelExplainer at its default budget against each Prism curve.
        let defaultBudget = 2 * (problem == "image" ? 49 : 30) + 2048
        guard let shap = rows.first(where: { $0.estimator == "kernel" && $0.library.hasPrefix("shap") && $0.budget == defaultBudget }) else { continue }
        say(String(format: "  shap KernelExplainer at its default budget (%d): error %.2f%%, %.0f evaluations, %.2f s", defaultBudget, 100 * shap.error,
                   shap.evaluations, shap.seconds))
        for (label, c) in curves where label.hasPrefix("Prism") {
            if let hit = curveCrossing(c, error: shap.error) {
                say("    " + label.padding(toLength: 26, withPad: " ", startingAt: 0)
                    + String(format: " reaches it at %.0f evaluations (%.2f× shap's) in %.3f s (%.1f× faster)",
                             hit.evaluations, hit.evaluations / shap.evaluations, hit.seconds, shap.seconds / hit.seconds))
            } else {
                say("    \(label) does not reach it within its budgets")
            }
        }
    }
}
