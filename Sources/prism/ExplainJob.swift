import ArgumentParser
import Foundation
import Prism
import PrismExplain
import PrismReport

/// One `prism explain` (or `prism demo`) run: test examples of a model explained by one or more
/// methods, each explaining the example's predicted class, then written as JSON, NumPy arrays,
/// pictures and a report.
struct ExplainJob {
    let engine: Engine
    let loaded: LoadedModel
    let modelPath: String
    let test: LabeledData
    let sourceName: String
    /// Test-set indices.
    let rows: [Int]
    let methods: [ExplainMethodName]
    let options: MethodOptions
    /// Background rows for the SHAP methods (and the mean baseline).
    let background: [Float]
    /// Weights of the background rows (k-means cluster sizes), nil for equal weights.
    var backgroundWeights: [Float]? = nil
    let backgroundNote: String
    /// Features of the SHAP methods and LIME, and the units of the deletion/insertion metric.
    let groups: FeatureGroups
    let featureNames: [String]
    /// Images: the superpixel side (the features unless `segmentation` is set; occlusion's default window).
    let superpixel: Int?
    /// Images: the segmentation map file the features come from, if any.
    var segmentation: String?
    /// Add the deletion/insertion curves of each explanation.
    var metrics = false
    /// Add the cascading model-parameter randomization check of each method.
    var randomization = false
    /// Features printed per example.
    var top = 5
    /// Print a line per example and method (the predicted class and the largest attributions).
    var printsExamples = true
    /// Called while a method works through the examples (method, examples done, examples in all).
    var onProgress: (ExplainMethodName, Int, Int) -> Void = { _, _, _ in }

    /// One method's result.
    struct MethodRun {
        var method: ExplainMethodName
        var explanation: Explanation
        /// Per example, the explanation's output slot holding the predicted class.
        var outputSlot: [Int]
        /// Per example: model evaluations and seconds (batched methods: the batch's share).
        var evaluations: [Int]
        var seconds: [Double]
        /// Per example, with `metrics`.
        var curves: [DeletionInsertion.Curves]?
        /// With `randomization`: the cascade's stages, top layer first.
        var randomization: [ParameterRandomization.Stage]?
        /// The features' pixels when they are neither the job's groups nor input elements (patches).
        var featureGroups: FeatureGroups?
    }

    var model: Sequential { loaded.model }
    var inputShape: [Int] { model.spec.inputShape }
    var isImage: Bool { inputShape.count == 3 }
    var elementCount: Int { inputShape.reduce(1, *) }

    /// The examples' values, [rows] + input shape, row-major.
    func instances() throws -> [Float] {
        try rows.flatMap { try test.example($0).features }
    }

    /// The model's outputs [rows][classes] and each example's predicted class (the first largest output).
    func predictions(_ x: [Float]) throws -> (outputs: [[Float]], predicted: [Int]) {
        let c = model.spec.classCount
        let flat = try engine.noGrad { try model(try Tensor(x, shape: [rows.count] + inputShape, engine: engine)).toArray() }
        let outputs = rows.indices.map { Array(flat[($0 * c)..<(($0 + 1) * c)]) }
        return (outputs, outputs.map { o in o.indices.max(by: { o[$0] < o[$1] })! })
    }

    /// The reference inputs of IG, occlusion, LIME and the metric (`--baseline`), or of the SHAP methods
    /// (`--shap-baseline`): one row per example.
    func baselineRows(_ x: [Float], kind: BaselineName? = nil) throws -> [Float] {
        let n = rows.count
        switch kind ?? options.baseline {
        case .zeros:
            return [Float](repeating: 0, count: n * elementCount)
        case .mean:
            guard case let .values(mean) = try AttributionBaseline.mean(of: background, elementCount: elementCount) else { return [] }
            return [[Float]](repeating: mean, count: n).flatMap { $0 }
        case .blur:
            guard isImage else { throw ValidationError("--baseline blur needs images, the model's input is \(inputShape)") }
            let sigma = options.blurSigma ?? Double(max(inputShape[1], inputShape[2])) / 10
            guard case let .values(v) = try AttributionBaseline.blurred(x, shape: inputShape, sigma: sigma) else { return [] }
            return v
        }
    }

