import PrismCL

/// Which `conv2d.cl` forward kernel runs.
public enum Conv2DVariant: String, KernelVariant, CaseIterable {
    /// `Conv2DFamily.choose` decides.
    case automatic
    /// Register micro-tiles over packed weight panels, no barriers (fast on PoCL).
    case cpu
    /// Local-memory tiles with register blocking (fast on GPUs).
    case gpu
    /// Rows of 8 output pixels per work-item, for shallow inputs only (stride 1, no padding or
    /// dilation, C·R·S ≤ 32).
    case rows
}

/// Which `conv2d.cl` kernel computes the gradient with respect to the input.
public enum Conv2DBackwardInputVariant: String, KernelVariant, CaseIterable {
    /// `Conv2DFamily.backwardInputVariant` decides.
    case automatic
    /// Register micro-tiles of input channels × pixels over packed weight panels (any geometry).
    case tiles
    /// Rows of 8 pixels × a few channels, vectorized over the pixels (stride 1 only).
    case rows
}

/// The convolution family (`conv2d.cl`): the forward variants (with and without the fused 2×2 max
/// pooling), the backward micro-tile kernels' tunables, and the rule that picks a forward variant.
public enum Conv2DFamily {
    public static let variants: [Conv2DVariant] = [.cpu, .gpu, .rows]
    /// The variants with a fused 2×2 max pooling.
    public static let pooledVariants: [Conv2DVariant] = [.cpu, .rows]

    public static let descriptor = KernelFamilyDescriptor(file: "conv2d.cl", tunables: [
        Tunable("CONV_VW", "8", values: ["4", "8", "16"], group: "cpu", grid: true, range: 4...16, powerOfTwo: true),
        Tunable("CONV_FWD_KV", "2", values: ["1", "2", "3", "4"], group: "cpu", grid: true, range: 1...8),
        Tunable("CONV_FWD_NP", "6", values: ["2", "4", "6", "8", "12"], group: "cpu", grid: true, range: 1...32),
        Tunable("CONV_DX_KV", "2", values: ["1", "2", "4"], group: "backward_input", grid: true, range: 1...8),
        Tunable("CONV_DX_NP", "6", values: ["2", "4", "6", "8"], group: "backward_input", grid: true, range: 1...32),
        Tunable("CONV_DW_KV", "2", values: ["1", "2", "4"], group: "backward_weight", grid: true, range: 1...8),
        Tunable("CONV_DW_NP", "6", values: ["2", "4", "6", "8"], group: "backward_weight", grid: true, range: 1...32),
        Tunable("CONV_ROWS_KB", "8", values: ["4", "8", "16", "32"], group: "rows", grid: true, range: 1...64),
        Tunable("CONV_ROWS_NP", "4", values: ["1", "2", "4", "8"], group: "rows", grid: true, range: 1...64),
        Tunable("CONV_TM", "32", values: ["16", "32", "64"], group: "gpu", grid: true, range: 1...256),
        Tunable("CONV_TN", "32", values: ["16", "32", "64"], group: "gpu", grid: true, range: 1...256),
        Tunable("CONV_TD", "8", values: ["4", "8", "16"], group: "gpu", range: 1...64),
        Tunable("CONV_WM", "2", values: ["1", "2", "4"], group: "gpu", range: 1...16),
        Tunable("CONV_WN", "2", values: ["1", "2", "4"], group: "gpu", range: 1...16),
        // Per-launch switches, not searched: their defaults complete the set of -D values.
        Tunable("CONV_PADDED", "0", group: "switch", range: 0...1),
        Tunable("CONV_RELU", "0", group: "switch", range: 0...1),
        Tunable("CONV_POOL", "0", group: "switch", range: 0...1),
    ], variants: variants.map(\.rawValue), divisions: [TunableDivision("CONV_WM", divides: "CONV_TM"), TunableDivision("CONV_WN", divides: "CONV_TN")])

    /// The forward variants in order of preference: on a device that prefers register tiles the row
    /// kernel for shallow layers, then the micro-tiles; elsewhere local-memory tiles first.
    /// Only the register-tile kernels fuse pooling, so a pooled forward on other devices has none.
    public static func preference(_ traits: DeviceTraits, pooled: Bool = false) -> [Conv2DVariant] {
        if traits.prefersRegisterTiles { return pooled ? [.rows, .cpu] : [.rows, .cpu, .gpu] }
        return pooled ? [] : [.gpu, .cpu]
    }

    /// Why `variant` cannot run `g` (nil: any geometry) with `defines` on the device, or nil when it can.
    public static func unmet(_ variant: Conv2DVariant, _ g: Conv2DGeometry?, pooled: Bool = false, traits: DeviceTraits,
                             defines: [String: String]) -> String? {
        let d = descriptor
        switch variant {
        case .automatic, .cpu:
            if pooled, d.int("CONV_FWD_NP", in: defines) % 4 != 0 {
                return "needs CONV_FWD_NP to be a multiple of 4 (whole windows per work-item), got \(d.int("CONV_FWD_NP", in: defines)) from an override"
            }
            return nil
        case .rows:
            guard let g, !g.suitsRowKernel else { return nil }
            return "needs stride 1, no padding or dilation and C·R·S ≤ 32, got \(g.stride), \(g.padding), \(g.dilation), C·R·S \(g.c * g.r * g.s)"
        case .gpu:
            if pooled { return "has no fused 2×2 max pooling (the register-tile variants have)" }
            let (tm, tn, td, wm, wn) = (d.int("CONV_TM", in: defines), d.int("CONV_TN", in: defines), d.int("CONV_TD", in: defines),
                                        d.int("CONV_WM", in: defines), d.int("CONV_WN", in: defines))
            guard tm > 0, tn > 0, td > 0, wm > 0, wn > 0, tm % wm == 0, tn % wn == 0 else {
                return "needs CONV_WM | CONV_TM and CONV_WN | CONV_TN, got \(tm)/\(wm), \(tn)/\(wn)"
            }
            if (tm / wm) * (tn / wn) > traits.maxWorkGroupSize {
                return "needs work-groups of \((tm / wm) * (tn / wn)), the device allows \(traits.maxWorkGroupSize)"
            }
            if (tm + tn) * td * 4 > traits.localMemoryBytes {
                return "needs \((tm + tn) * td * 4) bytes of local memory, the device has \(traits.localMemoryBytes)"
            }
            return nil
        }
    }

