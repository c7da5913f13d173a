import PrismCL

/// The integer-tensor family (`index.cl`): gathers by index and their deterministic backward,
/// comparisons, selection and casts; one work-item per output element, one variant on every device.
public enum IndexFamily {
    public static let descriptor = KernelFamilyDescriptor(file: "index.cl", tunables: [], variants: ["flat"])
}
