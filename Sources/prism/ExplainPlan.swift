import ArgumentParser
import Foundation
import Prism
import PrismFiles
import PrismExplain

/// The examples an explain run explains: their values and where they came from.
struct ExplainInstances {
    /// [count] + the model's input shape, row-major.
    var values: [Float]
    var count: Int
    /// One name per example: `test example 3`, `shoe.png`, `rows.csv row 2`.
    var names: [String]
    /// Test-set indices, when the examples are rows of a test set.
    var indices: [Int]?
    /// True labels, when known (classifiers).
    var labels: [Int]?
    /// True target values, when known (regression models).
    var trueValues: [[Float]]?
    /// Where they come from, for the report and the JSON (`Fashion-MNIST (…)`, `the files given with --input`).
    var source: String
}

extension ExplainInstances {
    /// Rows `rows` of a test set, with their true labels (classifiers) or target values (regression).
    init(testRows rows: [Int], of test: LabeledData, source: String) throws {
        let examples = try rows.map { try test.example($0) }
        self.init(values: examples.flatMap(\.features), count: rows.count, names: rows.map { "test example \($0)" },
                  indices: rows, source: source)
        if test.isRegression {
            trueValues = try rows.map { try test.target($0) }
        } else {
            labels = examples.map { Int($0.label) }
        }
    }
}

/// Which output of the model each method explains, per example.
enum ExplainTarget: Equatable {
    /// The largest output (classifiers).
    case predicted
    /// One output for every example, by index.
    case output(Int)

    /// Parses `--target`: `predicted`, an output index or a class/output name.
    /// - Throws: `ValidationError` naming the value and the choices.
    static func parse(_ text: String, outputNames: [String]?, outputCount: Int) throws -> ExplainTarget {
        if text == "predicted" { return .predicted }
        if let i = Int(text) {
            guard (0..<outputCount).contains(i) else { throw ValidationError("--target \(i) is outside the model's outputs 0..<\(outputCount)") }
            return .output(i)
        }
        if let i = outputNames?.firstIndex(of: text) { return .output(i) }
        throw ValidationError("--target '\(text)': not 'predicted', an output index 0..<\(outputCount) or one of the model's output names"
                              + (outputNames.map { " (\($0.joined(separator: ", ")))" } ?? ""))
    }
}

/// Everything one `prism explain` (or `prism demo`) run needs, checked before any work: the model,
/// the examples, the methods and their options, the background or references, the features and
/// every output path. `run` computes (ExplainRun.swift); the writers (ExplainWriters.swift) write.
struct ExplainPlan {
    private(set) var engine: Engine
    private(set) var loaded: LoadedModel
    let modelPath: String
    var instances: ExplainInstances
    let methods: [ExplainMethod]
    let options: MethodOptions
    var target: ExplainTarget = .predicted
    /// Background rows for the SHAP methods (and the mean baseline), row-major.
    let background: [Float]
    /// Weights of the background rows (k-means cluster sizes), nil for equal weights.
    var backgroundWeights: [Float]? = nil
    /// How the background was chosen, in words.
    let backgroundNote: String
    /// The training-set indices of the background rows, when it is such a draw.
    var backgroundIndices: [Int]? = nil
    /// Features of the SHAP methods and LIME, and the units of the deletion/insertion metric.
    let groups: FeatureGroups
    let featureNames: [String]
    /// Images: the superpixel side (the features unless `segmentation` is set; occlusion's default window).
    let superpixel: Int?
    /// Images: the segmentation map file the features come from, if any.
    var segmentation: String?
    /// Add the deletion/insertion curves of each explanation (and faithfulness, max-sensitivity).
    var metrics = false
    /// Noisy copies per example for max-sensitivity (0: not computed).
    var sensitivitySamples = ExplainPlan.defaultSensitivitySamples
    /// Whether the SHAP estimators' max-sensitivity is computed too (each runs again per noisy copy;
    /// the demo leaves it out to stay short).
    var shapleySensitivity = true
    /// Token ids: the id whose embedding is the gradient methods' reference (nil for float inputs).
    var baselineToken: Int?
    /// The model's other inputs (an attention mask), per example; empty for a model of one input.
    var extraInputs: [String: ExtraInputValues] = [:]
    /// Add the cascading model-parameter randomization check of each method.
    var randomization = false
    /// Where the results go (checked).
    var outputs: ExplainOutputs
    /// Lines to print before the work: what was read how, what was taken when a choice was made.
    var notes: [String] = []
    /// The position of the first example in the whole run (a shard of a whole-data-set run).
    var firstInstance = 0
    /// Copies of the model on further devices (`--device all` or a list outside whole-data-set runs),
    /// each labelled: the SHAP methods split every example's coalitions between `model`'s device and
    /// these (`SplitGame`); the other methods run on `model`'s device alone.
    var coalitionDevices: [(label: String, model: Model)] = []

    var model: Model { loaded.model }
    /// `#index name` of the plan's device.
    var deviceLabel: String { "#\(engine.device.index) \(engine.device.name)" }
    var inputShape: [Int] { model.spec.inputShape }
    var isImage: Bool { inputShape.count == 3 }
    var elementCount: Int { inputShape.reduce(1, *) }

    /// The method context on `model` (the plan's, or a randomized copy).
    func context(on model: Model, baseline: [Float]) -> MethodContext {
        // The copies on further devices serve the plan's own model (not a randomized copy of it).
        MethodContext(model: model, options: options, groups: groups, superpixel: superpixel, baseline: baseline,
                      background: methods.contains(where: \.usesBackground) ? background : [], backgroundWeights: backgroundWeights,
                      firstInstance: firstInstance, copies: model === self.model ? coalitionDevices.map(\.model) : [])
    }

