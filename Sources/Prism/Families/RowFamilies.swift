import PrismCL

/// Which `layernorm.cl` kernels normalize the rows (forward and dx).
public enum LayerNormVariant: String, KernelVariant, CaseIterable {
    /// `LayerNormFamily.choose` decides.
    case automatic
    /// One work-item per row, no barriers (fast on PoCL).
    case cpu
    /// One work-group of `LN_GROUP` work-items per row, sums in local memory (fast on GPUs).
    case gpu
}

/// The layer-normalization family (`layernorm.cl`).
public enum LayerNormFamily {
    public static let variants: [LayerNormVariant] = [.cpu, .gpu]

    public static let descriptor = KernelFamilyDescriptor(file: "layernorm.cl", tunables: [
        Tunable("LN_GROUP", "128", values: ["32", "64", "128", "256"], group: "gpu", grid: true, range: 1...1024, powerOfTwo: true),
    ], variants: variants.map(\.rawValue))

    /// Rows per work-item where the device prefers register tiles, else a work-group per row.
    public static func preference(_ traits: DeviceTraits) -> [LayerNormVariant] {
        traits.prefersRegisterTiles ? [.cpu, .gpu] : [.gpu, .cpu]
    }

    /// Why `variant` cannot run with `defines` on the device, or nil when it can.
    public static func unmet(_ variant: LayerNormVariant, traits: DeviceTraits, defines: [String: String]) -> String? {
        guard variant == .gpu else { return nil }
        let group = descriptor.int("LN_GROUP", in: defines)
        if group < 1 || group & (group - 1) != 0 || group > traits.maxWorkGroupSize {
            return "needs LN_GROUP a power of two ≤ \(traits.maxWorkGroupSize), got \(group)"
        }
        if group * 4 > traits.localMemoryBytes {
            return "needs \(group * 4) bytes of local memory, the device has \(traits.localMemoryBytes)"
        }
        return nil
    }

    /// The variant: `requested` when forced, else the tuning table's, else by preference.
    /// - Throws: `TensorError` when the forced variant cannot run here.
    public static func choose(_ requested: LayerNormVariant, traits: DeviceTraits, defines: [String: String]) throws -> LayerNormVariant {
        try pickVariant("layerNorm", forced: requested == .automatic ? nil : requested, tabled: defines[KernelFamilyDescriptor.variantKey],
                        preference: preference(traits)) { unmet($0, traits: traits, defines: defines) }
    }
}

/// The softmax and loss family (`softmax.cl`): one work-item per row, one variant on every device.
public enum SoftmaxFamily {
    public static let descriptor = KernelFamilyDescriptor(file: "softmax.cl", tunables: [
        Tunable("MSE_BLOCK", "1024", values: ["256", "1024", "4096"], group: "rows", range: 1...1_048_576),
    ], variants: ["rows"])
}

/// The elementwise family (`elementwise.cl`): flat kernels, one variant on every device.
public enum ElementwiseFamily {
    public static let descriptor = KernelFamilyDescriptor(file: "elementwise.cl", tunables: [
        Tunable("PRISM_VEC", "1", values: ["1", "2", "4", "8"], group: "flat", range: 1...16),
    ], variants: ["flat"])

    /// Work-items for `n` elements in the kernels that take PRISM_VEC elements each (fill, copy, axpy).
    static func vectorItems(_ engine: Engine, _ n: Int) -> Int {
        let vec = max(1, descriptor.int("PRISM_VEC", in: engine.resolvedDefines(descriptor.file)))
        return (n + vec - 1) / vec
    }
}

/// The SHAP perturbation family (`shap.cl`): masked inputs and weighted reductions, one variant.
public enum ShapFamily {
    public static let descriptor = KernelFamilyDescriptor(file: "shap.cl", tunables: [], variants: ["perturb"])
}
