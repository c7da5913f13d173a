import Foundation

private let red = "#ff0051", blue = "#008bfb"

/// Horizontal bars of mean |φ| per feature, largest first; past `maxDisplay` the rest are summed into
/// one "sum of N other features" bar (as shap's bar plot). One mark per bar drawn.
public struct BarPlot {
    public var names: [String]
    public var values: [Double]
    public var maxDisplay: Int
    public var title: String
    public var xLabel: String

    public init(names: [String], values: [Double], maxDisplay: Int = 12, title: String = "", xLabel: String = "mean |φ|") {
        (self.names, self.values, self.maxDisplay, self.title, self.xLabel) = (names, values, maxDisplay, title, xLabel)
    }

    /// The bars drawn, top to bottom: (label, value).
    public func bars() throws -> [(String, Double)] {
        try requireFinite(values, "bar plot")
        guard names.count == values.count else { throw ReportError("bar plot: \(names.count) names for \(values.count) values") }
        guard maxDisplay >= 1 else { throw ReportError("bar plot: maxDisplay must be at least 1") }
        let order = values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }
        if order.count <= maxDisplay { return order.map { (names[$0], values[$0]) } }
        let shown = order.prefix(maxDisplay - 1).map { (names[$0], values[$0]) }
        let rest = order.dropFirst(maxDisplay - 1)
        return shown + [("sum of \(rest.count) other features", rest.reduce(0) { $0 + values[$1] })]
    }

    public func svg() throws -> String {
        let bars = try bars()
        let rowHeight = 22.0, left = 200.0, top = title.isEmpty ? 16.0 : 40.0
        let width = 640.0, height = top + Double(bars.count) * rowHeight + 50
        var doc = SVGDocument(width: width, height: height)
        if !title.isEmpty { doc.text(title, x: width / 2, y: 22, anchor: "middle", size: 15, weight: "bold") }
        let (lo, hi) = Scale.domain(bars.map(\.1), include: [0])
        let x = Scale(lo: lo, hi: hi, from: left, to: width - 60)
        axis(&doc, x, y: top + Double(bars.count) * rowHeight + 4, label: xLabel, width: width)
        doc.line(x(0), top - 4, x(0), top + Double(bars.count) * rowHeight, stroke: "#666")
        for (k, (name, value)) in bars.enumerated() {
            let y = top + Double(k) * rowHeight
            doc.rect(x: min(x(0), x(value)), y: y + 3, width: abs(x(value) - x(0)), height: rowHeight - 6,
                     fill: value >= 0 ? red : blue, mark: true, title: "\(name): \(value)")
            doc.text(name, x: left - 8, y: y + rowHeight / 2 + 4, anchor: "end", size: 11)
            doc.text(tickLabel(value), x: max(x(0), x(value)) + 4, y: y + rowHeight / 2 + 4, size: 10, fill: "#555")
        }
        return doc.render()
    }

    public func write(to url: URL) throws { try writeText(try svg(), to: url) }
}

/// shap's summary plot for tabular data: a row per feature (by mean |φ|, largest on top), one dot per
/// instance at x = φ, stacked vertically where dots would overlap, coloured by the instance's feature
/// value (blue low → red high, scaled per feature between its 5th and 95th percentiles).
public struct BeeswarmPlot {
    public var featureNames: [String]
    /// [instances][features] row-major.
    public var values: [Double]
    /// [instances][features] row-major.
    public var featureValues: [Double]
    public var maxDisplay: Int
    public var title: String

    public init(featureNames: [String], values: [Double], featureValues: [Double], maxDisplay: Int = 12, title: String = "") {
        (self.featureNames, self.values, self.featureValues, self.maxDisplay, self.title) = (featureNames, values, featureValues, maxDisplay, title)
    }

