import Foundation

/// How an input image whose size differs from the model's is brought to the model's size.
public enum ResizeFilter: String, Sendable {
    /// Bilinear (triangle) resampling with antialiasing, the weights of PIL's `Image.resize(…,
    /// Image.BILINEAR)` and of torchvision's `Resize(…, antialias=True)`: when shrinking by a
    /// factor s the triangle is widened to a support of s input pixels on each side, so every
    /// input pixel contributes; when enlarging it is plain bilinear interpolation with pixel
    /// centres at half-integers. Each pass sums in Double and stores Float (agreeing with
    /// torchvision on tensors and PIL on mode "F" images within 2e-6 in the tests); PIL on 8-bit
    /// images also rounds to 8 bits, so it can differ by up to 1/255 from this.
    case bilinear
    /// No resizing: an image of another size is refused.
    case none
}

/// Separable image resampling.
public enum ImageResize {
    /// Resizes C × H × W values to C × outHeight × outWidth with `ResizeFilter.bilinear`: a
    /// horizontal pass, then a vertical one (PIL's order).
    ///
    /// The weights are PIL's (`precompute_coeffs` in `Resample.c`): for output pixel o along an axis
    /// of input size n and output size m, with scale = n / m and s = max(scale, 1), the centre is
    /// (o + 0.5)·scale; input pixels i in [trunc(centre − s + 0.5), trunc(centre + s + 0.5)) ∩ [0, n)
    /// get weight max(0, 1 − |(i − centre + 0.5) / s|), normalized to sum 1.
    public static func bilinear(_ values: [Float], channels: Int, height: Int, width: Int,
                                toHeight outHeight: Int, toWidth outWidth: Int) -> [Float] {
        precondition(values.count == channels * height * width && outHeight > 0 && outWidth > 0)
        var current = values, h = height
        if outWidth != width {
            let weights = coefficients(inSize: width, outSize: outWidth)
            var next = [Float](repeating: 0, count: channels * h * outWidth)
            for row in 0..<(channels * h) {
                let source = row * width, target = row * outWidth
                for (o, w) in weights.enumerated() {
                    var sum: Double = 0
                    for (k, c) in w.weights.enumerated() { sum += c * Double(current[source + w.first + k]) }
                    next[target + o] = Float(sum)
                }
            }
            current = next
        }
        if outHeight != height {
            let weights = coefficients(inSize: h, outSize: outHeight)
            var next = [Float](repeating: 0, count: channels * outHeight * outWidth)
            for c in 0..<channels {
                for (o, w) in weights.enumerated() {
                    for x in 0..<outWidth {
                        var sum: Double = 0
                        for (k, wk) in w.weights.enumerated() { sum += wk * Double(current[(c * h + w.first + k) * outWidth + x]) }
                        next[(c * outHeight + o) * outWidth + x] = Float(sum)
                    }
                }
            }
            current = next
            h = outHeight
        }
        return current
    }

    /// Per output pixel: the first input pixel and the normalized weights of the inputs from there.
    static func coefficients(inSize: Int, outSize: Int) -> [(first: Int, weights: [Double])] {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1), support = filterScale  // the triangle's support is 1
        let ss = 1 / filterScale
        return (0..<outSize).map { o in
            let center = (Double(o) + 0.5) * scale
            let first = max(Int(center - support + 0.5), 0)
            let end = min(Int(center + support + 0.5), inSize)
            var weights = (first..<end).map { i in max(0, 1 - abs((Double(i) - center + 0.5) * ss)) }
            let total = weights.reduce(0, +)
            if total != 0 { weights = weights.map { $0 / total } }
            return (first, weights)
        }
    }
}