    /// The forward variant for `g`: `requested` when forced, else the tuning table's, else by preference.
    /// - Throws: `TensorError` when the forced variant (or, pooled, every variant) cannot run here.
    public static func choose(_ requested: Conv2DVariant, _ g: Conv2DGeometry?, pooled: Bool = false, traits: DeviceTraits,
                              defines: [String: String]) throws -> Conv2DVariant {
        try pickVariant(pooled ? "conv2d (pooled)" : "conv2d", forced: requested == .automatic ? nil : requested,
                        tabled: defines[KernelFamilyDescriptor.variantKey], preference: preference(traits, pooled: pooled)) {
            unmet($0, g, pooled: pooled, traits: traits, defines: defines)
        }
    }

    /// The call-site defines of a pooled forward over `resolved` (the defines in force without them):
    /// the micro-tile kernel takes 4 taps per pooled pixel, so a work-item must hold whole windows —
    /// CONV_FWD_NP stays when it is a multiple of 4 and becomes 4 otherwise.
    public static func pooledCallSite(_ resolved: [String: String]) -> [String: String] {
        let pixels = descriptor.int("CONV_FWD_NP", in: resolved)
        return ["CONV_POOL": "1", "CONV_FWD_NP": String(pixels % 4 == 0 ? pixels : 4)]
    }

    /// The call-site defines of the backward-input kernels for `g` over `resolved` (the defines in
    /// force without them): few input channels would leave most of a wide tile idle, so layers of at
    /// most 8 channels take one vector of at most 8 channels × 8 pixels, and others a tile no wider
    /// than their channels need (`narrowed`).
    static func backwardInputDefines(_ g: Conv2DGeometry, _ resolved: [String: String]) -> [String: String] {
        guard g.c <= 8 else { return narrowed(resolved, channels: g.c, vectors: "CONV_DX_KV").merging(["CONV_PADDED": "0"]) { $1 } }
        let width = min(descriptor.int("CONV_VW", in: resolved), g.c <= 4 ? 4 : 8)
        return ["CONV_VW": String(width), "CONV_DX_KV": "1", "CONV_DX_NP": "8", "CONV_PADDED": "0"]
    }

    /// Call-site defines that fit a micro-tile's channel side (`vectors` of CONV_VW channels) to a
    /// layer of `channels` channels: no more vectors than the channels fill, and with one vector, the
    /// narrowest width (down to 4) that still holds them — so a 3-channel layer runs 4-wide rather than
    /// leaving 13 of 16 lanes idle. Empty when the tuned tile already fits. The program is built with
    /// the result, so packing, kernels and launch sizes agree.
    public static func narrowed(_ resolved: [String: String], channels: Int, vectors: String) -> [String: String] {
        let width = descriptor.int("CONV_VW", in: resolved), count = descriptor.int(vectors, in: resolved)
        let fitted = min(count, max(1, (channels + width - 1) / width))
        var narrow = width
        while fitted == 1, narrow > 4, channels <= narrow / 2 { narrow /= 2 }
        var out: [String: String] = [:]
        if fitted != count { out[vectors] = String(fitted) }
        if narrow != width { out["CONV_VW"] = String(narrow) }
        return out
    }

    /// The backward-input kernel for `g`: `requested` when forced, else the row kernel for stride 1 and
    /// at most 4 input channels (a first layer on images: the micro-tile vectorizes over channels and
    /// would leave most lanes idle; on conv1 of the reference CNN, C = 1, the row kernel took the
    /// batch-256 dx from 18.5 ms to 5.0–6.5 ms, `prism-bench kernels --only conv`, Benchmarks/RESULTS.md),
    /// else the micro-tile.
    /// - Throws: `TensorError` when the row kernel is forced on a stride other than 1.
    public static func backwardInputVariant(_ requested: Conv2DBackwardInputVariant, _ g: Conv2DGeometry) throws -> Conv2DBackwardInputVariant {
        let rowsFit = g.stride == (1, 1)
        switch requested {
        case .automatic: return rowsFit && g.c <= 4 ? .rows : .tiles
        case .rows where !rowsFit: throw TensorError("conv2d backward input: the rows variant needs stride 1, got \(g.stride)")
        default: return requested
        }
    }

    /// Whether a tuning candidate can run on the device (the tuner skips the others).
    public static func isValid(_ candidate: [String: String], group: String, traits: DeviceTraits) -> Bool {
        guard let v = Conv2DVariant(rawValue: group) else { return true }
        return unmet(v, nil, traits: traits, defines: candidate) == nil
    }
}
