import ArgumentParser
import Foundation
import Prism
import PrismExplain

/// One method's result on the plan's examples.
struct MethodRun {
    var method: ExplainMethod
    var explanation: Explanation
    /// Per example, the explanation's output slot holding the explained output.
    var outputSlot: [Int]
    /// Per example: model evaluations and seconds (batched methods: the batch's share).
    var evaluations: [Int]
    var seconds: [Double]
    /// Per example, with `metrics`.
    var curves: [DeletionInsertion.Curves]?
    /// Per example, with `metrics`: the faithfulness correlation (nil where either side is constant).
    var faithfulness: [Double?]?
    /// Per example, with `metrics` and `sensitivitySamples` (see `sensitivityComputed`): the max-sensitivity.
    var sensitivity: [Double?]?
    /// With `randomization`: the cascade's stages, top layer first.
    var randomization: [ParameterRandomization.Stage]?
    /// The features' pixels when they are neither the plan's groups nor input elements (patches).
    var featureGroups: FeatureGroups?
}

/// What an explain run computed: the model's outputs, the explained output of each example and
/// every method's result. The writers read only this and the plan.
struct ExplainResults {
    /// The work one device did in a whole-data-set run (`--device all`).
    struct DeviceWork: Codable, Equatable {
        var device: String
        var examples: Int
        var shards: Int
    }
    /// f(x) per example and output.
    var outputs: [[Float]]
    /// Per example, the largest output (the predicted class).
    var predicted: [Int]
    /// Per example, the output every method explains.
    var targets: [Int]
    var runs: [MethodRun]
    /// Whole-data-set runs: the examples each device explained (shards record theirs).
    var devices: [DeviceWork]? = nil
    /// Whole-data-set runs under mpirun: what each rank of this job did.
    var ranks: [RankWork]? = nil

    /// One rank's work in a whole-data-set run under mpirun (this job's, not a resumed run's earlier jobs').
    struct RankWork: Codable, Equatable {
        var rank: Int
        var host: String
        var device: String
        var examples: Int
        var shards: Int
        /// Wall-clock seconds from the shared list of missing shards to the rank's last shard sent (rank 0: received).
        var seconds: Double
        /// Of those, seconds in MPI calls and waits on other ranks.
        var communicationSeconds: Double
        var bytesSent: Int
        var bytesReceived: Int

        enum CodingKeys: String, CodingKey {
            case rank, host, device, examples, shards, seconds
            case communicationSeconds = "communication_seconds", bytesSent = "bytes_sent", bytesReceived = "bytes_received"
        }
    }
}

extension ExplainPlan {
    /// Runs every method on the examples.
    /// - Parameter progress: called as a method works through the examples (method, done, total).
    func run(progress: (ExplainMethod, Int, Int) -> Void = { _, _, _ in }) throws -> ExplainResults {
        let x = instances.values
        let c = model.spec.classCount
        let flat: [Float]
        if extraInputs.isEmpty {
            flat = try engine.noGrad { try model(try Tensor(x, shape: [instances.count] + inputShape, engine: engine)).toArray() }
        } else {
            // Each example with its own extra inputs (an attention mask).
            flat = try (0..<instances.count).flatMap { i in
                try model.withInputs(of: i, extraInputs) {
                    try engine.noGrad { try model(try Tensor(Array(x[(i * elementCount)..<((i + 1) * elementCount)]), shape: [1] + inputShape, engine: engine)).toArray() }
                }
            }
        }
        let outputs = (0..<instances.count).map { Array(flat[($0 * c)..<(($0 + 1) * c)]) }
        let predicted = outputs.map { o in o.indices.max(by: { o[$0] < o[$1] })! }
        let targets: [Int] = switch target {
        case .predicted: predicted
        case let .output(o): [Int](repeating: o, count: instances.count)
        }
        let baseline = try methods.contains(where: \.usesBaseline) || metrics ? baselineRows() : []
        var runs: [MethodRun] = []
        for method in methods {
            progress(method, 0, instances.count)
            var result = try run(method, targets: targets, baseline: baseline, progress: progress)
            if metrics && method.attributesInput {
                result.curves = try curves(result, targets: targets, baseline: baseline)
                result.faithfulness = try faithfulness(result, targets: targets)
                if sensitivityComputed(for: method) { result.sensitivity = try sensitivity(result, targets: targets, baseline: baseline) }
            }
            if randomization {
                // SHAP hides features as the main run did: with the --shap-baseline rows when given.
                let references = method.isShapley ? try options.shapBaseline.map { try baselineRows(kind: $0) } : nil
                let check = ParameterRandomization(model: model, seed: options.seed &+ 1) {
                    try attribution(method, on: $0, baseline: baseline, shapReferences: references)
                }
                result.randomization = try check.run(instances: x, targets: .perInstance(targets))
            }
            runs.append(result)
            progress(method, instances.count, instances.count)
        }
        return ExplainResults(outputs: outputs, predicted: predicted, targets: targets, runs: runs)
    }

