import PrismFormats

/// The sizes of a `ModelSpec` checked before anything is built: every node checked, every product
/// computed with checked arithmetic.
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
}
