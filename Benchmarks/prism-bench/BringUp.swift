import ArgumentParser
import Dispatch
import Foundation
import Prism
import PrismCL
import PrismExplain
import PrismGraph
import PrismReference

/// A first run on a new device in one call: every group of cases, each checked against the
/// reference before it is timed, plus every variant of every kernel family forced at awkward sizes
/// (forward and backward against `PrismReference`). A group that fails is recorded with its error and
/// the run goes on; the JSON is rewritten after every group, so a run stopped part way keeps what it did.
struct BringUpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bringup",
        abstract: "A new device's first run: variant checks, the peaks, the kernels, attention and the SHAP evaluator, each checked before it is timed; failures are recorded and the run goes on.")
    @OptionGroup var options: CommonOptions

    static let allGroups = ["variants", "peak", "sgemm", "conv", "grouped", "layernorm", "softmax", "pool", "attention", "shap"]

    @Option(help: "Groups to run, in this order: \(BringUpCommand.allGroups.joined(separator: ", ")), train (comma-separated).")
    var only: String = BringUpCommand.allGroups.joined(separator: ",")

    @Option(help: "Batch size of the convolution cases.")
    var batch: Int = 256

    @Option(help: "Sequence lengths of the attention cases, comma-separated.")
    var lengths: String = "256,1024,4096"

    @Option(help: "Chunk sizes of the SHAP evaluator sweep, comma-separated.")
    var chunks: String = "256,1024,4096,16384,65536"

    func run() throws {
        var failures = 0
        try runReportingErrors {
            let groups = only.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let unknown = Set(groups).subtracting(Self.allGroups + ["train"])
            guard unknown.isEmpty else { throw ValidationError("--only: unknown group \(unknown.sorted().joined(separator: ", "))") }
            let ts = lengths.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            let sizes = chunks.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !ts.isEmpty, ts.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--lengths: positive lengths, comma-separated") }
            guard !sizes.isEmpty, sizes.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--chunks: positive sizes, comma-separated") }
            guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
            let bench = try options.makeBench()
            for group in groups {
                say("== \(group)")
                let start = DispatchTime.now().uptimeNanoseconds
                do {
                    switch group {
                    case "variants": try checkVariants(bench)
                    case "peak": bench.peak = try measurePeak(bench)
                    case "sgemm": try benchSGEMM(bench, sizes: [1024, 2048, 4096])
                    case "conv": try benchConvolutions(bench, batch: batch)
                    case "grouped": try benchGrouped(bench, batch: batch)
                    case "layernorm": try benchLayerNorm(bench, rows: 8192, n: 768)
                    case "softmax": try benchSoftmax(bench, rows: 8192, c: 1000)
                    case "pool":
                        try benchPool(bench, shape: [batch, 32, 26, 26])
                        try benchPoolWindows(bench, batch: batch)
                    case "attention": try benchAttention(bench, shapes: ts.map { (8, 8, $0, 64) })
                    case "shap":
                        try checkShapEvaluator(bench)
                        try benchShap(bench, chunkSizes: sizes, exact20: true)
                    default:
                        for arch in ["cnn", "mlp", "vit"] { try benchTrainStep(bench, architecture: arch, batch: 64, steps: options.repeats) }
                    }
                    bench.groups.append(.init(name: group, seconds: seconds(since: start), error: nil))
                } catch {
                    say("FAILED \(group): \(error)")
                    bench.groups.append(.init(name: group, seconds: seconds(since: start), error: "\(error)"))
                }
                try options.finish(bench)
            }
            let failed = bench.groups.filter { $0.error != nil } + bench.checks.filter { $0.error != nil }.map {
                BenchReport.Group(name: $0.name, seconds: 0, error: $0.error)
            }
            say(failed.isEmpty ? "bringup: every group and check passed" : "bringup: \(failed.count) failed: \(failed.map(\.name).joined(separator: ", "))")
            failures = failed.count
        }
        if failures > 0 { throw ExitCode(1) }
    }

    func seconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 }
}

// MARK: - Every variant of every family, forced, at awkward sizes

