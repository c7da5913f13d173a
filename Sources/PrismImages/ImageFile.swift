import CImageDecode
import Foundation
import PrismFormats

/// An image decoded from a PNG or JPEG file: samples in [0, 1], channels first (C × H × W).
///
/// 8-bit samples map to v / 255 and 16-bit PNG samples to v / 65535, as torchvision's `ToTensor`.
/// Palette PNGs come as RGB (RGBA with a transparency chunk), gray PNGs of 1, 2 or 4 bits scaled to
/// 8 bits; PNG gamma is not applied (as PIL). JPEGs decode with libjpeg-turbo's defaults (accurate
/// integer DCT, smooth chroma upsampling), as PIL does; a JPEG's EXIF orientation is not applied
/// (PIL's `Image.open` does not apply it either).
public struct ImageFile: Sendable {
    /// 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA.
    public var channels: Int
    public var height: Int
    public var width: Int
    /// 8 or 16.
    public var bitDepth: Int
    /// The colour type the file held: "gray", "gray+alpha", "RGB", "RGBA" or "palette".
    public var colorType: String
    /// C × H × W samples in [0, 1].
    public var values: [Float]

    /// The most samples (width × height × channels) an image may hold: 2^28.
    public static let maximumSamples = 1 << 28

    public enum Format: String, Sendable { case png = "PNG", jpeg = "JPEG" }

    /// The format the first bytes announce (PNG signature or JPEG SOI marker), if either.
    public static func format(of bytes: some Collection<UInt8>) -> Format? {
        let head = Array(bytes.prefix(8))
        if head == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
        if head.count >= 3, head[0] == 0xFF, head[1] == 0xD8, head[2] == 0xFF { return .jpeg }
        return nil
    }

    /// Decodes a PNG or JPEG held in memory, recognised by its first bytes.
    /// - Parameter name: the file's name, for messages.
    /// - Throws: `DataError` naming the file: neither PNG nor JPEG, damaged or truncated data, an
    ///   unsupported JPEG colour space, more than `maximumSamples` samples (refused before the
    ///   pixels are allocated).
    public static func decode(_ bytes: [UInt8], name: String) throws -> ImageFile {
        guard let format = format(of: bytes) else { throw DataError("\(name): neither a PNG nor a JPEG file") }
        var image = prism_image()
        let status = bytes.withUnsafeBufferPointer { buffer in
            format == .png
                ? prism_decode_png(buffer.baseAddress, buffer.count, maximumSamples, &image)
                : prism_decode_jpeg(buffer.baseAddress, buffer.count, maximumSamples, &image)
        }
        defer { prism_image_free(&image) }
        guard status == 0, let pixels = image.pixels else {
            let reason = withUnsafeBytes(of: image.error) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            throw DataError("\(name): cannot decode the \(format.rawValue) image: \(reason.isEmpty ? "unknown error" : reason)")
        }
        let colorType = withUnsafeBytes(of: image.color_type) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        let c = Int(image.channels), h = Int(image.height), w = Int(image.width), plane = h * w
        var values = [Float](repeating: 0, count: c * plane)
        values.withUnsafeMutableBufferPointer { out in
            if image.bit_depth == 16 {
                let samples = pixels.assumingMemoryBound(to: UInt16.self)
                for p in 0..<plane { for k in 0..<c { out[k * plane + p] = Float(samples[p * c + k]) / 65535 } }
            } else {
                let samples = pixels.assumingMemoryBound(to: UInt8.self)
                for p in 0..<plane { for k in 0..<c { out[k * plane + p] = Float(samples[p * c + k]) / 255 } }
            }
        }
        return ImageFile(channels: c, height: h, width: w, bitDepth: Int(image.bit_depth), colorType: colorType, values: values)
    }

    /// Reads and decodes a PNG or JPEG file (see `decode`).
    /// - Throws: `DataError` naming the file: missing, a directory, unreadable, or not decodable.
    public static func read(path: String) throws -> ImageFile {
        try decode(try readFile(path), name: (path as NSString).lastPathComponent)
    }

    /// The image with `channels` channels: alpha dropped, gray replicated to RGB, or RGB reduced to
    /// luma (only with `policy == .convert`), and a note saying what was done (nil when nothing).
    ///
    /// Luma is ITU-R 601-2, L = R·299/1000 + G·587/1000 + B·114/1000, as PIL's `convert("L")`: for
    /// 8-bit images with PIL's fixed-point rounding to 8 bits, so the result equals PIL's exactly;
    /// for 16-bit images in float.
    /// - Throws: `DataError` naming the file and both channel counts when no mapping applies or
    ///   RGB would become gray without `.convert`.
    public func mapped(toChannels target: Int, policy: ChannelPolicy, name: String) throws -> (image: ImageFile, note: String?) {
        if channels == target { return (self, nil) }
        let plane = height * width
        var image = self, steps: [String] = []
        if channels == 2 || channels == 4 {
            image.channels -= 1
            image.values.removeLast(plane)
            steps.append("alpha dropped")
        }
        if image.channels == target {
            // done
        } else if image.channels == 1 && target == 3 {
            image.values = image.values + image.values + image.values
            image.channels = 3
            steps.append("gray replicated to 3 channels")
        } else if image.channels == 3 && target == 1 && policy == .convert {
            var luma = [Float](repeating: 0, count: plane)
            let v = image.values
            for p in 0..<plane {
                let r = v[p], g = v[plane + p], b = v[2 * plane + p]
                if bitDepth == 8 {
                    let ri = Int((r * 255).rounded()), gi = Int((g * 255).rounded()), bi = Int((b * 255).rounded())
                    luma[p] = Float((ri * 19595 + gi * 38470 + bi * 7471 + 0x8000) >> 16) / 255
                } else {
                    luma[p] = r * 0.299 + g * 0.587 + b * 0.114
                }
            }
            image.values = luma
            image.channels = 1
            steps.append("converted to 1 channel (ITU-R 601-2 luma, as PIL convert(\"L\"))")
        } else if image.channels == 3 && target == 1 {
            throw DataError("\(name): the image has \(channels) channels (\(colorType)), the model takes 1 (convert it to gray, or ask for conversion to luma)")
        } else {
            throw DataError("\(name): the image has \(channels) channels (\(colorType)), the model takes \(target)")
        }
        return (image, steps.joined(separator: ", "))
    }

    /// How an image with other channels than the model's is mapped.
    public enum ChannelPolicy: Sendable {
        /// Drop alpha and replicate gray to RGB (both stated in notes); refuse RGB for a 1-channel model.
        case strict
        /// As `strict`, and reduce RGB to luma for a 1-channel model.
        case convert
    }
}
