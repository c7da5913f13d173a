import Prism
import PrismCL

/// One shape of the FMA probe: `chains` independent chains of `floatN` FMAs per work-item.
struct PeakProbe: Hashable {
    var width: Int
    var chains: Int
    /// Work-items per compute unit.
    var itemsPerUnit: Int
    var local: Int?
}

/// The probes `measurePeak` runs on a device: float4, float8 and float16 chains (and the device's
/// native width, if another), one work-item per group as a CPU runs them best, and scalar or float4
/// chains over many work-items as a GPU runs them best. Every device runs all of them and the best
/// counts, so no probe shape is assumed from the device type.
func peakProbes(_ traits: DeviceTraits) -> [PeakProbe] {
    let widths = Set([4, 8, 16, traits.nativeFloatWidth].filter { [1, 4, 8, 16].contains($0) }).sorted()
    var probes = widths.flatMap { w in
        [PeakProbe(width: w, chains: 8, itemsPerUnit: 256, local: 1), PeakProbe(width: w, chains: 12, itemsPerUnit: 256, local: 1)]
    }
    probes += [PeakProbe(width: 1, chains: 8, itemsPerUnit: 4096, local: 64), PeakProbe(width: 1, chains: 16, itemsPerUnit: 2048, local: 128),
               PeakProbe(width: 4, chains: 4, itemsPerUnit: 2048, local: 256)]
    return probes.filter { ($0.local ?? 1) <= traits.maxWorkGroupSize }
}

/// Measures the FMA ceiling (the best of the probes above; each width's best is also recorded, as
/// `peak_fma_floatN`) and the copy bandwidth.
func measurePeak(_ bench: Bench) throws -> Peak {
    let engine = bench.engine
    let units = max(engine.device.computeUnits, 1)
    var best: (gflops: Double, configuration: String, ms: Double) = (0, "", 0)
    var byWidth: [Int: (gflops: Double, configuration: String, ms: Double)] = [:]
    for probe in peakProbes(engine.traits) {
        let items = units * probe.itemsPerUnit
        // Each probe does 2^32 FLOPs per compute unit: about 20 ms on a CPU core (so start-up and
        // thread hand-off do not count), a few milliseconds on a GPU.
        let iterations = max(256, (1 << 31) / (probe.width * probe.chains * probe.itemsPerUnit))
        let defines = ["PEAK_WIDTH": "\(probe.width)", "PEAK_CHAINS": "\(probe.chains)", "PEAK_ITERS": "\(iterations)"]
        let out = try engine.buffer(count: items)
        let kernel = try engine.program("peak.cl", defines: defines).kernel("fma_peak")
        let flops = 2.0 * Double(probe.width * probe.chains * iterations * items)
        let t = try bench.time {
            [try kernel.launch(on: engine.context, global: [items], local: probe.local.map { [$0] },
                               [out, Float(0.999), Float(0.001)])].compactMap { $0 }
        }
        let gflops = flops / (t.median * 1e6)
        if bench.breakdown { say(String(format: "    probe float%d × %d chains, %d work-items: %.3f ms, %.1f GFLOP/s", probe.width, probe.chains, items, t.median, gflops)) }
        let configuration = "float\(probe.width == 1 ? "" : "\(probe.width)") × \(probe.chains) chains, \(items) work-items"
        if gflops > best.gflops { best = (gflops, configuration, t.median) }
        if gflops > byWidth[probe.width]?.gflops ?? 0 { byWidth[probe.width] = (gflops, configuration, t.median) }
    }
    for (width, result) in byWidth.sorted(by: { $0.key < $1.key }) {
        bench.add(BenchResult(name: "peak_fma_float\(width)", shape: result.configuration, library: "prism", medianMs: result.ms,
                              minMs: result.ms, runs: bench.repeats, gflops: result.gflops, gbps: nil, peakFraction: result.gflops / best.gflops))
    }
    bench.add(BenchResult(name: "peak_fma", shape: best.configuration, library: "prism", medianMs: best.ms, minMs: best.ms, runs: bench.repeats,
                          gflops: best.gflops, gbps: nil, peakFraction: 1))

    // Copy bandwidth over 256 MiB (64 MiB of float4 on each side), well past every cache.
    let vectors = min(16 << 20, engine.device.maxAllocationBytes / 16)
    let source = try engine.buffer(count: vectors * 4), target = try engine.buffer(count: vectors * 4)
    _ = try engine.launch("peak.cl", "copy_peak", global: [1], [source, target, Int32(0)])
    let t = try bench.time {
        [try engine.launch("peak.cl", "copy_peak", global: [vectors], [source, target, Int32(vectors)])].compactMap { $0 }
    }
    let gbps = Double(vectors * 32) / (t.median * 1e6)
    bench.add(BenchResult(name: "peak_copy", shape: "2 × \((vectors * 16) >> 20) MiB", library: "prism", medianMs: t.median, minMs: t.min,
                          runs: bench.repeats, gflops: nil, gbps: gbps, peakFraction: 1))
    return Peak(gflops: best.gflops, gbps: gbps, fmaConfiguration: best.configuration)
}