/// Runs `body` as the check `name`: recorded as passed, failed (with the error) or not runnable
/// here (when `runnable` throws: the variant's precondition is not met on this device or shape).
func variantCheck(_ bench: Bench, _ name: String, runnable: () throws -> Void, _ body: () throws -> Void) {
    do {
        try runnable()
    } catch {
        say("  \(name.padding(toLength: 58, withPad: " ", startingAt: 0)) not runnable here: \(error)")
        bench.checks.append(.init(name: name, passed: false, skipped: "\(error)", error: nil))
        return
    }
    do {
        try body()
        say("  \(name.padding(toLength: 58, withPad: " ", startingAt: 0)) ok")
        bench.checks.append(.init(name: name, passed: true, skipped: nil, error: nil))
    } catch {
        say("  \(name.padding(toLength: 58, withPad: " ", startingAt: 0)) FAILED: \(error)")
        bench.checks.append(.init(name: name, passed: false, skipped: nil, error: "\(error)"))
    }
}

func doubles(_ v: [Float]) -> [Double] { v.map(Double.init) }

/// Every variant of the matmul, convolution (forward, backward input, grouped), pooling, layer
/// normalization and attention families, forced one at a time on shapes no tile divides, forward
/// and backward checked against `PrismReference` in Double.
func checkVariants(_ bench: Bench) throws {
    let engine = bench.engine
    let traits = engine.traits

    // Matmul: plain, transposed and batched products.
    let matmulShapes: [(batch: Int, m: Int, n: Int, k: Int, ta: Bool, tb: Bool)] = [
        (1, 37, 53, 71, false, false), (1, 1, 129, 65, false, true), (3, 17, 19, 23, true, false), (2, 130, 67, 129, true, true),
    ]
    for variant in MatmulVariant.allCases where variant != .automatic {
        for s in matmulShapes {
            let name = "matmul \(variant.rawValue) B\(s.batch) \(s.m)x\(s.n)x\(s.k)\(s.ta ? " Aᵀ" : "")\(s.tb ? " Bᵀ" : "")"
            variantCheck(bench, name, runnable: {
                _ = try GEMMFamily.choose(variant, traits: traits, defines: engine.resolvedDefines(GEMMFamily.descriptor.file))
            }) {
                let aShape = s.ta ? [s.k, s.m] : [s.m, s.k], bShape = s.tb ? [s.n, s.k] : [s.k, s.n]
                let av = randomFloats(s.batch * s.m * s.k, seed: 21), bv = randomFloats(s.batch * s.k * s.n, seed: 22)
                let dcv = randomFloats(s.batch * s.m * s.n, seed: 23)
                let a = try Tensor(av, shape: s.batch == 1 ? aShape : [s.batch] + aShape, engine: engine, requiresGrad: true)
                let b = try Tensor(bv, shape: s.batch == 1 ? bShape : [s.batch] + bShape, engine: engine, requiresGrad: true)
                let c = try matmul(a, b, transposeA: s.ta, transposeB: s.tb, variant: variant)
                let tol = 1e-5 * Double(s.k)
                try checkClose(name + " C", try c.toArray(), Reference.matmul(a: doubles(av), b: doubles(bv), batch: s.batch, m: s.m, n: s.n, k: s.k,
                                                                              transposeA: s.ta, transposeB: s.tb), atol: tol, rtol: tol)
                try c.backward(try Tensor(dcv, shape: c.shape, engine: engine))
                let expected = Reference.matmulBackward(dc: doubles(dcv), a: doubles(av), b: doubles(bv), batch: s.batch, m: s.m, n: s.n, k: s.k,
                                                        transposeA: s.ta, transposeB: s.tb)
                let tolBack = 1e-5 * Double(max(s.m, s.n))
                try checkClose(name + " dA", try gradient(a), expected.da, atol: tolBack, rtol: tolBack)
                try checkClose(name + " dB", try gradient(b), expected.db, atol: tolBack, rtol: tolBack)
            }
        }
    }

    // Convolution forward (every variant) with autograd's backward, and the backward-input variants.
    let convs: [(x: [Int], w: [Int], stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int))] = [
        ([3, 5, 11, 13], [7, 5, 3, 3], (1, 1), (1, 1), (1, 1)),
        ([2, 1, 28, 28], [32, 1, 3, 3], (1, 1), (0, 0), (1, 1)),
        ([2, 33, 13, 14], [65, 33, 3, 3], (1, 1), (0, 0), (1, 1)),
        ([2, 3, 9, 10], [6, 3, 5, 3], (2, 1), (2, 1), (1, 1)),
        ([2, 4, 12, 12], [5, 4, 3, 3], (1, 1), (0, 0), (2, 2)),
    ]
    for variant in Conv2DVariant.allCases where variant != .automatic {
        for cs in convs {
            let g = try Conv2DGeometry(input: cs.x, weight: cs.w, bias: [cs.w[0]], stride: cs.stride, padding: cs.padding, dilation: cs.dilation)
            let name = "conv2d \(variant.rawValue) N\(g.n) C\(g.c) H\(g.h) W\(g.w) K\(g.k) \(g.r)x\(g.s) s\(cs.stride.0)\(cs.stride.1) p\(cs.padding.0)\(cs.padding.1) d\(cs.dilation.0)"
            variantCheck(bench, name, runnable: {
                _ = try Conv2DFamily.choose(variant, g, traits: traits, defines: engine.resolvedDefines(Conv2DFamily.descriptor.file))
            }) {
                try checkConv(engine, name, cs.x, cs.w, groups: 1, stride: cs.stride, padding: cs.padding, dilation: cs.dilation) { x, w, b in
                    try conv2d(x, weight: w, bias: b, stride: cs.stride, padding: cs.padding, dilation: cs.dilation, variant: variant)
                }
            }
        }
    }
    for variant in Conv2DBackwardInputVariant.allCases where variant != .automatic {
        for cs in convs {
            let g = try Conv2DGeometry(input: cs.x, weight: cs.w, bias: nil, stride: cs.stride, padding: cs.padding, dilation: cs.dilation)
            let name = "conv2d backward input \(variant.rawValue) N\(g.n) C\(g.c) H\(g.h) W\(g.w) K\(g.k) \(g.r)x\(g.s) s\(cs.stride.0)\(cs.stride.1) d\(cs.dilation.0)"
            variantCheck(bench, name, runnable: { _ = try Conv2DFamily.backwardInputVariant(variant, g) }) {
                let xv = randomFloats(cs.x.reduce(1, *), seed: 31), wv = randomFloats(cs.w.reduce(1, *), seed: 32)
                let dyv = randomFloats(g.outputShape.reduce(1, *), seed: 33)
                let (dx, events) = try Conv2DKernels.backwardInput(engine, g, dy: try engine.context.buffer(dyv), w: try engine.context.buffer(wv),
                                                                   variant: variant)
                try events.forEach { try $0.wait() }
                let expected = Reference.conv2dBackward(dy: doubles(dyv), x: doubles(xv), xShape: cs.x, w: doubles(wv), wShape: cs.w,
                                                        stride: cs.stride, padding: cs.padding, dilation: cs.dilation)
                let tol = 1e-5 * Double(g.k * g.r * g.s)
                try checkClose(name + " dx", try dx.read(), expected.dx, atol: tol, rtol: tol)
            }
        }
    }

    // Grouped convolutions, every way.
    let grouped: [(x: [Int], w: [Int], groups: Int, padding: (Int, Int), dilation: (Int, Int))] = [
        ([2, 8, 12, 10], [8, 4, 3, 3], 2, (2, 2), (2, 2)),
        ([2, 12, 9, 11], [12, 1, 3, 3], 12, (1, 1), (1, 1)),
        ([2, 24, 7, 9], [48, 3, 3, 3], 8, (1, 1), (1, 1)),
        ([1, 40, 6, 7], [40, 8, 1, 1], 5, (0, 0), (1, 1)),
    ]
    for variant in Conv2DGroupedVariant.allCases where variant != .automatic {
        for cs in grouped {
            let name = "conv2d grouped \(variant.rawValue) N\(cs.x[0]) C\(cs.x[1]) H\(cs.x[2]) W\(cs.x[3]) K\(cs.w[0]) \(cs.w[2])x\(cs.w[3]) G\(cs.groups) d\(cs.dilation.0)"
            variantCheck(bench, name, runnable: {
                _ = try Conv2DGroupedFamily.choose(variant, input: cs.x, weight: cs.w, groups: cs.groups,
                                                   defines: engine.resolvedDefines(Conv2DGroupedFamily.descriptor.file))
            }) {
                try checkConv(engine, name, cs.x, cs.w, groups: cs.groups, stride: (1, 1), padding: cs.padding, dilation: cs.dilation) { x, w, b in
                    try conv2d(x, weight: w, bias: b, padding: cs.padding, dilation: cs.dilation, groups: cs.groups, grouping: variant)
                }
            }
        }
    }

    // Max pooling.
    let pools: [(x: [Int], kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int))] = [
        ([2, 3, 9, 11], (2, 2), (2, 2), (0, 0)), ([2, 3, 10, 12], (3, 3), (2, 2), (1, 1)), ([1, 5, 26, 26], (2, 2), (2, 2), (0, 0)),
    ]
    for variant in PoolVariant.allCases where variant != .automatic {
        for cs in pools {
            let name = "maxPool2d \(variant.rawValue) N\(cs.x[0]) C\(cs.x[1]) H\(cs.x[2]) W\(cs.x[3]) \(cs.kernel.0)x\(cs.kernel.1) s\(cs.stride.0) p\(cs.padding.0)"
            variantCheck(bench, name, runnable: {
                _ = try PoolFamily.choose(variant, input: cs.x, kernel: cs.kernel, stride: cs.stride, padding: cs.padding, engine: engine)
            }) {
                let xv = randomFloats(cs.x.reduce(1, *), seed: 41)
                let x = try Tensor(xv, shape: cs.x, engine: engine, requiresGrad: true)
                let y = try maxPool2d(x, kernel: cs.kernel, stride: cs.stride, padding: cs.padding, variant: variant)
                let expected = Reference.maxPool2d(x: doubles(xv), shape: cs.x, kernel: cs.kernel, stride: cs.stride, padding: cs.padding)
                try checkClose(name + " y", try y.toArray(), expected.y, atol: 0, rtol: 0)
                let dyv = randomFloats(expected.y.count, seed: 42)
                try y.backward(try Tensor(dyv, shape: y.shape, engine: engine))
                try checkClose(name + " dx", try gradient(x), Reference.maxPool2dBackward(dy: doubles(dyv), argmax: expected.argmax, inputShape: cs.x),
                               atol: 1e-6, rtol: 1e-6)
            }
        }
    }

    // Layer normalization.
    for variant in LayerNormVariant.allCases where variant != .automatic {
        for (rows, n) in [(37, 100), (5, 1000), (130, 64), (3, 3001)] {
            let name = "layerNorm \(variant.rawValue) \(rows)x\(n)"
            variantCheck(bench, name, runnable: {
                _ = try LayerNormFamily.choose(variant, traits: traits, defines: engine.resolvedDefines(LayerNormFamily.descriptor.file))
            }) {
                let xv = randomFloats(rows * n, seed: 51).map { 3 * $0 + 0.5 }, wv = randomFloats(n, seed: 52), bv = randomFloats(n, seed: 53)
                let x = try Tensor(xv, shape: [rows, n], engine: engine, requiresGrad: true)
                let w = try Tensor(wv, shape: [n], engine: engine, requiresGrad: true)
                let b = try Tensor(bv, shape: [n], engine: engine, requiresGrad: true)
                let y = try layerNorm(x, weight: w, bias: b, variant: variant)
                try checkClose(name + " y", try y.toArray(), Reference.layerNorm(x: doubles(xv), weight: doubles(wv), bias: doubles(bv), features: n).y)
                let dyv = randomFloats(rows * n, seed: 54)
                try y.backward(try Tensor(dyv, shape: [rows, n], engine: engine))
                let expected = Reference.layerNormBackward(dy: doubles(dyv), x: doubles(xv), weight: doubles(wv), features: n)
                try checkClose(name + " dx", try gradient(x), expected.dx, atol: 1e-4, rtol: 1e-3)
                try checkClose(name + " dweight", try gradient(w), expected.dweight, atol: 1e-4 * Double(rows), rtol: 1e-4)
                try checkClose(name + " dbias", try gradient(b), expected.dbias, atol: 1e-4 * Double(rows), rtol: 1e-4)
            }
        }
    }

    // Attention: plain, causal, with key lengths, several head widths.
    let attentions: [(b: Int, h: Int, t: Int, d: Int, causal: Bool, lengths: [Int]?)] = [
        (2, 3, 37, 16, false, nil), (1, 2, 130, 64, true, nil), (2, 2, 67, 32, false, [67, 20]), (1, 1, 5, 128, false, nil), (1, 2, 50, 24, true, nil),
    ]
    for variant in AttentionVariant.allCases where variant != .automatic {
        for cs in attentions {
            let name = "attention \(variant.rawValue) B\(cs.b) H\(cs.h) T\(cs.t) d\(cs.d)\(cs.causal ? " causal" : "")\(cs.lengths == nil ? "" : " key lengths")"
            variantCheck(bench, name, runnable: {
                _ = try AttentionFamily.choose(variant, d: cs.d, traits: traits, defines: engine.resolvedDefines(AttentionFamily.descriptor.file))
            }) {
                let shape = [cs.b, cs.h, cs.t, cs.d], n = shape.reduce(1, *)
                let qv = randomFloats(n, seed: 61), kv = randomFloats(n, seed: 62), vv = randomFloats(n, seed: 63), dov = randomFloats(n, seed: 64)
                let q = try Tensor(qv, shape: shape, engine: engine, requiresGrad: true)
                let k = try Tensor(kv, shape: shape, engine: engine, requiresGrad: true)
                let v = try Tensor(vv, shape: shape, engine: engine, requiresGrad: true)
                let o = try scaledDotProductAttention(q: q, k: k, v: v, causal: cs.causal, keyLengths: cs.lengths, variant: variant)
                let lengths = cs.lengths
                let scale = 1 / Double(Float(cs.d).squareRoot())
                try checkClose(name + " O", try o.toArray(), Reference.attention(q: doubles(qv), k: doubles(kv), v: doubles(vv), heads: cs.h, t: cs.t, d: cs.d,
                                                                               scale: scale, causal: cs.causal, keyLengths: lengths), atol: 1e-4, rtol: 1e-3)
                try o.backward(try Tensor(dov, shape: shape, engine: engine))
                let expected = Reference.attentionBackward(q: doubles(qv), k: doubles(kv), v: doubles(vv), dout: doubles(dov), heads: cs.h, t: cs.t, d: cs.d,
                                                           scale: scale, causal: cs.causal, keyLengths: lengths)
                try checkClose(name + " dQ", try gradient(q), expected.dq, atol: 1e-4, rtol: 1e-3)
                try checkClose(name + " dK", try gradient(k), expected.dk, atol: 1e-4, rtol: 1e-3)
                try checkClose(name + " dV", try gradient(v), expected.dv, atol: 1e-4, rtol: 1e-3)
            }
        }
    }
}