    /// `method` as an attribution method on `model` (the plan's model, or a randomized copy);
    /// `shapReferences`: the `--shap-baseline` rows of the examples, for the SHAP methods.
    func attribution(_ method: ExplainMethod, on model: Model, baseline: [Float], shapReferences: [Float]? = nil) throws -> AttributionMethod {
        switch method.kind {
        case let .attribution(build):
            if let token = baselineToken {
                // Token ids: the method differentiates at the embedding's output, summed per token.
                return try EmbeddingAttribution(model: model, baselineToken: token) { differentiable, reference in
                    var c = context(on: model, baseline: reference)
                    c.custom = differentiable
                    return try build(c)
                }
            }
            return try build(context(on: model, baseline: baseline))
        case .shapley:
            return ShapleyAttribution(model: model, estimator: try shapleyEstimator(method), background: background,
                                      backgroundWeights: backgroundWeights, groups: groups, references: shapReferences,
                                      rowsPerChunk: options.rowsPerChunk)
        }
    }

    /// The SHAP estimator of `method` with the budget, seed and stopping rule of the options.
    func shapleyEstimator(_ method: ExplainMethod) throws -> ShapleyEstimator {
        guard let shapley = method.shapley else { throw ValidationError("\(method.name) is not a SHAP method") }
        var estimator = shapley.estimator(budget: options.samples, seed: options.seed)
        if var k = estimator as? KernelShap, let numFeatures = options.numFeatures { k.numFeatures = numFeatures; estimator = k }
        if let threshold = options.stopThreshold {
            let rule = StoppingRule(threshold: threshold)
            if var k = estimator as? KernelShap { k.stopping = rule; estimator = k }
            if var l = estimator as? LeverageShap { l.stopping = rule; estimator = l }
            if var p = estimator as? PermutationShap { p.stopping = rule; estimator = p }
            if var s = estimator as? SamplingShap { s.stopping = rule; estimator = s }
        }
        if options.stratify {
            guard let seeded = estimator as? any SeededShapleyEstimator else {
                throw ValidationError("--stratify: \(method.name) does not sample; there is nothing to stratify")
            }
            return StratifiedShap(seeded)
        }
        return estimator
    }

