import ArgumentParser
import Foundation
import Prism
import PrismFiles
import PrismCL
import PrismReference

/// Which kernel family `prism-bench tune` searches.
enum TuneTarget: String, ExpressibleByArgument, CaseIterable {
    case gemm, conv2d, attention
}

struct TuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract: "Search a kernel family's tunables on this device and record the winners in a tuning table.",
        discussion: """
            Every candidate is built, its output checked against exact sums at sampled positions, and its median \
            device time measured; a candidate with a wrong output is refused. The defaults are measured first and \
            kept unless a candidate is more than 2% faster. Winners are merged into --out (keyed platform or \
            vendor → device name), the format of Kernels/tuning.json and of PRISM_TUNING_FILE.
            """)

    @Argument(help: "gemm, conv2d or attention.")
    var target: TuneTarget

    @OptionGroup var options: CommonOptions

    @Option(help: "The tuning table to merge the winners into (created when missing).")
    var out: String = "tuning.json"

    @Option(help: "Random candidates after the grid, per searched kernel.")
    var random: Int = 12

    @Option(help: "Seed of the random candidates.")
    var seed: UInt64 = 1

    @Option(help: "gemm: the square size.")
    var size: Int = 1024

    @Option(help: "conv2d: the batch of the reference network's convolutions.")
    var batch: Int = 64

    func run() throws {
        try runReportingErrors {
            guard size >= 1, batch >= 1, random >= 0 else { throw ValidationError("--size, --batch and --random must be positive") }
            let output = try OutputFile(path: out)
            var table = TuningTable()
            if let data = FileManager.default.contents(atPath: out) { table = try TuningTable.decode(data, source: out) }
            // Fresh buffers for every launch: a candidate that leaves part of a scratch buffer unwritten must
            // not pass its check on data a previous candidate left there.
            let bench = try options.makeBench(bufferPool: false)
            let engine = bench.engine
            let info = engine.device
            let vendorKey = info.platform.localizedCaseInsensitiveContains("portable computing") ? info.platform : info.vendor
            let stages: [TuneStage]
            switch target {
            case .gemm: stages = [try gemmStage(engine, n: size, random: random, seed: seed)]
            case .conv2d: stages = try convolutionStages(engine, batch: batch, random: random, seed: seed)
            case .attention: stages = [try attentionStage(engine)]
            }
            for stage in stages {
                say("\(stage.name): \(stage.search.parameters.map { "\($0.name) ∈ {\($0.values.joined(separator: ","))}" }.joined(separator: ", "))")
                let outcome = try stage.search.run(evaluate: { candidate in
                    engine.defineOverrides[stage.file, default: [:]].merge(candidate) { $1 }
                    try stage.check()
                    return try bench.time(stage.body).median
                }, log: { trial in
                    let name = trial.defines.keys.sorted().map { "\($0)=\(trial.defines[$0]!)" }.joined(separator: " ")
                    say("  " + name.padding(toLength: 56, withPad: " ", startingAt: 0)
                        + (trial.milliseconds.map { String(format: "%10.3f ms", $0) } ?? "  refused: \(trial.refusal ?? "")"))
                })
                engine.defineOverrides[stage.file, default: [:]].merge(outcome.best) { $1 }
                let chosen = outcome.best.keys.sorted().map { "\($0)=\(outcome.best[$0]!)" }.joined(separator: " ")
                say(String(format: "%@: %@ — %.3f ms against %.3f ms with the defaults (%@)", stage.name, chosen, outcome.bestMilliseconds,
                           outcome.defaultMilliseconds, outcome.improved ? String(format: "%.1f%% faster", 100 * (1 - outcome.bestMilliseconds / outcome.defaultMilliseconds)) : "defaults kept"))
                table = table.setting(outcome.best, file: stage.file, vendor: vendorKey, device: info.name)
                    .setting(outcome.best, file: stage.file, widthKey: TuningTable.widthKey(info))
            }
            try output.write(try table.json())
            say("wrote \(out) (\(vendorKey) → \(info.name), and the fallback of kind '\(TuningTable.widthKey(info))')")
        }
    }
}

