import Foundation
@testable import Prism
import PrismTestSupport
import Testing

/// Crafted safetensors files, each breaking one rule of the format's specification
/// (https://github.com/huggingface/safetensors: header ≤ 100 MB of JSON without duplicate keys;
/// integer offsets inside the data; dtype size × shape product = byte length; tensors sorted by
/// offset cover the data without overlap, hole or trailing bytes). Each is refused with one line
/// naming the file and the tensor, without a trap.
@Suite struct SafetensorsHostileTests {
    /// A file: the 8-byte little-endian header length (`length` when given, else the header's),
    /// the header padded with spaces to 8 bytes, then `data`.
    static func file(_ header: String, data: [UInt8], length: UInt64? = nil) -> [UInt8] {
        var json = Array(header.utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        let n = length ?? UInt64(json.count)
        return (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + json + data
    }

    static func zeros(_ n: Int) -> [UInt8] { [UInt8](repeating: 0, count: n) }

    /// The one-line message of decoding `bytes` as `m.safetensors`, or nil when it decodes.
    static func refusal(_ bytes: [UInt8]) -> String? {
        do {
            _ = try SafetensorsFile.decode(bytes, name: "m.safetensors")
            return nil
        } catch let e as DataError {
            return e.description
        } catch {
            return "\(error)"
        }
    }

    static func expectRefused(_ bytes: [UInt8], _ substrings: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        guard let message = refusal(bytes) else {
            Issue.record("accepted a file the specification rejects", sourceLocation: sourceLocation)
            return
        }
        #expect(message.hasPrefix("m.safetensors: "), "\(message)", sourceLocation: sourceLocation)
        #expect(!message.contains("\n"), "\(message)", sourceLocation: sourceLocation)
        for s in substrings { #expect(message.contains(s), "\(message) lacks \(s)", sourceLocation: sourceLocation) }
    }

    // MARK: integer overflow

    @Test func shapeProductsThatOverflowAreRefused() {
        // 2^32 · 2^32 · 16 wraps to 0 in 64-bit arithmetic, which a zero-length range would then match.
        Self.expectRefused(Self.file(#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}"#, data: []),
                           ["tensor 'w'", "more elements than an Int can count"])
        // 2^62 elements fit, their 2^64 bytes do not.
        Self.expectRefused(Self.file(#"{"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}}"#, data: []),
                           ["tensor 'w'", "needs more bytes than an Int can count"])
        // A dimension beyond Int64 is no integer Prism can hold.
        Self.expectRefused(Self.file(#"{"w":{"dtype":"F32","shape":[18446744073709551617],"data_offsets":[0,4]}}"#, data: Self.zeros(4)),
                           ["tensor 'w'", "shape [18446744073709551617] is not a list of non-negative integers"])
    }

    @Test func offsetsAboveInt64MaxAreRefusedNotWrapped() {
        // 2^64 − 4 … 2^64 would wrap to −4 … 0 in a cast.
        Self.expectRefused(Self.file(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551616]}}"#,
                                     data: Self.zeros(4)),
                           ["tensor 'w'", "data offsets [18446744073709551612, 18446744073709551616] outside the 4 data bytes"])
        Self.expectRefused(Self.file(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[9223372036854775807,9223372036854775811]}}"#,
                                     data: Self.zeros(4)),
                           ["tensor 'w'", "outside the 4 data bytes"])
    }

    // MARK: the header

    @Test func fractionalNegativeAndNonNumericOffsetsAreRefused() {
        for offsets in ["[0,4.0]", "[0,4.5]", "[0,4e0]", "[-4,0]", "[\"0\",\"4\"]", "[0]", "[0,4,8]"] {
            Self.expectRefused(Self.file(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":"# + offsets + "}}", data: Self.zeros(4)),
                               ["tensor 'w'", "data_offsets", "are not two non-negative integers"])
        }
        Self.expectRefused(Self.file(#"{"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}"#, data: Self.zeros(4)),
                           ["tensor 'w'", "shape [1.0] is not a list of non-negative integers"])
    }

    @Test func duplicateKeysAreRefusedAtEveryLevel() {
        let a = #"{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#
        Self.expectRefused(Self.file("{\"w\":\(a),\"w\":\(a)}", data: Self.zeros(4)), ["duplicate key 'w'"])
        Self.expectRefused(Self.file(#"{"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}"#, data: Self.zeros(4)),
                           ["duplicate key 'dtype'"])
        Self.expectRefused(Self.file("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"},\"w\":\(a)}", data: Self.zeros(4)), ["duplicate key 'k'"])
        // The same key spelled with an escape is the same key.
        Self.expectRefused(Self.file("{\"w\":\(a),\"\\u0077\":\(a)}", data: Self.zeros(4)), ["duplicate key 'w'"])
    }

    @Test func headersOverTheLimitOrWithTrailingTextAreRefused() {
        // A declared length above 100 MB is refused before anything is read or allocated.
        Self.expectRefused(Self.file("{}", data: [], length: 100_000_001), ["header of 100000001 bytes", "limit of 100000000"])
        Self.expectRefused(Self.file("{}", data: [], length: UInt64.max), ["header of 18446744073709551615 bytes"])
        // Only spaces may pad the JSON.
        Self.expectRefused(Self.file(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}x"#, data: Self.zeros(4)),
                           ["malformed safetensors header: trailing characters"])
        // Deep nesting is refused, not a stack overflow.
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        Self.expectRefused(Self.file("{\"w\":" + deep + "}", data: []), ["nesting deeper than 64"])
        // Invalid UTF-8 in a name.
        var bad = Self.file(#"{"w?":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: Self.zeros(4))
        bad[8 + 3] = 0xFF
        Self.expectRefused(bad, ["not valid UTF-8"])
        // The header must start with '{' (a pickle, zip or empty header is no safetensors file).
        for header in ["[]", " {}", ""] {
            Self.expectRefused(Self.file(header, data: []), ["it must start with '{'"])
        }
        // PyTorch's own formats are named (the pickle protocol 2 header of torch.save before 1.6, a zip after).
        Self.expectRefused([0x80, 0x02, 0x7D, 0x71, 0x00, 0x28, 0x58, 0x05, 0x00, 0x00],
                           ["m.safetensors: a Python pickle (PyTorch's older torch.save format), not a safetensors file"])
        Self.expectRefused([0x50, 0x4B, 0x03, 0x04] + Self.zeros(60), ["m.safetensors: a zip archive (PyTorch's torch.save format), not a safetensors file"])
    }

    // MARK: the data

    @Test func overlappingTensorsAreRefused() {
        Self.expectRefused(Self.file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                                     data: Self.zeros(12)),
                           ["tensor 'b': data [4, 12] overlaps tensor 'a' [0, 8]"])
        // Two names for the same bytes.
        Self.expectRefused(Self.file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                                     data: Self.zeros(4)),
                           ["tensor 'b': data [0, 4] overlaps tensor 'a' [0, 4]"])
    }

    @Test func holesAndTrailingBytesAreRefused() {
        Self.expectRefused(Self.file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
                                     data: Self.zeros(12)),
                           ["tensor 'b': data starts at byte 8, but the tensors before it end at 4"])
        Self.expectRefused(Self.file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: Self.zeros(8)),
                           ["tensor 'a': data starts at byte 4, but the tensors before it end at 0"])
        Self.expectRefused(Self.file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: Self.zeros(7)),
                           ["3 trailing bytes", "tensor 'a' ends at byte 4 of 7"])
        Self.expectRefused(Self.file(#"{"__metadata__":{"k":"v"}}"#, data: Self.zeros(1)), ["1 trailing byte after", "no tensor holds data"])
    }

    @Test func byteLengthsMustBeTheDtypeSizeTimesTheShape() {
        Self.expectRefused(Self.file(#"{"h":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}}"#, data: Self.zeros(8)),
                           ["tensor 'h': 8 bytes for shape [3] of F16 (expected 6)"])
        Self.expectRefused(Self.file(#"{"d":{"dtype":"F64","shape":[2,2],"data_offsets":[0,16]}}"#, data: Self.zeros(16)),
                           ["tensor 'd': 16 bytes for shape [2, 2] of F64 (expected 32)"])
    }

    @Test func namesInMessagesStayOnOneLine() {
        Self.expectRefused(Self.file(#"{"a\nb":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#, data: Self.zeros(8)),
                           ["tensor 'a\\u{a}b': unsupported dtype C64"])
    }

    // MARK: what the specification allows

    /// Tensors listed in any key order, a scalar, an empty tensor, escaped names and metadata read
    /// back as written (values checked against the bytes placed by hand).
    @Test func validFilesInAnyKeyOrderDecode() throws {
        // b occupies [0, 4), a [4, 12), the scalar s [12, 16), the empty e [16, 16).
        var data: [UInt8] = []
        for v: Float in [7, 1, -2, 0.5] { data += withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) }
        let header = #"{"s":{"dtype":"F32","shape":[],"data_offsets":[12,16]},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[16,16]},"#
            + #""a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"b\u00e9":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
            + #""__metadata__":{"format":"pt"}}"#
        let file = try SafetensorsFile.decode(Self.file(header, data: data), name: "m.safetensors")
        #expect(file.tensors == ["bé": HostTensor(shape: [1], values: [7]), "a": HostTensor(shape: [2], values: [1, -2]),
                                 "s": HostTensor(shape: [], values: [0.5]), "e": HostTensor(shape: [0, 3], values: [])])
        #expect(file.metadata == ["format": "pt"])
        // An empty header holds no tensors.
        #expect(try SafetensorsFile.decode(Self.file("{}", data: [])).tensors.isEmpty)
    }

    /// Escapes in names decode as JSON defines them; a lone surrogate is refused.
    @Test func escapedNamesDecodeAndLoneSurrogatesAreRefused() throws {
        let entry = #"{"dtype":"F32","shape":[0],"data_offsets":[0,0]}"#
        let file = try SafetensorsFile.decode(Self.file(#"{"\ud83d\ude00 \"q\" \\ \/ \t":"# + entry + "}", data: []))
        #expect(Array(file.tensors.keys) == ["😀 \"q\" \\ / \t"])
        Self.expectRefused(Self.file(#"{"\ud83d":"# + entry + "}", data: []), ["malformed safetensors header: expected '\\u'"])
        Self.expectRefused(Self.file(#"{"\ude00":"# + entry + "}", data: []), ["malformed safetensors header: invalid \\u escape"])
        Self.expectRefused(Self.file("{\"a\tb\":" + entry + "}", data: []), ["control character in a string"])
    }

    /// What Prism writes passes every check.
    @Test func writtenFilesPassTheChecks() throws {
        let file = SafetensorsFile(tensors: ["z": HostTensor(shape: [2, 0], values: []), "w": HostTensor(shape: [3], values: [1, 2, 3]),
                                             "b": HostTensor(shape: [], values: [4])], metadata: ["k": "\"quoted\"\n"])
        #expect(try SafetensorsFile.decode(try file.encoded()) == file)
        // A shape whose product overflows (or is negative) is refused when writing too.
        for shape in [[1 << 32, 1 << 32, 16], [-1, -1]] {
            #expect(throws: DataError("safetensors: tensor 'w' has 1 values for shape \(shape)")) {
                try SafetensorsFile(tensors: ["w": HostTensor(shape: shape, values: [0])]).encoded()
            }
        }
    }
}

/// Model files whose tensors do not fit the model: refused as PyTorch's strict `load_state_dict`
/// refuses them, and weights that are not finite refused at load.
@Suite struct ModelFileHostileTests {
    static let spec = try! ModelSpec.mlp(inputShape: [3], hidden: [4], classes: 2)

    /// The file of a saved model with `edit` applied to its tensors.
    static func savedFile(_ engine: Engine, _ edit: (inout [String: HostTensor]) -> Void) throws -> String {
        let model = try Model(spec: spec, seed: 3, engine: engine)
        let path = temporaryDirectory("model-hostile") + "/m.safetensors"
        try model.save(path: path)
        var file = try SafetensorsFile.read(path: path)
        edit(&file.tensors)
        try file.write(path: path)
        return path
    }

    static func loadRefusal(_ path: String, engine: Engine) -> String? {
        do {
            _ = try Model.load(path: path, engine: engine)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func unexpectedTensorsAreRefusedByName() throws {
        let engine = try testEngine()
        let path = try Self.savedFile(engine) {
            $0["extra.weight"] = HostTensor(shape: [1], values: [1])
            $0["optimizer.0.weight.m"] = HostTensor(shape: [1], values: [0])
            $0["1.num_batches_tracked"] = HostTensor(shape: [], values: [5])
        }
        let message = try #require(Self.loadRefusal(path, engine: engine))
        #expect(message == "\(path): unexpected tensors 'extra.weight', 'optimizer.0.weight.m' (the model has no such parameter)")
        // num_batches_tracked is on the ignore-list; without the others the file loads.
        let ignored = try Self.savedFile(engine) { $0["1.num_batches_tracked"] = HostTensor(shape: [], values: [5]) }
        #expect(Self.loadRefusal(ignored, engine: engine) == nil)
    }

    @Test func missingTensorsAreRefusedByName() throws {
        let engine = try testEngine()
        let path = try Self.savedFile(engine) { $0["3.bias"] = nil }
        #expect(Self.loadRefusal(path, engine: engine) == "\(path): missing tensor '3.bias' (shape [2])")
        // A renamed tensor is missing under one name and unexpected under the other, as PyTorch reports it.
        let renamed = try Self.savedFile(engine) { $0["3.xxxx"] = $0.removeValue(forKey: "3.bias") }
        #expect(Self.loadRefusal(renamed, engine: engine) == "\(renamed): missing tensor '3.bias' (shape [2]); unexpected tensor '3.xxxx'")
    }

    @Test func nonFiniteWeightsAreRefusedWithTheirCount() throws {
        let engine = try testEngine()
        let path = try Self.savedFile(engine) {
            $0["1.weight"]!.values[0] = .nan
            $0["1.weight"]!.values[5] = .infinity
            $0["1.weight"]!.values[7] = -.infinity
        }
        #expect(Self.loadRefusal(path, engine: engine) == "\(path): tensor '1.weight' holds 1 NaN and 2 infinite values of 12")
        // The same through the loader the commands use.
        #expect(throws: DataError("\(path): tensor '1.weight' holds 1 NaN and 2 infinite values of 12")) {
            try LoadedModel(path: path, engine: engine)
        }
    }

    /// A training checkpoint keeps its optimizer tensors; they must be finite too.
    @Test func checkpointsCarryOptimizerStateThatMustBeFinite() throws {
        let engine = try testEngine()
        let model = try Model(spec: Self.spec, seed: 3, engine: engine)
        let trainer = try Trainer(model: model, config: TrainingConfig(epochs: 1, batchSize: 2))
        let path = temporaryDirectory("checkpoint-hostile") + "/c.safetensors"
        try trainer.saveCheckpoint(path: path)
        var file = try SafetensorsFile.read(path: path)
        let optimizerNames = file.tensors.keys.filter { $0.hasPrefix(Trainer.optimizerTensorPrefix) }
        #expect(!optimizerNames.isEmpty)
        #expect(try Trainer.resume(path: path, engine: engine).epochsDone == 0)
        let first = try #require(optimizerNames.sorted().first)
        file.tensors[first]!.values[0] = .nan
        try file.write(path: path)
        #expect(throws: DataError("\(path): optimizer tensor '\(first)' holds NaN or infinite values")) {
            try Trainer.resume(path: path, engine: engine)
        }
    }
}
