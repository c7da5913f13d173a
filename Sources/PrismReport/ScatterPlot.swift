import Foundation

/// Points in two dimensions coloured by class, with a legend (the embedding view: examples projected
/// onto two principal components). One mark per point.
public struct ScatterPlot {
    public var x: [Double]
    public var y: [Double]
    /// Each point's class, an index into `classNames`.
    public var classes: [Int]
    public var classNames: [String]
    public var title: String
    public var xLabel: String
    public var yLabel: String

    public init(x: [Double], y: [Double], classes: [Int], classNames: [String], title: String = "", xLabel: String = "", yLabel: String = "") {
        (self.x, self.y, self.classes, self.classNames) = (x, y, classes, classNames)
        (self.title, self.xLabel, self.yLabel) = (title, xLabel, yLabel)
    }

    /// Matplotlib's tab10, then greys.
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    public func svg() throws -> String {
        guard !x.isEmpty, x.count == y.count, x.count == classes.count else {
            throw ReportError("scatter plot: \(x.count) x, \(y.count) y and \(classes.count) classes (need as many of each, at least one)")
        }
        if let bad = classes.first(where: { $0 < 0 || $0 >= classNames.count }) {
            throw ReportError("scatter plot: class \(bad) outside the \(classNames.count) class names")
        }
        try requireFinite(x + y, "scatter plot")
        let width = 600.0, height = 440.0, left = 64.0, right = 170.0, top = title.isEmpty ? 20.0 : 44.0, bottom = 56.0
        var doc = SVGDocument(width: width, height: height)
        if !title.isEmpty { doc.text(title, x: (left + width - right) / 2, y: 22, anchor: "middle", size: 15, weight: "bold") }
        let (xlo, xhi) = Scale.domain(x), (ylo, yhi) = Scale.domain(y)
        let sx = Scale(lo: xlo, hi: xhi, from: left, to: width - right), sy = Scale(lo: ylo, hi: yhi, from: height - bottom, to: top)
        axis(&doc, sx, y: height - bottom, label: xLabel, width: width - right + left)
        for t in sy.ticks() {
            doc.line(left - 4, sy(t), width - right, sy(t), stroke: "#eee")
            doc.text(tickLabel(t), x: left - 8, y: sy(t) + 4, anchor: "end", size: 10)
        }
        let middle = SVGDocument.number((top + height - bottom) / 2)
        doc.add("<text x=\"14\" y=\"\(middle)\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 14 \(middle))\">\(SVGDocument.escape(yLabel))</text>")
        let radius = x.count > 2000 ? 1.2 : 2.2
        for i in x.indices { doc.circle(x: sx(x[i]), y: sy(y[i]), r: radius, fill: Self.palette[classes[i] % Self.palette.count]) }
        for (k, name) in classNames.enumerated() {
            let ly = top + 8 + Double(k) * 18
            doc.circle(x: width - right + 20, y: ly, r: 4, fill: Self.palette[k % Self.palette.count], mark: false)
            doc.text(name, x: width - right + 30, y: ly + 4, size: 11)
        }
        return doc.render()
    }

    public func write(to url: URL) throws { try writeText(try svg(), to: url) }
}