/// One kernel's search: its file, the tunables, a check of the output and the timed work.
struct TuneStage {
    var name: String
    var file: String
    var search: TuningSearch
    /// Runs the kernels once with the current defines and throws `TuningSearch.Refusal` on a wrong output.
    var check: () throws -> Void
    var body: () throws -> [Event]
}

/// The search over `group`'s tunables of `family` (`KernelFamilyDescriptor`), starting from the
/// values the engine resolves now (the table's winners, else the descriptor's defaults).
func familySearch(_ engine: Engine, _ family: KernelFamilyDescriptor, group: String, random: Int, seed: UInt64,
                  isValid: @escaping (TuningTable.Defines) -> Bool) -> TuningSearch {
    TuningSearch(family: family, group: group, current: engine.resolvedDefines(family.file), randomCandidates: random, seed: seed,
                 isValid: isValid)
}

/// SGEMM n³ with the variant `GEMMFamily` picks for the device, searching that variant's tunables.
func gemmStage(_ engine: Engine, n: Int, random: Int, seed: UInt64) throws -> TuneStage {
    let a = try randomBuffer(engine, count: n * n, seed: 1), b = try randomBuffer(engine, count: n * n, seed: 2)
    let c = try engine.buffer(count: n * n)
    let traits = engine.traits, family = GEMMFamily.descriptor
    let variant = try GEMMFamily.choose(.automatic, traits: traits, defines: engine.resolvedDefines(family.file))
    let search = familySearch(engine, family, group: variant.rawValue, random: random, seed: seed) {
        GEMMFamily.isValid($0, group: variant.rawValue, traits: traits)
    }
    return TuneStage(name: "sgemm \(n)³ (\(variant.rawValue))", file: family.file, search: search, check: {
        try MatmulKernels.gemm(engine: engine, a: a, b: b, c: c, m: n, n: n, k: n, variant: variant).forEach { try $0.wait() }
        do { try checkSGEMM("sgemm", a: a, b: b, c: c, n: n) } catch { throw TuningSearch.Refusal(String(describing: error)) }
    }, body: {
        try MatmulKernels.gemm(engine: engine, a: a, b: b, c: c, m: n, n: n, k: n, variant: variant)
    })
}

/// The reference network's convolutions: conv2's forward with the variant `Conv2DFamily` picks for
/// it, the backward-input and backward-weight micro-tiles, and conv1's forward when its variant differs
/// (the row kernel on a CPU) — each searching its group's tunables from the descriptor.
func convolutionStages(_ engine: Engine, batch: Int, random: Int, seed: UInt64) throws -> [TuneStage] {
    func layer(_ input: [Int], _ weight: [Int]) throws -> (Conv2DGeometry, Buffer<Float>, Buffer<Float>, Buffer<Float>, Buffer<Float>, Buffer<Float>) {
        let g = try Conv2DGeometry(input: input, weight: weight, bias: [weight[0]], stride: (1, 1), padding: (0, 0), dilation: (1, 1))
        return (g, try randomBuffer(engine, count: input.reduce(1, *), seed: 3), try randomBuffer(engine, count: weight.reduce(1, *), seed: 4),
                try randomBuffer(engine, count: weight[0], seed: 5), try engine.buffer(count: g.outputShape.reduce(1, *)),
                try randomBuffer(engine, count: g.outputShape.reduce(1, *), seed: 6))
    }
    let (g1, x1, w1, b1, y1, _) = try layer([batch, 1, 28, 28], [32, 1, 3, 3])
    let (g2, x2, w2, b2, y2, dy2) = try layer([batch, 32, 13, 13], [64, 32, 3, 3])
    let conv = ConvolutionCheck()
    let traits = engine.traits, family = Conv2DFamily.descriptor
    let defines = engine.resolvedDefines(family.file)
    func search(_ group: String) -> TuningSearch {
        familySearch(engine, family, group: group, random: random, seed: seed) { Conv2DFamily.isValid($0, group: group, traits: traits) }
    }
    func forward(_ label: String, _ g: Conv2DGeometry, _ x: Buffer<Float>, _ w: Buffer<Float>, _ b: Buffer<Float>,
                 _ y: Buffer<Float>) throws -> TuneStage {
        let variant = try Conv2DFamily.choose(.automatic, g, traits: traits, defines: defines)
        return TuneStage(name: "\(label) forward (\(variant.rawValue))", file: family.file, search: search(variant.rawValue), check: {
            try Conv2DKernels.forward(engine, g, x: x, w: w, bias: b, y: y, variant: variant).forEach { try $0.wait() }
            try conv.forward(g, x: x.read(), w: w.read(), b: b.read(), y: y.read())
        }, body: { try Conv2DKernels.forward(engine, g, x: x, w: w, bias: b, y: y, variant: variant) })
    }
    var stages = [
        try forward("conv2", g2, x2, w2, b2, y2),
        TuneStage(name: "conv2 backward input", file: family.file, search: search("backward_input"), check: {
            let (dx, events) = try Conv2DKernels.backwardInput(engine, g2, dy: dy2, w: w2)
            try events.forEach { try $0.wait() }
            try conv.backwardInput(g2, dy: dy2.read(), w: w2.read(), dx: dx.read())
        }, body: { try Conv2DKernels.backwardInput(engine, g2, dy: dy2, w: w2).1 }),
        TuneStage(name: "conv2 backward weight", file: family.file, search: search("backward_weight"), check: {
            let (dw, events) = try Conv2DKernels.backwardWeight(engine, g2, x: x2, dy: dy2)
            try events.forEach { try $0.wait() }
            try conv.backwardWeight(g2, x: x2.read(), dy: dy2.read(), dw: dw.read())
        }, body: { try Conv2DKernels.backwardWeight(engine, g2, x: x2, dy: dy2).1 }),
    ]
    if try Conv2DFamily.choose(.automatic, g1, traits: traits, defines: defines) != Conv2DFamily.choose(.automatic, g2, traits: traits, defines: defines) {
        stages.append(try forward("conv1", g1, x1, w1, b1, y1))
    }
    return stages
}

