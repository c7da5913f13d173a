/// Maps numbers to colours.
public struct Colormap: Sendable {
    /// Colour stops at evenly spaced positions in [0, 1].
    public let stops: [(Double, Double, Double)]

    public init(stops: [(Double, Double, Double)]) { self.stops = stops }

    /// The colour at t ∈ [0, 1] (clamped; NaN maps to the middle), interpolated linearly between stops.
    public func color(_ t: Double) -> (UInt8, UInt8, UInt8) {
        let u = t.isNaN ? 0.5 : min(max(t, 0), 1)
        let x = u * Double(stops.count - 1)
        let i = min(Int(x), stops.count - 2), f = x - Double(i)
        let a = stops[i], b = stops[i + 1]
        func mix(_ p: Double, _ q: Double) -> UInt8 { UInt8((p + (q - p) * f).rounded().clamped(0, 255)) }
        return (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// Signed attributions, centred at zero: blue (negative) – white – red (positive), the colours of
    /// shap's image plots (#008bfb and #ff0051).
    public static let diverging = Colormap(stops: [(0, 139, 251), (255, 255, 255), (255, 0, 81)])

    /// Magnitudes: viridis (perceptually uniform), sampled at nine points.
    public static let viridis = Colormap(stops: [
        (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
        (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37),
    ])

    /// Grey levels for inputs.
    public static let gray = Colormap(stops: [(0, 0, 0), (255, 255, 255)])
}

extension Double {
    func clamped(_ low: Double, _ high: Double) -> Double { Swift.min(Swift.max(self, low), high) }
}
