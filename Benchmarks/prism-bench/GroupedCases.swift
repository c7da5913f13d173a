import Foundation
import Prism
import PrismCL

/// One grouped convolution of the `grouped` cases.
struct GroupedCase {
    var label: String
    var input: [Int]
    var weight: [Int]
    var groups: Int
    var padding: (Int, Int)
    var dilation: (Int, Int) = (1, 1)

    var shape: String {
        "N\(input[0]) C\(input[1]) H\(input[2]) W\(input[3]) K\(weight[0]) \(weight[2])x\(weight[3]) G\(groups)"
            + (dilation == (1, 1) ? "" : " d\(dilation.0)")
    }
}

/// The grouped convolutions `prism-bench kernels --only grouped` times for `--batch` `batch`: the
/// residual CNN's (2 groups of 4 channels, dilated, on 12×10 images) at 4 × `batch` (its ONNX case's
/// batch 1024 by default), and at `batch` / 4 on 14×14: 4, 8 and 16 groups of 64 channels, ResNeXt's
/// 32 groups of 4 and a depthwise layer.
func groupedCases(batch: Int) -> [GroupedCase] {
    let n = max(1, batch / 4)
    return [
        GroupedCase(label: "resnet_block", input: [batch * 4, 8, 12, 10], weight: [8, 4, 3, 3], groups: 2, padding: (2, 2), dilation: (2, 2)),
        GroupedCase(label: "g4", input: [n, 64, 14, 14], weight: [64, 16, 3, 3], groups: 4, padding: (1, 1)),
        GroupedCase(label: "g8", input: [n, 64, 14, 14], weight: [64, 8, 3, 3], groups: 8, padding: (1, 1)),
        GroupedCase(label: "g16", input: [n, 64, 14, 14], weight: [64, 4, 3, 3], groups: 16, padding: (1, 1)),
        GroupedCase(label: "resnext", input: [n, 128, 14, 14], weight: [128, 4, 3, 3], groups: 32, padding: (1, 1)),
        GroupedCase(label: "depthwise", input: [n, 64, 14, 14], weight: [64, 1, 3, 3], groups: 64, padding: (1, 1)),
    ]
}

/// Each grouped case run every way (`Conv2DGroupedVariant`), forward (inference, no recording) and
/// forward + backward, wall clock; each way's output is checked at sampled positions against exact
/// sums before it is timed. Case names: `grouped_LABEL_forward`, `grouped_LABEL_forward_backward`;
/// the variant column says which way ran and marks the automatic rule's pick with `*`.
func benchGrouped(_ bench: Bench, batch: Int) throws {
    let engine = bench.engine
    for cs in groupedCases(batch: batch) where bench.wants("grouped_\(cs.label)") {
        let x = try Tensor(randomFloats(cs.input.reduce(1, *), seed: 3), shape: cs.input, engine: engine, requiresGrad: true)
        let w = try Tensor(randomFloats(cs.weight.reduce(1, *), seed: 4), shape: cs.weight, engine: engine, requiresGrad: true)
        let b = try Tensor(randomFloats(cs.weight[0], seed: 5), shape: [cs.weight[0]], engine: engine, requiresGrad: true)
        let picked = try Conv2DGroupedFamily.choose(.automatic, input: cs.input, weight: cs.weight, groups: cs.groups,
                                                    defines: engine.resolvedDefines(Conv2DGroupedFamily.descriptor.file))
        let outputArea = try Conv2DGeometry(input: cs.input, weight: [cs.weight[0], cs.input[1], cs.weight[2], cs.weight[3]], bias: nil,
                                            stride: (1, 1), padding: cs.padding, dilation: cs.dilation).outputShape
        let flops = 2.0 * Double(outputArea.reduce(1, *) * cs.weight[1] * cs.weight[2] * cs.weight[3])
        // The rule's pick first: a peer's row (`--peer`) attaches to the first case of its name and shape.
        for way in [picked] + Conv2DGroupedFamily.variants.filter({ $0 != picked }) {
            func forward() throws -> Tensor {
                try conv2d(x, weight: w, bias: b, padding: cs.padding, dilation: cs.dilation, groups: cs.groups, grouping: way)
            }
            try checkGrouped(cs, x: x.toArray(), w: w.toArray(), b: b.toArray(), y: try engine.noGrad { try forward() }.toArray())
            let label = way.rawValue + (way == picked ? "*" : "")
            let t = try bench.wallTime { _ = try engine.noGrad { try forward() } }
            bench.add(BenchResult(name: "grouped_\(cs.label)_forward", shape: cs.shape, library: "prism", medianMs: t.median, minMs: t.min,
                                  runs: bench.repeats, gflops: flops / (t.median * 1e6), gbps: nil,
                                  peakFraction: bench.peak.map { flops / (t.median * 1e6) / $0.gflops }, variant: label))
            let dy = try Tensor(randomFloats(outputArea.reduce(1, *), seed: 6), shape: outputArea, engine: engine)
            let tb = try bench.wallTime {
                x.zeroGrad(); w.zeroGrad(); b.zeroGrad()
                try forward().backward(dy)
            }
            bench.add(BenchResult(name: "grouped_\(cs.label)_forward_backward", shape: cs.shape, library: "prism", medianMs: tb.median,
                                  minMs: tb.min, runs: bench.repeats, gflops: 3 * flops / (tb.median * 1e6), gbps: nil,
                                  peakFraction: bench.peak.map { 3 * flops / (tb.median * 1e6) / $0.gflops }, variant: label))
        }
    }
}

/// Seeded uniform floats in [−1, 1).
func randomFloats(_ count: Int, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in rng.nextFloat() * 2 - 1 }
}

/// The grouped convolution's output at 48 sampled positions against exact sums.
func checkGrouped(_ cs: GroupedCase, x: [Float], w: [Float], b: [Float], y: [Float]) throws {
    let (n, c, h, wd) = (cs.input[0], cs.input[1], cs.input[2], cs.input[3])
    let (k, cg, r, s) = (cs.weight[0], cs.weight[1], cs.weight[2], cs.weight[3])
    let p = h + 2 * cs.padding.0 - cs.dilation.0 * (r - 1), q = wd + 2 * cs.padding.1 - cs.dilation.1 * (s - 1)
    var rng = SplitMix64(seed: 7)
    for _ in 0..<48 {
        let (e, o, i, j) = (Int(rng.next() % UInt64(n)), Int(rng.next() % UInt64(k)), Int(rng.next() % UInt64(p)), Int(rng.next() % UInt64(q)))
        let c0 = (o / (k / cs.groups)) * cg
        var sum = Double(b[o])
        for ci in 0..<cg { for u in 0..<r { for v in 0..<s {
            let (ih, iw) = (i - cs.padding.0 + u * cs.dilation.0, j - cs.padding.1 + v * cs.dilation.1)
            guard ih >= 0, ih < h, iw >= 0, iw < wd else { continue }
            sum += Double(x[((e * c + c0 + ci) * h + ih) * wd + iw]) * Double(w[((o * cg + ci) * r + u) * s + v])
        } } }
        let got = y[((e * k + o) * p + i) * q + j]
        guard abs(Double(got) - sum) <= 1e-3 + 1e-4 * abs(sum) else {
            throw BenchError("grouped \(cs.label): y[\(e), \(o), \(i), \(j)] = \(got), expected \(sum)")
        }
    }
}
