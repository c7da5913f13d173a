import PrismCL

/// The memory a `ModelSpec`'s parameters need, checked before anything is built: within the
/// device's and the host's memory (the sizes themselves: PrismGraph's `checkedParameterCount`).
extension ModelSpec {
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
