import Foundation

/// Labelled images held on the host: pixels scaled to [0, 1], shape [count, channels, height, width]
/// (MNIST-format data is grayscale, 1 channel).
public struct ImageDataset: Sendable {
    public var pixels: [Float]
    public var labels: [Int32]
    public var channels: Int
    public var height: Int
    public var width: Int
    public var classCount: Int

    public var count: Int { labels.count }
    /// The shape of one image, NCHW without the batch: [channels, height, width].
    public var imageShape: [Int] { [channels, height, width] }

    public init(pixels: [Float], labels: [Int32], channels: Int = 1, height: Int, width: Int, classCount: Int) throws {
        guard channels > 0, height > 0, width > 0, let size = HostMemory.product([channels, height, width]),
              pixels.count == HostMemory.product([labels.count, size]) else {
            throw DataError("dataset: \(pixels.count) pixels do not make \(labels.count) images of \(channels)×\(height)×\(width)")
        }
        if let bad = labels.first(where: { $0 < 0 || Int($0) >= classCount }) {
            throw DataError("dataset: label \(bad) outside 0..<\(classCount)")
        }
        self.pixels = pixels
        self.labels = labels
        self.channels = channels
        self.height = height
        self.width = width
        self.classCount = classCount
    }

    /// Reads an MNIST-format pair of IDX files (gzip or plain).
    ///
    /// Only the headers and the first `limit` examples are read: a file declaring more examples is
    /// not inflated past them (so with a limit, damage after those examples goes unnoticed).
    /// Without a limit, the files must end exactly where their headers say.
    /// - Parameters:
    ///   - images: an IDX file of rank 3, [count, height, width], unsigned bytes.
    ///   - labels: an IDX file of rank 1, [count], unsigned bytes.
    ///   - classCount: number of classes (labels must lie in 0..<classCount).
    ///   - limit: keep only the first `limit` examples.
    /// - Throws: `DataError` naming the file: wrong magic or type, truncated, counts that disagree,
    ///   labels out of range, sizes that overflow or exceed the host memory.
    public static func loadIDX(images: String, labels: String, classCount: Int = 10, limit: Int? = nil) throws -> ImageDataset {
        let imageReader = try IDXReader(path: images, expected: (.uint8, 3, "images"))
        let labelReader = try IDXReader(path: labels, expected: (.uint8, 1, "labels"))
        let imageName = (images as NSString).lastPathComponent, labelName = (labels as NSString).lastPathComponent
        let n = imageReader.dimensions[0], h = imageReader.dimensions[1], w = imageReader.dimensions[2]
        guard labelReader.dimensions[0] == n else {
            throw DataError("\(labelName): \(labelReader.dimensions[0]) labels, but \(imageName) holds \(n) images")
        }
        guard h > 0, w > 0 else { throw DataError("\(imageName): images of \(h)×\(w) pixels") }
        let keep = max(0, min(limit ?? n, n))
        // Pixels are kept as Float after conversion: check that both fit before reading.
        let need = HostMemory.product([keep, h, w, MemoryLayout<Double>.size + MemoryLayout<Float>.size])
        guard HostMemory.fits(need) else {
            throw DataError("\(imageName): \(keep) images of \(h)×\(w) need \(HostMemory.describe(need)) to load; \(HostMemory.availableDescription) (--limit reads fewer)")
        }
        let pixels = try imageReader.readLeading(keep).map { Float($0 / 255) }
        let labelValues = try labelReader.readLeading(keep).map { Int32($0) }
        if keep == n {
            try imageReader.expectEnd()
            try labelReader.expectEnd()
        }
        if let i = labelValues.firstIndex(where: { $0 < 0 || Int($0) >= classCount }) {
            throw DataError("\(labelName): label \(labelValues[i]) at index \(i) outside 0..<\(classCount)")
        }
        return try ImageDataset(pixels: pixels, labels: labelValues, height: h, width: w, classCount: classCount)
    }

    /// Reads the MNIST-format split `train` or `t10k` from a folder holding
    /// `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`.
    public static func loadMNISTFormat(directory: String, split: Split, limit: Int? = nil) throws -> ImageDataset {
        func find(_ stem: String) throws -> String {
            for candidate in [stem + ".gz", stem] {
                let path = (directory as NSString).appendingPathComponent(candidate)
                if FileManager.default.fileExists(atPath: path) { return path }
            }
            throw DataError("\(directory): no \(stem)[.gz] (an MNIST-format folder holds train-/t10k- images and labels)")
        }
        return try loadIDX(images: try find("\(split.rawValue)-images-idx3-ubyte"),
                           labels: try find("\(split.rawValue)-labels-idx1-ubyte"), limit: limit)
    }

    public enum Split: String, Sendable { case train, test = "t10k" }

    /// Where Debian's `dataset-fashion-mnist` package puts Fashion-MNIST.
    public static let fashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"

    /// The Fashion-MNIST class names, in label order.
    public static let fashionMNISTClasses = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]
}
