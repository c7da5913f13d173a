import PrismCL

/// Which attention kernels run (tests force each).
public enum AttentionVariant: String, KernelVariant, CaseIterable {
    /// `AttentionFamily.choose` decides.
    case automatic
    /// One work-item per query row, no barriers; head width a multiple of 8.
    case cpu
    /// One work-item per 16 query rows over transposed K and V panels; head width a multiple of 16.
    case tiled
    /// ATT_BQ query rows per work-group, K and V tiles in local memory; any head width.
    case general
}

/// The fused attention family (`attention.cl`): tunables, variants and the rule that picks one.
public enum AttentionFamily {
    public static let variants: [AttentionVariant] = [.tiled, .cpu, .general]

    public static let descriptor = KernelFamilyDescriptor(file: "attention.cl", tunables: [
        Tunable("ATT_BQ", "32", values: ["8", "16", "32", "64"], group: "general", grid: true, range: 1...1024),
        Tunable("ATT_BK", "32", values: ["8", "16", "32", "64"], group: "general", grid: true, range: 1...1024),
        // The head width, fixed per launch: its default completes the set of -D values.
        Tunable("ATT_D", "64", group: "switch", range: 1...128),
    ], variants: variants.map(\.rawValue))

    /// The variants in order of preference: on a device that prefers register tiles the tiled
    /// kernels, then the row kernels; elsewhere the local-memory kernels first.
    public static func preference(_ traits: DeviceTraits) -> [AttentionVariant] {
        traits.prefersRegisterTiles ? [.tiled, .cpu, .general] : [.general, .tiled, .cpu]
    }

    /// Why `variant` cannot run head width `d` (nil: any) with `defines` on the device, or nil when it can.
    public static func unmet(_ variant: AttentionVariant, d: Int?, traits: DeviceTraits, defines: [String: String]) -> String? {
        switch variant {
        case .automatic: return nil
        case .cpu:
            guard let d, d % 8 != 0 else { return nil }
            return "needs a head width that is a multiple of 8, got \(d)"
        case .tiled:
            guard let d, d % 16 != 0 else { return nil }
            return "needs a head width that is a multiple of 16, got \(d)"
        case .general:
            let bq = descriptor.int("ATT_BQ", in: defines), bk = descriptor.int("ATT_BK", in: defines)
            let width = d ?? descriptor.int("ATT_D", in: defines)
            if bq < 1 || bk < 1 || bq > traits.maxWorkGroupSize {
                return "needs 1 ≤ ATT_BQ ≤ \(traits.maxWorkGroupSize) and ATT_BK ≥ 1, got \(bq), \(bk)"
            }
            let bytes = 2 * max(bq, bk) * width * 4 + 2 * bq * 4
            if bytes > traits.localMemoryBytes {
                return "needs \(bytes) bytes of local memory, the device has \(traits.localMemoryBytes)"
            }
            return nil
        }
    }

    /// The variant for head width `d`: `requested` when forced, else the tuning table's, else by preference.
    /// - Throws: `TensorError` when the forced variant cannot run here.
    public static func choose(_ requested: AttentionVariant, d: Int, traits: DeviceTraits, defines: [String: String]) throws -> AttentionVariant {
        try pickVariant("attention", forced: requested == .automatic ? nil : requested, tabled: defines[KernelFamilyDescriptor.variantKey],
                        preference: preference(traits)) { unmet($0, d: d, traits: traits, defines: defines) }
    }

    /// Whether a tuning candidate can run on the device (the tuner skips the others).
    public static func isValid(_ candidate: [String: String], group: String, traits: DeviceTraits) -> Bool {
        guard let v = AttentionVariant(rawValue: group) else { return true }
        return unmet(v, d: nil, traits: traits, defines: candidate) == nil
    }
}
