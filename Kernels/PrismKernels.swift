/// The OpenCL C sources in `Kernels/*.cl`, embedded into the binary at build time by the
/// `EmbedKernels` plugin.
public enum PrismKernelSources {
    /// Every embedded kernel file, keyed by file name (`"elementwise.cl"`).
    public static var all: [String: String] { embeddedKernelSources }

    /// The source of one kernel file, or nil when no such file was embedded.
    public static func source(named fileName: String) -> String? {
        embeddedKernelSources[fileName]
    }
}
