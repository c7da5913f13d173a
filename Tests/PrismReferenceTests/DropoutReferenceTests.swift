import PrismReference
import PrismTestSupport
import Testing

@Suite struct DropoutReferenceTests {
    /// Known-answer vectors of Philox-4x32-10 from Random123 (`kat_vectors`).
    @Test func philoxMatchesRandom123KnownAnswers() {
        #expect(Reference.philox4x32(counter: (0, 0, 0, 0), key: (0, 0)) == [0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8])
        #expect(Reference.philox4x32(counter: (.max, .max, .max, .max), key: (.max, .max))
            == [0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD])
        #expect(Reference.philox4x32(counter: (0x243F_6A88, 0x85A3_08D3, 0x1319_8A2E, 0x0370_7344), key: (0xA409_3822, 0x299F_31D0))
            == [0xD16C_FE09, 0x94FD_CCEB, 0x5001_E420, 0x2412_6EA1])
    }

    @Test func maskDependsOnlyOnSeedAndIndex() {
        let long = Reference.dropoutMask(count: 103, p: 0.5, seed: 99)
        #expect(Reference.dropoutMask(count: 10, p: 0.5, seed: 99) == Array(long[..<10]))
        #expect(Reference.dropoutMask(count: 103, p: 0.5, seed: 98) != long)
        #expect(Reference.dropoutMask(count: 50, p: 0, seed: 1).allSatisfy { $0 })
        #expect(Reference.dropoutMask(count: 50, p: 1, seed: 1).allSatisfy { !$0 })
    }

    @Test func backwardMatchesFiniteDifferences() {
        // Dropout is linear in x for a fixed mask, so its backward is the same map applied to dy.
        let x = seededFloats(37, seed: 14).map(Double.init), dy = seededFloats(37, seed: 15).map(Double.init)
        let fd = finiteDifferences(at: x) { dot(dy, Reference.dropout(x: $0, p: 0.4, seed: 3)) }
        expectClose(Reference.dropout(x: dy, p: 0.4, seed: 3), fd, atol: 1e-8, rtol: 1e-6, "dropout")
    }
}