    /// Runs one method on the examples for their target outputs.
    func run(_ method: ExplainMethod, targets: [Int], baseline: [Float], progress: (ExplainMethod, Int, Int) -> Void) throws -> MethodRun {
        let n = instances.count, x = instances.values
        if method.isShapley {
            let estimator = try shapleyEstimator(method)
            var parts: [Explanation] = []
            var evaluations: [Int] = [], seconds: [Double] = []
            var coalitionsPerDevice = [Int](repeating: 0, count: 1 + coalitionDevices.count)
            // Examples with extra inputs of their own (an attention mask) run one by one.
            let batch = extraInputs.isEmpty ? options.instancesPerBatch : 1
            // --shap-baseline: hidden features from one reference row per example instead of the background.
            let references = try options.shapBaseline.map { try baselineRows(kind: $0) }
            for first in stride(from: 0, to: n, by: batch) {
                progress(method, first, n)
                let count = min(batch, n - first)
                let hidden = references.map { Array($0[(first * elementCount)..<((first + 1) * elementCount)]) } ?? background
                let part = try model.withInputs(of: first, extraInputs) {
                    let games = try ([model] + coalitionDevices.map(\.model)).map { copy in
                        try DeviceGame(model: copy, instances: Array(x[(first * elementCount)..<((first + count) * elementCount)]),
                                       background: hidden, backgroundWeights: references == nil ? backgroundWeights : nil, groups: groups,
                                       rowsPerChunk: options.rowsPerChunk)
                    }
                    guard games.count > 1 else { return try estimator.explain(games[0], instances: count) }
                    // Every example's coalitions split among the devices (extra inputs stay on the first: refused there).
                    let split = try SplitGame(games)
                    let explanation = try estimator.explain(split, instances: count)
                    for (j, c) in split.coalitionsPerDevice.enumerated() { coalitionsPerDevice[j] += c }
                    return explanation
                }
                parts.append(part)
                // Instances sharing a batch share its cost equally.
                evaluations += [Int](repeating: part.modelEvaluations / count, count: count)
                seconds += [Double](repeating: part.seconds / Double(count), count: count)
            }
            var explanation = try Explanation(stacking: parts)
            explanation.featureNames = featureNames
            if let kind = options.shapBaseline {
                explanation.settings["reference"] = .string(kind.rawValue + (kind == .mean ? " of the background" : ""))
            }
            if let superpixel, segmentation == nil { explanation.settings["superpixel"] = .int(superpixel) }
            if !coalitionDevices.isEmpty {
                // Which device evaluated how many coalitions (of all examples).
                explanation.settings["devices"] = .string(([deviceLabel] + coalitionDevices.map(\.label)).joined(separator: "; "))
                explanation.settings["coalitions_per_device"] = .ints(coalitionsPerDevice)
            }
            return MethodRun(method: method, explanation: explanation, outputSlot: targets,
                             evaluations: evaluations, seconds: seconds)
        }
        var explanation: Explanation
        if extraInputs.isEmpty {
            explanation = try attribution(method, on: model, baseline: baseline).explain(instances: x, targets: .perInstance(targets))
        } else {
            // Each example with its own extra inputs (an attention mask).
            let d = elementCount
            explanation = try Explanation(stacking: (0..<n).map { i in
                try model.withInputs(of: i, extraInputs) {
                    try attribution(method, on: model, baseline: baseline.isEmpty ? [] : Array(baseline[(i * d)..<((i + 1) * d)]))
                        .explain(instances: Array(x[(i * d)..<((i + 1) * d)]), targets: .perInstance([targets[i]]))
                }
            })
        }
        if !method.attributesInput, let layer = explanation.settings["layer"], case let .string(name) = layer {
            // Positions of the layer: (row, column) of a [C, H, W] output, tokens of [T, D], units of [D].
            var shape: [Int] = []
            if case let .ints(v) = explanation.settings["layer_shape"] { shape = v }
            explanation.featureNames = (0..<explanation.featureCount).map { j in
                switch shape.count {
                case 3: "\(name) (\(j / shape[2]), \(j % shape[2]))"
                case 2: "\(name) token \(j)"
                default: "\(name)[\(j)]"
                }
            }
        } else if explanation.featureCount == groups.featureCount {
            explanation.featureNames = featureNames
        }
        if method.usesBaseline { explanation.settings["baseline"] = .string(baselineToken.map { "token \($0)" } ?? options.baseline.rawValue) }
        var result = MethodRun(method: method, explanation: explanation, outputSlot: [Int](repeating: 0, count: n),
                               evaluations: [Int](repeating: explanation.modelEvaluations / max(n, 1), count: n),
                               seconds: [Double](repeating: explanation.seconds / Double(max(n, 1)), count: n))
        result.featureGroups = try method.featureGroups?(model, options)
        return result
    }

    /// Deletion and insertion curves of each example's explanation, removing features (superpixels or columns)
    /// most relevant first and replacing them by the baseline.
    func curves(_ run: MethodRun, targets: [Int], baseline: [Float]) throws -> [DeletionInsertion.Curves] {
        let d = elementCount
        return try (0..<instances.count).map { i in
            let metric = DeletionInsertion(model: DifferentiableModel(model), groups: run.featureGroups ?? groups, steps: 20,
                                           baseline: .values(Array(baseline[(i * d)..<((i + 1) * d)])),
                                           seed: options.seed, rowsPerChunk: options.rowsPerChunk)
            return try metric.curves(explanation: run.explanation, instance: i, output: run.outputSlot[i], target: targets[i],
                                     instances: instances.values)
        }
    }

