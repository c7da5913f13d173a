import Foundation
import Prism
import PrismExplain
import PrismFiles

/// One self-contained HTML page (relative links only) showing explanations: figures for the whole
/// run (training curves, mean |φ| per feature…), then per example a row of pictures — the input and,
/// per method, the attribution heatmap and the overlay, side by side — with captions saying how each
/// was computed.
public struct HTMLReport {
    /// One example's row of pictures.
    public struct Example {
        public var title: String
        /// One paragraph per method (or one for the example).
        public var captions: [String]
        /// (file name relative to the report folder, alt text shown below the picture).
        public var images: [(String, String)]
        /// Plots of this example (waterfall, deletion/insertion curves): (file, caption).
        public var plots: [(String, String)]
        public init(title: String, captions: [String], images: [(String, String)], plots: [(String, String)] = []) {
            self.title = title
            self.captions = captions
            self.images = images
            self.plots = plots
        }
    }

    public var title: String
    public var summary: [String]
    /// Figures about the whole run, shown before the examples: (file, caption).
    public var figures: [(String, String)]
    public var examples: [Example]
    /// (file name relative to the report folder, description) of the data files.
    public var files: [(String, String)]
    /// Views of what the model has learned (feature maps, top examples, activation maximization, the
    /// embedding), shown after the examples under "Inside the model": (file, caption).
    public var inside: [(String, String)]
    /// Tables shown after the summary: a caption, the column headers and the rows (cells as text).
    public var tables: [(caption: String, header: [String], rows: [[String]])] = []
    /// Lines shown as warnings (highlighted) after the summary.
    public var warnings: [String] = []

    public init(title: String, summary: [String], figures: [(String, String)] = [], examples: [Example], files: [(String, String)],
                inside: [(String, String)] = []) {
        self.title = title
        self.summary = summary
        self.figures = figures
        self.examples = examples
        self.files = files
        self.inside = inside
    }

    /// Every file the page links to.
    public var linkedFiles: [String] {
        figures.map(\.0) + examples.flatMap { $0.images.map(\.0) + $0.plots.map(\.0) } + inside.map(\.0) + files.map(\.0)
    }

    public func html() -> String {
        var out = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
        <style>
        body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
        p { overflow-wrap: anywhere; max-width: 60em; }
        figure { display: inline-block; margin: 0 0.8em 1em 0; text-align: center; vertical-align: top; }
        figure:has(img.picture) { width: 152px; }
        figure img.picture { image-rendering: pixelated; width: 150px; height: 150px; border: 1px solid #ccc; }
        figure img.plot { max-width: 640px; }
        figcaption { font-size: 0.85em; max-width: 640px; }
        .caption { color: #555; font-size: 0.9em; max-width: 60em; }
        .legend span { display: inline-block; width: 1em; height: 1em; vertical-align: middle; }
        table { border-collapse: collapse; margin: 0.5em 0 1.5em 0; }
        th, td { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: right; }
        th:first-child, td:first-child { text-align: left; }
        caption { text-align: left; font-weight: bold; padding-bottom: 0.3em; }
        .warning { background: #fff3cd; border-left: 4px solid #e0a800; padding: 0.4em 0.8em; }
        </style></head><body>
        <h1>\(escape(title))</h1>

        """
        for line in summary where !line.isEmpty { out += "<p>\(escape(line))</p>\n" }
        for line in warnings { out += "<p class=\"warning\">\(escape(line))</p>\n" }
        for table in tables {
            out += "<table><caption>\(escape(table.caption))</caption>\n<tr>" + table.header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
            for row in table.rows { out += "<tr>" + row.map { "<td>\(escape($0))</td>" }.joined() + "</tr>\n" }
            out += "</table>\n"
        }
        out += "<p class=\"legend\"><span style=\"background:#ff0051\"></span> raises the class's output &nbsp; "
            + "<span style=\"background:#008bfb\"></span> lowers it &nbsp; white: no effect</p>\n"
        if !figures.isEmpty {
            out += "<div>\n"
            for (file, caption) in figures { out += figure(file, caption, kind: "plot") }
            out += "</div>\n"
        }
        for example in examples {
            out += "<h2>\(escape(example.title))</h2>\n<div>\n"
            for (file, alt) in example.images { out += figure(file, alt, kind: "picture") }
            out += "</div>\n"
            for caption in example.captions { out += "<p class=\"caption\">\(escape(caption))</p>\n" }
            if !example.plots.isEmpty {
                out += "<div>\n"
                for (file, caption) in example.plots { out += figure(file, caption, kind: "plot") }
                out += "</div>\n"
            }
        }
        if !inside.isEmpty {
            out += "<h2>Inside the model</h2>\n<div>\n"
            for (file, caption) in inside { out += figure(file, caption, kind: "plot") }
            out += "</div>\n"
        }
        if !files.isEmpty {
            out += "<h2>Data</h2>\n<ul>\n"
            for (file, description) in files { out += "<li><a href=\"\(escape(file))\">\(escape(file))</a>: \(escape(description))</li>\n" }
            out += "</ul>\n"
        }
        return out + "</body></html>\n"
    }

    /// Writes `index.html` into `directory` atomically, after checking that every linked file exists there.
    /// - Throws: `ReportError` naming a linked file that is missing; `FileError` when the folder or
    ///   `index.html` cannot be written.
    public func write(directory: String) throws {
        let folder = try OutputFolder(path: directory, create: false)
        for file in linkedFiles where !FileManager.default.fileExists(atPath: folder.path(file)) {
            throw ReportError("report: \(file) is linked but missing from \(directory)")
        }
        try folder.file("index.html").write(html())
    }

    private func figure(_ file: String, _ caption: String, kind: String) -> String {
        "<figure><img class=\"\(kind)\" src=\"\(escape(file))\" alt=\"\(escape(caption))\"><figcaption>\(escape(caption))</figcaption></figure>\n"
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