/// Exact sums at sampled positions of a stride-1, unpadded convolution's forward and backward passes
/// (layouts NCHW and KCRS); a mismatch is a `TuningSearch.Refusal`.
struct ConvolutionCheck {
    var samples = 48

    func compare(_ what: String, got: Float, expected: Double) throws {
        guard abs(Double(got) - expected) <= 1e-3 + 1e-4 * abs(expected) else {
            throw TuningSearch.Refusal("\(what) = \(got), expected \(expected)")
        }
    }

    func forward(_ g: Conv2DGeometry, x: [Float], w: [Float], b: [Float], y: [Float]) throws {
        let (oh, ow) = (g.outputShape[2], g.outputShape[3])
        var rng = SplitMix64(seed: 7)
        for _ in 0..<samples {
            let (n, k, i, j) = (Int(rng.next() % UInt64(g.n)), Int(rng.next() % UInt64(g.k)), Int(rng.next() % UInt64(oh)), Int(rng.next() % UInt64(ow)))
            var sum = Double(b[k])
            for c in 0..<g.c { for r in 0..<g.r { for s in 0..<g.s {
                sum += Double(x[((n * g.c + c) * g.h + i + r) * g.w + j + s]) * Double(w[((k * g.c + c) * g.r + r) * g.s + s])
            } } }
            try compare("y[\(n), \(k), \(i), \(j)]", got: y[((n * g.k + k) * oh + i) * ow + j], expected: sum)
        }
    }

    func backwardInput(_ g: Conv2DGeometry, dy: [Float], w: [Float], dx: [Float]) throws {
        let (oh, ow) = (g.outputShape[2], g.outputShape[3])
        var rng = SplitMix64(seed: 8)
        for _ in 0..<samples {
            let (n, c, h, x) = (Int(rng.next() % UInt64(g.n)), Int(rng.next() % UInt64(g.c)), Int(rng.next() % UInt64(g.h)), Int(rng.next() % UInt64(g.w)))
            var sum = 0.0
            for k in 0..<g.k { for r in 0..<g.r { for s in 0..<g.s {
                let (i, j) = (h - r, x - s)
                if i >= 0 && i < oh && j >= 0 && j < ow {
                    sum += Double(dy[((n * g.k + k) * oh + i) * ow + j]) * Double(w[((k * g.c + c) * g.r + r) * g.s + s])
                }
            } } }
            try compare("dx[\(n), \(c), \(h), \(x)]", got: dx[((n * g.c + c) * g.h + h) * g.w + x], expected: sum)
        }
    }

