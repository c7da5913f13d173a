import PrismCL

/// The sizes of a `ModelSpec` checked before anything is built: every layer size positive, every
/// product computed with checked arithmetic, the parameters within the device's and the host's memory.
extension ModelSpec {
    /// The named parameter shapes (`<layer>.<name>`, as `Sequential` names them), in order.
    public var namedParameterShapes: [(name: String, shape: [Int])] {
        layers.enumerated().flatMap { i, layer in layer.parameterShapes.map { ("\(i).\($0.name)", $0.shape) } }
    }

    /// Checks the layer sizes and returns the parameter count.
    /// - Parameter source: what the spec came from, for messages (a file path).
    /// - Throws: `DataError` naming `source` and the layer whose size is not positive or whose
    ///   parameters' count overflows a 64-bit integer.
    public func checkedParameterCount(source: String = "model") throws -> Int {
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 > 0 }), HostMemory.product(inputShape) != nil else {
            throw DataError("\(source): input shape \(inputShape) needs positive sizes whose product fits a 64-bit count")
        }
        guard classCount > 0 else { throw DataError("\(source): \(classCount) outputs (at least 1 needed)") }
        for (i, layer) in layers.enumerated() {
            let sizes: [Int]
            switch layer {
            case let .linear(a, b): sizes = [a, b]
            case let .conv2d(c, k, r, s, p): sizes = [c, k, r, s, p + 1]
            case let .maxPool2d(k, s), let .avgPool2d(k, s): sizes = [k, s]
            case let .patchEmbedding(c, h, w, p, d): sizes = [c, h, w, p, d]
            case let .transformerBlock(d, heads, m): sizes = [d, heads, m]
            case let .layerNorm(d): sizes = [d]
            case .relu, .gelu, .flatten, .dropout, .softmax, .classToken: sizes = []
            }
            guard sizes.allSatisfy({ $0 > 0 }) else {
                throw DataError("\(source): layer \(i) (\(layer)) has a size that is not positive")
            }
        }
        var total = 0
        for (name, shape) in namedParameterShapes {
            guard let count = HostMemory.product(shape), case let (sum, false) = total.addingReportingOverflow(count) else {
                throw DataError("\(source): parameter '\(name)' of shape \(shape) overflows a 64-bit count")
            }
            total = sum
        }
        return total
    }

    /// Checks that the model's parameters fit: `copies` float copies on the device (weights, and for
    /// training gradients and optimizer moments), each tensor within one device allocation, and one
    /// copy on the host (initialization, loading and saving go through it).
    /// - Parameters:
    ///   - device: the device the model is built on.
    ///   - copies: float copies of the parameters the work keeps on the device.
    ///   - source: what the spec came from, for messages.
    /// - Throws: `DataError` stating what the parameters need and what is available.
    public func requireMemory(device: DeviceInfo, copies: Int = 1, source: String = "model") throws {
        let count = try checkedParameterCount(source: source)
        let floats = MemoryLayout<Float>.size
        let onDevice = HostMemory.product([count, floats, copies])
        guard let onDevice, onDevice <= device.globalMemoryBytes else {
            throw DataError("\(source): \(count) parameters need \(HostMemory.describe(onDevice)) on the device (\(copies) \(copies == 1 ? "copy" : "copies")); \(device.name) has \(HostMemory.describe(device.globalMemoryBytes))")
        }
        for (name, shape) in namedParameterShapes {
            let bytes = HostMemory.product(shape + [floats]) ?? .max
            guard bytes <= device.maxAllocationBytes else {
                throw DataError("\(source): parameter '\(name)' of shape \(shape) needs \(HostMemory.describe(bytes)), above \(device.name)'s largest allocation of \(HostMemory.describe(device.maxAllocationBytes))")
            }
        }
        let onHost = count * floats
        guard HostMemory.fits(onHost) else {
            throw DataError("\(source): \(count) parameters need \(HostMemory.describe(onHost)) on the host; \(HostMemory.availableDescription)")
        }
    }
}
