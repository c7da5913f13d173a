#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A folder that output files go into, checked (and created where asked) before any work.
public struct OutputFolder: Sendable {
    /// The folder as given, without trailing slashes.
    public let path: String

    /// Names an output folder and checks that files can be written in it.
    /// - Parameters:
    ///   - path: the folder (a symbolic link to a folder is followed).
    ///   - create: create it, and missing folders above it, when absent.
    /// - Throws: `FileError` naming the folder when it is absent (and `create` is false) or cannot be
    ///   created, is not a folder, or cannot be written in.
    public init(path: String, create: Bool) throws {
        guard !path.isEmpty else { throw FileError(path: "''", "an empty path names no folder") }
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.path = trimmed
        var info = stat()
        if stat(trimmed, &info) != 0 {
            let code = errno
            guard code == ENOENT else { throw FileError.system(path: trimmed, "cannot be examined", code) }
            guard create else { throw FileError(path: trimmed, "no such folder") }
            try Self.makeFolders(trimmed, path: trimmed)
            guard stat(trimmed, &info) == 0 else { throw FileError.system(path: trimmed, "cannot create the folder", errno) }
        }
        guard info.st_mode & 0o170000 == 0o040000 else {
            throw FileError(path: trimmed, "is \(kindName(info.st_mode)), not a folder")
        }
        guard access(trimmed, W_OK | X_OK) == 0 else {
            throw FileError.system(path: trimmed, "cannot write in this folder", errno)
        }
    }

    /// The path of `name` inside the folder.
    public func path(_ name: String) -> String {
        path == "/" ? "/" + name : path + "/" + name
    }

    /// The output file `name` inside the folder, checked as `OutputFile.init` checks it.
    /// - Throws: `FileError` when that file cannot be written.
    public func file(_ name: String, gzip: Bool = false, sync: Bool = false) throws -> OutputFile {
        try OutputFile(path: path(name), gzip: gzip, sync: sync)
    }

    /// `mkdir -p`: creates `folder` and the missing folders above it.
    private static func makeFolders(_ folder: String, path: String) throws {
        var info = stat()
        if stat(folder, &info) == 0 { return }
        let parent = folderOf(folder)
        if parent != folder && parent != "." { try makeFolders(parent, path: path) }
        if mkdir(folder, 0o777) != 0 && errno != EEXIST {
            throw FileError.system(path: path, "cannot create the folder \(folder)", errno)
        }
    }
}
