import Prism
import PrismCL
import PrismReference

/// int8 against float32 at the reference network's shapes (batch `batch`): its two convolutions and
/// its first Linear layer (1600 → 128), each as the integer kernels compute it (uint8 × int8, int32
/// sums, fixed-point requantization; the convolutions as columns and an integer GEMM) and as the float
/// forward does, in the same run. Each integer case is checked bit for bit against `PrismReference`
/// on its first example (rows) before timing; "GFLOP/s" of an integer case counts its multiply-adds
/// twice, as the float case's do.
func benchQuantized(_ bench: Bench, batch: Int) throws {
    let engine = bench.engine
    let input = AffineQuantization(scale: 0.02, zeroPoint: 110), output = AffineQuantization(scale: 0.05, zeroPoint: 90)
    let convolutions: [(String, [Int], [Int])] = [("conv1", [batch, 1, 28, 28], [32, 1, 3, 3]), ("conv2", [batch, 32, 13, 13], [64, 32, 3, 3])]
    for (label, shape, weight) in convolutions where bench.wants("int8_\(label)") || bench.wants("float_\(label)") {
        let x = seededBytes(shape.reduce(1, *), seed: 21)
        let wf = try randomBuffer(engine, count: weight.reduce(1, *), seed: 22).read()
        let bf = try randomBuffer(engine, count: weight[0], seed: 23).read()
        let w = try QuantizedWeights(weights: wf, shape: weight, bias: bf)
        let xq = try QuantizedTensor(engine: engine, shape: shape, storage: try engine.context.buffer(x), quantization: input)
        let y = try quantizedConv2D(xq, w, output: output, relu: true)
        let (bias, multipliers) = try w.requantization(input: input, output: output)
        let per = shape[1...].reduce(1, *)
        let expected = QuantizedReference.conv2d(x: Array(x[0..<per]), w: w.values, bias: bias, multiplier: multipliers.map(\.multiplier),
                                                 shift: multipliers.map(\.shift), batch: 1, channels: shape[1], height: shape[2], width: shape[3],
                                                 outChannels: weight[0], kernel: (3, 3), stride: (1, 1), padding: (0, 0), dilation: (1, 1),
                                                 zx: input.zeroPoint, zy: output.zeroPoint, lo: output.zeroPoint)
        guard try Array(y.values()[0..<expected.count]) == expected else { throw BenchError("int8_\(label): differs from the integer reference") }
        let oh = shape[2] - 2, ow = shape[3] - 2
        let flops = 2.0 * Double(batch * weight[0] * oh * ow) * Double(weight[1...].reduce(1, *))
        let description = "N\(batch) C\(shape[1]) H\(shape[2]) W\(shape[3]) K\(weight[0]) 3x3"
        try bench.compute("int8_\(label)_forward", shape: description, variant: "gemm", flops: flops) {
            try forwardEvents(engine) { _ = try quantizedConv2D(xq, w, output: output, relu: true); return try Tensor.zeros([1], engine: engine) }
        }
        let xf = try Tensor(try randomBuffer(engine, count: shape.reduce(1, *), seed: 24).read(), shape: shape, engine: engine)
        let wt = try Tensor(wf, shape: weight, engine: engine), bt = try Tensor(bf, shape: [weight[0]], engine: engine)
        try bench.compute("float_\(label)_forward", shape: description, flops: flops) {
            try forwardEvents(engine) { try conv2d(xf, weight: wt, bias: bt, relu: true) }
        }
    }
    guard bench.wants("int8_linear") || bench.wants("float_linear") else { return }
    let (m, k, n) = (batch, 1600, 128)
    let x = seededBytes(m * k, seed: 25)
    let wf = try randomBuffer(engine, count: n * k, seed: 26).read(), bf = try randomBuffer(engine, count: n, seed: 27).read()
    let w = try QuantizedWeights(weights: wf, shape: [n, k], bias: bf)
    let xq = try QuantizedTensor(engine: engine, shape: [m, k], storage: try engine.context.buffer(x), quantization: input)
    let y = try quantizedLinear(xq, w, output: output, relu: true)
    let (bias, multipliers) = try w.requantization(input: input, output: output)
    let expected = QuantizedReference.linear(x: Array(x[0..<k]), w: w.values, bias: bias, multiplier: multipliers.map(\.multiplier),
                                             shift: multipliers.map(\.shift), m: 1, n: n, k: k, zx: input.zeroPoint, zy: output.zeroPoint, lo: output.zeroPoint)
    guard try Array(y.values()[0..<n]) == expected else { throw BenchError("int8_linear: differs from the integer reference") }
    let flops = 2.0 * Double(m * k * n), description = "\(m)x\(k) · \(k)x\(n)"
    try bench.compute("int8_linear_forward", shape: description, variant: "gemm", flops: flops) {
        try forwardEvents(engine) { _ = try quantizedLinear(xq, w, output: output, relu: true); return try Tensor.zeros([1], engine: engine) }
    }
    let xf = try Tensor(try randomBuffer(engine, count: m * k, seed: 28).read(), shape: [m, k], engine: engine)
    let wt = try Tensor(wf, shape: [n, k], engine: engine), bt = try Tensor(bf, shape: [n], engine: engine)
    try bench.compute("float_linear_forward", shape: description, flops: flops) {
        try forwardEvents(engine) { try linear(xf, weight: wt, bias: bt, relu: true) }
    }
}

/// Seeded bytes 0…255.
func seededBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 56) }
}
