import Foundation
import PrismCL
import PrismFormats
import PrismTestSupport
import Testing

/// The tuner's search on a synthetic cost: it finds the fastest valid candidate, refuses one whose
/// output is wrong even when it is the fastest, keeps the defaults when nothing beats them by the
/// margin, and records the winner in the table under vendor → device.
@Suite struct TunerTests {
    let parameters = [TuningSearch.Parameter("A", ["1", "2", "4", "8"]), TuningSearch.Parameter("B", ["0", "1"]),
                      TuningSearch.Parameter("C", ["16", "32", "64"])]

    /// Milliseconds: fastest at A = 4, B = 1, C = 32; A = 8 is "wrong" (refused) though it would be fastest.
    func cost(_ d: TuningTable.Defines) throws -> Double {
        if d["A"] == "8" { throw TuningSearch.Refusal("C[0, 0] = 3, expected 2") }
        let a = Double(d["A"]!)!, b = Double(d["B"]!)!, c = Double(d["C"]!)!
        return 10 + abs(a - 4) + (1 - b) * 2 + abs(c - 32) / 16
    }

    @Test func findsTheFastestVerifiedCandidate() throws {
        let search = TuningSearch(parameters: parameters, defaults: ["A": "1", "B": "0", "C": "64"], grid: ["A", "B"], randomCandidates: 20, seed: 3)
        var log: [TuningSearch.Trial] = []
        let outcome = try search.run(evaluate: cost) { log.append($0) }
        #expect(outcome.best == ["A": "4", "B": "1", "C": "32"], "\(outcome.best)")
        #expect(outcome.bestMilliseconds == 10 && outcome.defaultMilliseconds == 10 + 3 + 2 + 2 && outcome.improved)
        // The wrong variant was tried, refused with its reason, and never won.
        let refused = outcome.trials.filter { $0.defines["A"] == "8" }
        #expect(!refused.isEmpty && refused.allSatisfy { $0.milliseconds == nil && $0.refusal == "C[0, 0] = 3, expected 2" })
        // No candidate ran twice; the grid (4 × 2, defaults included) came first.
        #expect(log.count == outcome.trials.count)
        #expect(Set(outcome.trials.map { $0.defines }).count == outcome.trials.count)
        #expect(outcome.trials.prefix(8).allSatisfy { $0.defines["C"] == "64" })
    }

    @Test func keepsTheDefaultsWithinTheMarginAndSkipsInvalidCandidates() throws {
        let flat = TuningSearch(parameters: parameters, defaults: ["A": "4", "B": "1", "C": "64"], grid: ["C"], randomCandidates: 0,
                                minimumGain: 0.5, isValid: { $0["C"] != "16" })
        var ran: [TuningTable.Defines] = []
        let outcome = try flat.run(evaluate: { ran.append($0); return try cost($0) })
        #expect(!outcome.improved && outcome.best == ["A": "4", "B": "1", "C": "64"])
        // C = 16 is never run; the defaults and the grid's winner (C = 32) are timed once more at the end.
        #expect(!ran.contains { $0["C"] == "16" } && ran.count == 4 && ran.suffix(2).map { $0["C"] } == ["64", "32"])
        // Defaults that are refused stop the search with the reason.
        let broken = TuningSearch(parameters: parameters, defaults: ["A": "8", "B": "1", "C": "32"], grid: [])
        #expect(throws: TuningSearch.Refusal.self) { try broken.run(evaluate: cost) }
    }

    @Test func winnersAreRecordedUnderVendorAndDevice() throws {
        let table = TuningTable(default: ["matmul.cl": ["MM_MB": "32"]])
            .setting(["MM_MB": "16"], file: "matmul.cl", vendor: "Portable Computing Language", device: "pthread-skylake-avx512")
            .setting(["MM_PACK_ROWS": "8"], file: "matmul.cl", vendor: "Portable Computing Language", device: "pthread-skylake-avx512")
        let decoded = try TuningTable.decode(try table.json(), source: "test")
        let device = TuningTests.device(vendor: "GenuineIntel", name: "pthread-skylake-avx512-Intel(R) Xeon(R)", platform: "Portable Computing Language")
        #expect(decoded.defines(for: "matmul.cl", device: device) == ["MM_MB": "16", "MM_PACK_ROWS": "8"])
        #expect(decoded.defines(for: "matmul.cl", device: TuningTests.device(vendor: "AMD", name: "gfx90a")) == ["MM_MB": "32"])
    }

    /// A family's search takes one group's searchable tunables from its descriptor, starts from the
    /// values in force (the descriptor's default where none is), grids what the descriptor marks, and
    /// draws random candidates only when some tunable is off the grid.
    @Test func familySearchIsTheDescriptorsGroup() {
        let family = KernelFamilyDescriptor(file: "x.cl", tunables: [
            Tunable("A", "2", values: ["1", "2"], group: "fast", grid: true), Tunable("B", "8", values: ["8", "16"], group: "fast"),
            Tunable("C", "0", values: ["0", "1"], group: "slow", grid: true), Tunable("SWITCH", "0", group: "fast"),
        ], variants: ["fast", "slow"])
        #expect(family.stem == "x")
        #expect(family.defaults == ["A": "2", "B": "8", "C": "0", "SWITCH": "0"])
        let fast = TuningSearch(family: family, group: "fast", current: ["A": "1", "C": "1"], randomCandidates: 5)
        #expect(fast.parameters.map(\.name) == ["A", "B"])
        #expect(fast.defaults == ["A": "1", "B": "8"])
        #expect(fast.grid == ["A"])
        #expect(fast.randomCandidates == 5)
        let slow = TuningSearch(family: family, group: "slow", current: [:], randomCandidates: 5)
        #expect(slow.defaults == ["C": "0"])
        #expect(slow.randomCandidates == 0)
    }

    /// The variant rule: forced (refused with the reason when it cannot run), else the table's when it
    /// can run, else the first that can in order of preference.
    @Test func variantRuleOrder() throws {
        enum V: String, KernelVariant { case a, b, c }
        let unmet: (V) -> String? = { $0 == .a ? "needs more local memory" : nil }
        #expect(try VariantRule.pick(family: "f", forced: nil, tabled: nil, preference: [V.a, .b, .c], unmet: unmet) == .b)
        #expect(try VariantRule.pick(family: "f", forced: nil, tabled: "c", preference: [V.a, .b, .c], unmet: unmet) == .c)
        #expect(try VariantRule.pick(family: "f", forced: nil, tabled: "a", preference: [V.a, .b, .c], unmet: unmet) == .b)
        #expect(try VariantRule.pick(family: "f", forced: .c, tabled: "b", preference: [V.a, .b], unmet: unmet) == .c)
        #expect(throws: VariantError("f: the a variant needs more local memory")) {
            try VariantRule.pick(family: "f", forced: V.a, tabled: nil, preference: [V.b], unmet: unmet)
        }
        #expect(throws: VariantError.self) { try VariantRule.pick(family: "f", forced: nil, tabled: nil, preference: [V.a], unmet: unmet) }
    }
}
