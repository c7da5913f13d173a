import ArgumentParser
import Foundation
import Prism
import PrismExplain

/// What a method needs to build its explainer for one run: the model (the plan's, or a randomized
/// copy), the options, and the plan's features and reference rows.
struct MethodContext {
    var model: Model
    var options: MethodOptions
    /// Features of the SHAP methods and LIME.
    var groups: FeatureGroups
    /// Images: the superpixel side (occlusion's default window).
    var superpixel: Int?
    /// `--baseline` rows, one per instance (empty when no chosen method uses them).
    var baseline: [Float]
    /// The background rows (DeepSHAP's references) and their weights (k-means cluster sizes, nil for
    /// equal weights); empty when no chosen method uses them.
    var background: [Float] = []
    var backgroundWeights: [Float]? = nil
    /// The position of the first instance in the run (a whole-data-set run's shard): methods that
    /// draw per instance (SmoothGrad's noise, LIME's masks) draw what the whole run would.
    var firstInstance = 0
    /// Copies of the model on further devices (`--device all` outside whole-data-set runs): the
    /// perturbation methods (LIME, occlusion) split every example's masks among the devices.
    var copies: [Model] = []
    var inputShape: [Int] { model.spec.inputShape }
    var isImage: Bool { inputShape.count == 3 }
    /// The function a gradient method differentiates, when it is not the model of its input (token
    /// ids: the model of its embedding's output).
    var custom: DifferentiableModel?
    var differentiable: DifferentiableModel { custom ?? DifferentiableModel(model) }
}

/// How a method computes: a Shapley estimator over a coalition game (run by the plan on the device
/// game, with the background or `--shap-baseline` references), or an attribution method that maps
/// instances and target outputs to values.
enum MethodKind: Sendable {
    case shapley(ShapleyMethod)
    case attribution(@Sendable (MethodContext) throws -> AttributionMethod)
}

/// One explanation method as the command line, the JSON, the NumPy files and the report know it.
/// A new explainer is a file in PrismExplain plus one entry in `MethodRegistry.builtIn` (or a
/// `register` call): it then appears in `--method`, in `explanation.json`, in the `.npy` folders
/// and in the report.
struct ExplainMethod: Sendable, Equatable {
    /// The `--method` spelling and the name in every output (`kernel-shap`).
    var name: String
    /// A heading for pictures and captions (`Kernel SHAP`).
    var title: String
    var kind: MethodKind
    /// The `MethodOptions` it reads (long names), listed in `--help`.
    var options: [String] = []
    /// Whether it takes the `--baseline` reference rows.
    var usesBaseline = false
    /// Whether it takes the background rows (`--background`, `--background-data`) as references.
    var usesBackground = false
    /// What its base values are called in captions (`base value`, `f(x′)`).
    var baseName = "base"
    /// Extra words for a caption, from the options (`50 steps, gauss-legendre`).
    var captionDetail: (@Sendable (MethodOptions) -> String?)? = nil
    /// Its features' pixels when they are neither the plan's groups nor input elements (patches,
    /// positions of a layer).
    var featureGroups: (@Sendable (Model, MethodOptions) throws -> FeatureGroups?)? = nil
    /// Whether its values are attributions to the input (deletion/insertion, faithfulness and
    /// max-sensitivity perturb the input, so they apply only then), or to a layer's positions.
    var attributesInput = true
    /// Whether the report adds the model's attention maps.
    var showsAttentionMaps = false

    var shapley: ShapleyMethod? { if case let .shapley(m) = kind { m } else { nil } }
    var isShapley: Bool { shapley != nil }
    /// Whether `--device all` outside whole-data-set runs splits this method's model evaluations of
    /// each example among the devices (the SHAP methods' coalitions, LIME's and occlusion's masks).
    var splitsAcrossDevices: Bool { isShapley || name == "lime" || name == "occlusion" }

    static func == (a: ExplainMethod, b: ExplainMethod) -> Bool { a.name == b.name }
}

/// Every method `prism explain` knows, in `--help` order. Tests may `register` more.
final class MethodRegistry: @unchecked Sendable {
    // @unchecked Sendable: `methods` is only read and written under `lock`.
    static let shared = MethodRegistry()

    private let lock = NSLock()
    private var methods: [ExplainMethod] = MethodRegistry.builtIn

    /// The registered methods in order.
    var all: [ExplainMethod] { lock.withLock { methods } }

    /// The method called `name`, if registered.
    func method(_ name: String) -> ExplainMethod? { all.first { $0.name == name } }