    public func svg() throws -> String {
        let m = featureNames.count
        try requireFinite(values, "beeswarm")
        try requireFinite(featureValues, "beeswarm feature values")
        guard m > 0, values.count % m == 0, featureValues.count == values.count else {
            throw ReportError("beeswarm: \(values.count) values and \(featureValues.count) feature values for \(m) features")
        }
        let n = values.count / m
        let meanAbs = (0..<m).map { j in (0..<n).reduce(0.0) { $0 + abs(values[$1 * m + j]) } / Double(n) }
        let shown = Array((0..<m).sorted { meanAbs[$0] > meanAbs[$1] }.prefix(maxDisplay))
        let rowHeight = 36.0, left = 200.0, top = title.isEmpty ? 16.0 : 40.0
        let width = 680.0, height = top + Double(shown.count) * rowHeight + 56
        var doc = SVGDocument(width: width, height: height)
        if !title.isEmpty { doc.text(title, x: width / 2, y: 22, anchor: "middle", size: 15, weight: "bold") }
        let (lo, hi) = Scale.domain(shown.flatMap { j in (0..<n).map { values[$0 * m + j] } }, include: [0])
        let x = Scale(lo: lo, hi: hi, from: left, to: width - 90)
        axis(&doc, x, y: top + Double(shown.count) * rowHeight + 4, label: "φ (impact on the model output)", width: width)
        doc.line(x(0), top - 4, x(0), top + Double(shown.count) * rowHeight, stroke: "#666")
        let radius = 3.0
        for (k, j) in shown.enumerated() {
            let centre = top + (Double(k) + 0.5) * rowHeight
            doc.text(featureNames[j], x: left - 8, y: centre + 4, anchor: "end", size: 11)
            let column = (0..<n).map { featureValues[$0 * m + j] }.sorted()
            let p5 = column[Int(0.05 * Double(n - 1))], p95 = column[Int(0.95 * Double(n - 1))]
            // Stack dots in bins of one diameter: alternate above and below the centre line.
            var occupied: [Int: Int] = [:]
            for i in (0..<n).sorted(by: { values[$0 * m + j] < values[$1 * m + j] }) {
                let px = x(values[i * m + j])
                let bin = Int((px / (2 * radius)).rounded())
                let count = occupied[bin, default: 0]
                occupied[bin] = count + 1
                let offset = Double((count + 1) / 2) * (count % 2 == 0 ? 1 : -1) * 1.6 * radius
                let t = p95 > p5 ? (featureValues[i * m + j] - p5) / (p95 - p5) : 0.5
                doc.circle(x: px, y: centre + max(-rowHeight / 2 + radius, min(rowHeight / 2 - radius, offset)), r: radius,
                           fill: SVGDocument.color(Colormap.diverging.color(t)))
            }
        }
        // Colour bar.
        let barX = width - 60, barTop = top, barHeight = max(60, Double(shown.count) * rowHeight - 20)
        for s in 0..<20 {
            doc.rect(x: barX, y: barTop + barHeight * Double(19 - s) / 20, width: 10, height: barHeight / 20 + 0.5,
                     fill: SVGDocument.color(Colormap.diverging.color(Double(s) / 19)))
        }
        doc.text("high", x: barX + 14, y: barTop + 8, size: 10)
        doc.text("low", x: barX + 14, y: barTop + barHeight, size: 10)
        doc.text("feature value", x: barX + 5, y: barTop + barHeight + 16, anchor: "middle", size: 10)
        return doc.render()
    }

    public func write(to url: URL) throws { try writeText(try svg(), to: url) }
}

/// One instance from the base value E[f] to f(x): features by |φ| (largest on top), the rest summed
/// into "N other features"; each bar starts where the previous one ended, red for φ > 0, blue below.
public struct WaterfallPlot {
    public var names: [String]
    public var values: [Double]
    public var baseValue: Double
    public var maxDisplay: Int
    public var title: String

    public init(names: [String], values: [Double], baseValue: Double, maxDisplay: Int = 10, title: String = "") {
        (self.names, self.values, self.baseValue, self.maxDisplay, self.title) = (names, values, baseValue, maxDisplay, title)
    }

    /// The bars drawn, top to bottom: (label, start, end).
    public func bars() throws -> [(String, Double, Double)] {
        try requireFinite(values + [baseValue], "waterfall")
        guard names.count == values.count else { throw ReportError("waterfall: \(names.count) names for \(values.count) values") }
        let order = values.indices.sorted { abs(values[$0]) > abs(values[$1]) }
        var items = order.prefix(maxDisplay).map { (names[$0], values[$0]) }
        if order.count > maxDisplay {
            let rest = order.dropFirst(maxDisplay)
            items.append(("\(rest.count) other features", rest.reduce(0) { $0 + values[$1] }))
        }
        // Accumulate from the base value, smallest contributions first (the bottom of the plot).
        var position = baseValue
        var bars: [(String, Double, Double)] = []
        for (name, value) in items.reversed() {
            bars.append((name, position, position + value))
            position += value
        }
        return bars.reversed()
    }