/// A convolution `op` (x, w, b → y) forward and backward against `Reference.conv2d` and
/// `Reference.conv2dBackward`.
func checkConv(_ engine: Engine, _ name: String, _ xShape: [Int], _ wShape: [Int], groups: Int, stride: (Int, Int), padding: (Int, Int),
               dilation: (Int, Int), _ op: (Tensor, Tensor, Tensor) throws -> Tensor) throws {
    let xv = randomFloats(xShape.reduce(1, *), seed: 71), wv = randomFloats(wShape.reduce(1, *), seed: 72), bv = randomFloats(wShape[0], seed: 73)
    let x = try Tensor(xv, shape: xShape, engine: engine, requiresGrad: true)
    let w = try Tensor(wv, shape: wShape, engine: engine, requiresGrad: true)
    let b = try Tensor(bv, shape: [wShape[0]], engine: engine, requiresGrad: true)
    let y = try op(x, w, b)
    let expected = Reference.conv2d(x: doubles(xv), xShape: xShape, w: doubles(wv), wShape: wShape, bias: doubles(bv), stride: stride,
                                    padding: padding, dilation: dilation, groups: groups)
    guard y.shape == expected.shape else { throw BenchError("\(name): output shape \(y.shape), expected \(expected.shape)") }
    let reduction = wShape[1] * wShape[2] * wShape[3]
    let tol = 1e-5 * Double(reduction)
    try checkClose(name + " y", try y.toArray(), expected.y, atol: tol, rtol: tol)
    let dyv = randomFloats(expected.y.count, seed: 74)
    try y.backward(try Tensor(dyv, shape: y.shape, engine: engine))
    let back = Reference.conv2dBackward(dy: doubles(dyv), x: doubles(xv), xShape: xShape, w: doubles(wv), wShape: wShape, stride: stride,
                                        padding: padding, dilation: dilation, groups: groups)
    let positions = expected.shape[0] * expected.shape[2] * expected.shape[3]
    try checkClose(name + " dx", try gradient(x), back.dx, atol: 1e-5 * Double(wShape[0] * wShape[2] * wShape[3]), rtol: 1e-4)
    try checkClose(name + " dw", try gradient(w), back.dw, atol: 1e-5 * Double(positions), rtol: 1e-4)
    try checkClose(name + " db", try gradient(b), back.db, atol: 1e-5 * Double(positions), rtol: 1e-4)
}

