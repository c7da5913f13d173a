import Foundation
import PrismCL

/// The device side of the tensor library: a `Context`, the compiled kernel programs with the
/// defines chosen for this device, and the autograd switch.
///
/// `@unchecked Sendable`: the program table is guarded by `lock`; the gradient switch is meant to
/// be flipped by the thread that runs the model (the engine is synchronous, like its queue).
public final class Engine: @unchecked Sendable {
    public let context: Context
    private let lock = NSLock()
    private var programs: [String: Program] = [:]
    private var gradDepth = 0
    /// Per-file `-D` defines that override the built-in defaults (tests force variants with this).
    public var defineOverrides: [String: [String: String]] = [:]

    /// Why the tuning tables in force cannot be used (a value, name or variant a kernel family
    /// refuses), found when the engine is made; every program build then throws it, before any
    /// kernel is built or launched.
    public let tuningProblem: TensorError?

    public init(context: Context) {
        self.context = context
        let tables = [(context.tuning.override, context.settings.tuningFile ?? "override"), (context.tuning.shipped, "tuning.json (shipped)")]
        tuningProblem = tables.lazy.compactMap { table, source in table.flatMap { KernelFamilies.problem(in: $0, source: source) } }.first
            .map(TensorError.init)
    }

    /// An engine on the device chosen by `settings`.
    public convenience init(settings: Settings = .current) throws {
        self.init(context: try Context(settings: settings))
    }

    public var device: DeviceInfo { context.device.info }

    /// The device properties the kernel families' variant rules read.
    public var traits: DeviceTraits { DeviceTraits(device) }

    // MARK: programs and launches

    /// The program for `file` built with `resolvedDefines(file, defines)` (less the tuning table's
    /// `variant` entry, which picks kernels and is no define).
    /// - Throws: `TensorError` when the tuning tables hold a value a kernel family refuses
    ///   (`tuningProblem`) or `defineOverrides` does; `CLError` when the build fails.
    public func program(_ file: String, defines: [String: String] = [:]) throws -> Program {
        if let tuningProblem { throw tuningProblem }
        if let descriptor = KernelFamilies.descriptor(for: file), let overrides = defineOverrides[file],
           let problem = descriptor.problem(in: overrides, tabled: false) {
            throw TensorError("define override for \(file) (kernel family \(descriptor.stem)): \(problem)")
        }
        var all = resolvedDefines(file, defines)
        all[KernelFamilyDescriptor.variantKey] = nil
        let key = file + "|" + all.keys.sorted().map { "\($0)=\(all[$0]!)" }.joined(separator: ",")
        lock.lock()
        if let program = programs[key] { lock.unlock(); return program }
        lock.unlock()
        let program = try context.program(file: file, defines: all, options: "-cl-mad-enable")
        lock.lock(); programs[key] = program; lock.unlock()
        return program
    }

    /// The defines a program of `file` is built with, in increasing precedence: its kernel family's
    /// defaults (every tunable, so the host always passes the full set), the tuning table's for this
    /// device, `callSite`, and `defineOverrides[file]`. Hosts that size their launches from a tunable
    /// read it here, so launch and kernel always agree.
    public func resolvedDefines(_ file: String, _ callSite: [String: String] = [:]) -> [String: String] {
        var all = KernelFamilies.descriptor(for: file)?.defaults ?? [:]
        for (k, v) in context.tunedDefines(for: file) { all[k] = v }
        for (k, v) in callSite { all[k] = v }
        for (k, v) in defineOverrides[file] ?? [:] { all[k] = v }
        return all
    }

    /// Enqueues kernel `name` of `file`.
    @discardableResult
    public func launch(_ file: String, _ name: String, defines: [String: String] = [:], global: [Int], local: [Int]? = nil,
                       _ arguments: [any KernelArgument]) throws -> Event? {
        try program(file, defines: defines).kernel(name).launch(on: context, global: global, local: local, arguments)
    }

    /// A device buffer of `count` floats (contents undefined).
    public func buffer(count: Int) throws -> Buffer<Float> {
        try context.buffer(Float.self, count: count)
    }

    // MARK: autograd switch

    /// Whether operations record their backward (false inside `noGrad`).
    public var isGradEnabled: Bool {
        lock.lock(); defer { lock.unlock() }
        return gradDepth == 0
    }

    /// Runs `body` without recording: no tape, no saved activations.
    public func noGrad<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock(); gradDepth += 1; lock.unlock()
        defer { lock.lock(); gradDepth -= 1; lock.unlock() }
        return try body()
    }

    /// Blocks until the device has finished all enqueued work.
    public func synchronize() throws { try context.finish() }
}

/// Rounds `n` up to a multiple of `m`.
@inline(__always)
func roundUp(_ n: Int, _ m: Int) -> Int { (n + m - 1) / m * m }
