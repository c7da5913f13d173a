import PrismCL

/// Which `pool.cl` max-pooling forward kernel runs.
public enum PoolVariant: String, KernelVariant, CaseIterable {
    /// `PoolFamily.choose` decides.
    case automatic
    /// 2×2 windows with stride 2 and no padding, 8 outputs per work-item in explicit vectors.
    case window2x2
    /// Any window, stride and padding, one work-item per output.
    case general
}

/// The pooling family (`pool.cl`): the max-pooling forward variants and the rule that picks one.
public enum PoolFamily {
    public static let variants: [PoolVariant] = [.window2x2, .general]

    public static let descriptor = KernelFamilyDescriptor(file: "pool.cl", tunables: [
        // Per-launch switches, not searched: their defaults complete the set of -D values.
        Tunable("POOL_UNPADDED", "0", group: "switch", range: 0...1),
        Tunable("POOL_KH", "0", group: "switch", range: 0...Int(Int32.max)),
        Tunable("POOL_KW", "0", group: "switch", range: 0...Int(Int32.max)),
        Tunable("POOL_DIVISOR", "0", group: "switch", range: 0...2),
        Tunable("POOL_PLANES_FIRST", "0", group: "switch", range: 0...1),
        Tunable("POOL_PLANE_STRIDE", "0", group: "switch", range: 0...1),
    ], variants: variants.map(\.rawValue))

    /// The vector kernel where it applies, then the general one — except, where the general kernel runs
    /// planes first (`planesFirst`), for small planes, which it pools over many planes at once (the
    /// vector kernel runs a work-group of a few work-items per plane): 2×2 pooling of [1024, 16, 6, 6]
    /// took 1.49–1.54 ms there against 2.08 on PoCL (`prism-bench kernels --only pool`), while at
    /// [256, 32, 26, 26] the vector kernel took 8.3 ms against 14.1.
    public static func preference(_ traits: DeviceTraits, planesFirst: Bool = false) -> [PoolVariant] {
        planesFirst ? [.general, .window2x2] : [.window2x2, .general]
    }

    /// Whether the kernels that run one work-item per output take planes along the range's first axis
    /// (`POOL_PLANES_FIRST`): on CPU devices, for planes of fewer than 64 outputs (e.g. 3×3 after a few
    /// poolings), where a first axis of Q outputs leaves the vectorized work-item loop a handful of
    /// lanes. With the window unrolled too, the imported residual CNN's 3×3 average pooling of 3×3
    /// planes took 2.15 ms at batch 4096 against 6.1 before (RESULTS.md, 2026-12-05 evening). On a GPU
    /// the (Q, P, planes) range keeps a warp's reads in neighbouring memory, so planes stay last there
    /// (not measured on one yet: the bring-up's pool group times these cases).
    static func planesFirst(_ g: Pool2DGeometry, traits: DeviceTraits) -> Bool {
        traits.type == .cpu && g.p * g.q < 64
    }

    /// Why `variant` cannot pool `g` on the device, or nil when it can.
    static func unmet(_ variant: PoolVariant, _ g: Pool2DGeometry, traits: DeviceTraits) -> String? {
        guard variant == .window2x2 else { return nil }
        guard g.kernel == (2, 2), g.stride == (2, 2), g.padding == (0, 0) else {
            return "needs a 2×2 window, stride 2 and no padding, got \(g.kernel), \(g.stride), \(g.padding)"
        }
        if g.overhang { return "needs every window inside the input, but ceil mode keeps a partial last window" }
        let group = (g.q + 7) / 8 * g.p
        if group > traits.maxWorkGroupSize {
            return "needs work-groups of \(group) (a plane's outputs), the device allows \(traits.maxWorkGroupSize)"
        }
        return nil
    }

    /// The variant `maxPool2d` runs for these arguments on `engine`.
    /// - Throws: `TensorError` for invalid arguments or a forced variant that cannot run them.
    public static func choose(_ requested: PoolVariant = .automatic, input: [Int], kernel: (Int, Int), stride: (Int, Int)? = nil,
                              padding: (Int, Int) = (0, 0), ceilMode: Bool = false, engine: Engine) throws -> PoolVariant {
        let g = try Pool2DGeometry("maxPool2d", input: input, kernel: kernel, stride: stride ?? kernel, padding: padding, ceilMode: ceilMode)
        return try choose(requested, g, traits: engine.traits, defines: engine.resolvedDefines(descriptor.file))
    }

    /// The variant for `g`: `requested` when forced, else the tuning table's, else by preference.
    /// - Throws: `TensorError` when the forced variant cannot run here.
    static func choose(_ requested: PoolVariant, _ g: Pool2DGeometry, traits: DeviceTraits, defines: [String: String]) throws -> PoolVariant {
        try pickVariant("maxPool2d", forced: requested == .automatic ? nil : requested, tabled: defines[KernelFamilyDescriptor.variantKey],
                        preference: preference(traits, planesFirst: planesFirst(g, traits: traits))) { unmet($0, g, traits: traits) }
    }
}
