import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import PrismReport
import PrismTestSupport
import Testing

/// The SVG plots parse as XML, draw one mark per data point, and place marks where the data says.
@Suite struct SVGPlotTests {
    /// Parses `svg` and returns its `class="mark"` elements.
    func marks(_ svg: String) throws -> [XMLElement] {
        let document = try XMLDocument(xmlString: svg, options: [])
        #expect(document.rootElement()?.name == "svg")
        return try document.nodes(forXPath: "//*[@class='mark']").compactMap { $0 as? XMLElement }
    }

    /// An attribute's value (read from the list: swift-corelibs' `attribute(forName:)` finds nothing on
    /// elements in SVG's default namespace).
    func attribute(_ e: XMLElement, _ name: String) -> String? { e.attributes?.first { $0.name == name }?.stringValue }

    func number(_ e: XMLElement, _ name: String) -> Double { Double(attribute(e, name) ?? "") ?? .nan }

    @Test func barPlotSortsSumsTheRestAndEscapesNames() throws {
        let plot = BarPlot(names: ["a<b", "c&d", "e\"f", "g", "h"], values: [0.5, 2, 1, 0.25, 0.125], maxDisplay: 3)
        let bars = try plot.bars()
        #expect(bars.map(\.0) == ["c&d", "e\"f", "sum of 3 other features"])
        #expect(bars.map(\.1) == [2, 1, 0.875])
        let m = try marks(try plot.svg())
        #expect(m.count == 3)
        // Bars grow from the same origin; the longest is the largest value.
        #expect(Set(m.map { number($0, "x") }).count == 1)
        let widths = m.map { number($0, "width") }
        #expect(widths[0] > widths[1] && widths[1] > widths[2])
        #expect(abs(widths[1] / widths[0] - 0.5) < 0.01)
        #expect(throws: ReportError.self) { try BarPlot(names: ["a"], values: [.nan]).svg() }
        #expect(throws: ReportError.self) { try BarPlot(names: ["a", "b"], values: [1]).svg() }
    }

    @Test func beeswarmDrawsADotPerInstanceAndFeatureColouredByValue() throws {
        let n = 40, names = ["x", "y", "z"]
        var values: [Double] = [], features: [Double] = []
        for i in 0..<n {
            for j in 0..<3 {
                let v = Double(i) / Double(n - 1)
                features.append(v)
                values.append(Double(j + 1) * (v - 0.5))
            }
        }
        let m = try marks(try BeeswarmPlot(featureNames: names, values: values, featureValues: features).svg())
        #expect(m.count == 3 * n)
        // The highest feature value is the diverging map's red end, the lowest its blue end.
        let fills = Set(m.map { attribute($0, "fill") ?? "" })
        #expect(fills.contains("#ff0051") && fills.contains("#008bfb"))
        #expect(throws: ReportError.self) { try BeeswarmPlot(featureNames: names, values: [1, 2], featureValues: [1, 2]).svg() }
    }

    @Test func waterfallBarsChainFromTheBaseValueToTheOutput() throws {
        let plot = WaterfallPlot(names: ["a", "b", "c", "d"], values: [1.5, -0.5, 0.25, -2], baseValue: 3, maxDisplay: 3)
        let bars = try plot.bars()
        #expect(bars.map(\.0) == ["d", "a", "b", "1 other features"])
        // Each bar starts where the one below ends; the bottom starts at the base value, the top ends at f(x).
        for k in 0..<(bars.count - 1) { #expect(bars[k].1 == bars[k + 1].2) }
        #expect(bars.last!.1 == 3 && bars.first!.2 == 3 + 1.5 - 0.5 + 0.25 - 2)
        let m = try marks(try plot.svg())
        #expect(m.count == 4)
        #expect(m.map { attribute($0, "fill") ?? "" } == ["#008bfb", "#ff0051", "#008bfb", "#ff0051"])
    }

    @Test func linePlotMarksEveryPoint() throws {
        let plot = LinePlot(series: [.init(name: "deletion", x: [0, 0.5, 1], y: [1, 0.4, 0.1]),
                                     .init(name: "random", x: [0, 0.5, 1], y: [1, 0.7, 0.1], dashed: true)], title: "t", xLabel: "removed", yLabel: "p")
        let m = try marks(try plot.svg())
        #expect(m.count == 6)
        // Higher values sit higher (smaller y) at the same x.
        #expect(number(m[4], "cy") < number(m[1], "cy") && number(m[1], "cx") == number(m[4], "cx"))
        #expect(throws: ReportError.self) { try LinePlot(series: [.init(name: "a", x: [0, 1], y: [1])]).svg() }
    }

    @Test func attentionGridHasACellPerPatchLayerAndHead() throws {
        let maps = (0..<2).map { l in (0..<3).map { h in (0..<16).map { Double($0 + l + h) } } }
        let m = try marks(try AttentionGridPlot(maps: maps, rows: 4, columns: 4).svg())
        #expect(m.count == 2 * 3 * 16)
        // Each map is scaled to itself: its largest cell is viridis' yellow end.
        #expect(m.filter { attribute($0, "fill") == "#fde725" }.count == 6)
        #expect(throws: ReportError.self) { try AttentionGridPlot(maps: [[[1, 2, 3]]], rows: 2, columns: 2).svg() }
    }

    @Test func writeIsAtomicAndComplete() throws {
        let url = URL(fileURLWithPath: NSTemporaryDirectory() + "prism-bar-\(getpid()).svg")
        defer { try? FileManager.default.removeItem(at: url) }
        try BarPlot(names: ["a"], values: [1]).write(to: url)
        #expect(try marks(try String(contentsOf: url, encoding: .utf8)).count == 1)
    }
}
