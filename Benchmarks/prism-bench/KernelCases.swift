import Prism
import PrismCL

/// Checks sampled entries of C = A·B (n × n, row-major) against Double dot products: a benchmark
/// times only results it has checked.
func checkSGEMM(_ label: String, a: Buffer<Float>, b: Buffer<Float>, c: Buffer<Float>, n: Int) throws {
    let (av, bv, cv) = (try a.read(), try b.read(), try c.read())
    var rng = SplitMix64(seed: 99)
    for _ in 0..<64 {
        let i = Int(rng.next() % UInt64(n)), j = Int(rng.next() % UInt64(n))
        var sum = 0.0
        for p in 0..<n { sum += Double(av[i * n + p]) * Double(bv[p * n + j]) }
        let got = Double(cv[i * n + j])
        guard abs(got - sum) <= 1e-3 + 1e-4 * abs(sum) else {
            throw BenchError("\(label) \(n)³: C[\(i), \(j)] = \(got), expected \(sum)")
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// SGEMM C = A·B, square: Prism's kernel for this device, then CLBlast (the peer) on the same device
/// in the same run.
func benchSGEMM(_ bench: Bench, sizes: [Int], peer: Bool = true) throws {
    let engine = bench.engine
    for n in sizes where bench.wants("sgemm") {
        let a = try randomBuffer(engine, count: n * n, seed: 1), b = try randomBuffer(engine, count: n * n, seed: 2)
        let c = try engine.buffer(count: n * n)
        let flops = 2.0 * Double(n) * Double(n) * Double(n)
        if bench.wants("sgemm") {
            try MatmulKernels.gemm(engine: engine, a: a, b: b, c: c, m: n, n: n, k: n)
            try checkSGEMM("sgemm", a: a, b: b, c: c, n: n)
        }
        let variant = try GEMMFamily.choose(.automatic, traits: engine.traits, defines: engine.resolvedDefines(GEMMFamily.descriptor.file))
        try bench.compute("sgemm", shape: "\(n)x\(n)x\(n)", variant: variant.rawValue, flops: flops) {
            try MatmulKernels.gemm(engine: engine, a: a, b: b, c: c, m: n, n: n, k: n)
        }
        guard peer else { continue }
        do {
            _ = try clblastSgemm(engine.context, a: a, b: b, c: c, m: n, n: n, k: n)
            try checkSGEMM("sgemm (CLBlast)", a: a, b: b, c: c, n: n)
            // CLBlast's event covers only its last launch (it may pad or transpose first): timed from the host.
            try bench.peerWallClock("sgemm", shape: "\(n)x\(n)x\(n)", library: "clblast", flops: flops) {
                _ = try clblastSgemm(engine.context, a: a, b: b, c: c, m: n, n: n, k: n)
            }
        } catch let error as CLBlastError {
            say("sgemm \(n)³ peer clblast: skipped, \(error)")
        }
    }
}

/// The reference network's two convolutions at batch `batch`: forward, backward with respect to the
/// input, backward with respect to weight and bias, and all of them together (what one training step
/// spends on the layer), each checked at sampled positions before it is timed.
func benchConvolutions(_ bench: Bench, batch: Int) throws {
    let engine = bench.engine
    let layers: [(String, [Int], [Int])] = [
        ("conv1", [batch, 1, 28, 28], [32, 1, 3, 3]),
        ("conv2", [batch, 32, 13, 13], [64, 32, 3, 3]),
    ]
    for (label, input, weight) in layers where bench.wants(label) || ["forward", "backward"].contains(where: { bench.wants("\(label)_\($0)") }) {
        let g = try Conv2DGeometry(input: input, weight: weight, bias: [weight[0]], stride: (1, 1), padding: (0, 0), dilation: (1, 1))
        let x = try randomBuffer(engine, count: input.reduce(1, *), seed: 3)
        let w = try randomBuffer(engine, count: weight.reduce(1, *), seed: 4)
        let bias = try randomBuffer(engine, count: weight[0], seed: 5)
        let y = try engine.buffer(count: g.outputShape.reduce(1, *))
        let dy = try randomBuffer(engine, count: y.count, seed: 6)
        let shape = "N\(g.n) C\(g.c) H\(g.h) W\(g.w) K\(g.k) \(g.r)x\(g.s)"
        let flops = 2.0 * Double(g.multiplyAdds)
        let variant = try Conv2DFamily.choose(.automatic, g, traits: engine.traits,
                                              defines: engine.resolvedDefines(Conv2DFamily.descriptor.file)).rawValue
        // Every pass checked at sampled positions against exact sums before it is timed.
        let check = ConvolutionCheck()
        try Conv2DKernels.forward(engine, g, x: x, w: w, bias: bias, y: y).forEach { try $0.wait() }
        try check.forward(g, x: x.read(), w: w.read(), b: bias.read(), y: y.read())
        let (dx, dxEvents) = try Conv2DKernels.backwardInput(engine, g, dy: dy, w: w)
        try dxEvents.forEach { try $0.wait() }
        try check.backwardInput(g, dy: dy.read(), w: w.read(), dx: dx.read())
        let (dw, dwEvents) = try Conv2DKernels.backwardWeight(engine, g, x: x, dy: dy)
        try dwEvents.forEach { try $0.wait() }
        try check.backwardWeight(g, x: x.read(), dy: dy.read(), dw: dw.read())
        let (db, dbEvents) = try Conv2DKernels.backwardBias(engine, g, dy: dy)
        try dbEvents.forEach { try $0.wait() }
        try check.backwardBias(g, dy: dy.read(), db: db.read())
        try bench.compute("\(label)_forward", shape: shape, variant: variant, flops: flops) {
            try Conv2DKernels.forward(engine, g, x: x, w: w, bias: bias, y: y)
        }
        try bench.compute("\(label)_backward_input", shape: shape, flops: flops) {
            try Conv2DKernels.backwardInput(engine, g, dy: dy, w: w).1
        }
        try bench.compute("\(label)_backward_weight", shape: shape, flops: flops) {
            try Conv2DKernels.backwardWeight(engine, g, x: x, dy: dy).1 + Conv2DKernels.backwardBias(engine, g, dy: dy).1
        }
        try bench.compute("\(label)_forward_backward", shape: shape, variant: variant, flops: 3 * flops) {
            try Conv2DKernels.forward(engine, g, x: x, w: w, bias: bias, y: y)
                + Conv2DKernels.backwardInput(engine, g, dy: dy, w: w).1
                + Conv2DKernels.backwardWeight(engine, g, x: x, dy: dy).1
                + Conv2DKernels.backwardBias(engine, g, dy: dy).1
        }
    }
}
