// Fuzz target: a PNG or JPEG input file decoded by libpng or libjpeg-turbo (through CImageDecode,
// built with the sanitizer) into samples, then mapped to 1 and 3 channels. Headers that claim more
// than ImageFile.maximumSamples (2^28) samples must be refused before the pixels are allocated.
// A thrown DataError is the expected answer to a bad file; a trap or a sanitizer report is a defect.
import PrismFormats
import PrismImages

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    guard let image = try? ImageFile.decode(bytes, name: "fuzz") else { return 0 }
    guard image.values.count == image.channels * image.height * image.width, image.values.count <= ImageFile.maximumSamples,
          image.values.allSatisfy({ $0 >= 0 && $0 <= 1 }) else {
        fatalError("decoded \(image.channels)×\(image.height)×\(image.width) with \(image.values.count) samples out of range")
    }
    for target in [1, 3] { _ = try? image.mapped(toChannels: target, policy: .convert, name: "fuzz") }
    return 0
}
