import CZlib
import Foundation
import PrismExplain
import PrismReport
import PrismTestSupport
import Testing

/// A minimal PNG reader for the files `RGBImage.pngData` writes (colour type 2, filter 0): checks the
/// signature, every chunk's CRC, and inflates IDAT.
func decodePNG(_ bytes: [UInt8]) throws -> (width: Int, height: Int, pixels: [UInt8]) {
    struct DecodeError: Error, CustomStringConvertible { var description: String }
    guard bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else { throw DecodeError(description: "signature") }
    func u32(_ i: Int) -> Int { Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3]) }
    var i = 8, width = 0, height = 0, idat: [UInt8] = [], types: [String] = []
    while i < bytes.count {
        let length = u32(i), type = String(decoding: bytes[(i + 4)..<(i + 8)], as: UTF8.self)
        let body = Array(bytes[(i + 4)..<(i + 8 + length)])
        guard UInt32(u32(i + 8 + length)) == UInt32(crc32(0, body, uInt(body.count))) else { throw DecodeError(description: "CRC of \(type)") }
        types.append(type)
        if type == "IHDR" {
            width = u32(i + 8); height = u32(i + 12)
            guard Array(bytes[(i + 16)..<(i + 21)]) == [8, 2, 0, 0, 0] else { throw DecodeError(description: "IHDR format") }
        }
        if type == "IDAT" { idat += bytes[(i + 8)..<(i + 8 + length)] }
        i += 12 + length
    }
    guard types.first == "IHDR", types.last == "IEND" else { throw DecodeError(description: "chunk order \(types)") }
    var size = uLong(height * (1 + 3 * width))
    var raw = [UInt8](repeating: 0, count: Int(size))
    guard uncompress(&raw, &size, idat, uLong(idat.count)) == Z_OK, Int(size) == raw.count else { throw DecodeError(description: "IDAT") }
    var pixels: [UInt8] = []
    let stride = 1 + 3 * width
    for y in 0..<height {
        let start: Int = y * stride
        guard raw[start] == 0 else { throw DecodeError(description: "filter") }
        pixels.append(contentsOf: raw[(start + 1)..<(start + stride)])
    }
    return (width, height, pixels)
}

@Suite struct PNGTests {
    /// A diverging heatmap of −1, 0, +1 decodes to the map's ends and white centre, at any size.
    @Test(arguments: [(3, 1), (1, 1), (17, 5)])
    func divergingHeatmapDecodesToTheColormap(size: (Int, Int)) throws {
        let (w, h) = size
        let values = (0..<(w * h)).map { Double($0 % 3) - 1 }
        let image = try Heatmap.attribution(values, width: w, height: h)
        let decoded = try decodePNG(try image.pngData())
        #expect(decoded.width == w && decoded.height == h)
        #expect(decoded.pixels == image.pixels)
        for (k, v) in values.enumerated() {
            let px = Array(decoded.pixels[(3 * k)..<(3 * k + 3)])
            let expected: [UInt8] = v < 0 ? [0, 139, 251] : v > 0 ? [255, 0, 81] : [255, 255, 255]
            #expect(px == expected, "pixel \(k) value \(v)")
        }
    }

    @Test func upscalingRepeatsPixelsAndBlendingMixes() throws {
        var image = RGBImage(width: 2, height: 1)
        image[0, 0] = (0, 0, 0)
        let big = image.upscaled(by: 3)
        #expect(big.width == 6 && big.height == 3)
        #expect(big[2, 2] == (0, 0, 0) && big[3, 0] == (255, 255, 255))
        let mixed = try Heatmap.blend(image, RGBImage(width: 2, height: 1, fill: (0, 0, 0)), alpha: 0.5)
        #expect(mixed[1, 0] == (128, 128, 128))
        #expect(throws: ReportError.self) { try Heatmap.blend(image, big) }
    }

    @Test func superpixelValuesSpreadToTheirPixels() throws {
        let groups = try FeatureGroups.grid(channels: 1, height: 4, width: 4, cell: 2)
        let pixels = try Heatmap.pixelValues([1, 2, 3, 4], groups: groups)
        #expect(pixels == [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
        #expect(Colormap.viridis.color(0) == (68, 1, 84) && Colormap.viridis.color(1) == (253, 231, 37))
    }
}

@Suite struct HTMLReportTests {
    @Test func linksOnlyFilesThatExistAndEscapesText() throws {
        let dir = NSTemporaryDirectory() + "prism-report-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try RGBImage(width: 2, height: 2).writePNG(path: dir + "/a.png")
        let report = HTMLReport(title: "t <1>", summary: ["x & y"],
                                examples: [.init(title: "e", captions: ["c"], images: [("a.png", "input")])],
                                files: [("b.json", "data")])
        #expect(throws: ReportError("report: b.json is linked but missing from \(dir)")) { try report.write(directory: dir) }
        #expect(!FileManager.default.fileExists(atPath: dir + "/index.html"))
        try Data("{}".utf8).write(to: URL(fileURLWithPath: dir + "/b.json"))
        try report.write(directory: dir)
        let html = try String(contentsOfFile: dir + "/index.html", encoding: .utf8)
        #expect(html.contains("<title>t &lt;1&gt;</title>") && html.contains("x &amp; y"))
        #expect(html.contains("src=\"a.png\"") && html.contains("href=\"b.json\""))
    }
}