    func backwardBias(_ g: Conv2DGeometry, dy: [Float], db: [Float]) throws {
        let pq = g.outputShape[2] * g.outputShape[3]
        for k in 0..<g.k {
            var sum = 0.0
            for n in 0..<g.n { for e in 0..<pq { sum += Double(dy[(n * g.k + k) * pq + e]) } }
            try compare("db[\(k)]", got: db[k], expected: sum)
        }
    }

    func backwardWeight(_ g: Conv2DGeometry, x: [Float], dy: [Float], dw: [Float]) throws {
        let (oh, ow) = (g.outputShape[2], g.outputShape[3])
        var rng = SplitMix64(seed: 9)
        for _ in 0..<samples / 4 {
            let (k, c, r, s) = (Int(rng.next() % UInt64(g.k)), Int(rng.next() % UInt64(g.c)), Int(rng.next() % UInt64(g.r)), Int(rng.next() % UInt64(g.s)))
            var sum = 0.0
            for n in 0..<g.n { for i in 0..<oh { for j in 0..<ow {
                sum += Double(dy[((n * g.k + k) * oh + i) * ow + j]) * Double(x[((n * g.c + c) * g.h + i + r) * g.w + j + s])
            } } }
            try compare("dw[\(k), \(c), \(r), \(s)]", got: dw[((k * g.c + c) * g.r + r) * g.s + s], expected: sum)
        }
    }
}

/// The local-memory attention kernels (the GPU path; on a CPU the CPU-shaped kernels have no
/// tunables, and these are tuned for when they are forced): query rows per work-group and key rows
/// per tile, forward + backward at B 2, H 4, T 256, d 64, checked against the Double reference on
/// the first head.
func attentionStage(_ engine: Engine) throws -> TuneStage {
    let (b, h, t, d) = (2, 4, 256, 64)
    let shape = [b, h, t, d], n = shape.reduce(1, *)
    var rng = SplitMix64(seed: 41)
    let values = (0..<(3 * n)).map { _ in 2 * rng.nextFloat() - 1 }
    let q = try Tensor(Array(values[0..<n]), shape: shape, engine: engine, requiresGrad: true)
    let k = try Tensor(Array(values[n..<(2 * n)]), shape: shape, engine: engine, requiresGrad: true)
    let v = try Tensor(Array(values[(2 * n)...]), shape: shape, engine: engine, requiresGrad: true)
    let dout = try Tensor((0..<n).map { _ in 2 * rng.nextFloat() - 1 }, shape: shape, engine: engine)
    let rows = t * d
    let reference = Reference.attention(q: values[0..<rows].map(Double.init), k: values[n..<(n + rows)].map(Double.init),
                                        v: values[(2 * n)..<(2 * n + rows)].map(Double.init), heads: 1, t: t, d: d,
                                        scale: 1 / Double(Float(d).squareRoot()))
    let traits = engine.traits, family = AttentionFamily.descriptor
    let search = familySearch(engine, family, group: AttentionVariant.general.rawValue, random: 0, seed: 1) { candidate in
        AttentionFamily.unmet(.general, d: d, traits: traits, defines: candidate) == nil
    }
    return TuneStage(name: "attention forward + backward (local-memory kernels)", file: family.file, search: search, check: {
        let o = try scaledDotProductAttention(q: q, k: k, v: v, variant: .general).toArray()
        for e in stride(from: 0, to: rows, by: 61) where !(abs(Double(o[e]) - reference[e]) <= 1e-4 + 1e-3 * abs(reference[e])) {
            throw TuningSearch.Refusal("O[\(e)] = \(o[e]), expected \(reference[e])")
        }
    }, body: {
        EventLog.shared.start()
        try scaledDotProductAttention(q: q, k: k, v: v, variant: .general).backward(dout)
        return EventLog.shared.stopEvents()
    })
}
