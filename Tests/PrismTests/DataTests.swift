import Foundation
@testable import Prism
import PrismTestSupport
import Testing

private func temporaryFolder() -> String {
    let path = NSTemporaryDirectory() + "prism-data-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct IDXTests {
    @Test(arguments: [false, true])
    func roundTripPlainAndGzip(gzip: Bool) throws {
        let folder = temporaryFolder()
        let images = IDXArray(type: .uint8, dimensions: [3, 2, 4], values: (0..<24).map { Double($0 * 10 % 256) })
        let labels = IDXArray(type: .uint8, dimensions: [3], values: [9, 0, 4])
        let suffix = gzip ? ".gz" : ""
        try images.write(path: folder + "/train-images-idx3-ubyte" + suffix)
        try labels.write(path: folder + "/train-labels-idx1-ubyte" + suffix)
        #expect(try IDXArray.read(path: folder + "/train-images-idx3-ubyte" + suffix) == images)
        let data = try ImageDataset.loadMNISTFormat(directory: folder, split: .train)
        #expect(data.count == 3)
        #expect(data.height == 2 && data.width == 4)
        #expect(data.labels == [9, 0, 4])
        #expect(data.pixels[1] == Float(10.0 / 255.0))
        #expect(try ImageDataset.loadMNISTFormat(directory: folder, split: .train, limit: 2).count == 2)
    }

    @Test func otherElementTypesRoundTrip() throws {
        let folder = temporaryFolder()
        for (type, values) in [(IDXArray.ElementType.int8, [-128.0, 0, 127]), (.int16, [-300, 0, 300]),
                               (.int32, [-70000, 1, 70000]), (.float32, [-1.5, 0.25, 3]), (.float64, [-1e100, 0, 1e-100])] {
            let a = IDXArray(type: type, dimensions: [3], values: values)
            try a.write(path: folder + "/x.idx")
            #expect(try IDXArray.read(path: folder + "/x.idx") == a)
        }
    }

    @Test func badFilesNameTheProblem() throws {
        let folder = temporaryFolder()
        let path = folder + "/bad-images"
        try Data([0x12, 0x34, 0x08, 0x03, 0, 0, 0, 1]).write(to: URL(fileURLWithPath: path))
        #expect(throws: DataError.self) { try IDXArray.read(path: path) }
        do { _ = try IDXArray.read(path: path) } catch let e as DataError {
            #expect(e.description.hasPrefix("bad-images: not an IDX file: magic number 0x12340803"))
        }

        let images = IDXArray(type: .uint8, dimensions: [2, 2, 2], values: Array(repeating: 1, count: 8))
        var bytes = images.encoded()
        bytes.removeLast(3)
        try Data(bytes).write(to: URL(fileURLWithPath: folder + "/short"))
        do { _ = try IDXArray.read(path: folder + "/short"); Issue.record("should fail") } catch let e as DataError {
            #expect(e.description == "short: truncated IDX file: dimensions [2, 2, 2] need 24 bytes, found 21")
        }

        // A gzip stream cut in the middle.
        try images.write(path: folder + "/cut.gz")
        let gz = try Data(contentsOf: URL(fileURLWithPath: folder + "/cut.gz"))
        try gz.prefix(gz.count - 6).write(to: URL(fileURLWithPath: folder + "/cut.gz"))
        #expect(throws: DataError.self) { try IDXArray.read(path: folder + "/cut.gz") }

        // Counts that disagree.
        try images.write(path: folder + "/i.idx")
        try IDXArray(type: .uint8, dimensions: [3], values: [1, 2, 3]).write(path: folder + "/l.idx")
        do { _ = try ImageDataset.loadIDX(images: folder + "/i.idx", labels: folder + "/l.idx"); Issue.record("should fail") } catch let e as DataError {
            #expect(e.description == "l.idx: 3 labels, but i.idx holds 2 images")
        }
        // Labels out of range.
        try IDXArray(type: .uint8, dimensions: [2], values: [1, 12]).write(path: folder + "/l2.idx")
        do { _ = try ImageDataset.loadIDX(images: folder + "/i.idx", labels: folder + "/l2.idx"); Issue.record("should fail") } catch let e as DataError {
            #expect(e.description == "l2.idx: label 12 at index 1 outside 0..<10")
        }
        #expect(throws: DataError.self) { try IDXArray.read(path: folder + "/missing") }
    }
}

@Suite struct SafetensorsTests {
    @Test func roundTripKeepsTensorsAndMetadata() throws {
        let file = SafetensorsFile(
            tensors: ["0.weight": HostTensor(shape: [2, 3], values: [1, -2, 3.5, 0, .pi, -0]),
                      "0.bias": HostTensor(shape: [2], values: [0.25, -7]),
                      "scalar": HostTensor(shape: [], values: [42])],
            metadata: ["prism.arch": "{\"kind\":\"mlp\"}"])
        let path = temporaryFolder() + "/m.safetensors"
        try file.write(path: path)
        let back = try SafetensorsFile.read(path: path)
        #expect(back == file)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var n = 0
        for i in 0..<8 { n |= Int(bytes[i]) << (8 * i) }
        #expect(n % 8 == 0)
        #expect(try back.tensor("0.weight", shape: [2, 3]).values[2] == 3.5)
    }

