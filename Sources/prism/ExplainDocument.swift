import Foundation
import Prism
import PrismExplain

/// An array with its shape, encoded as `{"shape": [2, 3], "values": [[…], […]]}`: nested lists
/// that `numpy.array(d["values"])` turns into an array of that shape.
struct ShapedArray: Encodable {
    var shape: [Int]
    var values: [Double]
    /// When set, `values` is encoded as this string, which `ExplainDocument.encodedDirectly`
    /// replaces by the nested lists written straight into the bytes.
    var placeholder: String?

    init(shape: [Int], values: [Double]) {
        self.shape = shape
        self.values = values
    }

    init(shape: [Int], values: [Float]) {
        self.init(shape: shape, values: values.map(Double.init))
    }

    enum Keys: String, CodingKey { case shape, values }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(shape, forKey: .shape)
        if let placeholder { return try c.encode(placeholder, forKey: .values) }
        var nested = c.nestedUnkeyedContainer(forKey: .values)
        try encodeLevel(&nested, dims: shape[...], offset: 0)
    }

    private func encodeLevel(_ c: inout UnkeyedEncodingContainer, dims: ArraySlice<Int>, offset: Int) throws {
        guard let first = dims.first else { return }
        let rest = dims.dropFirst()
        let stride = rest.reduce(1, *)
        for i in 0..<first {
            if rest.isEmpty {
                try c.encode(values[offset + i])
            } else {
                var inner = c.nestedUnkeyedContainer()
                try encodeLevel(&inner, dims: rest, offset: offset + i * stride)
            }
        }
    }
}

/// `explanation.json`: one document for every method of a run, for Python users as it is —
/// nested arrays with their shapes, typed settings, the explained inputs, the explained output of
/// every example, the background and, for images, the segmentation map. `version` changes when a
/// field changes meaning.
struct ExplainDocument: Encodable {
    static let currentVersion = 1

    struct Model: Encodable {
        var path: String
        var inputShape: [Int]
        var outputCount: Int
        var outputNames: [String]?
        var task: String
    }
    struct Inputs: Encodable {
        var source: String
        var names: [String]
        var indices: [Int]?
        var labels: [Int]?
        /// Regression models: the true target values [examples, outputs], when known.
        var trueValues: [[Double]]?
        var values: ShapedArray
    }
    struct Features: Encodable {
        var count: Int
        var names: [String]
        /// `superpixels`, `segments`, `columns` or `column groups`.
        var kind: String
        var superpixel: Int?
        var segmentationFile: String?
        /// Images: the feature of each pixel [height, width] (−1: in no feature).
        var segmentation: ShapedArray?
        /// Tabular: the columns of each feature.
        var columns: [[Int]]?
    }
    struct Background: Encodable {
        var description: String
        /// Rows of the training set (or of the background file) it is made of.
        var indices: [Int]?
        /// Its rows when they are not rows of a file (k-means centroids).
        var rows: ShapedArray?
        var weights: [Double]?
        /// `--shap-baseline`: the SHAP methods hide features with this reference instead.
        var shapReference: String?
    }
    struct Predictions: Encodable {
        /// f(x) [examples, outputs].
        var outputs: ShapedArray
        var predicted: [Int]
        /// The output every method explains, per example.
        var targets: [Int]
    }
    struct Curves: Encodable {
        var fractions, deletion, insertion, randomDeletion, randomInsertion: [Double]
        var deletionAuc, insertionAuc, randomDeletionAuc, randomInsertionAuc: Double
    }
    struct Stage: Encodable {
        var layer: String
        var spearmanAbsolute, spearman: Double
    }
    struct Method: Encodable {
        var method: String
        var title: String
        /// The explainer's own name (`kernel-shap`, `integrated-gradients`).
        var explainer: String
        /// Per example, the model output explained, and its slot on the last axis of `values`.
        var targets: [Int]
        var outputSlots: [Int]
        /// [examples, features, outputs].
        var values: ShapedArray
        var baseValues: ShapedArray?
        var outputs: ShapedArray?
        var standardErrors: ShapedArray?
        var featureNames: [String]?
        var modelEvaluations: Int
        var seconds: Double
        var settings: [String: SettingValue]
        var curves: [Curves]?
        /// Per example, with --metrics (null where either side is constant).
        var faithfulnessCorrelation: [Double?]?
        /// Per example, with --metrics, for methods that are no Shapley estimator.
        var maxSensitivity: [Double?]?
        var randomization: [Stage]?
    }

