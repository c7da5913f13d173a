import Prism
import PrismCL

/// Measures the FMA ceiling (the best of a few probe shapes: float8 chains one work-item per group,
/// as a CPU wants; scalar chains over many work-items, as a GPU wants) and the copy bandwidth.
func measurePeak(_ bench: Bench) throws -> Peak {
    let engine = bench.engine
    let units = max(engine.device.computeUnits, 1)
    struct Probe { var width: Int; var chains: Int; var items: Int; var local: Int? }
    let probes: [Probe] = engine.isCPU
        ? [Probe(width: 8, chains: 8, items: units * 256, local: 1), Probe(width: 8, chains: 12, items: units * 256, local: 1),
           Probe(width: 1, chains: 8, items: units * 4096, local: 64)]
        : [Probe(width: 1, chains: 8, items: units * 2048, local: 256), Probe(width: 4, chains: 4, items: units * 2048, local: 256),
           Probe(width: 1, chains: 16, items: units * 2048, local: 128)]
    // Long enough (tens of milliseconds on a CPU) that start-up and thread hand-off do not count.
    let iterations = engine.isCPU ? 32768 : 8192
    var best: (gflops: Double, configuration: String, ms: Double) = (0, "", 0)
    for probe in probes {
        let defines = ["PEAK_WIDTH": "\(probe.width)", "PEAK_CHAINS": "\(probe.chains)", "PEAK_ITERS": "\(iterations)"]
        let out = try engine.buffer(count: probe.items)
        let kernel = try engine.program("peak.cl", defines: defines).kernel("fma_peak")
        let flops = 2.0 * Double(probe.width * probe.chains * iterations * probe.items)
        let t = try bench.time {
            [try kernel.launch(on: engine.context, global: [probe.items], local: probe.local.map { [$0] },
                               [out, Float(0.999), Float(0.001)])].compactMap { $0 }
        }
        let gflops = flops / (t.median * 1e6)
        if bench.breakdown { say(String(format: "    probe float%d × %d chains: %.3f ms, %.1f GFLOP/s", probe.width, probe.chains, t.median, gflops)) }
        let configuration = "float\(probe.width == 1 ? "" : "\(probe.width)") × \(probe.chains) chains, \(probe.items) work-items"
        if gflops > best.gflops { best = (gflops, configuration, t.median) }
    }
    bench.add(BenchResult(name: "peak_fma", shape: best.configuration, library: "prism", medianMs: best.ms, minMs: best.ms, runs: bench.repeats,
                          gflops: best.gflops, gbps: nil, peakShare: 1))

    // Copy bandwidth over 256 MiB (64 MiB of float4 on each side), well past every cache.
    let vectors = min(16 << 20, engine.device.maxAllocationBytes / 16)
    let source = try engine.buffer(count: vectors * 4), target = try engine.buffer(count: vectors * 4)
    _ = try engine.launch("peak.cl", "copy_peak", global: [1], [source, target, Int32(0)])
    let t = try bench.time {
        [try engine.launch("peak.cl", "copy_peak", global: [vectors], [source, target, Int32(vectors)])].compactMap { $0 }
    }
    let gbps = Double(vectors * 32) / (t.median * 1e6)
    bench.add(BenchResult(name: "peak_copy", shape: "2 × \((vectors * 16) >> 20) MiB", library: "prism", medianMs: t.median, minMs: t.min,
                          runs: bench.repeats, gflops: nil, gbps: gbps, peakShare: 1))
    return Peak(gflops: best.gflops, gbps: gbps, fmaConfiguration: best.configuration)
}
