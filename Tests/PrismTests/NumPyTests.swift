import Foundation
import Prism
import PrismTestSupport
import Testing

/// The bytes of a format-1.0 .npy file with `header` (padded as numpy pads it) and `body`.
func npyBytes(header: String, body: [UInt8], version: UInt8 = 1) -> [UInt8] {
    let prefix = version == 1 ? 10 : 12
    var text = header
    text += String(repeating: " ", count: (64 - (prefix + text.utf8.count + 1) % 64) % 64) + "\n"
    let n = text.utf8.count
    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
    bytes += version == 1 ? [UInt8(n & 0xFF), UInt8(n >> 8)] : [UInt8(n & 0xFF), UInt8(n >> 8), 0, 0]
    return bytes + Array(text.utf8) + body
}

@Suite struct NumPyTests {
    /// The arrays numpy wrote (format 1.0, 2.0 and 3.0; float32, float64, uint8, int64, uint16) read
    /// back with numpy's shapes and values.
    @Test func readsWhatNumPyWrites() throws {
        let npy = try #require(inputExpectations["npy"] as? [String: Any])
        for (name, kind) in [("x_f4.npy", "f"), ("x_f8.npy", "f"), ("x_u1.npy", "u"), ("y_i8.npy", "i"), ("y_u2.npy", "u")] {
            let entry = try #require(npy[name] as? [String: Any])
            let shape = try #require(entry["shape"] as? [Int]), values = try #require(entry["values"] as? [Double])
            let array = try NumPyArray.read(path: inputFixture(name))
            #expect(array.shape == shape && array.kind == Character(kind), "\(name)")
            expectClose(array.floats(), values.map { Double(Float($0)) }, tol: 0, name)
            if kind != "f" { #expect(try array.integers(name: name) == values.map { Int($0) }, "\(name)") }
        }
        let v1 = try NumPyArray.read(path: inputFixture("x_f4.npy"))
        #expect(try NumPyArray.read(path: inputFixture("x_f4_v2.npy")) == v1)
        #expect(try NumPyArray.read(path: inputFixture("x_f4_v3.npy")) == v1)
    }

    /// Hand-built headers: a scalar, double quotes and no spaces, a 1-tuple; int8 sign extension.
    @Test func headerVariants() throws {
        let scalar = try NumPyArray.parse(npyBytes(header: "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
                                                   body: withUnsafeBytes(of: (2.5).bitPattern.littleEndian) { Array($0) }), name: "s.npy")
        #expect(scalar.shape == [] && scalar.floats() == [2.5])
        let quoted = try NumPyArray.parse(npyBytes(header: "{\"descr\":\"|i1\",\"fortran_order\":False,\"shape\":(3,)}", body: [0xFF, 0x7F, 0x80]),
                                          name: "q.npy")
        #expect(try quoted.integers(name: "q.npy") == [-1, 127, -128])
        let v2 = try NumPyArray.parse(npyBytes(header: "{'descr': '<u2', 'fortran_order': False, 'shape': (1, 2), }",
                                               body: [0x01, 0x02, 0xFF, 0xFF], version: 2), name: "v2.npy")
        #expect(v2.shape == [1, 2])
        #expect(try v2.integers(name: "v2.npy") == [0x0201, 65535])
    }

    /// Hostile and unsupported files: one line naming the file, no crash, nothing huge allocated.
    @Test func refusals() throws {
        func message(_ header: String, _ body: [UInt8] = [], name: String = "bad.npy") -> String {
            (errorMessage { _ = try NumPyArray.parse(npyBytes(header: header, body: body), name: name) }) ?? "no error"
        }
        let overflow = message("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }")
        #expect(overflow.hasPrefix("bad.npy: ") && overflow.contains("more elements than can be addressed"), "\(overflow)")
        let bytesOverflow = message("{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952, 2), }")
        #expect(bytesOverflow.contains("needs more bytes than can be addressed"), "\(bytesOverflow)")
        let short = message("{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 1000), }", [0, 0, 0, 0])
        #expect(short.contains("holds 4 bytes, fewer than the 4000000-byte array of shape [1000, 1000]"), "\(short)")
        let long = message("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", [0, 0, 0, 0, 0])
        #expect(long.contains("more than the 4 bytes"), "\(long)")
        #expect(message("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }").contains("bad dimension '-1'"))
        #expect(message("{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", [0, 0]).contains("dtype <f2 is not supported"))
        #expect(message("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }").contains("no dtype"))
        #expect(message("{'descr': '<f4', 'shape': (1,), }").contains("no fortran_order"))
        let fortran = errorMessage { _ = try NumPyArray.read(path: inputFixture("fortran.npy")) } ?? "no error"
        #expect(fortran.contains("fortran.npy: Fortran-ordered"), "\(fortran)")
        let big = errorMessage { _ = try NumPyArray.read(path: inputFixture("big_endian.npy")) } ?? "no error"
        #expect(big.contains("big_endian.npy: .npy dtype >f8 is not supported"), "\(big)")
        let truncated = npyBytes(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", body: [])
        let cut = errorMessage { _ = try NumPyArray.parse(Array(truncated.prefix(40)), name: "cut.npy") } ?? "no error"
        #expect(cut == "cut.npy: truncated .npy header", "\(cut)")
        #expect(errorMessage { _ = try NumPyArray.parse(Array("not numpy at all".utf8), name: "t.npy") } == "t.npy: not a .npy file (bad magic)")
        let missing = errorMessage { _ = try NumPyArray.read(path: "/nonexistent/x.npy") }
        #expect(missing == "/nonexistent/x.npy: no such file")
        let folder = errorMessage { _ = try NumPyArray.read(path: NSTemporaryDirectory()) } ?? "no error"
        #expect(folder.contains("is a directory"), "\(folder)")
    }

    /// .npy inputs for a model: uint8 scaled by 1/255 with a note, float64 rounded to float, one
    /// example when the shape is the model's own, integer dtypes refused.
    @Test func inputsFromNumPy() throws {
        let npy = try #require(inputExpectations["npy"] as? [String: Any])
        let bytes = try #require((npy["x_u1.npy"] as? [String: Any])?["values"] as? [Double])
        let u1 = try InputFiles.load(paths: [inputFixture("x_u1.npy")], inputShape: [3])
        expectClose(u1.values, bytes.map { $0 / 255 }, tol: 1e-7, "uint8")
        #expect(u1.count == 2 && u1.notes == ["x_u1.npy: uint8 values divided by 255 to [0, 1]"])
        let f8 = try #require((npy["x_f8.npy"] as? [String: Any])?["values"] as? [Double])
        let one = try InputFiles.load(paths: [inputFixture("x_f8.npy")], inputShape: [3, 5])
        #expect(one.count == 1 && one.sources == ["x_f8.npy"] && one.notes.isEmpty)
        expectClose(one.values, f8, tol: 1e-6, "float64")
        let ints = errorMessage { _ = try InputFiles.load(paths: [inputFixture("y_i8.npy")], inputShape: [2]) }
        #expect(ints == "y_i8.npy: .npy dtype <i8 is not accepted for inputs (float32, float64 or uint8)")
    }

    /// Training data from .npy inputs and labels; counts must agree.
    @Test func labeledDataFromNumPy() throws {
        let npy = try #require(inputExpectations["npy"] as? [String: Any])
        let x = try #require((npy["x_f4.npy"] as? [String: Any])?["values"] as? [Double])
        let (data, notes) = try LabeledData.loadNumPy(inputs: inputFixture("x_f4.npy"), labels: inputFixture("y_i8.npy"))
        #expect(data.exampleShape == [1, 3, 4] && data.labels == [1, 0] && data.classCount == 2 && notes.isEmpty)
        expectClose(data.features, x.map { Double(Float($0)) }, tol: 0, "features")
        let mismatch = errorMessage { _ = try LabeledData.loadNumPy(inputs: inputFixture("x_f4.npy"), labels: inputFixture("y_u2.npy")) }
        #expect(mismatch?.contains("y_u2.npy: 3 labels, but") == true && mismatch?.contains("holds 2 examples") == true, "\(mismatch ?? "no error")")
        let floatLabels = errorMessage { _ = try LabeledData.loadNumPy(inputs: inputFixture("x_u1.npy"), labels: inputFixture("x_f8.npy")) }
        #expect(floatLabels?.contains("labels of dtype <f8; expected integers") == true, "\(floatLabels ?? "no error")")
        let range = errorMessage { _ = try LabeledData.loadNumPy(inputs: inputFixture("x_u1.npy"), labels: inputFixture("y_i8.npy"), classCount: 1) }
        #expect(range?.contains("label 1 at index 0 outside 0..<1") == true, "\(range ?? "no error")")
    }
}
