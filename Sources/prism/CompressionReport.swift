import Foundation
import Prism
import PrismExplain
import PrismFiles
import PrismReport

/// What is measured of each model in a compression report.
struct ModelFacts: Codable {
    var file: String
    var fileBytes: Int
    var parameters: Int
    /// Parameters that are not zero (pruned weights are zero).
    var nonzeroParameters: Int
    /// Classifiers: the test set's accuracy and mean cross-entropy; regression models: RMSE and R².
    var accuracy: Double?
    var loss: Double?
    var rmse: Double?
    var r2: Double?
    /// Forward passes per second on the device: the median of timed batches after a warm-up.
    var evaluationsPerSecond: Double
    var batch: Int

    enum CodingKeys: String, CodingKey {
        case file, parameters, accuracy, loss, rmse, r2, batch
        case fileBytes = "file_bytes", nonzeroParameters = "nonzero_parameters", evaluationsPerSecond = "evaluations_per_second"
    }

    var score: String {
        if let accuracy { return String(format: "accuracy %.4f, loss %.4f", accuracy, loss ?? .nan) }
        return String(format: "RMSE %.4f, R² %.4f", rmse ?? .nan, r2 ?? .nan)
    }
}

/// One method's comparison: agreement of the two models' attributions, and each model's deletion and
/// insertion areas (means over the examples) for its own attributions.
struct MethodComparison: Codable {
    var method: String
    var agreement: ExplanationAgreement
    var deletionAUC: [Double]
    var insertionAUC: [Double]

    enum CodingKeys: String, CodingKey {
        case method, agreement
        case deletionAUC = "deletion_auc", insertionAUC = "insertion_auc"
    }
}

/// The report every `prism compress` command ends with: `report.json` and `index.html` with pictures.
struct ComparisonReport: Codable {
    var command: String
    var device: String
    var settings: [String: String]
    var original: ModelFacts
    var compressed: ModelFacts
    /// Test examples explained by both models (the original's predicted class).
    var examples: Int
    var methods: [MethodComparison]
    /// The agreement the compressed model should keep: Spearman of Integrated Gradients with the original's.
    var targetSpearmanIG: Double
    /// Whether IG's mean Spearman fell below the target (flagged in the report).
    var belowTarget: Bool?
    /// What the command did, in its own words (sparsities, channels, epochs).
    var details: [String]

    enum CodingKeys: String, CodingKey {
        case command, device, settings, original, compressed, examples, methods, details
        case targetSpearmanIG = "target_spearman_ig", belowTarget = "below_target"
    }
}

/// Builds the comparison of two models on the same test data.
struct ModelComparison {
    let engine: Engine
    let test: LabeledData
    /// Background rows for Kernel SHAP (training examples).
    let background: [Float]
    let methods: [String]
    let examples: Int
    let target: Double