    /// Adds a method.
    /// - Throws: `ValidationError` when a method of that name exists.
    func register(_ method: ExplainMethod) throws {
        try lock.withLock {
            guard !methods.contains(where: { $0.name == method.name }) else {
                throw ValidationError("method '\(method.name)' is already registered")
            }
            methods.append(method)
        }
    }

    /// Removes a method (tests that registered one).
    func unregister(_ name: String) {
        lock.withLock { methods.removeAll { $0.name == name } }
    }

    /// `--method` values: repeated options and comma-separated lists, in order, without repeats.
    /// - Throws: `ValidationError` naming an unknown method.
    func parse(_ values: [String]) throws -> [ExplainMethod] {
        var chosen: [ExplainMethod] = []
        for part in values.flatMap({ $0.split(separator: ",") }) {
            let name = part.trimmingCharacters(in: .whitespaces)
            guard let method = method(name) else {
                throw ValidationError("--method: unknown method '\(name)' (choose from \(all.map(\.name).joined(separator: ", ")))")
            }
            if !chosen.contains(method) { chosen.append(method) }
        }
        guard !chosen.isEmpty else { throw ValidationError("--method: no method given") }
        return chosen
    }

    /// The `--method` help text: every method with the options it reads.
    var help: String {
        all.map { m in m.options.isEmpty ? m.name : "\(m.name) (" + m.options.map { "--" + $0 }.joined(separator: " ") + ")" }
            .joined(separator: ", ")
    }

    static let shapleyOptions = ["samples", "stop-threshold", "stratify", "shap-baseline", "instances-per-batch"]

