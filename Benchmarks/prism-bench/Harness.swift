import Foundation
import Prism
import PrismCL

/// One measured case: the median device time of a unit of work and the rate it implies.
struct BenchResult: Codable {
    var name: String
    var shape: String
    /// Which implementation ran it ("prism", or a peer such as "clblast").
    var library: String
    var medianMs: Double
    var minMs: Double
    var runs: Int
    /// Declared floating-point work over the median time (nil for memory-bound cases).
    var gflops: Double?
    /// Declared bytes moved over the median time (memory-bound cases).
    var gbps: Double?
    /// `gflops` as a fraction of the measured FMA peak (or `gbps` of the measured copy bandwidth).
    var peakFraction: Double?
    /// For estimators: the mean relative error ‖φ − φ_ref‖ / ‖φ_ref‖ over the runs, against a
    /// high-precision reference.
    var relError: Double? = nil
    /// The kernel family's variant that ran (as its descriptor names it), where the family has several.
    var variant: String? = nil
    /// The same work done by a peer library (CLBlast) on the same device in the same run.
    var peer: PeerResult? = nil

    enum CodingKeys: String, CodingKey {
        case name, shape, library, runs, gflops, gbps, variant, peer
        case medianMs = "median_ms", minMs = "min_ms", peakFraction = "peak_fraction", relError = "rel_error"
    }
}

/// A peer's timing of a case, kept in the case's `peer` field.
struct PeerResult: Codable {
    var library: String
    var medianMs: Double
    var minMs: Double
    var gflops: Double?
    var peakFraction: Double?
    /// How it was timed: "events" (device events) or "wall" (host clock, queue idle to `clFinish`).
    var timing: String

    enum CodingKeys: String, CodingKey {
        case library, gflops, timing
        case medianMs = "median_ms", minMs = "min_ms", peakFraction = "peak_fraction"
    }
}

/// The device's measured ceilings.
struct Peak: Codable {
    var gflops: Double
    var gbps: Double
    var fmaConfiguration: String

    enum CodingKeys: String, CodingKey {
        case gflops, gbps
        case fmaConfiguration = "fma_configuration"
    }
}

/// What one `prism-bench` run writes with `--json`: the shape `Benchmarks/compare` reads.
struct BenchReport: Codable {
    struct DeviceSummary: Codable {
        var name: String
        var vendor: String
        var platform: String
        var driver: String
        var type: String
        var computeUnits: Int
        var library: String

        enum CodingKeys: String, CodingKey {
            case name, vendor, platform, driver, type, library
            case computeUnits = "compute_units"
        }
    }

    var device: DeviceSummary
    var date: String
    var command: String
    var peak: Peak?
    var results: [BenchResult]
    /// `prism-bench bringup`: each group's time and error (nil: passed).
    var groups: [Group]? = nil
    /// `prism-bench bringup`: each forced-variant and evaluator check against the reference.
    var checks: [Check]? = nil

    struct Group: Codable {
        var name: String
        var seconds: Double
        var error: String?
    }

    struct Check: Codable {
        var name: String
        var passed: Bool
        /// Why the check could not run on this device (a variant's precondition), when it did not.
        var skipped: String?
        var error: String?
    }
}

/// Runs cases, prints one line per result and collects them.
final class Bench {
    let engine: Engine
    let warmup: Int
    let repeats: Int
    var peak: Peak?
    /// Print each case's median time per kernel too.
    var breakdown = false
    /// Run only cases whose name contains this text (nil: all).
    var filter: String?

    /// Whether the case `name` is to run (`--filter`).
    func wants(_ name: String) -> Bool {
        guard let filter, !filter.isEmpty else { return true }
        return name.localizedCaseInsensitiveContains(filter)
    }
    private(set) var results: [BenchResult] = []
    /// The groups and checks of `prism-bench bringup` (empty elsewhere).
    var groups: [BenchReport.Group] = []
    var checks: [BenchReport.Check] = []

    init(engine: Engine, warmup: Int, repeats: Int) {
        self.engine = engine
        self.warmup = warmup
        self.repeats = repeats
    }