    public func svg() throws -> String {
        let bars = try bars()
        let fx = bars.first?.2 ?? baseValue
        let rowHeight = 24.0, left = 200.0, top = title.isEmpty ? 30.0 : 54.0
        let width = 640.0, height = top + Double(bars.count) * rowHeight + 60
        var doc = SVGDocument(width: width, height: height)
        if !title.isEmpty { doc.text(title, x: width / 2, y: 22, anchor: "middle", size: 15, weight: "bold") }
        let (lo, hi) = Scale.domain(bars.flatMap { [$0.1, $0.2] })
        let x = Scale(lo: lo, hi: hi, from: left, to: width - 40)
        let bottom = top + Double(bars.count) * rowHeight
        axis(&doc, x, y: bottom + 4, label: "model output", width: width)
        doc.line(x(baseValue), top, x(baseValue), bottom + 4, stroke: "#888", dash: true)
        doc.text("E[f(X)] = \(tickLabel(baseValue))", x: x(baseValue), y: bottom + 42, anchor: "middle", size: 11)
        doc.line(x(fx), top - 14, x(fx), bottom, stroke: "#888", dash: true)
        doc.text("f(x) = \(tickLabel(fx))", x: x(fx), y: top - 18, anchor: "middle", size: 11)
        for (k, (name, start, end)) in bars.enumerated() {
            let y = top + Double(k) * rowHeight
            doc.rect(x: min(x(start), x(end)), y: y + 3, width: abs(x(end) - x(start)), height: rowHeight - 6,
                     fill: end >= start ? red : blue, mark: true, title: "\(name): \(end - start)")
            doc.text(name, x: left - 8, y: y + rowHeight / 2 + 4, anchor: "end", size: 11)
            let label = (end >= start ? "+" : "") + tickLabel(end - start)
            doc.text(label, x: max(x(start), x(end)) + 4, y: y + rowHeight / 2 + 4, size: 10, fill: "#555")
        }
        return doc.render()
    }

    public func write(to url: URL) throws { try writeText(try svg(), to: url) }
}

/// Lines over a shared x axis (deletion and insertion curves, training curves): one mark per point.
public struct LinePlot {
    public struct Series {
        public var name: String
        public var x: [Double]
        public var y: [Double]
        public var dashed: Bool
        public init(name: String, x: [Double], y: [Double], dashed: Bool = false) {
            (self.name, self.x, self.y, self.dashed) = (name, x, y, dashed)
        }
    }

    public var series: [Series]
    public var title: String
    public var xLabel: String
    public var yLabel: String

    public init(series: [Series], title: String = "", xLabel: String = "", yLabel: String = "") {
        (self.series, self.title, self.xLabel, self.yLabel) = (series, title, xLabel, yLabel)
    }

    static let palette = ["#ff0051", "#008bfb", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#555555"]

    public func svg() throws -> String {
        guard !series.isEmpty else { throw ReportError("line plot: no series") }
        for s in series {
            guard s.x.count == s.y.count, !s.x.isEmpty else { throw ReportError("line plot: series '\(s.name)' has \(s.x.count) x and \(s.y.count) y values") }
            try requireFinite(s.x + s.y, "line plot '\(s.name)'")
        }
        let width = 560.0, height = 360.0, left = 64.0, right = 180.0, top = title.isEmpty ? 20.0 : 44.0, bottom = 56.0
        var doc = SVGDocument(width: width, height: height)
        if !title.isEmpty { doc.text(title, x: (left + width - right) / 2, y: 22, anchor: "middle", size: 15, weight: "bold") }
        let (xlo, xhi) = Scale.domain(series.flatMap(\.x)), (ylo, yhi) = Scale.domain(series.flatMap(\.y))
        let x = Scale(lo: xlo, hi: xhi, from: left, to: width - right), y = Scale(lo: ylo, hi: yhi, from: height - bottom, to: top)
        axis(&doc, x, y: height - bottom, label: xLabel, width: width - right + left)
        for t in y.ticks() {
            doc.line(left - 4, y(t), width - right, y(t), stroke: "#eee")
            doc.text(tickLabel(t), x: left - 8, y: y(t) + 4, anchor: "end", size: 10)
        }
        doc.add("<text x=\"14\" y=\"\(SVGDocument.number((top + height - bottom) / 2))\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 14 \(SVGDocument.number((top + height - bottom) / 2)))\">\(SVGDocument.escape(yLabel))</text>")
        for (k, s) in series.enumerated() {
            let color = Self.palette[k % Self.palette.count]
            doc.polyline(zip(s.x, s.y).map { (x($0), y($1)) }, stroke: color, dash: s.dashed)
            for (a, b) in zip(s.x, s.y) { doc.circle(x: x(a), y: y(b), r: 2.5, fill: color) }
            let ly = top + 8 + Double(k) * 18
            doc.line(width - right + 12, ly, width - right + 36, ly, stroke: color, width: 2, dash: s.dashed)
            doc.text(s.name, x: width - right + 42, y: ly + 4, size: 11)
        }
        return doc.render()
    }

    public func write(to url: URL) throws { try writeText(try svg(), to: url) }
}

/// Attention maps per layer (rows) and head (columns): each a small heatmap of [rows × columns]
/// cells on the sequential colormap, scaled to its own maximum. One mark per cell.
public struct AttentionGridPlot {
    /// [layers][heads][rows·columns] row-major.
    public var maps: [[[Double]]]
    public var rows: Int
    public var columns: Int
    public var title: String