    static let builtIn: [ExplainMethod] = [
        ExplainMethod(name: "exact-shap", title: "Exact Shapley values", kind: .shapley(.exact),
                      options: ["shap-baseline", "instances-per-batch"], baseName: "base value"),
        ExplainMethod(name: "kernel-shap", title: "Kernel SHAP", kind: .shapley(.kernel),
                      options: shapleyOptions + ["num-features"], baseName: "base value"),
        ExplainMethod(name: "leverage-shap", title: "Leverage SHAP", kind: .shapley(.leverage),
                      options: shapleyOptions, baseName: "base value"),
        ExplainMethod(name: "permutation-shap", title: "Permutation SHAP", kind: .shapley(.permutation),
                      options: shapleyOptions, baseName: "base value"),
        ExplainMethod(name: "sampling-shap", title: "Sampling Shapley values", kind: .shapley(.sampling),
                      options: shapleyOptions, baseName: "base value"),
        ExplainMethod(name: "fastshap", title: "FastSHAP", kind: .attribution { c in try FastShapMethod(context: c) },
                      options: ["explainer", "check"], baseName: "base value"),
        ExplainMethod(name: "saliency", title: "Saliency", kind: .attribution { c in
            Saliency(model: c.differentiable, rowsPerChunk: c.options.rowsPerChunk)
        }),
        ExplainMethod(name: "gradxinput", title: "Gradient × input", kind: .attribution { c in
            GradientTimesInput(model: c.differentiable, rowsPerChunk: c.options.rowsPerChunk)
        }),
        ExplainMethod(name: "ig", title: "Integrated Gradients", kind: .attribution { c in
            IntegratedGradients(model: c.differentiable, steps: c.options.steps, rule: c.options.igRule,
                                baseline: .values(c.baseline), rowsPerChunk: c.options.rowsPerChunk)
        }, options: ["steps", "ig-rule", "baseline"], usesBaseline: true, baseName: "f(x′)",
           captionDetail: { "\($0.steps) steps, \($0.igRule.rawValue)" }),
        ExplainMethod(name: "smoothgrad", title: "SmoothGrad", kind: .attribution { c in
            var method = SmoothGrad(model: c.differentiable, samples: c.options.smoothgradSamples ?? 50, noiseLevel: c.options.noise,
                                    variant: c.options.smoothgradVariant, seed: c.options.seed, rowsPerChunk: c.options.rowsPerChunk)
            method.firstInstance = c.firstInstance
            return method
        }, options: ["smoothgrad-samples", "noise", "smoothgrad-variant"]),
        ExplainMethod(name: "gradcam", title: "Grad-CAM", kind: .attribution { c in
            GradCAM(model: c.differentiable, layer: try gradCAMLayer(c.model, named: c.options.layer), relu: !c.options.noGradcamRelu,
                    rowsPerChunk: c.options.rowsPerChunk)
        }, options: ["layer", "no-gradcam-relu"]),
        ExplainMethod(name: "lrp", title: "LRP", kind: .attribution { c in
            let rule: LRP.Rule = switch c.options.lrpRule {
            case .epsilon: .epsilon(c.options.lrpEpsilon)
            case .zplus: .zPlus
            case .gamma: .gamma(c.options.lrpGamma)
            }
            return LRP(model: c.model, rule: rule, rowsPerChunk: c.options.rowsPerChunk)
        }, options: ["lrp-rule", "lrp-epsilon", "lrp-gamma"]),
        ExplainMethod(name: "deeplift", title: "DeepLIFT", kind: .attribution { c in
            DeepLift(model: c.model, references: .baseline(.values(c.baseline)), rowsPerChunk: c.options.rowsPerChunk)
        }, options: ["baseline"], usesBaseline: true, baseName: "f(x′)"),
        ExplainMethod(name: "deepshap", title: "DeepSHAP", kind: .attribution { c in
            guard !c.background.isEmpty else {
                throw ValidationError("deepshap: no background rows to take as references (give --background N or --background-data FILE)")
            }
            return DeepLift(model: c.model, references: .background(c.background, weights: c.backgroundWeights), rowsPerChunk: c.options.rowsPerChunk)
        }, options: ["background", "background-data", "kmeans"], usesBackground: true, baseName: "E[f(background)]"),
        ExplainMethod(name: "gradient-shap", title: "GradientSHAP", kind: .attribution { c in
            guard !c.background.isEmpty else {
                throw ValidationError("gradient-shap: no background rows to take as references (give --background N or --background-data FILE)")
            }
            var method = GradientShap(model: c.differentiable, background: c.background, weights: c.backgroundWeights,
                                      samples: c.options.gradientShapSamples, noiseLevel: c.options.gradientShapNoise,
                                      stopThreshold: c.options.stopThreshold, seed: c.options.seed, rowsPerChunk: c.options.rowsPerChunk)
            method.firstInstance = c.firstInstance
            return method
        }, options: ["gradient-shap-samples", "gradient-shap-noise", "stop-threshold", "background", "background-data", "kmeans"],
           usesBackground: true, baseName: "E[f(background)]",
           captionDetail: { "\($0.gradientShapSamples) samples" }),
        ExplainMethod(name: "layer-ig", title: "Layer Integrated Gradients", kind: .attribution { c in
            let layer = try attributionLayer(c.model, named: c.options.layer, method: "layer-ig")
            return try LayerAttribution(model: c.model, layer: layer, references: c.baseline, perInstance: true) { model, references in
                IntegratedGradients(model: model, steps: c.options.steps, rule: c.options.igRule, baseline: .values(references),
                                    rowsPerChunk: c.options.rowsPerChunk)
            }
        }, options: ["layer", "steps", "ig-rule", "baseline"], usesBaseline: true, baseName: "f(x′)",
           captionDetail: { "at \($0.layer ?? "the last convolution"), \($0.steps) steps" }, featureGroups: layerPositions, attributesInput: false),
        ExplainMethod(name: "layer-gradient-shap", title: "Layer GradientSHAP", kind: .attribution { c in
            guard !c.background.isEmpty else {
                throw ValidationError("layer-gradient-shap: no background rows to take as references (give --background N or --background-data FILE)")
            }
            let layer = try attributionLayer(c.model, named: c.options.layer, method: "layer-gradient-shap")
            return try LayerAttribution(model: c.model, layer: layer, references: c.background, perInstance: false) { model, references in
                GradientShap(model: model, background: references, weights: c.backgroundWeights, samples: c.options.gradientShapSamples,
                             noiseLevel: c.options.gradientShapNoise, stopThreshold: c.options.stopThreshold, seed: c.options.seed,
                             rowsPerChunk: c.options.rowsPerChunk)
            }
        }, options: ["layer", "gradient-shap-samples", "gradient-shap-noise", "stop-threshold", "background", "background-data", "kmeans"],
           usesBackground: true, baseName: "E[f(background)]",
           captionDetail: { "at \($0.layer ?? "the last convolution"), \($0.gradientShapSamples) samples" }, featureGroups: layerPositions,
           attributesInput: false),
        ExplainMethod(name: "occlusion", title: "Occlusion", kind: .attribution { c in
            let side = c.options.window ?? c.superpixel ?? 1
            let step = c.options.stride ?? side
            let window = c.isImage ? (side, side) : (1, side), strides = c.isImage ? (step, step) : (1, step)
            var method = Occlusion(model: c.differentiable, window: window, stride: strides, baseline: .values(c.baseline),
                                   rowsPerChunk: c.options.rowsPerChunk)
            method.deviceCopies = c.copies.map { DifferentiableModel($0) }
            return method
        }, options: ["window", "stride", "baseline"], usesBaseline: true),
        ExplainMethod(name: "lime", title: "LIME", kind: .attribution { c in
            var method = LIME(model: c.differentiable, groups: c.groups, samples: c.options.limeSamples ?? 1000, kernelWidth: c.options.kernelWidth,
                              baseline: .values(c.baseline), seed: c.options.seed, rowsPerChunk: c.options.rowsPerChunk)
            method.firstInstance = c.firstInstance
            method.deviceCopies = c.copies.map { DifferentiableModel($0) }
            return method
        }, options: ["lime-samples", "kernel-width", "baseline"], usesBaseline: true),
        ExplainMethod(name: "attention-rollout", title: "Attention rollout", kind: .attribution { c in
            try AttentionAttribution(model: c.model, kind: .rollout, rowsPerChunk: c.options.rowsPerChunk ?? 64)
        }, featureGroups: attentionPatches, showsAttentionMaps: true),
        ExplainMethod(name: "attention-gradient", title: "Attention × gradient", kind: .attribution { c in
            try AttentionAttribution(model: c.model, kind: .gradient, rowsPerChunk: c.options.rowsPerChunk ?? 64)
        }, featureGroups: attentionPatches, showsAttentionMaps: true),
    ]
}