    /// Builds a file by hand with the given header entries and data.
    func handMade(_ header: String, _ data: [UInt8]) -> [UInt8] {
        var json = Array(header.utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        let out: [UInt8] = (0..<8).map { UInt8(truncatingIfNeeded: json.count >> (8 * $0)) }
        return out + json + data
    }

    @Test func readsHalfAndBFloat16() throws {
        // F16: 1.0 = 0x3C00, -2.0 = 0xC000, 65504 = 0x7BFF, smallest subnormal 0x0001 = 2^-24.
        // BF16: 1.0 = 0x3F80, -0.5 = 0xBF00.
        let data: [UInt8] = [0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B, 0x01, 0x00, 0x80, 0x3F, 0x00, 0xBF]
        let bytes = handMade(#"{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]}}"#, data)
        let file = try SafetensorsFile.decode(bytes)
        #expect(file.tensors["h"]?.values == [1, -2, 65504, Float(sign: .plus, exponent: -24, significand: 1)])
        #expect(file.tensors["b"]?.values == [1, -0.5])
    }

    @Test func badFilesNameTheTensor() throws {
        let unknown = handMade(#"{"w":{"dtype":"U16","shape":[1],"data_offsets":[0,2]}}"#, [UInt8](repeating: 0, count: 2))
        do { _ = try SafetensorsFile.decode(unknown, name: "m.safetensors"); Issue.record("should fail") } catch let e as DataError {
            #expect(e.description == "m.safetensors: tensor 'w': unsupported dtype U16 (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)")
        }
        let outside = handMade(#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, [UInt8](repeating: 0, count: 8))
        #expect(throws: DataError.self) { try SafetensorsFile.decode(outside) }
        let wrongSize = handMade(#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, [UInt8](repeating: 0, count: 8))
        #expect(throws: DataError.self) { try SafetensorsFile.decode(wrongSize) }
        #expect(throws: DataError.self) { try SafetensorsFile.decode([1, 2, 3]) }
        #expect(throws: DataError.self) { try SafetensorsFile.decode(handMade("not json", [])) }
        let file = SafetensorsFile(tensors: ["a": HostTensor(shape: [2], values: [1, 2])])
        do { _ = try file.tensor("b", file: "m.safetensors"); Issue.record("should fail") } catch let e as DataError {
            #expect(e.description == "m.safetensors: missing tensor 'b' (has: a)")
        }
        do { _ = try file.tensor("a", shape: [3], file: "m.safetensors"); Issue.record("should fail") } catch let e as DataError {
            #expect(e.description == "m.safetensors: tensor 'a' has shape [2], expected [3]")
        }
    }
}

/// Integer tensors (a PyTorch state dict's `num_batches_tracked` counters, indices) read into
/// `integerTensors` with their values and write back unchanged.
@Suite struct SafetensorsIntegerTests {
    @Test func integerDtypesReadAndRoundTrip() throws {
        var bytes: [UInt8] = []
        for v: Int64 in [-3, 1 << 40] { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        for v: Int32 in [-7, 9] { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        bytes += [0xFF, 0x7F, 0x80, 0x01]   // I16 [32767], I8 [-128], BOOL [1]
        let header = #"{"a":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},"b":{"dtype":"I32","shape":[2],"data_offsets":[16,24]},"# +
            #""c":{"dtype":"I16","shape":[1],"data_offsets":[24,26]},"d":{"dtype":"I8","shape":[],"data_offsets":[26,27]},"# +
            #""e":{"dtype":"BOOL","shape":[1],"data_offsets":[27,28]},"f":{"dtype":"F32","shape":[0],"data_offsets":[28,28]}}"#
        var file = [UInt8](repeating: 0, count: 8)
        let json = [UInt8](header.utf8)
        for i in 0..<8 { file[i] = UInt8(truncatingIfNeeded: UInt64(json.count) >> (8 * UInt64(i))) }
        let decoded = try SafetensorsFile.decode(file + json + bytes, name: "ints.safetensors")
        #expect(decoded.integerTensors["a"] == IntegerTensor(dtype: "I64", shape: [2], values: [-3, 1 << 40]))
        #expect(decoded.integerTensors["b"]?.values == [-7, 9])
        #expect(decoded.integerTensors["c"]?.values == [32767])
        #expect(decoded.integerTensors["d"] == IntegerTensor(dtype: "I8", shape: [], values: [-128]))
        #expect(decoded.integerTensors["e"]?.values == [1])
        #expect(decoded.tensors["f"]?.shape == [0] && decoded.tensors.count == 1)
        let again = try SafetensorsFile.decode(try decoded.encoded(), name: "again")
        #expect(again.integerTensors == decoded.integerTensors && again.tensors == decoded.tensors)
    }
}