    public init(maps: [[[Double]]], rows: Int, columns: Int, title: String = "") {
        (self.maps, self.rows, self.columns, self.title) = (maps, rows, columns, title)
    }

    public func svg() throws -> String {
        guard !maps.isEmpty, !maps[0].isEmpty, rows > 0, columns > 0 else { throw ReportError("attention grid: no maps") }
        for (l, layer) in maps.enumerated() {
            guard layer.count == maps[0].count else { throw ReportError("attention grid: layer \(l) has \(layer.count) heads, layer 0 \(maps[0].count)") }
            for map in layer {
                guard map.count == rows * columns else { throw ReportError("attention grid: a map of \(map.count) values is not \(rows)×\(columns)") }
                try requireFinite(map, "attention grid")
            }
        }
        let heads = maps[0].count
        let cell = max(4.0, min(24.0, 120.0 / Double(max(rows, columns))))
        let panelW = Double(columns) * cell, panelH = Double(rows) * cell, gap = 14.0, left = 70.0, top = title.isEmpty ? 30.0 : 54.0
        let width = left + Double(heads) * (panelW + gap) + 10, height = top + Double(maps.count) * (panelH + gap) + 10
        var doc = SVGDocument(width: width, height: height)
        if !title.isEmpty { doc.text(title, x: width / 2, y: 22, anchor: "middle", size: 15, weight: "bold") }
        for h in 0..<heads { doc.text("head \(h)", x: left + Double(h) * (panelW + gap) + panelW / 2, y: top - 8, anchor: "middle", size: 11) }
        for (l, layer) in maps.enumerated() {
            let y0 = top + Double(l) * (panelH + gap)
            doc.text("layer \(l)", x: left - 8, y: y0 + panelH / 2 + 4, anchor: "end", size: 11)
            for (h, map) in layer.enumerated() {
                let x0 = left + Double(h) * (panelW + gap)
                let high = map.max() ?? 1, low = map.min() ?? 0
                for r in 0..<rows {
                    for c in 0..<columns {
                        let v = map[r * columns + c]
                        doc.rect(x: x0 + Double(c) * cell, y: y0 + Double(r) * cell, width: cell, height: cell,
                                 fill: SVGDocument.color(Colormap.viridis.color(high > low ? (v - low) / (high - low) : 0.5)), mark: true)
                    }
                }
            }
        }
        return doc.render()
    }

    public func write(to url: URL) throws { try writeText(try svg(), to: url) }
}

/// An x axis with ticks and a label at pixel row `y`.
func axis(_ doc: inout SVGDocument, _ x: Scale, y: Double, label: String, width: Double) {
    doc.line(x.from, y, x.to, y, stroke: "#333")
    for t in x.ticks() where t >= x.lo && t <= x.hi {
        doc.line(x(t), y, x(t), y + 5, stroke: "#333")
        doc.text(tickLabel(t), x: x(t), y: y + 18, anchor: "middle", size: 10)
    }
    if !label.isEmpty { doc.text(label, x: (x.from + x.to) / 2, y: y + 36, anchor: "middle", size: 12) }
}
