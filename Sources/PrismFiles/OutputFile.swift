import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One output file, checked when it is named and written whole through a temporary file and a rename.
///
/// The check follows a symbolic link (or a chain of them) to its final target, which must be a
/// regular file that can be written or absent, in a folder that exists and can be written. A
/// folder, FIFO, socket or device is refused rather than replaced by a regular file. Writing puts
/// the bytes in a temporary file in the target's folder (with the existing file's permissions, or
/// those of a fresh file under the umask) and renames it over the target, so a reader never sees a
/// half-written file and a link stays a link. `-` names standard output where the caller allows it.
public struct OutputFile: Sendable {
    /// The path as given (`-` for standard output).
    public let path: String
    /// Whether the bytes are gzip-compressed on the way out.
    public let gzip: Bool
    /// Whether the data is flushed to the disk (fsync) before the rename, and the folder after it.
    public let sync: Bool
    /// Whether this is standard output.
    public var isStandardOutput: Bool { path == "-" && allowsStandardOutput }
    private let allowsStandardOutput: Bool

    /// Names an output file and checks, before any work, that it can be written.
    /// - Parameters:
    ///   - path: the file; a symbolic link is followed to its final target. `-` is standard output.
    ///   - allowStandardOutput: whether `-` may name standard output (otherwise it is refused).
    ///   - gzip: compress the bytes with gzip.
    ///   - sync: flush the temporary file to the disk before renaming it, and its folder after.
    /// - Throws: `FileError` naming the path when the target is not a regular file (a folder, FIFO,
    ///   socket or device), cannot be written, or its folder is missing or cannot be written.
    public init(path: String, allowStandardOutput: Bool = false, gzip: Bool = false, sync: Bool = false) throws {
        self.path = path
        self.gzip = gzip
        self.sync = sync
        self.allowsStandardOutput = allowStandardOutput
        if path == "-" {
            guard allowStandardOutput else {
                throw FileError(path: path, "standard output is not accepted here; name a file")
            }
            return
        }
        _ = try Self.resolve(path)
    }

    /// The final target of the path, after following symbolic links (nil for standard output).
    /// - Throws: `FileError` when the target is no longer writable.
    public func target() throws -> String? {
        isStandardOutput ? nil : try Self.resolve(path).target
    }

