import Foundation
import Prism

/// Occlusion (Zeiler & Fergus 2014), as Captum computes it: a window slides over the image with a
/// stride; each position replaces the pixels under it (every channel) with the baseline, and the
/// drop f_c(x) − f_c(x occluded) is credited to those pixels. A pixel's attribution is the mean drop
/// over the windows that cover it (0 where none does).
///
/// All windows of an instance, plus the unoccluded input, form one coalition batch evaluated on the
/// device by `DeviceGame` in chunks of at most `rowsPerChunk` rows; every class comes from the same
/// forward passes.
public struct Occlusion: AttributionMethod {
    public let model: DifferentiableModel
    /// Window (height, width) in pixels.
    public var window: (height: Int, width: Int)
    /// Step between windows (height, width); Captum's default is 1.
    public var stride: (height: Int, width: Int)
    /// What occluded pixels are set to.
    public var baseline: AttributionBaseline
    /// Model rows per device batch (nil: sized from the device's memory).
    public var rowsPerChunk: Int?
    /// Copies of the model on further devices: every instance's occluded inputs are split between
    /// `model`'s device and theirs (`SplitGame`), with the values of one device.
    public var deviceCopies: [DifferentiableModel] = []

    public var name: String { "occlusion" }

    /// - Parameter model: inputs [C, H, W], [H, W] or [W] (one row); windows cover all channels.
    public init(model: DifferentiableModel, window: (height: Int, width: Int), stride: (height: Int, width: Int) = (1, 1),
                baseline: AttributionBaseline = .zeros, rowsPerChunk: Int? = nil) {
        self.model = model
        self.window = window
        self.stride = stride
        self.baseline = baseline
        self.rowsPerChunk = rowsPerChunk
    }

    /// The image sizes of the model input: (channels, height, width).
    private func imageShape() throws -> (channels: Int, height: Int, width: Int) {
        let s = model.inputShape
        switch s.count {
        case 1: return (1, 1, s[0])
        case 2: return (1, s[0], s[1])
        case 3: return (s[0], s[1], s[2])
        default: throw ExplainError("occlusion: input shape \(s) is not [C, H, W], [H, W] or [W]")
        }
    }

    /// The window positions (top, left), row by row.
    public func windowOrigins() throws -> [(top: Int, left: Int)] {
        let (_, h, w) = try imageShape()
        guard window.height >= 1, window.width >= 1, window.height <= h, window.width <= w else {
            throw ExplainError("occlusion: window \(window.height)×\(window.width) does not fit the \(h)×\(w) input")
        }
        guard stride.height >= 1, stride.width >= 1 else {
            throw ExplainError("occlusion: stride \(stride.height)×\(stride.width) must be positive")
        }
        var origins: [(Int, Int)] = []
        for top in Swift.stride(from: 0, through: h - window.height, by: stride.height) {
            for left in Swift.stride(from: 0, through: w - window.width, by: stride.width) { origins.append((top, left)) }
        }
        return origins
    }

    /// - Returns: values [instances][input elements][targets]; `outputs` holds f(x).
    public func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation {
        let start = DispatchTime.now()
        let setup = try AttributionSetup(model: model, instances: instances, targets: targets, rowsPerChunk: rowsPerChunk)
        let (channels, h, w) = try imageShape()
        let origins = try windowOrigins()
        let d = model.elementCount, n = setup.instanceCount, slots = targets.outputCount, c = model.classCount
        let pixels = h * w
        let baselines = try baseline.rows(instanceCount: n, elementCount: d, method: "occlusion")
        // Features are pixels: every channel of a pixel is hidden together.
        let groups = try FeatureGroups(elementFeature: (0..<d).map { Int32($0 % pixels) }, featureCount: pixels)
        // Coalition 0 keeps everything; coalition 1 + k hides window k.
        var masks = [UInt8](repeating: 1, count: (1 + origins.count) * pixels)
        var coverage = [Int](repeating: 0, count: pixels)
        for (k, o) in origins.enumerated() {
            for y in o.top..<(o.top + window.height) {
                for x in o.left..<(o.left + window.width) {
                    masks[(1 + k) * pixels + y * w + x] = 0
                    coverage[y * w + x] += 1
                }
            }
        }
        var values = [Double](repeating: 0, count: n * d * slots)
        var outputs = [Float](repeating: 0, count: n * c)
        var evaluations = 0
        for i in 0..<n {
            let game = try SplitGame(([model] + deviceCopies).map { copy in
                try DeviceGame(engine: copy.engine, instance: Array(instances[(i * d)..<((i + 1) * d)]), inputShape: copy.inputShape,
                               background: Array(baselines[(i * d)..<((i + 1) * d)]), groups: groups, outputCount: c,
                               rowsPerChunk: setup.rowsPerChunk) { x in try copy.forward(x).output }
            })
            let v = try game.values(coalitions: masks, count: 1 + origins.count)
            evaluations += game.modelEvaluations
            for j in 0..<c { outputs[i * c + j] = Float(v[j]) }
            for (t, cls) in targets.classes(instance: i).enumerated() {
                var total = [Double](repeating: 0, count: pixels)
                for (k, o) in origins.enumerated() {
                    let drop = v[cls] - v[(1 + k) * c + cls]
                    for y in o.top..<(o.top + window.height) {
                        for x in o.left..<(o.left + window.width) { total[y * w + x] += drop }
                    }
                }
                for ch in 0..<channels {
                    for p in 0..<pixels where coverage[p] > 0 {
                        values[(i * d + ch * pixels + p) * slots + t] = total[p] / Double(coverage[p])
                    }
                }
            }
        }
        return try Explanation(method: name, instanceCount: n, featureCount: d, outputCount: slots, values: values,
                               outputs: setup.targetOutputs(outputs), modelEvaluations: evaluations, seconds: AttributionSetup.seconds(since: start),
                               settings: ["window": .ints([window.height, window.width]), "stride": .ints([stride.height, stride.width]),
                                          "windows": .int(origins.count), "baseline": .string(baseline.description),
                                          "targets": .string(targets.description), "rows_per_chunk": .int(setup.rowsPerChunk)])
    }
}
