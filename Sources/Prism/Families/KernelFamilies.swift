import PrismCL

/// Every kernel family's descriptor, by kernel file: the one place the host learns a file's
/// tunables and their defaults (`Engine.resolvedDefines` starts from them).
public enum KernelFamilies {
    /// The families in documentation order.
    public static let all: [KernelFamilyDescriptor] = [
        GEMMFamily.descriptor, Conv2DFamily.descriptor, Conv2DGroupedFamily.descriptor, AttentionFamily.descriptor, LayerNormFamily.descriptor,
        SoftmaxFamily.descriptor, PoolFamily.descriptor, ElementwiseFamily.descriptor, ShapFamily.descriptor,
        IndexFamily.descriptor, QuantizedFamily.descriptor, BatchNormFamily.descriptor,
    ]

    /// The descriptor of the family whose kernels live in `file`, or nil for helper files without one.
    public static func descriptor(for file: String) -> KernelFamilyDescriptor? {
        all.first { $0.file == file }
    }

    /// The first entry of `table`, at any level (default, vendor, device), that a kernel family
    /// refuses: a file with no family, a name that is not one of its tunables, a per-launch switch,
    /// a value outside the tunable's range or not dividing what it must, an unknown variant.
    /// - Parameter source: the table's file, for the message.
    /// - Returns: one line naming the table, the entry, the family, the tunable and its value; nil when valid.
    public static func problem(in table: TuningTable, source: String) -> String? {
        var levels: [(String, [String: TuningTable.Defines])] = [("default", table.default ?? [:])]
        for (kind, files) in (table.widths ?? [:]).sorted(by: { $0.key < $1.key }) {
            levels.append(("width '\(kind)'", files))
        }
        for (vendor, entry) in (table.vendors ?? [:]).sorted(by: { $0.key < $1.key }) {
            levels.append(("vendor '\(vendor)'", entry.default ?? [:]))
            for (device, files) in (entry.devices ?? [:]).sorted(by: { $0.key < $1.key }) {
                levels.append(("vendor '\(vendor)' device '\(device)'", files))
            }
        }
        for (level, files) in levels {
            for (file, defines) in files.sorted(by: { $0.key < $1.key }) {
                guard let descriptor = descriptor(for: file) else {
                    return "tuning table \(source), \(level): no kernel family has tunables in '\(file)' (families: \(all.map(\.file).joined(separator: ", ")))"
                }
                if let problem = descriptor.problem(in: defines, tabled: true) {
                    return "tuning table \(source), \(level): kernel family \(descriptor.stem) (\(file)): \(problem)"
                }
            }
        }
        return nil
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