// MARK: - The SHAP evaluator against a host evaluation of the same network

/// The cnn of `ModelSpec.cnn()` on the host from its state dict (Double inside): conv, ReLU, 2×2
/// max-pool twice, then two Linear layers.
func hostCNN(_ x: [Float], rows: Int, state: [String: HostTensor]) throws -> [Float] {
    func tensor(_ key: String) throws -> HostTensor {
        guard let t = state[key] else { throw BenchError("host cnn: no tensor \(key)") }
        return t
    }
    var h = doubles(x), shape = [rows, 1, 28, 28]
    for index in [0, 3] {
        let w = try tensor("\(index).weight"), b = try tensor("\(index).bias")
        let conv = Reference.conv2d(x: h, xShape: shape, w: doubles(w.values), wShape: w.shape, bias: doubles(b.values))
        let pooled = Reference.maxPool2d(x: conv.y.map { max(0, $0) }, shape: conv.shape, kernel: (2, 2), stride: (2, 2))
        (h, shape) = (pooled.y, pooled.shape)
    }
    let w1 = try tensor("7.weight"), b1 = try tensor("7.bias"), w2 = try tensor("9.weight"), b2 = try tensor("9.bias")
    h = Reference.linear(x: h, weight: doubles(w1.values), bias: doubles(b1.values), rows: rows, inFeatures: w1.shape[1], outFeatures: w1.shape[0], relu: true)
    h = Reference.linear(x: h, weight: doubles(w2.values), bias: doubles(b2.values), rows: rows, inFeatures: w2.shape[1], outFeatures: w2.shape[0])
    return h.map(Float.init)
}