    /// Measures one model — through `forward` and with `evaluation` when given (an int8 model's integer kernels).
    func facts(_ model: Model, file: String, forward: ((Tensor) throws -> Tensor)? = nil, evaluation: EvaluationResult? = nil) throws -> ModelFacts {
        let bytes = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        let nonzero = try model.namedParameters.reduce(0) { sum, p in
            let values = try p.tensor.toArray()
            let mask = try model.masks[p.name]?.toArray()
            return sum + values.indices.filter { values[$0] != 0 && (mask?[$0] ?? 1) != 0 }.count
        }
        var facts = ModelFacts(file: file, fileBytes: bytes, parameters: model.parameterCount, nonzeroParameters: nonzero,
                               evaluationsPerSecond: 0, batch: min(256, test.count))
        if let evaluation {
            (facts.accuracy, facts.loss) = (evaluation.accuracy, evaluation.loss)
        } else if model.spec.isRegression {
            let r = try evaluateRegression(model, on: test)
            (facts.rmse, facts.r2) = (r.rmse, r.r2)
        } else {
            let r = try evaluate(model, on: test)
            (facts.accuracy, facts.loss) = (r.accuracy, r.loss)
        }
        // Throughput: one batch of test examples, a warm-up and then the median of five timed passes.
        let rows = facts.batch
        let x = try (0..<rows).flatMap { try test.example($0).features }
        let input = try Tensor(x, shape: [rows] + model.spec.inputShape, engine: engine)
        var times: [Double] = []
        for pass in 0..<6 {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try engine.noGrad { try (forward ?? { try model($0) })(input).toArray() }
            if pass > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9) }
        }
        facts.evaluationsPerSecond = Double(rows) / max(times.sorted()[times.count / 2], 1e-9)
        return facts
    }

    /// Explanations of both models for `methods` on the first `examples` test examples, compared;
    /// pictures side by side written into `folder` (images only).
    func compare(_ original: Model, _ compressed: Model, folder: OutputFolder)
        throws -> (methods: [MethodComparison], examples: Int, rows: [HTMLReport.Example]) {
        let count = min(examples, test.count)
        guard count > 0, !methods.isEmpty, !original.spec.isRegression else { return ([], 0, []) }
        let shape = original.spec.inputShape
        let d = shape.reduce(1, *)
        let x = try (0..<count).flatMap { try test.example($0).features }
        let logits = try engine.noGrad { try original(try Tensor(x, shape: [count] + shape, engine: engine)).toArray() }
        let classes = original.spec.classCount
        let targets = (0..<count).map { i in (0..<classes).max { logits[i * classes + $0] < logits[i * classes + $1] } ?? 0 }
        let image = shape.count == 3
        let groups = image ? try FeatureGroups.grid(channels: shape[0], height: shape[1], width: shape[2], cell: min(4, shape[1], shape[2]))
            : FeatureGroups.elements(d)
        var results: [MethodComparison] = []
        var pictures: [[(String, String)]] = Array(repeating: [], count: count)
        if image {
            for i in 0..<count {
                let name = "example-\(i)-input.png"
                try Heatmap.input(Array(x[(i * d)..<((i + 1) * d)]), channels: shape[0], width: shape[2], height: shape[1])
                    .upscaled(by: 4).writePNG(to: folder.file(name))
                pictures[i].append((name, "test example \(i), class \(targets[i])"))
            }
        }
        for method in methods {
            func explain(_ m: Model) throws -> Explanation {
                switch method {
                case "ig": try IntegratedGradients(model: DifferentiableModel(m), steps: 32).explain(instances: x, targets: .perInstance(targets))
                default: try ShapleyAttribution(model: m, estimator: KernelShap(seed: 0), background: background, groups: image ? groups : nil)
                    .explain(instances: x, targets: .perInstance(targets))
                }
            }
            let (a, b) = (try explain(original), try explain(compressed))
            var deletion = [0.0, 0.0], insertion = [0.0, 0.0]
            for (k, (m, e)) in [(original, a), (compressed, b)].enumerated() {
                let curves = DeletionInsertion(model: DifferentiableModel(m), groups: groups, steps: 16)
                for i in 0..<count {
                    let c = try curves.curves(explanation: e, instance: i, output: 0, target: targets[i], instances: x)
                    deletion[k] += c.deletionAUC / Double(count)
                    insertion[k] += c.insertionAUC / Double(count)
                }
            }
            results.append(MethodComparison(method: method, agreement: try ExplanationAgreement(a, b, k: 10), deletionAUC: deletion, insertionAUC: insertion))
            guard image else { continue }
            let (h, w) = (shape[1], shape[2])
            func pixels(_ e: Explanation, _ i: Int) throws -> [Double] {
                let phi = e.attributions(instance: i, output: 0)
                let element = e.featureCount == d ? phi : try Heatmap.pixelValues(phi, groups: groups)
                return (0..<(h * w)).map { p in (0..<shape[0]).reduce(0) { $0 + element[$1 * h * w + p] } }
            }
            for i in 0..<count {
                // Both maps on one scale, so a weaker attribution looks weaker.
                let (p, q) = (try pixels(a, i), try pixels(b, i))
                let limit = max(p.map(abs).max() ?? 0, q.map(abs).max() ?? 0)
                for (tag, values) in [("original", p), ("compressed", q)] {
                    let name = "example-\(i)-\(method)-\(tag).png"
                    try Heatmap.attribution(values, width: w, height: h, limit: limit > 0 ? limit : nil).upscaled(by: 4).writePNG(to: folder.file(name))
                    pictures[i].append((name, "\(method), \(tag) model"))
                }
            }
        }
        let rows = image ? (0..<count).map { i in
            HTMLReport.Example(title: "Test example \(i)", captions: [], images: pictures[i])
        } : []
        return (results, count, rows)
    }
}

extension ComparisonReport {
    /// Writes `report.json` and `index.html` (with the pictures already in `folder`).
    func write(folder: OutputFolder, rows: [HTMLReport.Example]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try folder.file("report.json").write(try encoder.encode(self) + Data("\n".utf8))
        func mib(_ bytes: Int) -> String { String(format: "%.2f MiB", Double(bytes) / 1_048_576) }
        var summary = ["prism compress \(command) on \(device). " + settings.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")]
        summary += details
        let score = original.accuracy != nil ? ["accuracy", "test loss"] : ["RMSE", "R²"]
        func scores(_ f: ModelFacts) -> [String] {
            f.accuracy != nil ? [String(format: "%.4f", f.accuracy!), String(format: "%.4f", f.loss ?? .nan)]
                : [String(format: "%.4f", f.rmse ?? .nan), String(format: "%.4f", f.r2 ?? .nan)]
        }
        let modelRows = [("original", original), ("compressed", compressed)].map { name, f in
            [name, (f.file as NSString).lastPathComponent] + scores(f)
                + ["\(f.parameters)", "\(f.nonzeroParameters)", mib(f.fileBytes), String(format: "%.0f", f.evaluationsPerSecond)]
        }
        var report = HTMLReport(title: "Compression report: \(command)", summary: summary, examples: rows, files: [("report.json", "everything measured, as JSON")])
        report.tables.append((caption: "The two models on the test set (throughput: forward passes per second, batches of \(original.batch))",
                              header: ["model", "file"] + score + ["parameters", "nonzero", "file size", "evaluations/s"], rows: modelRows))
        if !methods.isEmpty {
            report.tables.append((caption: "Explanation agreement on \(examples) test examples (the original's predicted class); deletion (lower is better) and insertion (higher is better) areas of each model's own attributions",
                                  header: ["method", "Spearman", "Spearman of |φ|", "top-10 overlap", "deletion AUC original", "deletion AUC compressed",
                                           "insertion AUC original", "insertion AUC compressed"],
                                  rows: methods.map { m in
                                      [m.method] + [m.agreement.spearman, m.agreement.spearmanAbsolute, m.agreement.topKOverlap,
                                                    m.deletionAUC[0], m.deletionAUC[1], m.insertionAUC[0], m.insertionAUC[1]].map { String(format: "%.3f", $0) }
                                  }))
        }
        if belowTarget == true, let ig = methods.first(where: { $0.method == "ig" }) {
            report.warnings.append(String(format: "Below target: Integrated Gradients' rank correlation with the original's is %.3f, under %.2f — the compressed model may decide for other reasons.",
                                          ig.agreement.spearman, targetSpearmanIG))
        }
        try report.write(directory: folder.path)
    }
}