    var format = "prism-explanation"
    var version = currentVersion
    var prismVersion = PrismCommand.version
    var model: Model
    var inputs: Inputs
    var features: Features
    var background: Background
    var predictions: Predictions
    var methods: [Method]
    /// Whole-data-set runs: mean |φ| per feature (and pixel), overall and per predicted class.
    var globalViews: [GlobalViews.MethodView]?
    /// Whole-data-set runs: the examples and shards each device explained.
    var devices: [ExplainResults.DeviceWork]?
    /// Whole-data-set runs under mpirun: each rank's work in this job, its time in MPI and bytes sent.
    var ranks: [ExplainResults.RankWork]?

    init(plan: ExplainPlan, results: ExplainResults) {
        let n = plan.instances.count
        let spec = plan.model.spec
        model = Model(path: plan.modelPath, inputShape: spec.inputShape, outputCount: spec.classCount,
                      outputNames: plan.loaded.task.kind == .regression || plan.loaded.classNames != nil ? plan.loaded.outputNames : nil,
                      task: plan.loaded.task.kind.rawValue)
        inputs = Inputs(source: plan.instances.source, names: plan.instances.names, indices: plan.instances.indices,
                        labels: plan.instances.labels, trueValues: plan.instances.trueValues?.map { $0.map(Double.init) }, values: ShapedArray(shape: [n] + spec.inputShape, values: plan.instances.values))
        let groups = plan.groups
        if plan.isImage {
            let (h, w) = (spec.inputShape[1], spec.inputShape[2])
            let map = groups.elementFeature.prefix(h * w).map { Double($0) }
            features = Features(count: groups.featureCount, names: plan.featureNames, kind: plan.segmentation == nil ? "superpixels" : "segments",
                                superpixel: plan.segmentation == nil ? plan.superpixel : nil, segmentationFile: plan.segmentation,
                                segmentation: ShapedArray(shape: [h, w], values: map))
        } else {
            var columns = [[Int]](repeating: [], count: groups.featureCount)
            for (column, feature) in groups.elementFeature.enumerated() where feature >= 0 { columns[Int(feature)].append(column) }
            features = Features(count: groups.featureCount, names: plan.featureNames,
                                kind: groups.featureCount == plan.elementCount ? "columns" : "column groups", columns: columns)
        }
        let width = plan.elementCount
        let rows = plan.background.count / max(width, 1)
        background = Background(description: plan.backgroundNote, indices: plan.backgroundIndices,
                                rows: plan.backgroundIndices == nil ? ShapedArray(shape: [rows] + spec.inputShape, values: plan.background) : nil,
                                weights: plan.backgroundWeights.map { $0.map(Double.init) },
                                shapReference: plan.options.shapBaseline?.rawValue)
        devices = results.devices
        ranks = results.ranks
        predictions = Predictions(outputs: ShapedArray(shape: [n, spec.classCount], values: results.outputs.flatMap { $0 }),
                                  predicted: results.predicted, targets: results.targets)
        methods = results.runs.map { run in
            let e = run.explanation
            let shape3 = [e.instanceCount, e.featureCount, e.outputCount], shape2 = [e.instanceCount, e.outputCount]
            return Method(
                method: run.method.name, title: run.method.title, explainer: e.method, targets: results.targets, outputSlots: run.outputSlot,
                values: ShapedArray(shape: shape3, values: e.values),
                baseValues: e.baseValues.map { ShapedArray(shape: shape2, values: $0) },
                outputs: e.outputs.map { ShapedArray(shape: shape2, values: $0) },
                standardErrors: e.standardErrors.map { ShapedArray(shape: shape3, values: $0) },
                featureNames: e.featureNames, modelEvaluations: e.modelEvaluations, seconds: e.seconds, settings: e.settings,
                curves: run.curves?.map { c in
                    Curves(fractions: c.fractions, deletion: c.deletion, insertion: c.insertion, randomDeletion: c.randomDeletion,
                           randomInsertion: c.randomInsertion, deletionAuc: c.deletionAUC, insertionAuc: c.insertionAUC,
                           randomDeletionAuc: c.randomDeletionAUC, randomInsertionAuc: c.randomInsertionAUC)
                },
                faithfulnessCorrelation: run.faithfulness,
                maxSensitivity: run.sensitivity,
                randomization: run.randomization?.map { Stage(layer: $0.layer, spearmanAbsolute: $0.spearmanAbsolute, spearman: $0.spearman) })
        }
    }

    /// The document as JSON: snake_case keys, sorted, non-finite numbers as the strings `nan`, `inf`, `-inf`.
    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(self)
    }
}
