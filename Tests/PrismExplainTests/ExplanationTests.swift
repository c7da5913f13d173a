import Foundation
import PrismExplain
import PrismTestSupport
import Testing

@Suite struct ExplanationTests {
    @Test func additivityGapAndAccessors() throws {
        // One instance, two features, two outputs.
        let e = try Explanation(method: "test", instanceCount: 1, featureCount: 2, outputCount: 2, values: [1, 10, 2, 20],
                                baseValues: [0.5, 5], outputs: [3.5, 35], modelEvaluations: 4, seconds: 0)
        #expect(e.attributions(instance: 0, output: 1) == [10, 20])
        #expect(e.additivityGap(instance: 0, output: 0) == 0)
        #expect(e.additivityGap(instance: 0, output: 1) == 0)
        #expect(throws: ExplainError("explanation: 3 values for 1 instances × 2 features × 2 outputs")) {
            try Explanation(method: "x", instanceCount: 1, featureCount: 2, outputCount: 2, values: [1, 2, 3], modelEvaluations: 0, seconds: 0)
        }
    }

    /// The .npy bytes NumPy expects: magic, version 1.0, a header padded to 64 bytes, little-endian float64.
    @Test func npyLayout() throws {
        let path = NSTemporaryDirectory() + "prism-\(getpid())-v.npy"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writeNpy([1.5, -2, 3, 4, 5, 6], shape: [2, 3], path: path)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(Array(bytes[0..<8]) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
        #expect(header.hasPrefix("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }"))
        #expect(header.hasSuffix("\n"))
        #expect(bytes.count == 10 + headerLength + 48)
        let first = bytes[(10 + headerLength)..<(18 + headerLength)].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        #expect(Double(bitPattern: first) == 1.5)
    }
}
