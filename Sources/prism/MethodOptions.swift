import ArgumentParser
import Foundation
import Prism
import PrismExplain

/// The reference input of Integrated Gradients, occlusion, LIME and the deletion/insertion metric.
enum BaselineName: String, CaseIterable, ExpressibleByArgument {
    case zeros, mean, blur
}

/// The LRP rule of Linear and Conv2D layers.
enum LRPRuleName: String, CaseIterable, ExpressibleByArgument {
    case epsilon
    case zplus = "z-plus"
    case gamma
}

extension IntegratedGradients.Rule: ExpressibleByArgument {}
extension SmoothGrad.Variant: ExpressibleByArgument {}

/// Options of the individual methods.
struct MethodOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "SHAP methods: the budget in coalitions (kernel-shap default 2M + 2048; leverage-shap: the expected number, same default).")
    var samples: Int?

    @Option(parsing: .unconditional, help: "lime: perturbed samples per example (default 1000).")
    var limeSamples: Int?

    @Option(parsing: .unconditional, help: "smoothgrad: noise samples per example (default 50).")
    var smoothgradSamples: Int?

    @Option(parsing: .unconditional, help: "gradient-shap: the most samples (reference, α, noise) per example (default 200; --stop-threshold may stop earlier).")
    var gradientShapSamples: Int = 200

    @Option(parsing: .unconditional, help: "gradient-shap: σ of the input noise as a fraction of each input's range (default 0, none).")
    var gradientShapNoise: Double = 0

    @Option(parsing: .unconditional, help: "Seed of the background draw, the sampling and the noise.")
    var seed: UInt64 = 0

    @Option(parsing: .unconditional, help: "SHAP: stop when max standard error < T × (max φ − min φ).")
    var stopThreshold: Double?

    @Flag(help: "SHAP sampling methods: run the estimator on each background row's game with the whole budget and average them by the rows' weights — the same values, with less error for the same model evaluations.")
    var stratify = false

    @Option(help: "SHAP: hide features with one reference input per example instead of the background rows: zeros, mean (of the background) or blur (each image blurred; --blur-sigma).")
    var shapBaseline: BaselineName?

    @Option(parsing: .unconditional, help: "kernel-shap: keep K features per output, chosen by least-angle regression (shap's l1_reg=\"num_features(K)\"); the rest get 0.")
    var numFeatures: Int?

    @Option(parsing: .unconditional, help: "ig: number of integration points.")
    var steps: Int = 50

    @Option(help: "ig: quadrature rule (\(IntegratedGradients.Rule.allCases.map(\.rawValue).joined(separator: ", "))).")
    var igRule: IntegratedGradients.Rule = .gaussLegendre

    @Option(help: "ig, occlusion, lime and --metrics: the reference input: zeros, mean (of the background) or blur (each image blurred).")
    var baseline: BaselineName = .zeros

    @Option(parsing: .unconditional, help: "blur baseline: Gaussian σ in pixels (default: a tenth of the image's larger side).")
    var blurSigma: Double?

    @Option(parsing: .unconditional, help: "smoothgrad: σ of the noise as a fraction of each input's range.")
    var noise: Double = 0.15

    @Option(help: "smoothgrad: smoothgrad, smoothgrad-squared or vargrad.")
    var smoothgradVariant: SmoothGrad.Variant = .smoothGrad

    @Option(help: "gradcam, layer-ig, layer-gradient-shap: the node (e.g. 4.relu; default: the last convolution's output after its ReLU).")
    var layer: String?

    @Flag(help: "gradcam: keep negative values of the class map.")
    var noGradcamRelu = false

    @Option(help: "lrp: rule of Linear and Conv2D layers: epsilon, z-plus or gamma.")
    var lrpRule: LRPRuleName = .epsilon

    @Option(parsing: .unconditional, help: "lrp: ε of the epsilon rule.")
    var lrpEpsilon: Double = 1e-6

    @Option(parsing: .unconditional, help: "lrp: γ of the gamma rule.")
    var lrpGamma: Double = 0.25

    @Option(parsing: .unconditional, help: "occlusion: window side in pixels (images) or columns (default: --superpixel for images, 1 otherwise).")
    var window: Int?

    @Option(parsing: .unconditional, help: "occlusion: window stride (default: the window side).")
    var stride: Int?

    @Option(parsing: .unconditional, help: "lime: width of the exponential kernel on the cosine distance.")
    var kernelWidth: Double = 0.25

    @Option(help: "fastshap: the explainer file written by prism explain-train.")
    var explainer: String?

    @Option(parsing: .unconditional, help: "fastshap: also run Kernel SHAP (same background and features) on the first N examples and report the explainer's error against it.")
    var check: Int?

    @Option(parsing: .unconditional, help: "Model rows per forward pass (default: sized from device memory).")
    var rowsPerChunk: Int?

    @Option(parsing: .unconditional, help: "SHAP: instances explained together, sharing every device batch (each gets the values it would alone; a stopping rule then waits for all of them).")
    var instancesPerBatch: Int = 1

    func validate() throws {
        if let samples, samples < 1 { throw ValidationError("--samples must be at least 1") }
        if let limeSamples, limeSamples < 1 { throw ValidationError("--lime-samples must be at least 1") }
        if let smoothgradSamples, smoothgradSamples < 1 { throw ValidationError("--smoothgrad-samples must be at least 1") }
        if let stopThreshold, !(stopThreshold > 0) { throw ValidationError("--stop-threshold must be positive") }
        if gradientShapSamples < 2 { throw ValidationError("--gradient-shap-samples must be at least 2 (a standard error needs two)") }
        if !(gradientShapNoise >= 0) || !gradientShapNoise.isFinite { throw ValidationError("--gradient-shap-noise must be a non-negative number") }
        if steps < 1 { throw ValidationError("--steps must be at least 1") }
        if let blurSigma, !(blurSigma > 0) { throw ValidationError("--blur-sigma must be positive") }
        if !(noise >= 0) { throw ValidationError("--noise must be a non-negative number") }
        if let window, window < 1 { throw ValidationError("--window must be at least 1") }
        if let stride, stride < 1 { throw ValidationError("--stride must be at least 1") }
        if !(kernelWidth > 0) { throw ValidationError("--kernel-width must be positive") }
        if !(lrpEpsilon >= 0) { throw ValidationError("--lrp-epsilon must be a non-negative number") }
        if !(lrpGamma >= 0) { throw ValidationError("--lrp-gamma must be a non-negative number") }
        if let rowsPerChunk, rowsPerChunk < 1 { throw ValidationError("--rows-per-chunk must be at least 1") }
        if let numFeatures, numFeatures < 1 { throw ValidationError("--num-features must be at least 1") }
        if instancesPerBatch < 1 { throw ValidationError("--instances-per-batch must be at least 1") }
        if let check, check < 1 { throw ValidationError("--check must be at least 1") }
    }

    /// Every option at its default (for callers that build a plan without a command line).
    static func defaults() throws -> MethodOptions { try parse([]) }

    /// `--samples` meant LIME's and SmoothGrad's sample counts before they had options of their own:
    /// with no SHAP method chosen, it still sets them (and says so); otherwise it is the SHAP budget
    /// only, and a note says where LIME's and SmoothGrad's counts come from.
    /// - Returns: the options to use and the notes to print.
    func resolvingOldSpellings(for methods: [ExplainMethod]) -> (MethodOptions, [String]) {
        guard let samples else { return (self, []) }
        var resolved = self, notes: [String] = []
        let shap = methods.contains(where: \.isShapley)
        for (name, keyPath) in [("lime", \MethodOptions.limeSamples), ("smoothgrad", \MethodOptions.smoothgradSamples)]
            where methods.contains(where: { $0.name == name }) && self[keyPath: keyPath] == nil {
            if shap {
                notes.append("note: --samples \(samples) is the SHAP budget; \(name) takes --\(name)-samples (default \(name == "lime" ? 1000 : 50))")
            } else {
                resolved[keyPath: keyPath] = samples
                notes.append("note: --samples for \(name) is spelled --\(name)-samples now; taken as --\(name)-samples \(samples)")
            }
        }
        return (resolved, notes)
    }
}
