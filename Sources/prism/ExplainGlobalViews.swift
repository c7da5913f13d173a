import ArgumentParser
import Foundation
import Prism
import PrismExplain
import PrismReport

/// The global views of a run over many examples, per method: mean |φ| of the explained output per
/// feature (bars for tabular data, a heatmap for images), shap's beeswarm for tabular data, and for
/// classifiers the mean |φ| per predicted class (a heatmap per class for images). `methods` goes
/// into `explanation.json` as `global_views`; `figures` draws them into the report folder.
struct GlobalViews {
    /// The mean |φ| of the examples predicted as one class.
    struct ClassView: Encodable {
        var output: Int
        var name: String
        var examples: Int
        /// [features]
        var meanAbs: [Double]
        /// Images: per pixel (channels summed before the absolute value) [height, width].
        var meanAbsPixels: ShapedArray?
    }
    /// One method's views.
    struct MethodView: Encodable {
        var method: String
        var examples: Int
        var featureNames: [String]
        /// Mean over the examples of |φ| of each example's explained output [features].
        var meanAbs: [Double]
        /// Images: per pixel (channels summed before the absolute value) [height, width].
        var meanAbsPixels: ShapedArray?
        /// Classifiers: per predicted class with at least one example, in class order.
        var perClass: [ClassView]?
    }

    let plan: ExplainPlan
    let results: ExplainResults
    var methods: [MethodView]

    /// Computes the views of every method over every example of `results`.
    /// - Throws: `ReportError` when an image method's values do not map onto the image.
    init(plan: ExplainPlan, results: ExplainResults) throws {
        self.plan = plan
        self.results = results
        let n = plan.instances.count
        let classes: [Int]? = plan.loaded.task.kind == .regression ? nil : Array(Set(results.predicted)).sorted()
        methods = try results.runs.map { run in
            let e = run.explanation
            let all = 0..<n
            var view = MethodView(method: run.method.name, examples: n, featureNames: (0..<e.featureCount).map { plan.featureName($0, of: e) },
                                  meanAbs: Self.meanAbs(run, instances: all))
            if plan.isImage { view.meanAbsPixels = try Self.meanAbsPixels(run, plan: plan, instances: Array(all)) }
            view.perClass = try classes?.map { c in
                let members = all.filter { results.predicted[$0] == c }
                return ClassView(output: c, name: plan.loaded.name(ofOutput: c), examples: members.count,
                                 meanAbs: Self.meanAbs(run, instances: members),
                                 meanAbsPixels: plan.isImage ? try Self.meanAbsPixels(run, plan: plan, instances: members) : nil)
            }
            return view
        }
    }

    /// Mean over `instances` of |φ| of each one's explained output, per feature.
    static func meanAbs<S: Sequence>(_ run: MethodRun, instances: S) -> [Double] where S.Element == Int {
        let e = run.explanation
        var sum = [Double](repeating: 0, count: e.featureCount), count = 0
        for i in instances {
            let slot = run.outputSlot[i]
            for j in 0..<e.featureCount { sum[j] += abs(e.value(instance: i, feature: j, output: slot)) }
            count += 1
        }
        return sum.map { $0 / Double(max(count, 1)) }
    }

    /// Images: mean over `instances` of the absolute per-pixel values (superpixel values spread over
    /// their pixels, channels summed), [height, width].
    static func meanAbsPixels(_ run: MethodRun, plan: ExplainPlan, instances: [Int]) throws -> ShapedArray {
        let (h, w) = (plan.inputShape[1], plan.inputShape[2])
        var sum = [Double](repeating: 0, count: h * w)
        for i in instances {
            for (p, v) in try plan.pixelValues(run, example: i).enumerated() { sum[p] += abs(v) }
        }
        return ShapedArray(shape: [h, w], values: sum.map { $0 / Double(max(instances.count, 1)) })
    }

    /// The most examples a beeswarm shows (evenly spaced through the run beyond that).
    static let beeswarmLimit = 1000

    /// Draws the views into `folder`: per method the bars (tabular) or heatmap (images) of mean |φ|,
    /// the beeswarm (tabular, one column per feature), and the per-class heatmaps (images).
    /// - Returns: (file, caption) of each figure, for the report.
    func figures(folder: String) throws -> [(String, String)] {
        var figures: [(String, String)] = []
        func path(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }
        let n = plan.instances.count
        for (run, view) in zip(results.runs, methods) {
            let title = run.method.title, name = run.method.name
            if plan.isImage {
                let (h, w) = (plan.inputShape[1], plan.inputShape[2])
                let scale = max(1, 224 / max(h, w))
                if let pixels = view.meanAbsPixels {
                    let file = "global-\(name)-mean-abs.png"
                    try Heatmap.attribution(pixels.values, width: w, height: h).upscaled(by: scale).writePNG(path: path(file))
                    figures.append((file, "\(title): mean |φ| per pixel over the \(n) examples, explained outputs (darker red: larger)"))
                }
                let classes = view.perClass ?? []
                let limit = classes.compactMap { $0.meanAbsPixels?.values.max() }.max()
                for c in classes {
                    guard let pixels = c.meanAbsPixels else { continue }
                    let file = "global-\(name)-class-\(c.output).png"
                    try Heatmap.attribution(pixels.values, width: w, height: h, limit: limit).upscaled(by: scale).writePNG(path: path(file))
                    figures.append((file, "\(title): mean |φ| of the \(c.examples) examples predicted \(c.name) (one scale for all classes)"))
                }
            } else {
                let file = "global-\(name)-mean-abs.svg"
                try BarPlot(names: view.featureNames, values: view.meanAbs, title: "\(title): mean |φ| of the explained output")
                    .write(to: URL(fileURLWithPath: path(file)))
                figures.append((file, "\(title): mean |φ| per feature over the \(n) examples, explained outputs"))
                let e = run.explanation
                if n >= 2 && e.featureCount == plan.elementCount {
                    let shown = n <= Self.beeswarmLimit ? Array(0..<n) : (0..<Self.beeswarmLimit).map { $0 * n / Self.beeswarmLimit }
                    let values = shown.flatMap { e.attributions(instance: $0, output: run.outputSlot[$0]) }
                    let d = plan.elementCount
                    let features = shown.flatMap { plan.instances.values[($0 * d)..<(($0 + 1) * d)].map(Double.init) }
                    let swarm = "global-\(name)-beeswarm.svg"
                    try BeeswarmPlot(featureNames: view.featureNames, values: values, featureValues: features,
                                     title: "\(title): φ of the explained output per example")
                        .write(to: URL(fileURLWithPath: path(swarm)))
                    figures.append((swarm, "\(title): one dot per example and feature (x: φ, colour: the feature's value), features by mean |φ|"
                                    + (shown.count < n ? "; \(shown.count) of the \(n) examples, evenly spaced" : "")))
                }
            }
        }
        return figures
    }
}
