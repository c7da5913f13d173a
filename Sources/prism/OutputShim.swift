import Foundation
import Prism

// Interim checks until the shared writer lands.
struct OutputFile {
    let path: String
    init(path: String, allowStandardOutput: Bool = false) throws {
        self.path = path
        if path == "-" && allowStandardOutput { return }
        let parent = (path as NSString).deletingLastPathComponent
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: parent.isEmpty ? "." : parent, isDirectory: &isDir), isDir.boolValue else {
            throw DataError("\(path): the folder \(parent) does not exist")
        }
    }
    func write(_ data: Data) throws {
        if path == "-" { FileHandle.standardOutput.write(data); return }
        try writeFileAtomically(path: path, bytes: Array(data))
    }
}

struct OutputFolder {
    init(path: String, create: Bool) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw DataError("\(path): cannot create the folder")
        }
    }
}
