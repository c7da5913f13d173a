import PrismCL

/// Every kernel family's descriptor, by kernel file: the one place the host learns a file's
/// tunables and their defaults (`Engine.resolvedDefines` starts from them).
public enum KernelFamilies {
    /// The families in documentation order.
    public static let all: [KernelFamilyDescriptor] = [
        GEMMFamily.descriptor, Conv2DFamily.descriptor, AttentionFamily.descriptor, LayerNormFamily.descriptor,
        SoftmaxFamily.descriptor, PoolFamily.descriptor, ElementwiseFamily.descriptor, ShapFamily.descriptor,
    ]

    /// The descriptor of the family whose kernels live in `file`, or nil for helper files without one.
    public static func descriptor(for file: String) -> KernelFamilyDescriptor? {
        all.first { $0.file == file }
    }
}

/// `VariantRule.pick` with its error as the `TensorError` ops throw.
func pickVariant<V: KernelVariant>(_ family: String, forced: V?, tabled: String?, preference: [V],
                                   unmet: (V) -> String?) throws -> V {
    do {
        return try VariantRule.pick(family: family, forced: forced, tabled: tabled, preference: preference, unmet: unmet)
    } catch let error as VariantError {
        throw TensorError(error.message)
    }
}

extension Engine {
    /// The tuning table's `variant` entry for `file` on this device (or an override's), if any.
    func tabledVariant(_ file: String) -> String? {
        resolvedDefines(file)[KernelFamilyDescriptor.variantKey]
    }
}
