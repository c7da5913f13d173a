import Foundation
import Prism
import PrismFiles

/// A small SVG document builder: escaped text, fixed number formatting, a viewBox so plots scale,
/// and the shared pieces of the plots (axes with 1-2-5 ticks, titles, legends). Every data point a
/// plot draws is an element with `class="mark"`, so tests can count them.
struct SVGDocument {
    let width: Double
    let height: Double
    private(set) var body: [String] = []

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func number(_ v: Double) -> String {
        guard v.isFinite else { return "0" }
        let s = String(format: "%.2f", v)
        return s.hasSuffix(".00") ? String(s.dropLast(3)) : s
    }

    static func color(_ c: (UInt8, UInt8, UInt8)) -> String { String(format: "#%02x%02x%02x", c.0, c.1, c.2) }

    mutating func add(_ element: String) { body.append(element) }

    mutating func rect(x: Double, y: Double, width w: Double, height h: Double, fill: String, mark: Bool = false, title: String? = nil) {
        let n = Self.number
        let tooltip = title.map { "<title>\(Self.escape($0))</title>" } ?? ""
        add("<rect\(mark ? " class=\"mark\"" : "") x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(max(w, 0)))\" height=\"\(n(max(h, 0)))\" fill=\"\(fill)\">\(tooltip)</rect>")
    }

    mutating func circle(x: Double, y: Double, r: Double, fill: String, mark: Bool = true) {
        let n = Self.number
        add("<circle\(mark ? " class=\"mark\"" : "") cx=\"\(n(x))\" cy=\"\(n(y))\" r=\"\(n(r))\" fill=\"\(fill)\"/>")
    }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String = "#999", width w: Double = 1, dash: Bool = false) {
        let n = Self.number
        add("<line x1=\"\(n(x1))\" y1=\"\(n(y1))\" x2=\"\(n(x2))\" y2=\"\(n(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(n(w))\"\(dash ? " stroke-dasharray=\"4 3\"" : "")/>")
    }

    mutating func polyline(_ points: [(Double, Double)], stroke: String, width w: Double = 2, dash: Bool = false) {
        let n = Self.number
        let list = points.map { "\(n($0.0)),\(n($0.1))" }.joined(separator: " ")
        add("<polyline points=\"\(list)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(n(w))\"\(dash ? " stroke-dasharray=\"6 4\"" : "")/>")
    }

    mutating func text(_ s: String, x: Double, y: Double, anchor: String = "start", size: Double = 12, weight: String? = nil, fill: String = "#222") {
        let n = Self.number
        add("<text x=\"\(n(x))\" y=\"\(n(y))\" text-anchor=\"\(anchor)\" font-size=\"\(n(size))\"\(weight.map { " font-weight=\"\($0)\"" } ?? "") fill=\"\(fill)\">\(Self.escape(s))</text>")
    }

    func render() -> String {
        let n = Self.number
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            + "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(n(width)) \(n(height))\" width=\"\(n(width))\" height=\"\(n(height))\" font-family=\"sans-serif\">\n"
            + "<rect x=\"0\" y=\"0\" width=\"\(n(width))\" height=\"\(n(height))\" fill=\"#ffffff\"/>\n"
            + body.joined(separator: "\n") + "\n</svg>\n"
    }
}

/// A linear scale from a data interval to a pixel interval.
struct Scale {
    let lo: Double, hi: Double, from: Double, to: Double

    func callAsFunction(_ v: Double) -> Double { from + (v - lo) / (hi - lo) * (to - from) }

    /// Ticks at 1-2-5 steps covering [lo, hi], about `count` of them.
    func ticks(_ count: Int = 5) -> [Double] {
        let span = hi - lo
        guard span > 0, span.isFinite else { return [lo] }
        let raw = span / Double(max(count, 1))
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var t = ceil(lo / step) * step
        var out: [Double] = []
        while t <= hi + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }

    /// A domain [lo, hi] that includes every value (and `include`), padded by 5% on each side.
    static func domain(_ values: [Double], include: [Double] = []) -> (Double, Double) {
        let all = values + include
        var lo = all.min() ?? 0, hi = all.max() ?? 1
        if lo == hi { lo -= 1; hi += 1 }
        let pad = 0.05 * (hi - lo)
        return (lo - pad, hi + pad)
    }
}

/// Formats a tick label compactly.
func tickLabel(_ v: Double) -> String {
    if v == 0 { return "0" }
    if abs(v) >= 1e4 || abs(v) < 1e-3 { return String(format: "%.1e", v) }
    var s = String(format: "%.3f", v)
    while s.hasSuffix("0") { s.removeLast() }
    if s.hasSuffix(".") { s.removeLast() }
    return s
}

/// Writes text atomically (temp file + rename).
func writeText(_ text: String, to url: URL) throws {
    try OutputFile(path: url.path).write(text)
}

/// Checks plot inputs: non-empty, finite.
func requireFinite(_ values: [Double], _ what: String) throws {
    guard !values.isEmpty else { throw ReportError("\(what): no data") }
    if let bad = values.firstIndex(where: { !$0.isFinite }) { throw ReportError("\(what): value \(bad) is \(values[bad])") }
}
