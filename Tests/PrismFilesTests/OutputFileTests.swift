import CZlib
import Foundation
import PrismFiles
import Testing

/// A fresh empty folder under the system's temporary folder.
func makeFolder(_ label: String) throws -> String {
    let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("prism-files-\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The names in a folder, sorted.
func listing(_ folder: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
}

/// The file's bytes, read with plain POSIX calls (not through the code under test).
func contents(_ path: String) -> [UInt8]? {
    FileManager.default.contents(atPath: path).map { Array($0) }
}

/// `st_mode` of `path` without following a final symbolic link.
func linkMode(_ path: String) -> mode_t {
    var info = stat()
    return lstat(path, &info) == 0 ? info.st_mode : 0
}

/// Checks that `body` throws a `FileError` whose message is exactly `message`.
func expectFileError(_ message: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("no error; expected '\(message)'", sourceLocation: sourceLocation)
    } catch let error as FileError {
        #expect(error.description == message, sourceLocation: sourceLocation)
        #expect(!error.description.contains("\n"), sourceLocation: sourceLocation)
    } catch {
        Issue.record("\(type(of: error)): \(error); expected FileError '\(message)'", sourceLocation: sourceLocation)
    }
}

@Suite struct OutputFileTests {
    @Test func writesANewFileWithTheUmaskAppliedAndLeavesNothingElse() throws {
        let folder = try makeFolder("new")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/out.bin"
        let bytes: [UInt8] = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        try OutputFile(path: path).write(bytes)
        #expect(contents(path) == bytes)
        let mask = umask(0)
        umask(mask)
        #expect(linkMode(path) & 0o777 == 0o666 & ~mask)
        #expect(try listing(folder) == ["out.bin"])
        // Data and text, flushed to the disk on the way.
        try OutputFile(path: path, sync: true).write(Data([7, 8]))
        #expect(contents(path) == [7, 8])
        try OutputFile(path: path, sync: true).write("é\n")
        #expect(contents(path) == [0xC3, 0xA9, 0x0A])
        #expect(try listing(folder) == ["out.bin"])
    }

    @Test func overwritingKeepsTheFilesPermissions() throws {
        let folder = try makeFolder("mode")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/out.txt"
        for mode: mode_t in [0o600, 0o640, 0o755] {
            try Data("old".utf8).write(to: URL(fileURLWithPath: path))
            #expect(chmod(path, mode) == 0)
            try OutputFile(path: path).write("new \(mode)")
            #expect(contents(path) == Array("new \(mode)".utf8))
            #expect(linkMode(path) & 0o777 == mode, "mode \(String(mode, radix: 8))")
        }
        #expect(try listing(folder) == ["out.txt"])
    }

    @Test func aSymbolicLinkStaysALinkAndItsTargetIsWritten() throws {
        let folder = try makeFolder("link")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Data("old".utf8).write(to: URL(fileURLWithPath: folder + "/real.bin"))
        #expect(chmod(folder + "/real.bin", 0o600) == 0)
        #expect(symlink("real.bin", folder + "/link.bin") == 0)
        let file = try OutputFile(path: folder + "/link.bin")
        #expect(try file.target() == folder + "/real.bin")
        try file.write([1, 2, 3])
        #expect(linkMode(folder + "/link.bin") & 0o170000 == 0o120000)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: folder + "/link.bin") == "real.bin")
        #expect(contents(folder + "/real.bin") == [1, 2, 3])
        #expect(linkMode(folder + "/real.bin") & 0o777 == 0o600)
        // A dangling link: its target is created, the link kept.
        #expect(symlink("later.bin", folder + "/dangling.bin") == 0)
        try OutputFile(path: folder + "/dangling.bin").write([9])
        #expect(linkMode(folder + "/dangling.bin") & 0o170000 == 0o120000)
        #expect(contents(folder + "/later.bin") == [9])
        #expect(try listing(folder) == ["dangling.bin", "later.bin", "link.bin", "real.bin"])
    }

    @Test func aChainOfLinksIsFollowedToTheEnd() throws {
        let folder = try makeFolder("chain")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/sub", withIntermediateDirectories: false)
        try Data("old".utf8).write(to: URL(fileURLWithPath: folder + "/sub/c"))
        // a -> sub/b (relative to a's folder), sub/b -> c (relative to sub), so the end is sub/c.
        #expect(symlink("sub/b", folder + "/a") == 0)
        #expect(symlink("c", folder + "/sub/b") == 0)
        try OutputFile(path: folder + "/a").write("chained")
        #expect(contents(folder + "/sub/c") == Array("chained".utf8))
        #expect(linkMode(folder + "/a") & 0o170000 == 0o120000)
        #expect(linkMode(folder + "/sub/b") & 0o170000 == 0o120000)
        #expect(try listing(folder) == ["a", "sub"])
        #expect(try listing(folder + "/sub") == ["b", "c"])
        // A loop is refused.
        #expect(symlink("y", folder + "/x") == 0)
        #expect(symlink("x", folder + "/y") == 0)
        expectFileError("\(folder)/x: too many levels of symbolic links") { _ = try OutputFile(path: folder + "/x") }
    }

    @Test func foldersFIFOsAndDevicesAreRefusedAndLeftAlone() throws {
        let folder = try makeFolder("special")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/dir", withIntermediateDirectories: false)
        expectFileError("\(folder)/dir: is a folder, not a regular file; refusing to replace it") { _ = try OutputFile(path: folder + "/dir") }
        expectFileError("\(folder)/dir/: names a folder, not a file") { _ = try OutputFile(path: folder + "/dir/") }
        #expect(mkfifo(folder + "/fifo", 0o644) == 0)
        expectFileError("\(folder)/fifo: is a FIFO (named pipe), not a regular file; refusing to replace it") {
            _ = try OutputFile(path: folder + "/fifo")
        }
        #expect(linkMode(folder + "/fifo") & 0o170000 == 0o010000)
        // /dev/null too: a device is never replaced, even one meant to discard the output.
        expectFileError("/dev/null: is a character device, not a regular file; refusing to replace it") { _ = try OutputFile(path: "/dev/null") }
        #expect(symlink("/dev/full", folder + "/full") == 0)
        expectFileError("\(folder)/full: links to /dev/full, which is a character device, not a regular file; refusing to replace it") {
            _ = try OutputFile(path: folder + "/full")
        }
        #expect(linkMode("/dev/null") & 0o170000 == 0o020000)
        #expect(try listing(folder) == ["dir", "fifo", "full"])
    }

    @Test func standardOutputOnlyWhereAllowed() throws {
        expectFileError("-: standard output is not accepted here; name a file") { _ = try OutputFile(path: "-") }
        let out = try OutputFile(path: "-", allowStandardOutput: true)
        #expect(out.isStandardOutput)
        #expect(try out.target() == nil)
        expectFileError("'': an empty path names no file") { _ = try OutputFile(path: "") }
    }

    @Test func aMissingOrUnwritableFolderIsRefused() throws {
        let folder = try makeFolder("parent")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        expectFileError("\(folder)/none/out.bin: the folder \(folder)/none does not exist") { _ = try OutputFile(path: folder + "/none/out.bin") }
        try Data().write(to: URL(fileURLWithPath: folder + "/plain"))
        expectFileError("\(folder)/plain/out.bin: cannot be examined (Not a directory)") { _ = try OutputFile(path: folder + "/plain/out.bin") }
        try FileManager.default.createDirectory(atPath: folder + "/locked", withIntermediateDirectories: false)
        try Data("old".utf8).write(to: URL(fileURLWithPath: folder + "/readonly"))
        #expect(chmod(folder + "/locked", 0o500) == 0 && chmod(folder + "/readonly", 0o400) == 0)
        defer { chmod(folder + "/locked", 0o700) }
        if geteuid() != 0 {
            expectFileError("\(folder)/locked/out.bin: cannot write in the folder \(folder)/locked (Permission denied)") {
                _ = try OutputFile(path: folder + "/locked/out.bin")
            }
            expectFileError("\(folder)/readonly: cannot be written (Permission denied)") { _ = try OutputFile(path: folder + "/readonly") }
        } else {
            // Permission bits do not bind root: the same targets are writable for it, as for any root
            // process. WriteFailureTests checks the refusals under another user id.
            _ = try OutputFile(path: folder + "/locked/out.bin")
            _ = try OutputFile(path: folder + "/readonly")
        }
    }

    @Test func gzipOutputInflatesToTheBytes() throws {
        let folder = try makeFolder("gzip")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let bytes: [UInt8] = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 % 251 + $0 / 1000) }
        for payload in [bytes, []] {
            try OutputFile(path: folder + "/out.gz", gzip: true).write(payload)
            let gz = try #require(contents(folder + "/out.gz"))
            #expect(gz.starts(with: [0x1F, 0x8B]))
            guard let file = gzopen(folder + "/out.gz", "rb") else { Issue.record("gzopen"); return }
            var read = [UInt8](repeating: 0, count: payload.count + 16)
            let n = read.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            gzclose(file)
            #expect(Int(n) == payload.count && Array(read[0..<max(Int(n), 0)]) == payload)
        }
    }

    @Test func outputFolderChecksAndCreates() throws {
        let folder = try makeFolder("folder")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let nested = folder + "/a/b/c/"
        expectFileError("\(folder)/a/b/c: no such folder") { _ = try OutputFolder(path: nested, create: false) }
        let made = try OutputFolder(path: nested, create: true)
        #expect(made.path == folder + "/a/b/c")
        var isFolder: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: folder + "/a/b/c", isDirectory: &isFolder) && isFolder.boolValue)
        try made.file("x.txt").write("x")
        #expect(contents(folder + "/a/b/c/x.txt") == Array("x".utf8))
        try Data().write(to: URL(fileURLWithPath: folder + "/plain"))
        expectFileError("\(folder)/plain: is a regular file, not a folder") { _ = try OutputFolder(path: folder + "/plain", create: true) }
        expectFileError("\(folder)/a/b/c/x.txt/d: cannot be examined (Not a directory)") {
            _ = try OutputFolder(path: folder + "/a/b/c/x.txt/d", create: true)
        }
        #expect(mkfifo(folder + "/a/fifo", 0o644) == 0)
        expectFileError("\(folder)/a/b/c/../../fifo: is a FIFO (named pipe), not a regular file; refusing to replace it") { _ = try made.file("../../fifo") }
        if geteuid() != 0 {
            #expect(chmod(folder + "/a/b", 0o500) == 0)
            defer { chmod(folder + "/a/b", 0o700) }
            expectFileError("\(folder)/a/b: cannot write in this folder (Permission denied)") { _ = try OutputFolder(path: folder + "/a/b", create: false) }
        }
    }
}
