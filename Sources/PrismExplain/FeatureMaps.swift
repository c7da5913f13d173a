import Foundation
import Prism
import PrismCL

/// Feature maps: each channel of a layer's output ([C, …] per example) for one input, and the test
/// examples that activate each channel most (by the channel's mean over its positions) — the classic
/// look inside a convolutional network (Zeiler & Fergus 2014's "top-9" patches, by whole example).
public enum FeatureMaps {
    /// Node `layer`'s output for one input: [channels][positions] with its per-example shape.
    /// - Throws: `ExplainError` when the layer's output has no channel axis.
    public static func maps(of model: Model, layer: String, input: [Float]) throws -> (values: [Float], shape: [Int]) {
        let engine = model.engine
        let x = try Tensor(input, shape: [1] + model.spec.inputShape, engine: engine)
        let a: Tensor = try engine.noGrad {
            guard let a = try model.forward(x, capture: [layer]).activations[layer] else { throw ExplainError("feature maps: the model has no layer '\(layer)'") }
            return a
        }
        guard a.rank >= 3 else { throw ExplainError("feature maps: '\(layer)' gives \(Array(a.shape.dropFirst())) per example, not channels of maps [C, H, W]") }
        return (try a.toArray(), Array(a.shape.dropFirst()))
    }

    /// For each channel of node `layer`, the `k` examples of `inputs` ([N] + input shape) with the
    /// largest mean activation over the channel's positions, best first (ties: the earlier example),
    /// with those means. The means are reduced on the device chunk by chunk, so no activation of the
    /// whole set is held.
    public static func topExamples(of model: Model, layer: String, inputs: [Float], k: Int, rowsPerChunk: Int = 256) throws
        -> [(indices: [Int], means: [Float])] {
        guard k >= 1 else { throw ExplainError("feature maps: k must be at least 1, got \(k)") }
        var channels = 0
        let means = try capturedChunks(of: model, layer: layer, inputs: inputs, rowsPerChunk: rowsPerChunk, for: "feature maps") { a, count in
            guard a.rank >= 3 else { throw ExplainError("feature maps: '\(layer)' gives \(Array(a.shape.dropFirst())) per example, not channels of maps") }
            channels = a.shape[1]
            return try a.reshaped([count, channels, a.count / (count * channels)]).mean(axis: 2).toArray()
        }.flatMap { $0 }
        let n = means.count / Swift.max(channels, 1)
        return (0..<channels).map { c in
            let order = (0..<n).sorted { a, b in
                let (ma, mb) = (means[a * channels + c], means[b * channels + c])
                return ma != mb ? ma > mb : a < b
            }.prefix(k)
            return (Array(order), order.map { means[$0 * channels + c] })
        }
    }
}
