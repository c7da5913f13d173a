import Foundation
import PrismFiles
import Testing

/// The built `prism-files-probe` (it sits next to the test bundle).
func probeURL() -> URL {
    let bin = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let url = bin.appendingPathComponent("prism-files-probe")
    if FileManager.default.fileExists(atPath: url.path) { return url }
    // swift-testing may run from inside the .xctest bundle on some layouts.
    return bin.deletingLastPathComponent().appendingPathComponent("prism-files-probe")
}

/// Runs `prism-files-probe` (built next to the test bundle) with standard output sent to `output`,
/// under the numeric user id `user` where given.
func runProbe(_ arguments: [String], output: Any? = nil, asUser user: String? = nil) throws -> (status: Int32, exited: Bool, stderr: String) {
    let url = probeURL()
    let process = Process()
    if let user {
        // setpriv (util-linux) runs the probe under another user id, for checks that root would pass.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=\(user)", "--regid=\(user)", "--clear-groups", url.path] + arguments
    } else {
        process.executableURL = url
        process.arguments = arguments
    }
    let err = Pipe()
    process.standardError = err
    if let output { process.standardOutput = output }
    try process.run()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, process.terminationReason == .exit, String(decoding: stderr, as: UTF8.self))
}

/// Failures the system reports while writing: each one line naming the file, with nothing left behind.
/// They run in a process of their own, since a file size limit or a redirected standard output
/// would reach every test running alongside.
@Suite struct WriteFailureTests {
    @Test func aFileTooLargeIsOneLineAndLeavesNoTemporaryFile() throws {
        let folder = try makeFolder("efbig")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/big.bin"
        try Data("old".utf8).write(to: URL(fileURLWithPath: path))
        // A limit of 1000 bytes; 4096 bytes to write.
        let result = try runProbe([path, "4096", "1000"])
        #expect(result.exited && result.status == 1)
        #expect(result.stderr == "\(path): cannot write (File too large)\n", "\(result.stderr)")
        #expect(try listing(folder) == ["big.bin"])
        #expect(contents(path) == Array("old".utf8))
        // Under the limit the same write goes through.
        let small = try runProbe([path, "500", "1000"])
        #expect(small.exited && small.status == 0 && small.stderr.isEmpty, "\(small.stderr)")
        #expect(contents(path) == [UInt8](repeating: 0x78, count: 500))
        #expect(try listing(folder) == ["big.bin"])
    }

    @Test func aFullDeviceOnStandardOutputIsOneLine() throws {
        let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        defer { try? full.close() }
        let result = try runProbe(["-", "100"], output: full)
        #expect(result.exited && result.status == 1)
        #expect(result.stderr == "standard output: cannot write (No space left on device)\n", "\(result.stderr)")
    }

    @Test func aClosedPipeOnStandardOutputIsOneLineNotASignal() throws {
        let pipe = Pipe()
        try pipe.fileHandleForReading.close()
        let result = try runProbe(["-", "100000"], output: pipe)
        #expect(result.exited, "ended by a signal (\(result.status)) instead of an error")
        #expect(result.status == 1)
        #expect(result.stderr == "standard output: cannot write (Broken pipe)\n", "\(result.stderr)")
    }

    @Test func aClosedStandardOutputIsOneLine() throws {
        // The shell closes descriptor 1 before starting the probe.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "exec \"$0\" - 10 >&-", probeURL().path]
        let err = Pipe()
        process.standardError = err
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 1)
        #expect(stderr == "standard output: cannot write (Bad file descriptor)\n", "\(stderr)")
    }

    @Test func standardOutputCarriesTheBytes() throws {
        let folder = try makeFolder("stdout")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(FileManager.default.createFile(atPath: folder + "/captured", contents: nil))
        let capture = try #require(FileHandle(forWritingAtPath: folder + "/captured"))
        let result = try runProbe(["-", "70000"], output: capture)
        try capture.close()
        #expect(result.exited && result.status == 0 && result.stderr.isEmpty, "\(result.stderr)")
        #expect(contents(folder + "/captured") == [UInt8](repeating: 0x78, count: 70000))
    }

    @Test func anUnwritableFolderOrFileIsRefusedForAnOrdinaryUser() throws {
        let folder = try makeFolder("permissions")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/locked", withIntermediateDirectories: false)
        try Data("old".utf8).write(to: URL(fileURLWithPath: folder + "/readonly"))
        #expect(chmod(folder, 0o755) == 0 && chmod(folder + "/locked", 0o555) == 0 && chmod(folder + "/readonly", 0o444) == 0)
        defer { chmod(folder + "/locked", 0o755) }
        // Permission bits do not bind root: as root, run the probe as the user nobody (65534).
        let user: String? = geteuid() == 0 ? "65534" : nil
        let locked = try runProbe([folder + "/locked/out.bin", "10"], asUser: user)
        #expect(locked.exited && locked.status == 1)
        #expect(locked.stderr == "\(folder)/locked/out.bin: cannot write in the folder \(folder)/locked (Permission denied)\n", "\(locked.stderr)")
        let readonly = try runProbe([folder + "/readonly", "10"], asUser: user)
        #expect(readonly.exited && readonly.status == 1)
        #expect(readonly.stderr == "\(folder)/readonly: cannot be written (Permission denied)\n", "\(readonly.stderr)")
        #expect(contents(folder + "/readonly") == Array("old".utf8))
        #expect(try listing(folder + "/locked") == [])
    }
}