/// The patches of a vision transformer, as feature groups on its image.
@Sendable func attentionPatches(_ model: Model, _ options: MethodOptions) throws -> FeatureGroups? {
    let shape = model.spec.inputShape
    let patch = try AttentionMaps(model: model).grid.patch
    return try FeatureGroups.grid(channels: shape[0], height: shape[1], width: shape[2], cell: patch)
}

/// Grad-CAM's activation: `named`, else the last convolution's output, after its ReLU when the ReLU
/// is the only node that reads it.
/// - Throws: `ValidationError` when the model has no convolution and no layer is named.
func gradCAMLayer(_ model: Model, named: String?) throws -> String {
    if let named { return named }
    guard let i = model.ops.lastIndex(where: { $0 is Conv2DLayer }) else {
        throw ValidationError("gradcam: the model has no convolution; name an activation with --layer")
    }
    let readers = model.graph.nodes.indices.filter { model.graph.nodes[$0].inputs.contains(i + 1) }
    return readers.count == 1 && model.ops[readers[0]] is ReLU ? model.activationName(readers[0]) : model.activationName(i)
}


/// The node a layer attribution explains: `named`, else (an image model) Grad-CAM's layer, the last
/// convolution's output.
/// - Throws: `ValidationError` when no layer is named and the model has no convolution.
func attributionLayer(_ model: Model, named: String?, method: String) throws -> String {
    if let named { return named }
    guard model.ops.contains(where: { $0 is Conv2DLayer }) else {
        throw ValidationError("\(method): name the node with --layer (the model has no convolution to default to; nodes: \(model.graph.nodes.indices.map(model.activationName).joined(separator: ", ")))")
    }
    return try gradCAMLayer(model, named: nil)
}

/// A layer attribution's positions as pixels of the input, for pictures: a [C, H′, W′] output of an
/// image model covers the image by nearest position (every pixel of every channel shows the value
/// of the position over it). Other shapes are not pictures: nil (their values are named positions).
/// - Throws: `ValidationError` for an image model whose layer has no [C, H′, W′] output no larger
///   than the image.
@Sendable func layerPositions(_ model: Model, _ options: MethodOptions) throws -> FeatureGroups? {
    let input = model.spec.inputShape
    guard input.count == 3 else { return nil }
    let name = try attributionLayer(model, named: options.layer, method: "layer attribution")
    guard let node = model.node(activation: name) else { return nil }
    let shape = model.graph.nodes[node].info.output
    let (h, w) = (input[1], input[2])
    guard shape.count == 3, shape[1] <= h, shape[2] <= w, shape[1] > 0, shape[2] > 0 else {
        throw ValidationError("layer attribution at '\(name)': its output \(shape) has no positions on the \(h)×\(w) image (a [C, H, W] output no larger than the image is drawn over it)")
    }
    let (p, q) = (shape[1], shape[2])
    var map = [Int32](repeating: 0, count: input[0] * h * w)
    for c in 0..<input[0] {
        for y in 0..<h {
            for x in 0..<w { map[(c * h + y) * w + x] = Int32((y * p / h) * q + x * q / w) }
        }
    }
    return try FeatureGroups(elementFeature: map, featureCount: p * q)
}
