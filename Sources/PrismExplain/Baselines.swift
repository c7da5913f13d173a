import Foundation

/// Reference inputs x′ built from data: the per-element mean of a background set, and a blurred copy
/// of each instance (the "blur" baseline of Integrated Gradients and of shap's image maskers, which
/// keeps coarse shape and removes detail).
extension AttributionBaseline {
    /// The per-element mean of `rows` ([count, elementCount] row-major) as one baseline input.
    /// - Throws: `ExplainError` when `rows` is empty or not whole rows.
    public static func mean(of rows: [Float], elementCount d: Int) throws -> AttributionBaseline {
        guard d > 0, !rows.isEmpty, rows.count % d == 0 else {
            throw ExplainError("mean baseline: \(rows.count) values are not whole rows of \(d)")
        }
        let n = rows.count / d
        var sum = [Double](repeating: 0, count: d)
        for r in 0..<n { for j in 0..<d { sum[j] += Double(rows[r * d + j]) } }
        return .values(sum.map { Float($0 / Double(n)) })
    }

    /// Each instance blurred by a Gaussian of standard deviation `sigma` pixels, one baseline per instance.
    /// - Parameter shape: [channels, height, width] of one instance.
    /// - Throws: `ExplainError` for a shape that is not an image, a non-positive σ or values that are not whole instances.
    public static func blurred(_ instances: [Float], shape: [Int], sigma: Double) throws -> AttributionBaseline {
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }) else { throw ExplainError("blur baseline: shape \(shape) is not an image [C, H, W]") }
        let (hw, o1) = shape[1].multipliedReportingOverflow(by: shape[2])
        let (d, o2) = shape[0].multipliedReportingOverflow(by: hw)
        guard !o1, !o2, !instances.isEmpty, instances.count % d == 0 else {
            throw ExplainError("blur baseline: \(instances.count) values are not whole images of shape \(shape)")
        }
        var out: [Float] = []
        out.reserveCapacity(instances.count)
        for start in stride(from: 0, to: instances.count, by: d) {
            out += try gaussianBlur(Array(instances[start..<(start + d)]), channels: shape[0], height: shape[1], width: shape[2], sigma: sigma)
        }
        return .values(out)
    }

    /// A separable Gaussian blur of a [channels, height, width] image; the kernel (radius ⌈3σ⌉) is
    /// renormalized where it meets the border, so a constant image stays constant.
    ///
    /// Taps past the image's longer side never touch a pixel, so the radius is capped there: the
    /// result is the same, and a huge σ (1e30) gives each channel's mean instead of a radius too
    /// large for an `Int`. Weights are exp(−(k/σ)²/2), which stays defined where σ² underflows.
    /// - Throws: `ExplainError` for a non-positive or non-finite σ or a size mismatch.
    public static func gaussianBlur(_ image: [Float], channels: Int, height: Int, width: Int, sigma: Double) throws -> [Float] {
        guard sigma > 0, sigma.isFinite else { throw ExplainError("blur: sigma must be a positive number, got \(sigma)") }
        let (plane, o1) = height.multipliedReportingOverflow(by: width)
        let (size, o2) = channels.multipliedReportingOverflow(by: plane)
        guard channels > 0, height > 0, width > 0, !o1, !o2, image.count == size else {
            throw ExplainError("blur: \(image.count) values are not a \(channels)×\(height)×\(width) image")
        }
        let longest = max(height, width) - 1
        let radius = 3 * sigma >= Double(longest) ? longest : Int((3 * sigma).rounded(.up))
        let kernel = (-radius...radius).map { k -> Double in
            let z = Double(k) / sigma
            return exp(-0.5 * z * z)
        }
        // One pass along rows (step 1) or columns (step width).
        func pass(_ input: [Double], along length: Int, count other: Int, step: Int, otherStep: Int) -> [Double] {
            var output = input
            for c in 0..<channels {
                let plane = c * height * width
                for o in 0..<other {
                    for i in 0..<length {
                        var sum = 0.0, weight = 0.0
                        for k in max(-radius, -i)...min(radius, length - 1 - i) {
                            let w = kernel[k + radius]
                            sum += w * input[plane + o * otherStep + (i + k) * step]
                            weight += w
                        }
                        output[plane + o * otherStep + i * step] = sum / weight
                    }
                }
            }
            return output
        }
        var values = image.map(Double.init)
        values = pass(values, along: width, count: height, step: 1, otherStep: width)
        values = pass(values, along: height, count: width, step: width, otherStep: 1)
        return values.map(Float.init)
    }
}