    /// Writes `bytes` as the file's whole content.
    /// - Throws: `FileError` naming the path with the system's reason (for example "No space left on
    ///   device" or "File too large"); no temporary file is left behind.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write(buffer: $0) }
    }

    /// Writes `data` as the file's whole content.
    /// - Throws: `FileError` as `write(_:)` for bytes.
    public func write(_ data: Data) throws {
        try data.withUnsafeBytes { try write(buffer: $0) }
    }

    /// Writes `text` (UTF-8) as the file's whole content.
    /// - Throws: `FileError` as `write(_:)` for bytes.
    public func write(_ text: String) throws {
        try write(Array(text.utf8))
    }

    private func write(buffer: UnsafeRawBufferPointer) throws {
        if gzip {
            let compressed = try gzipCompressed(buffer, path: path)
            try compressed.withUnsafeBytes { try writeUncompressed($0) }
        } else {
            try writeUncompressed(buffer)
        }
    }

    private func writeUncompressed(_ buffer: UnsafeRawBufferPointer) throws {
        if isStandardOutput {
            // A closed pipe must come back as EPIPE, not end the process with SIGPIPE.
            let previous = signal(SIGPIPE, SIG_IGN)
            defer { signal(SIGPIPE, previous) }
            try Self.writeAll(STDOUT_FILENO, buffer, path: "standard output")
            return
        }
        // Resolve again: the target may have changed since the check.
        let resolved = try Self.resolve(path)
        let folder = folderOf(resolved.target)
        let name = String(lastComponent(resolved.target).prefix(64))
        var temporary = ""
        var descriptor: Int32 = -1
        for _ in 0..<16 {
            temporary = folder + "/." + name + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
            descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if descriptor >= 0 || errno != EEXIST { break }
        }
        guard descriptor >= 0 else {
            throw FileError.system(path: path, "cannot create a temporary file in \(folder)", errno)
        }
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        do {
            if let mode = resolved.mode, fchmod(descriptor, mode) != 0 {
                throw FileError.system(path: path, "cannot set the permissions of the temporary file", errno)
            }
            try Self.writeAll(descriptor, buffer, path: path)
            if sync, fsync(descriptor) != 0 { throw FileError.system(path: path, "cannot write", errno) }
        } catch {
            close(descriptor)
            throw error
        }
        guard close(descriptor) == 0 else { throw FileError.system(path: path, "cannot write", errno) }
        guard rename(temporary, resolved.target) == 0 else {
            throw FileError.system(path: path, "cannot replace \(resolved.target)", errno)
        }
        renamed = true
        if sync {
            // The rename itself reaches the disk with the folder.
            let folderDescriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard folderDescriptor >= 0 else { throw FileError.system(path: path, "cannot open the folder \(folder) to flush it", errno) }
            defer { close(folderDescriptor) }
            guard fsync(folderDescriptor) == 0 else { throw FileError.system(path: path, "cannot flush the folder \(folder)", errno) }
        }
    }

    /// Writes the whole buffer to a descriptor, retrying after interruptions and short writes.
    private static func writeAll(_ descriptor: Int32, _ buffer: UnsafeRawBufferPointer, path: String) throws {
        guard var next = buffer.baseAddress else { return }
        var left = buffer.count
        while left > 0 {
            let n = systemWrite(descriptor, next, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError.system(path: path, "cannot write", errno)
            }
            if n == 0 { throw FileError.system(path: path, "cannot write", EIO) }
            next += n
            left -= n
        }
    }

    /// Where a path finally leads and the permissions of the file there (nil when absent).
    struct Resolved {
        let target: String
        let mode: mode_t?
    }

    /// Follows symbolic links from `path` and checks the final target and its folder.
    static func resolve(_ path: String) throws -> Resolved {
        guard !path.isEmpty else { throw FileError(path: "''", "an empty path names no file") }
        var current = path
        for _ in 0..<40 {
            // "a link to X, which" when a link was followed, so the message names what was refused.
            let via = current == path ? "" : "links to \(current), which "
            guard !current.hasSuffix("/") else { throw FileError(path: path, "\(via)names a folder, not a file") }
            var info = stat()
            if lstat(current, &info) != 0 {
                let code = errno
                guard code == ENOENT else { throw FileError.system(path: path, "\(via)cannot be examined", code) }
                try checkFolder(of: current, path: path)
                return Resolved(target: current, mode: nil)
            }
            switch info.st_mode & 0o170000 {
            case 0o120000:
                current = try readLink(current, path: path)
            case 0o100000:
                guard access(current, W_OK) == 0 else {
                    throw FileError.system(path: path, "\(via)cannot be written", errno)
                }
                try checkFolder(of: current, path: path)
                return Resolved(target: current, mode: info.st_mode & 0o777)
            default:
                throw FileError(path: path, "\(via)is \(kindName(info.st_mode)), not a regular file; refusing to replace it")
            }
        }
        throw FileError(path: path, "too many levels of symbolic links")
    }

    /// The target of the symbolic link at `link`, relative targets taken from the link's folder.
    private static func readLink(_ link: String, path: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(link, &buffer, buffer.count)
        guard n >= 0 else { throw FileError.system(path: path, "cannot read the link \(link)", errno) }
        guard n < buffer.count else { throw FileError(path: path, "the link \(link) is too long") }
        let text = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("/") { return text }
        let folder = folderOf(link)
        return folder == "/" ? "/" + text : folder + "/" + text
    }

    /// Checks that the folder holding `target` exists, is a folder and can be written in.
    private static func checkFolder(of target: String, path: String) throws {
        let folder = folderOf(target)
        var info = stat()
        guard stat(folder, &info) == 0 else {
            let code = errno
            if code == ENOENT { throw FileError(path: path, "the folder \(folder) does not exist") }
            throw FileError.system(path: path, "the folder \(folder) cannot be examined", code)
        }
        guard info.st_mode & 0o170000 == 0o040000 else {
            throw FileError(path: path, "\(folder) is \(kindName(info.st_mode)), not a folder")
        }
        guard access(folder, W_OK | X_OK) == 0 else {
            throw FileError.system(path: path, "cannot write in the folder \(folder)", errno)
        }
    }
}

/// write(2), named apart from `OutputFile.write`.
private func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(descriptor, bytes, count)
    #else
    Darwin.write(descriptor, bytes, count)
    #endif
}

/// "a folder", "a FIFO (named pipe)", ... for a file type from `st_mode`.
func kindName(_ mode: mode_t) -> String {
    switch mode & 0o170000 {
    case 0o040000: return "a folder"
    case 0o010000: return "a FIFO (named pipe)"
    case 0o140000: return "a socket"
    case 0o020000: return "a character device"
    case 0o060000: return "a block device"
    case 0o120000: return "a symbolic link"
    case 0o100000: return "a regular file"
    default: return "a special file"
    }
}

/// The folder part of a path: "." for a bare name, "/" for a name at the root.
func folderOf(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    if slash == path.startIndex { return "/" }
    return String(path[..<slash])
}

/// The last component of a path.
func lastComponent(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
}