/// The SHAP evaluator's coalition values on the device (the cnn at every chunk size the sweep
/// times, and the tabular MLP) against the same games evaluated on the host.
func checkShapEvaluator(_ bench: Bench) throws {
    let engine = bench.engine
    let cnn = try Model(spec: try ModelSpec.cnn(), seed: 1, engine: engine)
    var rng = SplitMix64(seed: 11)
    let image = (0..<784).map { _ in rng.nextFloat() }
    let images = (0..<(8 * 784)).map { _ in rng.nextFloat() }
    let grid = try FeatureGroups.grid(channels: 1, height: 28, width: 28, cell: 4)
    let coalitions = (0..<(24 * 49)).map { _ in UInt8(rng.next() & 1) }
    let state = try cnn.stateDict()
    let host = try HostGame(instance: image, background: images, groups: grid, outputCount: 10) { x, n in try hostCNN(x, rows: n, state: state) }
    let expected = try host.values(coalitions: coalitions, count: 24)
    for rows in [7, 64, 1000] {
        let name = "shap evaluator cnn, \(rows) rows per chunk"
        variantCheck(bench, name, runnable: {}) {
            let game = try DeviceGame(model: cnn, instance: image, background: images, groups: grid, rowsPerChunk: rows)
            try checkClose(name, try game.values(coalitions: coalitions, count: 24).map(Float.init), expected, atol: 1e-5, rtol: 1e-4)
        }
    }
    let mlp = try Model(spec: try ModelSpec.mlp(inputShape: [30], hidden: [64, 32], classes: 2), seed: 2, engine: engine)
    let row = (0..<30).map { _ in 2 * rng.nextFloat() - 1 }
    let rows = (0..<(100 * 30)).map { _ in 2 * rng.nextFloat() - 1 }
    let mlpState = try mlp.stateDict()
    let hostMLPGame = try HostGame(instance: row, background: rows, groups: .elements(30), outputCount: 2) { x, n in
        try hostMLP(x, rows: n, state: mlpState, layers: [1, 3, 5])
    }
    variantCheck(bench, "shap kernel explainer mlp: device = host", runnable: {}) {
        let device = try KernelShap(budget: 2048, seed: 1).explain(try DeviceGame(model: mlp, instance: row, background: rows))
        let onHost = try KernelShap(budget: 2048, seed: 1).explain(hostMLPGame)
        try checkClose("kernel shap φ", device.values.map(Float.init), onHost.values, atol: 1e-5, rtol: 1e-4)
    }
}
