import Prism
import PrismCL

/// SGEMM through CLBlast, the peer on the same device in the same run.
func benchSGEMM(_ bench: Bench, sizes: [Int]) throws {
    let engine = bench.engine
    for n in sizes {
        let a = try randomBuffer(engine, count: n * n, seed: 1), b = try randomBuffer(engine, count: n * n, seed: 2)
        let c = try engine.buffer(count: n * n)
        let flops = 2.0 * Double(n) * Double(n) * Double(n)
        do {
            // CLBlast's event covers only its last launch (it may pad or transpose first): timed from the host.
            try bench.computeWallClock("sgemm_clblast", shape: "\(n)x\(n)x\(n)", library: "clblast", flops: flops) {
                _ = try clblastSgemm(engine.context, a: a, b: b, c: c, m: n, n: n, k: n)
            }
        } catch let error as CLBlastError {
            say("sgemm_clblast \(n)³: skipped, \(error)")
        }
    }
}

/// The reference network's two convolutions at batch `batch`: forward, backward with respect to the
/// input, backward with respect to weight and bias, and all of them together (what one training step
/// spends on the layer).
func benchConvolutions(_ bench: Bench, batch: Int) throws {
    let engine = bench.engine
    let layers: [(String, [Int], [Int])] = [
        ("conv1", [batch, 1, 28, 28], [32, 1, 3, 3]),
        ("conv2", [batch, 32, 13, 13], [64, 32, 3, 3]),
    ]
    for (label, input, weight) in layers {
        let g = try Conv2DGeometry(input: input, weight: weight, bias: [weight[0]], stride: (1, 1), padding: (0, 0), dilation: (1, 1))
        let x = try randomBuffer(engine, count: input.reduce(1, *), seed: 3)
        let w = try randomBuffer(engine, count: weight.reduce(1, *), seed: 4)
        let bias = try randomBuffer(engine, count: weight[0], seed: 5)
        let y = try engine.buffer(count: g.outputShape.reduce(1, *))
        let dy = try randomBuffer(engine, count: y.count, seed: 6)
        let shape = "N\(g.n) C\(g.c) H\(g.h) W\(g.w) K\(g.k) \(g.r)x\(g.s)"
        let flops = 2.0 * Double(g.multiplyAdds)
        try bench.compute("\(label)_forward", shape: shape, flops: flops) {
            try Conv2DKernels.forward(engine, g, x: x, w: w, bias: bias, y: y)
        }
        try bench.compute("\(label)_backward_input", shape: shape, flops: flops) {
            try Conv2DKernels.backwardInput(engine, g, dy: dy, w: w).1
        }
        try bench.compute("\(label)_backward_weight", shape: shape, flops: flops) {
            try Conv2DKernels.backwardWeight(engine, g, x: x, dy: dy).1 + Conv2DKernels.backwardBias(engine, g, dy: dy).1
        }
        try bench.compute("\(label)_forward_backward", shape: shape, flops: 3 * flops) {
            try Conv2DKernels.forward(engine, g, x: x, w: w, bias: bias, y: y)
                + Conv2DKernels.backwardInput(engine, g, dy: dy, w: w).1
                + Conv2DKernels.backwardWeight(engine, g, x: x, dy: dy).1
                + Conv2DKernels.backwardBias(engine, g, dy: dy).1
        }
    }
}