    /// The faithfulness correlation of each example's explanation (Quantus's defaults: 100 runs of
    /// subsets of 224 elements set to the example's minimum; at most a quarter of the elements).
    /// Attributions of feature groups are spread evenly over their elements.
    func faithfulness(_ run: MethodRun, targets: [Int]) throws -> [Double?] {
        let d = elementCount, e = run.explanation
        let metric = FaithfulnessCorrelation(model: DifferentiableModel(model), runs: 100, subsetSize: min(224, max(1, d / 4)),
                                             seed: options.seed, rowsPerChunk: options.rowsPerChunk)
        let featureGroups = e.featureCount == d ? nil : (run.featureGroups ?? groups)
        var sizes = [Int](repeating: 0, count: featureGroups?.featureCount ?? 0)
        for f in featureGroups?.elementFeature ?? [] where f >= 0 { sizes[Int(f)] += 1 }
        return try (0..<instances.count).map { i in
            let phi = e.attributions(instance: i, output: run.outputSlot[i])
            var elements = phi
            if let featureGroups {
                elements = featureGroups.elementFeature.map { f in f < 0 || sizes[Int(f)] == 0 ? 0 : phi[Int(f)] / Double(sizes[Int(f)]) }
            }
            return try metric.score(instance: Array(instances.values[(i * d)..<((i + 1) * d)]), attributions: elements, target: targets[i],
                                    index: firstInstance + i)
        }
    }

    /// Samples of max-sensitivity under --metrics: Quantus's default is 200 re-explanations per
    /// example; 10 keep the gradient methods' metrics within the demo's time.
    static let defaultSensitivitySamples = 10

    /// Whether max-sensitivity is computed for `method`: with samples, for every method, a SHAP
    /// estimator only where asked (`shapleySensitivity`) and over the background's game (a
    /// `--shap-baseline` reference is made from each example, not from its noisy copies).
    func sensitivityComputed(for method: ExplainMethod) -> Bool {
        sensitivitySamples > 0 && (!method.isShapley || (shapleySensitivity && options.shapBaseline == nil))
    }

    /// The max-sensitivity of each example's explanation: `sensitivitySamples` copies with uniform
    /// noise in [−0.2, 0.2] (Quantus's default radius) explained again, each against the example's
    /// own baseline row (a SHAP estimator: the same game over the background, the same seed).
    func sensitivity(_ run: MethodRun, targets: [Int], baseline: [Float]) throws -> [Double?] {
        let d = elementCount, n = instances.count, samples = sensitivitySamples
        let e = run.explanation
        let phi = (0..<n).flatMap { e.attributions(instance: $0, output: run.outputSlot[$0]) }
        let repeated = baseline.isEmpty ? baseline : (0..<samples).flatMap { _ in baseline }
        let method = try attribution(run.method, on: model, baseline: repeated)
        var metric = MaxSensitivity(elementCount: d, samples: samples, seed: options.seed) { x, classes in
            let again = try method.explain(instances: x, targets: .perInstance(classes))
            return (0..<again.instanceCount).flatMap { again.attributions(instance: $0, output: 0) }
        }
        metric.firstInstance = firstInstance
        return try metric.scores(instances: instances.values, attributions: phi, targets: targets)
    }

    /// The name of feature `j` of an explanation: a SHAP feature, or an input element (pixel or column).
    func featureName(_ j: Int, of e: Explanation) -> String {
        if let names = e.featureNames, j < names.count { return names[j] }
        if isImage {
            let (h, w) = (inputShape[1], inputShape[2])
            let channel = inputShape[0] > 1 ? "channel \(j / (h * w)) " : ""
            return "\(channel)pixel (\(j % (h * w) / w), \(j % w))"
        }
        return j < featureNames.count ? featureNames[j] : "feature \(j)"
    }
}