    /// The default Grad-CAM activation: the last convolution's output, after its ReLU when one follows.
    func gradCAMLayer() throws -> String {
        if let layer = options.layer { return layer }
        guard let i = model.layers.lastIndex(where: { $0.kind == "conv2d" }) else {
            throw ValidationError("gradcam: the model has no convolution; name an activation with --layer")
        }
        return i + 1 < model.layers.count && model.layers[i + 1].kind == "relu" ? model.activationName(i + 1) : model.activationName(i)
    }

    /// `method` as an attribution method on `model` (the job's model, or a randomized copy);
    /// `shapReferences`: the `--shap-baseline` rows of the examples, for the SHAP methods.
    func attribution(_ method: ExplainMethodName, on model: Sequential, baseline: [Float], shapReferences: [Float]? = nil) throws -> AttributionMethod {
        let differentiable = DifferentiableModel(model)
        let chunk = options.rowsPerChunk
        switch method {
        case .saliency: return Saliency(model: differentiable, rowsPerChunk: chunk)
        case .gradxinput: return GradientTimesInput(model: differentiable, rowsPerChunk: chunk)
        case .ig:
            return IntegratedGradients(model: differentiable, steps: options.steps, rule: options.igRule,
                                       baseline: .values(baseline), rowsPerChunk: chunk)
        case .smoothgrad:
            return SmoothGrad(model: differentiable, samples: options.samples ?? 50, noiseLevel: options.noise,
                              variant: options.smoothgradVariant, seed: options.seed, rowsPerChunk: chunk)
        case .gradcam:
            return GradCAM(model: differentiable, layer: try gradCAMLayer(), relu: !options.noGradcamRelu, rowsPerChunk: chunk)
        case .lrp:
            let rule: LRP.Rule = switch options.lrpRule {
            case .epsilon: .epsilon(options.lrpEpsilon)
            case .zplus: .zPlus
            case .gamma: .gamma(options.lrpGamma)
            }
            return LRP(model: model, rule: rule, rowsPerChunk: chunk)
        case .occlusion:
            let side = options.window ?? superpixel ?? 1
            let step = options.stride ?? side
            let window = isImage ? (side, side) : (1, side), strides = isImage ? (step, step) : (1, step)
            return Occlusion(model: differentiable, window: window, stride: strides, baseline: .values(baseline), rowsPerChunk: chunk)
        case .lime:
            return LIME(model: differentiable, groups: groups, samples: options.samples ?? 1000, kernelWidth: options.kernelWidth,
                        baseline: .values(baseline), seed: options.seed, rowsPerChunk: chunk)
        case .attentionRollout, .attentionGradient:
            return try AttentionAttribution(model: model, kind: method == .attentionRollout ? .rollout : .gradient,
                                            rowsPerChunk: chunk ?? 64)
        case .exactShap, .kernelShap, .permutationShap, .samplingShap:
            return ShapleyAttribution(model: model, estimator: try shapleyEstimator(method), background: background,
                                      backgroundWeights: backgroundWeights, groups: groups, references: shapReferences, rowsPerChunk: chunk)
        }
    }

    /// The SHAP estimator of `method` with the budget, seed and stopping rule of the options.
    func shapleyEstimator(_ method: ExplainMethodName) throws -> ShapleyEstimator {
        guard let shapley = method.shapley else { throw ValidationError("\(method.rawValue) is not a SHAP method") }
        var estimator = shapley.estimator(budget: options.samples, seed: options.seed)
        if var k = estimator as? KernelShap, let numFeatures = options.numFeatures { k.numFeatures = numFeatures; estimator = k }
        if let threshold = options.stopThreshold {
            let rule = StoppingRule(threshold: threshold)
            if var k = estimator as? KernelShap { k.stopping = rule; estimator = k }
            if var p = estimator as? PermutationShap { p.stopping = rule; estimator = p }
            if var s = estimator as? SamplingShap { s.stopping = rule; estimator = s }
        }
        return estimator
    }

