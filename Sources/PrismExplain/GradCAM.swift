import Foundation
import Prism

/// Grad-CAM (Selvaraju et al. 2017) on a named convolutional activation A [K, h, w] of a `Model`
/// (`"3.conv2d"`, `"4.relu"`; see `Model.activationName`): the class map
/// ReLU(Σ_k α_k A_k) with α_k = (1/hw) Σ_ij ∂f_c/∂A_kij, upsampled bilinearly to the input's
/// height × width (PyTorch's `interpolate(mode: "bilinear", align_corners: False)`).
///
/// Instances run as device batches of at most `rowsPerChunk` rows: one forward and one backward per
/// target class; the weights and maps are formed on the host from the activation and its gradient.
public struct GradCAM: AttributionMethod {
    /// The upsampled explanation and the map at the activation's resolution.
    public struct Result {
        /// Features are the input's pixels (height × width, row-major), one value per pixel.
        public var explanation: Explanation
        /// [instances][h·w][targets] at the activation's resolution.
        public var coarse: [Double]
        /// (h, w) of the activation.
        public var coarseSize: (height: Int, width: Int)
    }

    public let model: DifferentiableModel
    /// The activation's name.
    public var layer: String
    /// Keep only the positive part of the map (the paper's choice).
    public var relu: Bool
    /// Instances per device batch (nil: sized from the device's memory).
    public var rowsPerChunk: Int?

    public var name: String { "grad-cam" }

    /// - Parameter model: a `DifferentiableModel` built from a `Model` whose inputs are [C, H, W].
    public init(model: DifferentiableModel, layer: String, relu: Bool = true, rowsPerChunk: Int? = nil) {
        self.model = model
        self.layer = layer
        self.relu = relu
        self.rowsPerChunk = rowsPerChunk
    }

    public func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation {
        try explainWithCoarseMap(instances: instances, targets: targets).explanation
    }

    /// The upsampled maps and the coarse ones.
    /// - Throws: `ExplainError` when the input is not an image, the layer does not exist or is not
    ///   [K, h, w], or sizes disagree.
    public func explainWithCoarseMap(instances: [Float], targets: AttributionTargets) throws -> Result {
        let start = DispatchTime.now()
        guard model.inputShape.count == 3 else {
            throw ExplainError("grad-cam: the model input \(model.inputShape) is not an image [C, H, W]")
        }
        let setup = try AttributionSetup(model: model, instances: instances, targets: targets, rowsPerChunk: rowsPerChunk)
        let d = model.elementCount, n = setup.instanceCount, slots = targets.outputCount, c = model.classCount
        let (height, width) = (model.inputShape[1], model.inputShape[2])
        var coarse: [Double] = [], upsampled: [Double] = []
        var coarseSize = (height: 0, width: 0)
        var outputs = [Float](repeating: 0, count: n * c)
        var evaluations = 0
        var first = 0
        while first < n {
            let rows = min(setup.rowsPerChunk, n - first)
            let batch = try Tensor(Array(instances[(first * d)..<((first + rows) * d)]), shape: [rows] + model.inputShape, engine: model.engine)
            let classes = (first..<(first + rows)).map { targets.classes(instance: $0) }
            let result = try model.gradients(batch: batch, classes: classes, capture: layer)
            guard let a = result.activation, let shape = result.activationShape, shape.count == 4 else {
                throw ExplainError("grad-cam: activation '\(layer)' has shape \(result.activationShape ?? []), not [batch, K, h, w]")
            }
            let (k, h, w) = (shape[1], shape[2], shape[3])
            coarseSize = (h, w)
            if coarse.isEmpty {
                coarse = [Double](repeating: 0, count: n * h * w * slots)
                upsampled = [Double](repeating: 0, count: n * height * width * slots)
            }
            for r in 0..<rows {
                let i = first + r
                for t in 0..<slots {
                    let map = Self.map(activation: a[(r * k * h * w)..<((r + 1) * k * h * w)],
                                       gradient: result.activationGradients[t][(r * k * h * w)..<((r + 1) * k * h * w)],
                                       channels: k, height: h, width: w, relu: relu)
                    for p in 0..<(h * w) { coarse[(i * h * w + p) * slots + t] = map[p] }
                    let big = Self.upsample(map, from: (h, w), to: (height, width))
                    for p in 0..<(height * width) { upsampled[(i * height * width + p) * slots + t] = big[p] }
                }
            }
            outputs.replaceSubrange((first * c)..<((first + rows) * c), with: result.outputs)
            evaluations += rows * (1 + slots)
            first += rows
        }
        let explanation = try Explanation(method: name, instanceCount: n, featureCount: height * width, outputCount: slots,
                                          values: upsampled, outputs: setup.targetOutputs(outputs), modelEvaluations: evaluations,
                                          seconds: AttributionSetup.seconds(since: start),
                                          settings: ["layer": .string(layer), "relu": .bool(relu), "coarse": .ints([coarseSize.height, coarseSize.width]),
                                                     "targets": .string(targets.description), "rows_per_chunk": .int(setup.rowsPerChunk)])
        return Result(explanation: explanation, coarse: coarse, coarseSize: coarseSize)
    }

    /// Σ_k α_k A_k (then ReLU) for one activation A [K, h, w] and its gradient G, α_k the mean of G_k.
    static func map(activation a: ArraySlice<Float>, gradient g: ArraySlice<Float>, channels k: Int, height h: Int, width w: Int,
                    relu: Bool) -> [Double] {
        let plane = h * w, a0 = a.startIndex, g0 = g.startIndex
        var map = [Double](repeating: 0, count: plane)
        for ch in 0..<k {
            var alpha = 0.0
            for p in 0..<plane { alpha += Double(g[g0 + ch * plane + p]) }
            alpha /= Double(plane)
            for p in 0..<plane { map[p] += alpha * Double(a[a0 + ch * plane + p]) }
        }
        return relu ? map.map { Swift.max($0, 0) } : map
    }

    /// Bilinear resampling of a row-major map, as PyTorch's `interpolate(mode: "bilinear",
    /// align_corners: False)`: output pixel centres map to (o + ½)·in/out − ½, clamped at 0.
    public static func upsample(_ map: [Double], from source: (height: Int, width: Int), to target: (height: Int, width: Int)) -> [Double] {
        func taps(_ o: Int, _ inSize: Int, _ outSize: Int) -> (Int, Int, Double) {
            let s = Swift.max(0, (Double(o) + 0.5) * Double(inSize) / Double(outSize) - 0.5)
            let i0 = Swift.min(Int(s), inSize - 1)
            return (i0, Swift.min(i0 + 1, inSize - 1), s - Double(i0))
        }
        var out = [Double](repeating: 0, count: target.height * target.width)
        for y in 0..<target.height {
            let (y0, y1, ly) = taps(y, source.height, target.height)
            for x in 0..<target.width {
                let (x0, x1, lx) = taps(x, source.width, target.width)
                let top = (1 - lx) * map[y0 * source.width + x0] + lx * map[y0 * source.width + x1]
                let bottom = (1 - lx) * map[y1 * source.width + x0] + lx * map[y1 * source.width + x1]
                out[y * target.width + x] = (1 - ly) * top + ly * bottom
            }
        }
        return out
    }
}
