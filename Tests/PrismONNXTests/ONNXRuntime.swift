import Foundation
import Testing
import PrismFormats

/// onnxruntime run on an ONNX file by `Tests/Fixtures/run_onnxruntime.py`: the independent answer the
/// export tests compare Prism's outputs with.
enum ONNXRuntime {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/run_onnxruntime.py").path

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// onnxruntime's first output of `model` on `input` (float32, or int64 when `integers`), flattened.
    /// - Throws: `Failure` saying what is missing when python3, numpy or onnxruntime is not there
    ///   (the tests need them: `.ci/install-deps` installs onnxruntime 1.32.0), or onnxruntime's error.
    /// - Parameter extra: the model's other inputs by name (values and shape; int64 when `integers`).
    /// - Parameter optimize: false turns onnxruntime's graph optimizations off (a QDQ model then runs as written).
    static func run(model: String, input: [Float], shape: [Int], integers: Bool = false, extra: [String: ([Float], [Int])] = [:],
                    optimize: Bool = true, folder: String) throws -> [Float] {
        let inputPath = folder + "/ort_input.npy", outputPath = folder + "/ort_output.npy"
        try? FileManager.default.removeItem(atPath: outputPath)
        try Data(npy(input, shape: shape, integers: integers)).write(to: URL(fileURLWithPath: inputPath))
        var arguments = ["python3", script] + (optimize ? [] : ["--no-optimizations"]) + [model, inputPath, outputPath]
        for (name, (values, shape)) in extra.sorted(by: { $0.key < $1.key }) {
            let path = folder + "/ort_\(name).npy"
            try Data(npy(values, shape: shape, integers: integers)).write(to: URL(fileURLWithPath: path))
            arguments.append("\(name)=\(path)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw Failure(description: "cannot start python3 through /usr/bin/env (\(error)); the ONNX export tests run onnxruntime: install python3 and run .ci/install-deps")
        }
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        switch process.terminationStatus {
        case 0: break
        case 127: throw Failure(description: "python3 is not installed; the ONNX export tests run onnxruntime through it (.ci/install-deps)")
        case 2: throw Failure(description: "python3 cannot run onnxruntime: \(stderr.trimmingCharacters(in: .whitespacesAndNewlines)) (.ci/install-deps installs it)")
        default: throw Failure(description: "onnxruntime failed on \(model) (status \(process.terminationStatus)): \(stderr)")
        }
        return try NumPyArray.read(path: outputPath).floats()
    }

    /// A little-endian float32 (or int64) .npy file.
    static func npy(_ values: [Float], shape: [Int], integers: Bool) -> [UInt8] {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(integers ? "<i8" : "<f4")', 'fortran_order': False, 'shape': \(shapeText), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        bytes += Array(header.utf8)
        for v in values {
            if integers {
                withUnsafeBytes(of: Int64(v).littleEndian) { bytes += $0 }
            } else {
                withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
            }
        }
        return bytes
    }
}

/// Fails unless `actual` and `expected` agree to `atol + rtol·|expected|` everywhere (NaN fails).
func expectClose(_ actual: [Float], _ expected: [Float], atol: Float = 1e-5, rtol: Float = 1e-4, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(what): \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
    var worst: Float = 0, first: Int?
    for (i, (a, b)) in zip(actual, expected).enumerated() {
        let diff = abs(a - b)
        if !(diff <= atol + rtol * abs(b)) {
            first = first ?? i
            worst = diff.isNaN ? .nan : max(worst, diff)
        }
    }
    if let first {
        Issue.record("\(what): value \(first) is \(actual[first]), expected \(expected[first]) (largest difference \(worst))", sourceLocation: sourceLocation)
    }
}
