import PrismCL

/// Which `matmul.cl` GEMM kernel runs.
public enum MatmulVariant: String, KernelVariant, CaseIterable {
    /// `GEMMFamily.choose` decides.
    case automatic
    /// MM_MR × MM_NV·MM_VW register micro-tiles over packed B panels, no barriers (fast on PoCL).
    case cpu
    /// Local-memory tiles with register blocking (fast on GPUs).
    case gpu
}

/// The GEMM family (`matmul.cl`): its tunables, variants and the rule that picks one.
public enum GEMMFamily {
    public static let variants: [MatmulVariant] = [.cpu, .gpu]

    public static let descriptor = KernelFamilyDescriptor(file: "matmul.cl", tunables: [
        Tunable("MM_VW", "8", values: ["4", "8", "16"], group: "cpu", grid: true, range: 4...16, powerOfTwo: true),
        Tunable("MM_NV", "2", values: ["1", "2", "3"], group: "cpu", grid: true, range: 1...4),
        Tunable("MM_MR", "6", values: ["4", "6", "8", "10", "12", "14"], group: "cpu", grid: true, range: 1...16),
        Tunable("MM_MB", "32", values: ["4", "8", "16", "32", "64"], group: "cpu", range: 1...1024),
        Tunable("MM_PACKED_A", "1", values: ["0", "1"], group: "cpu", range: 0...1),
        Tunable("MM_PACK_ROWS", "32", values: ["8", "16", "32", "64"], group: "cpu", range: 1...1024),
        Tunable("MM_TM", "64", values: ["32", "64", "128"], group: "gpu", grid: true, range: 1...256),
        Tunable("MM_TN", "64", values: ["32", "64", "128"], group: "gpu", grid: true, range: 1...256),
        Tunable("MM_TK", "16", values: ["8", "16", "32"], group: "gpu", range: 1...128),
        Tunable("MM_WM", "4", values: ["2", "4", "8"], group: "gpu", range: 1...16),
        Tunable("MM_WN", "4", values: ["2", "4", "8"], group: "gpu", range: 1...16),
    ], variants: variants.map(\.rawValue), divisions: [TunableDivision("MM_WM", divides: "MM_TM"), TunableDivision("MM_WN", divides: "MM_TN")])

    /// The variants in order of preference: register tiles where the device prefers them, else
    /// local-memory tiles.
    public static func preference(_ traits: DeviceTraits) -> [MatmulVariant] {
        traits.prefersRegisterTiles ? [.cpu, .gpu] : [.gpu, .cpu]
    }

    /// Why `variant` cannot run with `defines` on the device, or nil when it can.
    public static func unmet(_ variant: MatmulVariant, traits: DeviceTraits, defines: [String: String]) -> String? {
        guard variant == .gpu else { return nil }
        let d = descriptor
        let (tm, tn, tk, wm, wn) = (d.int("MM_TM", in: defines), d.int("MM_TN", in: defines), d.int("MM_TK", in: defines),
                                    d.int("MM_WM", in: defines), d.int("MM_WN", in: defines))
        guard tm > 0, tn > 0, tk > 0, wm > 0, wn > 0, tm % wm == 0, tn % wn == 0 else {
            return "needs MM_WM | MM_TM and MM_WN | MM_TN, got \(tm)/\(wm), \(tn)/\(wn)"
        }
        if (tm / wm) * (tn / wn) > traits.maxWorkGroupSize {
            return "needs work-groups of \((tm / wm) * (tn / wn)), the device allows \(traits.maxWorkGroupSize)"
        }
        if (tm + tn) * tk * 4 > traits.localMemoryBytes {
            return "needs \((tm + tn) * tk * 4) bytes of local memory, the device has \(traits.localMemoryBytes)"
        }
        return nil
    }

    /// The variant to run: `requested` when forced, else the tuning table's, else by preference.
    /// - Throws: `TensorError` when the forced variant cannot run here.
    public static func choose(_ requested: MatmulVariant, traits: DeviceTraits, defines: [String: String]) throws -> MatmulVariant {
        try pickVariant("matmul", forced: requested == .automatic ? nil : requested, tabled: defines[KernelFamilyDescriptor.variantKey],
                        preference: preference(traits)) { unmet($0, traits: traits, defines: defines) }
    }

    /// Whether a tuning candidate can run on the device (the tuner skips the others).
    public static func isValid(_ candidate: [String: String], group: String, traits: DeviceTraits) -> Bool {
        guard let v = MatmulVariant(rawValue: group) else { return true }
        return unmet(v, traits: traits, defines: candidate) == nil
    }
}
