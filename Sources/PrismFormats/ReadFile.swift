import Foundation

/// The bytes of a file, with one-line errors for a missing file, a directory or an unreadable file.
public func readFile(_ path: String) throws -> [UInt8] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw DataError("\(path): no such file") }
    guard !isDirectory.boolValue else { throw DataError("\(path): is a directory, not a file") }
    guard let data = FileManager.default.contents(atPath: path) else { throw DataError("\(path): cannot read the file") }
    return [UInt8](data)
}