    /// The reference inputs of IG, occlusion, LIME and the metric (`--baseline`), or of the SHAP methods
    /// (`--shap-baseline`): one row per example.
    func baselineRows(kind: BaselineName? = nil) throws -> [Float] {
        let n = instances.count
        switch kind ?? options.baseline {
        case .zeros:
            return [Float](repeating: 0, count: n * elementCount)
        case .mean:
            guard case let .values(mean) = try AttributionBaseline.mean(of: background, elementCount: elementCount) else { return [] }
            return [[Float]](repeating: mean, count: n).flatMap { $0 }
        case .blur:
            guard isImage else { throw ValidationError("--baseline blur needs images, the model's input is \(inputShape)") }
            let sigma = options.blurSigma ?? Double(max(inputShape[1], inputShape[2])) / 10
            guard case let .values(v) = try AttributionBaseline.blurred(instances.values, shape: inputShape, sigma: sigma) else { return [] }
            return v
        }
    }

    /// Checks that can only be made once the model, the examples and the background are known.
    /// - Throws: `ValidationError` for an option the model or the features cannot take.
    /// - Returns: notes about degenerate inputs (one line each).
    func check() throws -> [String] {
        var notes: [String] = []
        if let k = options.numFeatures, k > groups.featureCount {
            throw ValidationError("--num-features \(k) is more than the \(groups.featureCount) features")
        }
        if options.stratify {
            let shap = methods.filter(\.isShapley)
            if shap.isEmpty { throw ValidationError("--stratify applies to the SHAP sampling methods (kernel-shap, leverage-shap, permutation-shap, sampling-shap); none is chosen") }
            if let exact = shap.first(where: { $0.shapley == .exact }) { throw ValidationError("--stratify: \(exact.name) does not sample; there is nothing to stratify") }
            if options.stopThreshold != nil {
                throw ValidationError("--stratify cannot take --stop-threshold: the rule would judge each background row's estimate alone, not their average")
            }
            if options.numFeatures != nil { throw ValidationError("--stratify cannot take --num-features: selecting features per background row is not selecting them for the average") }
            if !coalitionDevices.isEmpty { throw ValidationError("--stratify runs on one device; drop --device all or the extra devices") }
        }
        if options.shapBaseline == .blur && options.instancesPerBatch > 1 && instances.count > 1 && methods.contains(where: \.isShapley) {
            throw ValidationError("--instances-per-batch shares one background; --shap-baseline blur gives each example its own")
        }
        // A background equal to an example on every feature hides nothing: all its SHAP values are zero.
        if methods.contains(where: \.isShapley) && options.shapBaseline == nil {
            let d = elementCount, rows = background.count / max(d, 1)
            for n in 0..<instances.count {
                let x = instances.values[(n * d)..<((n + 1) * d)]
                let same = (0..<rows).allSatisfy { r in zip(background[(r * d)..<((r + 1) * d)], x).allSatisfy { $0 == $1 } }
                if same {
                    throw ValidationError("the background (\(rows) row\(rows == 1 ? "" : "s")) equals \(instances.names[n]) on every feature, so every SHAP value would be 0: give a larger or different background (--background N, --background-data) or --shap-baseline")
                }
            }
            if rows == 1 { notes.append("note: a one-row background: each SHAP value is the effect of replacing that feature by the background row's value (as --shap-baseline with that row)") }
        }
        // Layer attributions: the node exists and (images) has positions to draw, before any work.
        for method in methods where !method.attributesInput {
            let layer = try attributionLayer(model, named: options.layer, method: method.name)
            guard model.node(activation: layer) != nil else {
                throw ValidationError("--layer: no node '\(layer)'; nodes are \(model.graph.nodes.indices.map(model.activationName).joined(separator: ", "))")
            }
            _ = try method.featureGroups?(model, options)
            if metrics {
                notes.append("note: \(method.name) attributes to the positions of \(layer), not to the input: deletion/insertion, faithfulness and max-sensitivity are computed for input attributions only")
            }
        }
        return notes
    }
}

/// Where an explain run writes its results, checked before any work.
struct ExplainOutputs {
    /// One JSON document with every method (`-`: standard output).
    var json: String?
    /// A folder for the NumPy arrays (several methods: a subfolder per method).
    var npy: String?
    /// A folder for the PNG pictures (images only).
    var png: String?
    /// A report folder: index.html with every picture, the JSON and the arrays.
    var out: String?

    /// The defaults inside a report folder.
    init(json: String?, npy: String?, png: String?, out: String?) {
        self.out = out
        self.json = json ?? out.map { ($0 as NSString).appendingPathComponent("explanation.json") }
        self.npy = npy ?? out.map { ($0 as NSString).appendingPathComponent("npy") }
        self.png = png
    }

    /// Whether the JSON goes to standard output (then the per-example lines go to standard error).
    var jsonToStandardOutput: Bool { json == "-" }

    /// Checks, before any work, that every target can be written: the JSON file (or `-`) and the
    /// folders (created when missing).
    /// - Throws: `FileError` naming the path and the problem.
    func check() throws {
        for folder in [out, npy, png].compactMap({ $0 }) {
            _ = try OutputFolder(path: folder, create: true)
        }
        if let json { _ = try OutputFile(path: json, allowStandardOutput: true) }
    }
}

extension ExplainPlan {
    /// This plan on another device: its engine and the same model file loaded there.
    func on(engine: Engine, loaded: LoadedModel) -> ExplainPlan {
        var copy = self
        copy.engine = engine
        copy.loaded = loaded
        return copy
    }
}
