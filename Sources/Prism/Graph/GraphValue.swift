/// A value flowing through a graph: float32 (with autograd) or integer (token ids, indices, masks).
public enum GraphValue {
    case float(Tensor)
    case integer(IntTensor)

    /// The shape, batch first.
    public var shape: [Int] {
        switch self {
        case let .float(t): t.shape
        case let .integer(t): t.shape
        }
    }

    /// The float32 tensor.
    /// - Throws: `TensorError` when the value is integer (the graph's types were checked, so this
    ///   names an op that did not keep to its schema).
    public func float() throws -> Tensor {
        guard case let .float(t) = self else { throw TensorError("graph: an integer value where float32 was expected") }
        return t
    }

    /// The integer tensor.
    /// - Throws: `TensorError` when the value is float32.
    public func integer() throws -> IntTensor {
        guard case let .integer(t) = self else { throw TensorError("graph: a float32 value where integers were expected") }
        return t
    }
}

/// An op whose inputs or output may be integer (its schema's `outputType` says which); other ops
/// see float32 tensors only.
public protocol TypedOp: Op {
    func forward(values: [GraphValue], training: Bool) throws -> GraphValue
}

extension TypedOp {
    /// Typed ops run through `forward(values:training:)`; this form takes float32 inputs only.
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try forward(values: inputs.map { .float($0) }, training: training).float()
    }
}
