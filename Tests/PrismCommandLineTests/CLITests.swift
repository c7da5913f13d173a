import Foundation
import PrismTestSupport
import Testing

/// Runs the built `prism` executable (it sits next to the test bundle) and captures its output.
func runPrism(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
    try runProcess(prismExecutable(), arguments, environment: environment)
}

/// The built `prism` beside the test bundle.
func prismExecutable() -> URL {
    let bin = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let url = bin.appendingPathComponent("prism")
    // swift-testing may run from inside the .xctest bundle on some layouts.
    return FileManager.default.fileExists(atPath: url.path) ? url : bin.deletingLastPathComponent().appendingPathComponent("prism")
}

/// Runs `url` with `arguments` (and `environment` over this process's): exit status, standard output and error.
func runProcess(_ url: URL, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = url
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

@Suite struct CLITests {
    @Test func devicesListsTheCPUDeviceAndMarksTheDefault() throws {
        let result = try runPrism(["devices", "--device", "cpu"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("[cpu]"))
        #expect(result.stdout.split(separator: "\n").contains { $0.hasPrefix("* #") })
    }

    @Test func devicesJSON() throws {
        let result = try runPrism(["devices", "--json", "--device", "cpu"])
        #expect(result.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let devices = try #require(object["devices"] as? [[String: Any]])
        let selected = try #require(object["selected"] as? Int)
        #expect(devices.indices.contains(selected))
        #expect(devices[selected]["type"] as? String == "cpu")
        for key in ["name", "vendor", "driverVersion", "openCLCVersion", "computeUnits", "clockMHz", "globalMemoryBytes",
                    "localMemoryBytes", "maxAllocationBytes", "maxWorkGroupSize", "fp16", "fp64"] {
            #expect(devices[selected][key] != nil, "missing \(key)")
        }
    }

    @Test func noPlatformIsOneLineAndExitOne() throws {
        let empty = NSTemporaryDirectory() + "/prism-no-vendors-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let result = try runPrism(["devices"], environment: ["OCL_ICD_VENDORS": empty, "OPENCL_VENDOR_PATH": empty])
        #expect(result.status == 1)
        #expect(result.stderr == "no OpenCL platform found: install pocl-opencl-icd (CPU) or your GPU vendor's OpenCL driver\n")
        #expect(result.stdout.isEmpty)
    }

    @Test func unknownDeviceListsTheAvailableOnes() throws {
        let result = try runPrism(["devices", "--device", "no-such-device-xyz"])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("no OpenCL device matches 'no-such-device-xyz'; available: #0"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test func verbosePrintsTheChosenDevice() throws {
        let result = try runPrism(["devices", "--verbose", "--device", "cpu"])
        #expect(result.status == 0)
        #expect(result.stderr.contains("device: #"))
        #expect(result.stderr.contains("driver"))
    }

    @Test func version() throws {
        let result = try runPrism(["--version"])
        #expect(result.status == 0)
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3)
    }
}

extension CLITests {
    /// A closed standard output is one line on standard error and exit status 1, not a SIGPIPE.
    @Test func closedStandardOutputIsOneLine() throws {
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var url = bin.appendingPathComponent("prism")
        if !FileManager.default.fileExists(atPath: url.path) { url = bin.deletingLastPathComponent().appendingPathComponent("prism") }
        let process = Process()
        process.executableURL = url
        process.arguments = ["devices", "--device", "cpu"]
        let out = Pipe(), err = Pipe()
        try out.fileHandleForReading.close()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 1, "\(process.terminationReason) \(process.terminationStatus)")
        #expect(stderr == "standard output: cannot write (Broken pipe)\n", "\(stderr)")
    }
}

extension CLITests {
    /// --clip-grad-norm: a non-positive limit and a resumed run are refused in one line; a limit trains.
    @Test func clipGradNormOption() throws {
        let dir = try scratchDirectory("clip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = ["train", "--device", "cpu", "--data", TrainCLITests.fixtures + "/tabular.csv", "--label", "species", "--arch", "mlp",
                    "--epochs", "1", "--out", dir + "/m.safetensors"]
        let zero = try runPrism(base + ["--clip-grad-norm", "0"])
        #expect(zero.status != 0 && zero.stderr.contains("--clip-grad-norm must be a positive number"), "\(zero.stderr)")
        let ok = try runPrism(base + ["--clip-grad-norm", "0.5"])
        #expect(ok.status == 0, "\(ok.stderr)")
        let resumed = try runPrism(base + ["--clip-grad-norm", "0.5", "--resume"])
        #expect(resumed.status != 0 && resumed.stderr.contains("--clip-grad-norm applies to a new run"), "\(resumed.stderr)")
    }
}