    /// Runs one method on the examples `x` for their predicted classes.
    func run(_ method: ExplainMethodName, x: [Float], predicted: [Int], baseline: [Float]) throws -> MethodRun {
        let n = rows.count
        if method.shapley != nil {
            let estimator = try shapleyEstimator(method)
            var parts: [Explanation] = []
            var evaluations: [Int] = [], seconds: [Double] = []
            let batch = options.instancesPerBatch
            // --shap-baseline: hidden features from one reference row per example instead of the background.
            let references = try options.shapBaseline.map { try baselineRows(x, kind: $0) }
            if options.shapBaseline == .blur && batch > 1 && n > 1 {
                throw ValidationError("--instances-per-batch shares one background; --shap-baseline blur gives each example its own")
            }
            for first in stride(from: 0, to: n, by: batch) {
                onProgress(method, first, n)
                let count = min(batch, n - first)
                let hidden = references.map { Array($0[(first * elementCount)..<((first + 1) * elementCount)]) } ?? background
                let game = try DeviceGame(model: model, instances: Array(x[(first * elementCount)..<((first + count) * elementCount)]),
                                          background: hidden, backgroundWeights: references == nil ? backgroundWeights : nil, groups: groups,
                                          rowsPerChunk: options.rowsPerChunk)
                let part = try estimator.explain(game, instances: count)
                parts.append(part)
                // Instances sharing a batch share its cost equally.
                evaluations += [Int](repeating: part.modelEvaluations / count, count: count)
                seconds += [Double](repeating: part.seconds / Double(count), count: count)
            }
            var explanation = try Explanation(stacking: parts)
            explanation.featureNames = featureNames
            explanation.settings["background"] = options.shapBaseline.map { "baseline: \($0.rawValue)" + ($0 == .mean ? " of " + backgroundNote : "") }
                ?? backgroundNote
            if let segmentation {
                explanation.settings["segments"] = segmentation
            } else if let superpixel {
                explanation.settings["superpixel"] = String(superpixel)
            }
            return MethodRun(method: method, explanation: explanation, outputSlot: predicted,
                             evaluations: evaluations, seconds: seconds)
        }
        var explanation = try attribution(method, on: model, baseline: baseline).explain(instances: x, targets: .perInstance(predicted))
        if explanation.featureCount == groups.featureCount {
            explanation.featureNames = featureNames
        }
        if [.ig, .occlusion, .lime].contains(method) { explanation.settings["baseline"] = options.baseline.rawValue }
        var result = MethodRun(method: method, explanation: explanation, outputSlot: [Int](repeating: 0, count: n),
                               evaluations: [Int](repeating: explanation.modelEvaluations / max(n, 1), count: n),
                               seconds: [Double](repeating: explanation.seconds / Double(max(n, 1)), count: n))
        if method == .attentionRollout || method == .attentionGradient {
            let patch = try AttentionMaps(model: model).grid.patch
            result.featureGroups = try FeatureGroups.grid(channels: inputShape[0], height: inputShape[1], width: inputShape[2], cell: patch)
        }
        return result
    }

    /// Deletion and insertion curves of each example's explanation, removing features (superpixels or columns)
    /// most relevant first and replacing them by the baseline.
    func curves(_ run: MethodRun, x: [Float], predicted: [Int], baseline: [Float]) throws -> [DeletionInsertion.Curves] {
        let d = elementCount
        return try rows.indices.map { i in
            let metric = DeletionInsertion(model: DifferentiableModel(model), groups: run.featureGroups ?? groups, steps: 20,
                                           baseline: .values(Array(baseline[(i * d)..<((i + 1) * d)])),
                                           seed: options.seed, rowsPerChunk: options.rowsPerChunk)
            return try metric.curves(explanation: run.explanation, instance: i, output: run.outputSlot[i], target: predicted[i], instances: x)
        }
    }