    /// The median and minimum over `repeats` runs of `body`'s device time (the sum of the events it
    /// returns), after `warmup` runs.
    func time(_ body: () throws -> [Event]) throws -> (median: Double, min: Double) {
        for _ in 0..<warmup { _ = try body().map { try $0.wait() } }
        var times: [Double] = []
        var perKernel: [String: [Double]] = [:], kernelOrder: [String] = []
        for _ in 0..<repeats {
            let events = try body()
            var total = 0.0
            var thisRun: [String: Double] = [:]
            for event in events {
                let ms = Double(try event.durationNanoseconds()) * 1e-6
                total += ms
                let label = event.label ?? "?"
                if thisRun[label] == nil, perKernel[label] == nil { kernelOrder.append(label) }
                thisRun[label, default: 0] += ms
            }
            for (label, ms) in thisRun { perKernel[label, default: []].append(ms) }
            times.append(total)
        }
        if breakdown {
            for label in kernelOrder {
                let sorted = perKernel[label]!.sorted()
                say("    " + label.padding(toLength: 34, withPad: " ", startingAt: 0) + String(format: " %10.3f ms", sorted[sorted.count / 2]))
            }
        }
        return medianAndMinimum(times)
    }

    /// The median and minimum over `repeats` runs of `body`'s wall-clock time, from an idle queue to
    /// `clFinish`: for peers whose events do not cover all of their work.
    func wallTime(_ body: () throws -> Void) throws -> (median: Double, min: Double) {
        for _ in 0..<warmup { try body(); try engine.synchronize() }
        var times: [Double] = []
        for _ in 0..<repeats {
            try engine.synchronize()
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            try engine.synchronize()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-6)
        }
        return medianAndMinimum(times)
    }

    /// Times a peer's run of the case `name` × `shape` from the host (see `wallTime`) and records it
    /// in that case's `peer` field (the case must have been recorded first).
    func peerWallClock(_ name: String, shape: String, library: String, flops: Double, _ body: () throws -> Void) throws {
        guard wants(name), let index = results.lastIndex(where: { $0.name == name && $0.shape == shape }) else { return }
        let t = try wallTime(body)
        let gflops = flops / (t.median * 1e6)
        attachPeer(PeerResult(library: library, medianMs: t.median, minMs: t.min, gflops: gflops, peakFraction: peak.map { gflops / $0.gflops },
                              timing: "wall"), to: index)
    }

    /// Records `peer` as result `index`'s peer unless a faster one is there already (the field holds
    /// the fastest peer: the one a target is set against), and prints it.
    func attachPeer(_ peer: PeerResult, to index: Int) {
        var line = "  peer \(peer.library)".padding(toLength: 63, withPad: " ", startingAt: 0) + String(format: " %10.3f ms", peer.medianMs)
        if let g = peer.gflops { line += String(format: " %9.1f GFLOP/s", g) }
        if let f = peer.peakFraction { line += String(format: " %5.1f%% of peak", 100 * f) }
        say(line + String(format: "  (Prism takes %.2f× its time)", results[index].medianMs / peer.medianMs))
        if let current = results[index].peer, current.medianMs <= peer.medianMs { return }
        results[index].peer = peer
    }

    /// Attaches the rows of a peer's result file (the JSON the scripts in `Benchmarks/peers` write)
    /// to the cases with the same name and shape.
    /// - Throws: `BenchError` naming the file when it is not such a file.
    func attachPeers(file path: String) throws {
        struct PeerFile: Decodable {
            struct Device: Decodable { var library: String?; var name: String? }
            struct Row: Decodable {
                var name: String, shape: String?, medianMs: Double, minMs: Double?, gflops: Double?
                enum CodingKeys: String, CodingKey { case name, shape, gflops, medianMs = "median_ms", minMs = "min_ms" }
            }
            var device: Device?
            var results: [Row]
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw BenchError("--peer \(path): cannot read file") }
        let file: PeerFile
        do { file = try JSONDecoder().decode(PeerFile.self, from: data) } catch {
            throw BenchError("--peer \(path): not a benchmark result file (\(error))")
        }
        let library = file.device?.library ?? file.device?.name ?? path
        for row in file.results where row.medianMs > 0 {
            guard let index = results.firstIndex(where: { $0.name == row.name && $0.shape == (row.shape ?? "") && $0.library == "prism" }) else { continue }
            say("\(row.name) \(row.shape ?? ""):")
            attachPeer(PeerResult(library: library, medianMs: row.medianMs, minMs: row.minMs ?? row.medianMs, gflops: row.gflops,
                                  peakFraction: row.gflops.flatMap { g in peak.map { g / $0.gflops } }, timing: "peer script"), to: index)
        }
    }

    /// Times `body` and records a compute-bound result of `flops` floating-point operations.
    func compute(_ name: String, shape: String, library: String = "prism", variant: String? = nil, flops: Double,
                 _ body: () throws -> [Event]) throws {
        guard wants(name) else { return }
        let t = try time(body)
        let gflops = flops / (t.median * 1e6)
        add(BenchResult(name: name, shape: shape, library: library, medianMs: t.median, minMs: t.min, runs: repeats,
                        gflops: gflops, gbps: nil, peakFraction: peak.map { gflops / $0.gflops }, variant: variant))
    }

    /// Times `body` and records a memory-bound result that moves `bytes` (its fraction is of the
    /// measured copy bandwidth).
    func memory(_ name: String, shape: String, variant: String? = nil, bytes: Double, _ body: () throws -> [Event]) throws {
        guard wants(name) else { return }
        let t = try time(body)
        let gbps = bytes / (t.median * 1e6)
        add(BenchResult(name: name, shape: shape, library: "prism", medianMs: t.median, minMs: t.min, runs: repeats,
                        gflops: nil, gbps: gbps, peakFraction: peak.map { gbps / $0.gbps }, variant: variant))
    }

    func add(_ result: BenchResult) {
        results.append(result)
        var line = "\(result.name.padding(toLength: 28, withPad: " ", startingAt: 0)) "
        line += "\(result.shape.padding(toLength: 34, withPad: " ", startingAt: 0)) "
        line += String(format: "%10.3f ms", result.medianMs)
        if let g = result.gflops { line += String(format: " %9.1f GFLOP/s", g) }
        if let b = result.gbps { line += String(format: " %9.1f GB/s", b) }
        if let s = result.peakFraction { line += String(format: " %5.1f%% of peak", 100 * s) }
        if let e = result.relError { line += String(format: "  error %.2f%%", 100 * e) }
        if let v = result.variant { line += "  [\(v)]" }
        say(line)
    }

    func report(command: String) -> BenchReport {
        let info = engine.device
        let date = ISO8601DateFormatter.string(from: Date(), timeZone: .gmt, formatOptions: [.withFullDate])
        return BenchReport(
            device: .init(name: info.name, vendor: info.vendor, platform: info.platform, driver: info.driverVersion,
                          type: info.type.rawValue, computeUnits: info.computeUnits, library: "prism"),
            date: date, command: command, peak: peak, results: results, groups: groups.isEmpty ? nil : groups,
            checks: checks.isEmpty ? nil : checks)
    }
}

/// The median and the smallest of some timings (at least one).
func medianAndMinimum(_ times: [Double]) -> (median: Double, min: Double) {
    let sorted = times.sorted()
    let mid = sorted.count / 2
    return (sorted.count % 2 == 1 ? sorted[mid] : 0.5 * (sorted[mid - 1] + sorted[mid]), sorted.first ?? 0)
}

/// Seeded uniform values in [-1, 1) on the device.
func randomBuffer(_ engine: Engine, count: Int, seed: UInt64) throws -> Buffer<Float> {
    var rng = SplitMix64(seed: seed)
    return try engine.context.buffer((0..<count).map { _ in 2 * rng.nextFloat() - 1 })
}

/// Writes a line to standard output at once (unbuffered, so progress shows through a pipe).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
