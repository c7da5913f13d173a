import CZlib
import Foundation
import Prism
import PrismFiles

/// An 8-bit RGB image held on the host, row-major, 3 bytes per pixel.
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (255, 255, 255)) {
        self.width = max(width, 0)
        self.height = max(height, 0)
        pixels = [UInt8](repeating: 0, count: self.width * self.height * 3)
        for i in 0..<(self.width * self.height) { (pixels[3 * i], pixels[3 * i + 1], pixels[3 * i + 2]) = fill }
    }

    public subscript(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        get { let i = 3 * (y * width + x); return (pixels[i], pixels[i + 1], pixels[i + 2]) }
        set { let i = 3 * (y * width + x); (pixels[i], pixels[i + 1], pixels[i + 2]) = newValue }
    }

    /// Each pixel repeated `factor` × `factor` times (nearest neighbour: superpixels stay sharp).
    public func upscaled(by factor: Int) -> RGBImage {
        let f = max(factor, 1)
        var out = RGBImage(width: width * f, height: height * f)
        for y in 0..<out.height { for x in 0..<out.width { out[x, y] = self[x / f, y / f] } }
        return out
    }

    /// The image as PNG bytes (colour type 2, bit depth 8, filter 0 on every row, zlib-deflated).
    /// - Throws: `ReportError` when the image is empty or zlib fails.
    public func pngData() throws -> [UInt8] {
        guard width > 0, height > 0 else { throw ReportError("png: empty image \(width)×\(height)") }
        var raw = [UInt8]()
        raw.reserveCapacity(height * (1 + 3 * width))
        for y in 0..<height {
            raw.append(0)
            raw.append(contentsOf: pixels[(3 * y * width)..<(3 * (y + 1) * width)])
        }
        var compressedSize = compressBound(uLong(raw.count))
        var compressed = [UInt8](repeating: 0, count: Int(compressedSize))
        let status = compress2(&compressed, &compressedSize, raw, uLong(raw.count), 9)
        guard status == Z_OK else { throw ReportError("png: zlib compress2 failed with status \(status)") }
        compressed.removeSubrange(Int(compressedSize)...)

        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        func chunk(_ type: String, _ data: [UInt8]) {
            png += bigEndian(UInt32(data.count))
            let body = Array(type.utf8) + data
            png += body
            png += bigEndian(UInt32(crc32(0, body, uInt(body.count))))
        }
        chunk("IHDR", bigEndian(UInt32(width)) + bigEndian(UInt32(height)) + [8, 2, 0, 0, 0])
        chunk("IDAT", compressed)
        chunk("IEND", [])
        return png
    }

    /// Writes the PNG atomically.
    /// - Throws: `FileError` when `path` cannot be written (see `OutputFile`).
    public func writePNG(path: String) throws {
        try writePNG(to: OutputFile(path: path))
    }

    /// Writes the PNG to an output file checked beforehand.
    /// - Throws: `FileError` when the write fails.
    public func writePNG(to file: OutputFile) throws {
        try file.write(try pngData())
    }
}

func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

/// A report that cannot be drawn or written.
public struct ReportError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
