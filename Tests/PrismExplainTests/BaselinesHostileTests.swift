import Foundation
import PrismExplain
import PrismTestSupport
import Testing

/// Blur baselines at the edges of σ and of the image size: no trap (a radius ⌈3σ⌉ of 3e30 does
/// not fit an Int), no NaN (σ² underflows to 0 below about 1e-162), results against a direct sum.
@Suite struct BaselinesHostileTests {
    /// The untruncated blur, summed directly in two dimensions: pixel (y, x) of channel c is the
    /// mean of the channel weighted by exp(−((y−y′)² + (x−x′)²) / 2σ²).
    static func directBlur(_ image: [Float], channels: Int, height: Int, width: Int, sigma: Double) -> [Double] {
        var out = [Double](repeating: 0, count: image.count)
        for c in 0..<channels {
            for y in 0..<height {
                for x in 0..<width {
                    var sum = 0.0, weight = 0.0
                    for y2 in 0..<height {
                        for x2 in 0..<width {
                            let dy = Double(y - y2) / sigma, dx = Double(x - x2) / sigma
                            let w = exp(-0.5 * (dy * dy + dx * dx))
                            sum += w * Double(image[(c * height + y2) * width + x2])
                            weight += w
                        }
                    }
                    out[(c * height + y) * width + x] = sum / weight
                }
            }
        }
        return out
    }

    /// σ whose radius reaches past the image (up to the largest Double) blurs over the whole image,
    /// as the Gaussian does; a huge σ leaves each channel's mean.
    @Test(arguments: [4.0, 40.0, 1e30, 1e300, Double.greatestFiniteMagnitude])
    func largeSigmasBlurOverTheWholeImage(_ sigma: Double) throws {
        let (c, h, w) = (2, 5, 7)
        let image = seededFloats(c * h * w, seed: 90)
        let blurred = try AttributionBaseline.gaussianBlur(image, channels: c, height: h, width: w, sigma: sigma)
        expectClose(blurred, Self.directBlur(image, channels: c, height: h, width: w, sigma: sigma), atol: 1e-6, rtol: 1e-5, "σ \(sigma)")
        if sigma >= 1e30 {
            for ch in 0..<c {
                let plane = image[(ch * h * w)..<((ch + 1) * h * w)]
                let mean = plane.reduce(0.0) { $0 + Double($1) } / Double(h * w)
                expectClose(Array(blurred[(ch * h * w)..<((ch + 1) * h * w)]), [Double](repeating: mean, count: h * w), atol: 1e-6, rtol: 1e-5)
            }
        }
        guard case let .values(viaBaseline) = try AttributionBaseline.blurred(image, shape: [c, h, w], sigma: sigma) else {
            Issue.record("not values")
            return
        }
        #expect(viaBaseline == blurred)
    }

    /// σ so small that σ² underflows leaves the image as it is (the old weights divided 0 by 0).
    @Test(arguments: [1e-170, 1e-300, Double.leastNonzeroMagnitude])
    func tinySigmasLeaveTheImage(_ sigma: Double) throws {
        let image = seededFloats(3 * 4 * 6, seed: 91)
        #expect(try AttributionBaseline.gaussianBlur(image, channels: 3, height: 4, width: 6, sigma: sigma) == image)
    }

    @Test func invalidSigmasAndSizesAreRefusedInOneLine() throws {
        for sigma in [0, -1, .infinity, .nan] as [Double] {
            #expect(throws: ExplainError("blur: sigma must be a positive number, got \(sigma)")) {
                try AttributionBaseline.gaussianBlur([1], channels: 1, height: 1, width: 1, sigma: sigma)
            }
        }
        // Sizes whose product overflows are a mismatch, not a trap.
        #expect(throws: ExplainError("blur: 4 values are not a 2×4294967296×4294967296 image")) {
            try AttributionBaseline.gaussianBlur([1, 2, 3, 4], channels: 2, height: 1 << 32, width: 1 << 32, sigma: 1)
        }
        #expect(throws: ExplainError("blur baseline: 4 values are not whole images of shape [2, 4294967296, 4294967296]")) {
            try AttributionBaseline.blurred([1, 2, 3, 4], shape: [2, 1 << 32, 1 << 32], sigma: 1)
        }
    }
}
