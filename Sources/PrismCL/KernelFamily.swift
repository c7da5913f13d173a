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
    /// The group of per-launch switches: the host sets them for each launch, a tuning table never does.
    public static let perLaunchGroup = "switch"

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
    /// The integers the kernels (and the host, which sizes launches from it) accept; by default
    /// any positive 32-bit int (the kernels' index type).
    public var range: ClosedRange<Int>
    /// Whether the value must be a power of two (a reduction tree halves it).
    public var powerOfTwo: Bool

    public init(_ name: String, _ defaultValue: String, values: [String] = [], group: String, grid: Bool = false,
                range: ClosedRange<Int> = 1...Int(Int32.max), powerOfTwo: Bool = false) {
        self.name = name
        self.defaultValue = defaultValue
        self.values = values
        self.group = group
        self.grid = grid
        self.range = range
        self.powerOfTwo = powerOfTwo
    }

    /// Whether the host sets it per launch.
    public var isPerLaunch: Bool { group == Self.perLaunchGroup }

    /// What is wrong with `value` for this tunable, or nil when it is valid.
    public func problem(with value: String) -> String? {
        guard let n = Int(value) else { return "is not an integer" }
        guard range.contains(n) else { return "is outside \(range.lowerBound)…\(range.upperBound)" }
        if powerOfTwo, n & (n - 1) != 0 { return "is not a power of two" }
        return nil
    }
}

/// A divisibility a kernel family's tiles need: `divisor` divides `multiple` (a work-group of
/// `multiple / divisor` work-items covers the tile).
public struct TunableDivision: Sendable, Equatable {
    public var divisor: String
    public var multiple: String

    public init(_ divisor: String, divides multiple: String) {
        self.divisor = divisor
        self.multiple = multiple
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

    /// Divisibilities between tunables that every variant reading them needs.
    public var divisions: [TunableDivision]

    public init(file: String, tunables: [Tunable], variants: [String], divisions: [TunableDivision] = []) {
        self.file = file
        self.tunables = tunables
        self.variants = variants
        self.divisions = divisions
    }

    /// The file's name without `.cl` (`matmul`): bench cases and tune targets are named by it.
    public var stem: String { file.hasSuffix(".cl") ? String(file.dropLast(3)) : file }

    /// Every tunable at its default: the base of the full set of `-D` values the host passes.
    public var defaults: [String: String] {
        Dictionary(uniqueKeysWithValues: tunables.map { ($0.name, $0.defaultValue) })
    }

    /// The tunables read by `group`'s kernels.
    public func tunables(group: String) -> [Tunable] { tunables.filter { $0.group == group } }

    /// The integer value of tunable `name` in resolved `defines`, else its default. A value outside
    /// the tunable's range also falls back to the default, so a host sizing a launch never divides
    /// by 0; the program build refuses such a value with a message (see `problem(in:tabled:)`).
    public func int(_ name: String, in defines: [String: String]) -> Int {
        let tunable = tunables.first { $0.name == name }
        if let v = defines[name].flatMap({ Int($0) }), tunable?.range.contains(v) ?? true { return v }
        return tunable.flatMap { Int($0.defaultValue) } ?? 0
    }

    /// What is wrong with a tuning table's entry for this file (`tabled`: per-launch switches may
    /// not be set), or with defines an override sets, or nil when every value is valid.
    /// - Returns: the first problem, naming the tunable and its value.
    public func problem(in entry: [String: String], tabled: Bool) -> String? {
        for name in entry.keys.sorted() {
            let value = entry[name]!
            if name == Self.variantKey {
                if !variants.contains(value) { return "variant '\(value)' is not one of \(variants.joined(separator: ", "))" }
                continue
            }
            guard let tunable = tunables.first(where: { $0.name == name }) else {
                let known = tunables.filter { !tabled || !$0.isPerLaunch }.map(\.name)
                return "\(name) is not a tunable of \(file) (\(known.isEmpty ? "it has none" : "tunables: " + known.joined(separator: ", ")))"
            }
            if tabled, tunable.isPerLaunch { return "\(name) is set per launch by the host, not by a tuning table" }
            if let reason = tunable.problem(with: value) { return "\(name) = \(value) \(reason)" }
        }
        var merged = defaults
        merged.merge(entry) { $1 }
        for d in divisions {
            let (a, b) = (int(d.divisor, in: merged), int(d.multiple, in: merged))
            if a > 0, b % a != 0 { return "\(d.divisor) = \(a) does not divide \(d.multiple) = \(b)" }
        }
        return nil
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
