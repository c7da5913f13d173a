/// A problem with input data (a dataset, an input file, a model file's metadata): names the file and
/// what was expected versus found.
public struct DataError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
