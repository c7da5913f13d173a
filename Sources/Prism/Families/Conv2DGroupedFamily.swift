import PrismCL

/// How a grouped convolution (`conv2d` with `groups` > 1) runs.
public enum Conv2DGroupedVariant: String, KernelVariant, CaseIterable {
    /// `Conv2DGroupedFamily.choose` decides.
    case automatic
    /// One dense convolution (`conv2d.cl`'s register-tiled kernels) over the block-diagonal weight
    /// [K, C, R, S] that `conv2d_grouped_expand_weight` writes: `groups` times the arithmetic, for few groups.
    case blockDiagonal
    /// The direct loops of `conv2d_grouped.cl` (one work-item per output element), for many thin groups.
    case direct
    /// One dense convolution per group on sliced channels, outputs joined along the channel axis.
    case perGroup
}

/// The grouped-convolution family (`conv2d_grouped.cl`): its one per-launch switch, its variants and
/// the rule that picks one.
///
/// The rule, measured on PoCL (2 cores of an AVX2 EPYC, `prism-bench kernels --only grouped`,
/// Benchmarks/RESULTS.md, forward medians): the direct loops run at 2–8 GFLOP/s, the dense register
/// tiles at 25–110, so for thin groups (at most `directGroupChannels` input channels) one dense
/// convolution over the block-diagonal weight wins despite its `groups`-fold arithmetic up to
/// `maxBlockDiagonalGroups` groups (2 groups of 4: 5.3 ms against 10.5 direct and 7.3 per group;
/// 16 groups of 4: 6.2 against 7.4 and 7.8; 32 groups of 4: 28 against 15 direct). Wider groups
/// run a dense convolution per group (4 groups of 16: 6.2 ms against 8.4 block-diagonal and 41 direct).
public enum Conv2DGroupedFamily {
    public static let variants: [Conv2DGroupedVariant] = [.blockDiagonal, .direct, .perGroup]

    /// Groups up to which thin groups run as one block-diagonal dense convolution.
    public static let maxBlockDiagonalGroups = 16
    /// Input channels per group up to which a group counts as thin; wider groups run one dense
    /// convolution each.
    public static let directGroupChannels = 4

    public static let descriptor = KernelFamilyDescriptor(file: "conv2d_grouped.cl", tunables: [
        // Per-launch switch, not searched: its default completes the set of -D values.
        Tunable("CONV_GROUP_KB", "1", group: "switch", range: 1...4),
    ], variants: variants.map(\.rawValue))

    /// The variants in order of preference for `groups` groups of `channelsPerGroup` input channels.
    public static func preference(groups: Int, channelsPerGroup: Int) -> [Conv2DGroupedVariant] {
        if channelsPerGroup > directGroupChannels { return [.perGroup, .blockDiagonal, .direct] }
        return groups <= maxBlockDiagonalGroups ? [.blockDiagonal, .direct, .perGroup] : [.direct, .blockDiagonal, .perGroup]
    }

    /// Why `variant` cannot run the grouped convolution of input [N, C, H, W] and weight
    /// [K, C / groups, R, S], or nil when it can.
    static func unmet(_ variant: Conv2DGroupedVariant, input: [Int], weight: [Int]) -> String? {
        guard variant == .blockDiagonal else { return nil }
        let (dense, overflow) = weight[0].multipliedReportingOverflow(by: input[1] * weight[2] * weight[3])
        if overflow || dense >= Int(Int32.max) {
            return "needs the dense weight [\(weight[0]), \(input[1]), \(weight[2]), \(weight[3])] under 2³¹ elements"
        }
        return nil
    }

    /// The variant for the grouped convolution of `input` and `weight` (shapes already checked):
    /// `requested` when forced, else the tuning table's, else by preference.
    /// - Throws: `TensorError` when the forced variant cannot run it.
    public static func choose(_ requested: Conv2DGroupedVariant, input: [Int], weight: [Int], groups: Int,
                              defines: [String: String]) throws -> Conv2DGroupedVariant {
        try pickVariant("conv2d (groups: \(groups))", forced: requested == .automatic ? nil : requested,
                        tabled: defines[KernelFamilyDescriptor.variantKey],
                        preference: preference(groups: groups, channelsPerGroup: input[1] / groups)) {
            unmet($0, input: input, weight: weight)
        }
    }
}
