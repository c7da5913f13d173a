#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file or folder that cannot be written, with a one-line message naming it and saying why.
public struct FileError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The path as the caller gave it.
    public let path: String
    /// The whole message, starting with the path.
    public let message: String

    public init(path: String, _ reason: String) {
        self.path = path
        self.message = "\(path): \(reason)"
    }

    public var description: String { message }

    /// An error whose reason is `what` followed by the system's text for `code` (strerror).
    static func system(path: String, _ what: String, _ code: Int32) -> FileError {
        FileError(path: path, "\(what) (\(String(cString: strerror(code))))")
    }
}
