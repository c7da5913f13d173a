/// Errors from tensor operations and model descriptions: shape mismatches and invalid arguments,
/// each naming the op (or the node).
public struct TensorError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    /// `op: what [shapes]`, e.g. `matmul: inner dimensions differ: [2, 3] × [4, 5]`.
    public static func shape(_ op: String, _ what: String, _ shapes: [Int]...) -> TensorError {
        TensorError("\(op): \(what): " + shapes.map { "\($0)" }.joined(separator: " × "))
    }
}
