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
        guard channels > 0, height > 0, width > 0, let size = checkedProduct([channels, height, width]),
              pixels.count == checkedProduct([labels.count, size]) else {
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
    /// - Parameters:
    ///   - images: an IDX file of rank 3, [count, height, width], unsigned bytes.
    ///   - labels: an IDX file of rank 1, [count], unsigned bytes.
    ///   - classCount: number of classes (labels must lie in 0..<classCount).
    ///   - limit: keep only the first `limit` examples.
    /// - Throws: `DataError` naming the file: wrong magic or type, truncated, counts that disagree,
    ///   labels out of range.
    public static func loadIDX(images: String, labels: String, classCount: Int = 10, limit: Int? = nil) throws -> ImageDataset {
        let imageArray = try IDXArray.read(path: images)
        let labelArray = try IDXArray.read(path: labels)
        let imageName = (images as NSString).lastPathComponent, labelName = (labels as NSString).lastPathComponent
        guard imageArray.dimensions.count == 3, imageArray.type == .uint8 else {
            throw DataError("\(imageName): expected unsigned-byte images of rank 3 [count, height, width], found \(imageArray.type) of rank \(imageArray.dimensions.count)")
        }
        guard labelArray.dimensions.count == 1, labelArray.type == .uint8 else {
            throw DataError("\(labelName): expected unsigned-byte labels of rank 1, found \(labelArray.type) of rank \(labelArray.dimensions.count)")
        }
        let n = imageArray.dimensions[0], h = imageArray.dimensions[1], w = imageArray.dimensions[2]
        guard labelArray.dimensions[0] == n else {
            throw DataError("\(labelName): \(labelArray.dimensions[0]) labels, but \(imageName) holds \(n) images")
        }
        let keep = min(limit ?? n, n)
        let pixels = imageArray.values[0..<(keep * h * w)].map { Float($0 / 255) }
        let labelValues = labelArray.values[0..<keep].map { Int32($0) }
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