    /// Runs every method, printing per example the predicted class and the largest attributions.
    func runAll() throws -> (runs: [MethodRun], outputs: [[Float]], predicted: [Int]) {
        let x = try instances()
        let (outputs, predicted) = try predictions(x)
        let baseline = try methods.contains(where: { [.ig, .occlusion, .lime].contains($0) }) || metrics ? baselineRows(x) : []
        var runs: [MethodRun] = []
        for method in methods {
            onProgress(method, 0, rows.count)
            var result = try run(method, x: x, predicted: predicted, baseline: baseline)
            result.explanation.settings["model"] = modelPath
            result.explanation.settings["data"] = sourceName
            result.explanation.settings["indices"] = rows.map(String.init).joined(separator: ",")
            if metrics { result.curves = try curves(result, x: x, predicted: predicted, baseline: baseline) }
            if randomization {
                // SHAP hides features as the main run did: with the --shap-baseline rows when given.
                let references = method.shapley == nil ? nil : try options.shapBaseline.map { try baselineRows(x, kind: $0) }
                let check = ParameterRandomization(model: model, seed: options.seed &+ 1) {
                    try attribution(method, on: $0, baseline: baseline, shapReferences: references)
                }
                result.randomization = try check.run(instances: x, targets: .perInstance(predicted))
                printLine("\(method.rawValue): parameter randomization (layers re-initialized from the top; rank correlation with the original, of |φ| and of φ): "
                          + result.randomization!.map { String(format: "%@ %.3f/%.3f", $0.layer, $0.spearmanAbsolute, $0.spearman) }.joined(separator: ", "))
            }
            runs.append(result)
            onProgress(method, rows.count, rows.count)
            let e = result.explanation
            for (n, i) in rows.enumerated() where printsExamples {
                let p = predicted[n], slot = result.outputSlot[n]
                var line = String(format: "example %d: predicted %@ (%d), f(x) %.4f", i, loaded.className(p), p, outputs[n][p])
                if let base = e.baseValues?[n * e.outputCount + slot] { line += String(format: ", base value %.4f", base) }
                line += String(format: ", %@ with %d model evaluations in %.2f s", method.rawValue, result.evaluations[n], result.seconds[n])
                if let c = result.curves?[n] {
                    line += String(format: "; deletion AUC %.4f (random %.4f), insertion AUC %.4f (random %.4f)",
                                   c.deletionAUC, c.randomDeletionAUC, c.insertionAUC, c.randomInsertionAUC)
                }
                printLine(line)
                let phi = e.attributions(instance: n, output: slot)
                for j in phi.indices.sorted(by: { abs(phi[$0]) > abs(phi[$1]) }).prefix(max(0, top)) {
                    var entry = String(format: "  %@  %+.5f", featureName(j, of: e), phi[j])
                    if let se = e.standardErrors { entry += String(format: " ± %.5f", se[(n * e.featureCount + j) * e.outputCount + slot]) }
                    printLine(entry)
                }
            }
        }
        return (runs, outputs, predicted)
    }

    /// The name of feature `j` of an explanation: a SHAP feature, or an input element (pixel or column).
    func featureName(_ j: Int, of e: Explanation) -> String {
        if let names = e.featureNames, j < names.count { return names[j] }
        if isImage {
            let (h, w) = (inputShape[1], inputShape[2])
            return "pixel (\(j % (h * w) / w), \(j % w))"
        }
        return j < featureNames.count ? featureNames[j] : "feature \(j)"
    }

    /// Per-pixel values of example `n` of a run, for pictures: superpixel values spread over their pixels,
    /// pixel values summed over channels.
    func pixelValues(_ run: MethodRun, example n: Int) throws -> [Double] {
        let e = run.explanation
        let phi = e.attributions(instance: n, output: run.outputSlot[n])
        let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        if e.featureCount == h * w { return phi }
        let perElement = e.featureCount == elementCount ? phi : try Heatmap.pixelValues(phi, groups: run.featureGroups ?? groups)
        guard perElement.count == c * h * w else {
            throw ReportError("\(run.method.rawValue): \(e.featureCount) values do not map onto a \(c)×\(h)×\(w) image")
        }
        return (0..<(h * w)).map { p in (0..<c).reduce(0) { $0 + perElement[$1 * h * w + p] } }
    }
}
