import PrismCL

/// The sizes of a `ModelSpec` checked before anything is built: every layer size positive, every
/// product computed with checked arithmetic, the parameters within the device's and the host's memory.
extension ModelSpec {
    /// The named parameter and buffer shapes (`<node>.<name>`, as `Model` names them), in order;
    /// empty when the description does not check (see `analysis()`).
    public var namedParameterShapes: [(name: String, shape: [Int])] {
        guard let graph = try? analysis() else { return [] }
        return graph.nodes.flatMap { node in node.info.parameters.map { ("\(node.spec.name).\($0.name)", $0.shape) } }
    }

    /// Checks the description (ops, attributes, sizes, shapes) and returns the parameter count.
    /// - Parameter source: what the spec came from, for messages (a file path).
    /// - Throws: `DataError` naming `source` and the node whose size is not positive or does not fit,
    ///   or the parameter whose count overflows a 64-bit integer.
    public func checkedParameterCount(source: String = "model") throws -> Int {
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 > 0 }), HostMemory.product(inputShape) != nil else {
            throw DataError("\(source): input shape \(inputShape) needs positive sizes whose product fits a 64-bit count")
        }
        guard classCount > 0 else { throw DataError("\(source): \(classCount) outputs (at least 1 needed)") }
        do {
            try validate()
        } catch let error as TensorError {
            throw DataError("\(source): \(error.message)")
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
