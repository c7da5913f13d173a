import PrismExplain

/// Pictures of one image explanation.
public enum Heatmap {
    /// A single-channel image ([height, width] values, any range) in grey levels scaled to its own
    /// minimum and maximum.
    public static func image(_ values: [Float], width: Int, height: Int, colormap: Colormap = .gray) throws -> RGBImage {
        guard values.count == width * height, width > 0, height > 0 else {
            throw ReportError("heatmap: \(values.count) values do not make a \(width)×\(height) image")
        }
        let low = Double(values.min()!), high = Double(values.max()!)
        let span = high > low ? high - low : 1
        var out = RGBImage(width: width, height: height)
        for y in 0..<height { for x in 0..<width { out[x, y] = colormap.color((Double(values[y * width + x]) - low) / span) } }
        return out
    }

    /// An input image [channels, height, width] as a picture: one channel in grey levels scaled to its
    /// own minimum and maximum; three channels as RGB, values in [0, 1] (pixel space, as `ToTensor`
    /// gives) mapped to 0…255 and clipped; any other count as the mean over channels in grey levels.
    public static func input(_ values: [Float], channels: Int, width: Int, height: Int) throws -> RGBImage {
        let plane = width * height
        guard channels > 0, width > 0, height > 0, values.count == channels * plane else {
            throw ReportError("picture: \(values.count) values do not make a \(channels)×\(height)×\(width) image")
        }
        switch channels {
        case 1:
            return try image(values, width: width, height: height)
        case 3:
            var out = RGBImage(width: width, height: height)
            func level(_ v: Float) -> UInt8 { UInt8((Double(v) * 255).rounded().clamped(0, 255)) }
            for p in 0..<plane {
                out[p % width, p / width] = (level(values[p]), level(values[plane + p]), level(values[2 * plane + p]))
            }
            return out
        default:
            let mean = (0..<plane).map { p in (0..<channels).reduce(Float(0)) { $0 + values[$1 * plane + p] } / Float(channels) }
            return try image(mean, width: width, height: height)
        }
    }

    /// Per-pixel attributions from per-feature values: every pixel takes the value of its feature.
    public static func pixelValues(_ featureValues: [Double], groups: FeatureGroups) throws -> [Double] {
        guard featureValues.count == groups.featureCount else {
            throw ReportError("heatmap: \(featureValues.count) values for \(groups.featureCount) features")
        }
        return groups.elementFeature.map { $0 < 0 ? 0 : featureValues[Int($0)] }
    }

    /// Signed attributions on the diverging map, symmetric around zero (white), scaled to the largest
    /// magnitude (or `limit`).
    public static func attribution(_ values: [Double], width: Int, height: Int, limit: Double? = nil) throws -> RGBImage {
        guard values.count == width * height, width > 0, height > 0 else {
            throw ReportError("heatmap: \(values.count) values do not make a \(width)×\(height) image")
        }
        let scale = limit ?? values.map { abs($0) }.max() ?? 1
        let s = scale > 0 ? scale : 1
        var out = RGBImage(width: width, height: height)
        for y in 0..<height { for x in 0..<width { out[x, y] = Colormap.diverging.color(0.5 + 0.5 * values[y * width + x] / s) } }
        return out
    }

    /// `top` blended over `bottom` with weight `alpha` for `top`.
    public static func blend(_ bottom: RGBImage, _ top: RGBImage, alpha: Double = 0.6) throws -> RGBImage {
        guard bottom.width == top.width, bottom.height == top.height else {
            throw ReportError("heatmap: cannot blend \(top.width)×\(top.height) over \(bottom.width)×\(bottom.height)")
        }
        var out = bottom
        for i in out.pixels.indices {
            out.pixels[i] = UInt8((Double(bottom.pixels[i]) * (1 - alpha) + Double(top.pixels[i]) * alpha).rounded().clamped(0, 255))
        }
        return out
    }
}
