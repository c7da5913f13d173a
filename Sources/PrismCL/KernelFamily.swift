/// The device properties a kernel family's variant rule reads (a `DeviceInfo`'s, or synthetic ones
/// in tests).
public struct DeviceTraits: Sendable, Equatable {
    public var type: DeviceType
    /// `CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT`: floats per native SIMD register (16 on AVX-512, 8 on AVX2).
    public var nativeFloatWidth: Int
    public var localMemoryBytes: Int
    public var computeUnits: Int
    public var maxWorkGroupSize: Int

    public init(type: DeviceType, nativeFloatWidth: Int, localMemoryBytes: Int, computeUnits: Int, maxWorkGroupSize: Int) {
        self.type = type
        self.nativeFloatWidth = nativeFloatWidth
        self.localMemoryBytes = localMemoryBytes
        self.computeUnits = computeUnits
        self.maxWorkGroupSize = maxWorkGroupSize
    }

    /// The traits of a real device.
    public init(_ info: DeviceInfo) {
        self.init(type: info.type, nativeFloatWidth: info.nativeFloatWidth, localMemoryBytes: info.localMemoryBytes,
                  computeUnits: info.computeUnits, maxWorkGroupSize: info.maxWorkGroupSize)
    }

    /// Whether the device runs work-items as threads over SIMD lanes (PoCL and other CPU drivers):
    /// there, barrier-free kernels with register micro-tiles beat local-memory tiles, whose
    /// "local" memory is ordinary cache and whose barriers serialize the work-group.
    public var prefersRegisterTiles: Bool { type == .cpu }
}

/// One tunable of a kernel file: a `-D` name, its one default, and the values a search tries.
public struct Tunable: Sendable, Equatable {
    public var name: String
    /// The default, also the kernel's `#ifndef` value (a test checks they agree).
    public var defaultValue: String
    /// Candidate values for `prism-bench tune` (empty: not searched).
    public var values: [String]
    /// Which kernels read it: a variant's raw value, or another name of the family's kernels
    /// (e.g. `backward_input`); the tuner searches one such group at a time.
    public var group: String
    /// Searched on the full grid before random candidates.
    public var grid: Bool

    public init(_ name: String, _ defaultValue: String, values: [String] = [], group: String, grid: Bool = false) {
        self.name = name
        self.defaultValue = defaultValue
        self.values = values
        self.group = group
        self.grid = grid
    }
}

/// A kernel family's variant names, as enums with `String` raw values (the tuning table's
/// `variant` entry names one).
public protocol KernelVariant: RawRepresentable, Hashable, Sendable where RawValue == String {}

/// What every kernel family declares: its file, its tunables with their defaults, and its variants.
/// Each family (`Prism`'s `GEMMFamily`, `Conv2DFamily`, …) adds the rule that picks a variant.
public struct KernelFamilyDescriptor: Sendable {
    /// The tuning table key a family's entry may hold to pick a variant (never passed to the compiler).
    public static let variantKey = "variant"

    /// The kernel file, `matmul.cl`.
    public var file: String
    public var tunables: [Tunable]
    /// Every concrete variant's raw value, in the family's documentation order.
    public var variants: [String]

    public init(file: String, tunables: [Tunable], variants: [String]) {
        self.file = file
        self.tunables = tunables
        self.variants = variants
    }

    /// The file's name without `.cl` (`matmul`): bench cases and tune targets are named by it.
    public var stem: String { file.hasSuffix(".cl") ? String(file.dropLast(3)) : file }

    /// Every tunable at its default: the base of the full set of `-D` values the host passes.
    public var defaults: [String: String] {
        Dictionary(uniqueKeysWithValues: tunables.map { ($0.name, $0.defaultValue) })
    }

    /// The tunables read by `group`'s kernels.
    public func tunables(group: String) -> [Tunable] { tunables.filter { $0.group == group } }

    /// The integer value of tunable `name` in resolved `defines`, else its default (a non-numeric
    /// override falls back to the default too, and the kernel build then fails and says so).
    public func int(_ name: String, in defines: [String: String]) -> Int {
        if let v = defines[name].flatMap({ Int($0) }) { return v }
        return tunables.first(where: { $0.name == name }).flatMap { Int($0.defaultValue) } ?? 0
    }
}

/// The variant-choice rule shared by the families: a forced variant runs if its preconditions hold
/// (else an error says why); `.automatic` takes the tuning table's `variant` when it is valid here,
/// else the first valid variant in the family's order of preference for the device.
public enum VariantRule {
    /// Picks a variant.
    /// - Parameters:
    ///   - forced: the caller's variant, or nil for automatic.
    ///   - tabled: the tuning table's `variant` entry for the file, if any.
    ///   - preference: the variants in order of preference on this device.
    ///   - unmet: why a variant cannot run (nil when it can).
    /// - Throws: `VariantError` when the forced variant, or every variant, is ruled out.
    /// - Returns: the variant to run.
    public static func pick<V: KernelVariant>(family: String, forced: V?, tabled: String?, preference: [V],
                                              unmet: (V) -> String?) throws -> V {
        if let forced {
            if let reason = unmet(forced) { throw VariantError("\(family): the \(forced.rawValue) variant \(reason)") }
            return forced
        }
        if let tabled, let v = V(rawValue: tabled), unmet(v) == nil { return v }
        if let v = preference.first(where: { unmet($0) == nil }) { return v }
        let reasons = preference.map { "\($0.rawValue) \(unmet($0) ?? "")" }.joined(separator: "; ")
        throw VariantError("\(family): no variant can run here (\(reasons))")
    }
}

/// A variant that cannot run on the device or for the problem, with the reason.
public struct VariantError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
