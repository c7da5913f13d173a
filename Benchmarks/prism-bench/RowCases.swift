import Prism
import PrismCL
import PrismReference

/// Fails unless every element of `got` is within `atol + rtol·|expected|` of `expected` (NaN fails).
func checkClose(_ label: String, _ got: [Float], _ expected: [Double], atol: Double = 1e-4, rtol: Double = 1e-4) throws {
    guard got.count == expected.count else { throw BenchError("\(label): \(got.count) values, expected \(expected.count)") }
    for i in got.indices where !(abs(Double(got[i]) - expected[i]) <= atol + rtol * abs(expected[i])) {
        throw BenchError("\(label): [\(i)] = \(got[i]), expected \(expected[i])")
    }
}

/// The gradient a backward left in `t`.
func gradient(_ t: Tensor) throws -> [Float] {
    guard let g = t.grad else { throw BenchError("no gradient reached a tensor of shape \(t.shape)") }
    return try g.toArray()
}

/// The kernels (and their events) of one op run with the tape on and a backward from `dy`, timed
/// as one unit of work; the gradients of `inputs` are cleared first so every run does the same work.
func forwardBackwardEvents(_ inputs: [Tensor], dy: Tensor, _ op: () throws -> Tensor) throws -> [Event] {
    inputs.forEach { $0.zeroGrad() }
    EventLog.shared.start()
    try op().backward(dy)
    return EventLog.shared.stopEvents()
}

/// The forward kernels of one op, outside the tape.
func forwardEvents(_ engine: Engine, _ op: () throws -> Tensor) throws -> [Event] {
    try engine.noGrad {
        EventLog.shared.start()
        _ = try op()
        return EventLog.shared.stopEvents()
    }
}

/// Layer normalization over the last axis of [rows, n] (a transformer's activations): forward, and
/// forward + backward to x, weight and bias, with the variant `LayerNormFamily` picks. Checked
/// against `PrismReference` before timing. Bytes: the forward reads x and writes y (8 per element);
/// the backward reads x and dy twice and writes dx (20 more).
func benchLayerNorm(_ bench: Bench, rows: Int, n: Int) throws {
    guard bench.wants("layernorm") else { return }
    let engine = bench.engine
    let variant = try LayerNormFamily.choose(.automatic, traits: engine.traits, defines: engine.resolvedDefines(LayerNormFamily.descriptor.file))
    var rng = SplitMix64(seed: 11)
    let xv = (0..<(rows * n)).map { _ in 2 * rng.nextFloat() - 1 }, dyv = (0..<(rows * n)).map { _ in 2 * rng.nextFloat() - 1 }
    let wv = (0..<n).map { _ in 1 + 0.5 * rng.nextFloat() }, bv = (0..<n).map { _ in rng.nextFloat() - 0.5 }
    let x = try Tensor(xv, shape: [rows, n], engine: engine, requiresGrad: true)
    let w = try Tensor(wv, shape: [n], engine: engine, requiresGrad: true), b = try Tensor(bv, shape: [n], engine: engine, requiresGrad: true)
    let dy = try Tensor(dyv, shape: [rows, n], engine: engine)
    let (xd, wd, bd) = (xv.map(Double.init), wv.map(Double.init), bv.map(Double.init))
    let reference = Reference.layerNorm(x: xd, weight: wd, bias: bd, features: n)
    let gradients = Reference.layerNormBackward(dy: dyv.map(Double.init), x: xd, weight: wd, features: n)
    let y = try layerNorm(x, weight: w, bias: b)
    try checkClose("layernorm y", try y.toArray(), reference.y)
    try y.backward(dy)
    try checkClose("layernorm dx", try gradient(x), gradients.dx)
    try checkClose("layernorm dweight", try gradient(w), gradients.dweight, atol: 1e-3 * Double(rows).squareRoot())
    try checkClose("layernorm dbias", try gradient(b), gradients.dbias, atol: 1e-3 * Double(rows).squareRoot())
    let shape = "\(rows)x\(n)", elements = Double(rows * n)
    try bench.memory("layernorm_forward", shape: shape, variant: variant.rawValue, bytes: 8 * elements) {
        try forwardEvents(engine) { try layerNorm(x, weight: w, bias: b) }
    }
    try bench.memory("layernorm_forward_backward", shape: shape, variant: variant.rawValue, bytes: 28 * elements) {
        try forwardBackwardEvents([x, w, b], dy: dy) { try layerNorm(x, weight: w, bias: b) }
    }
}

/// Softmax over the last axis of [rows, c]: forward, and forward + backward, checked against
/// `PrismReference` before timing. Bytes: the forward reads x and writes y; the backward reads y and
/// dy and writes dx.
func benchSoftmax(_ bench: Bench, rows: Int, c: Int) throws {
    guard bench.wants("softmax") else { return }
    let engine = bench.engine
    var rng = SplitMix64(seed: 12)
    let xv = (0..<(rows * c)).map { _ in 8 * rng.nextFloat() - 4 }, dyv = (0..<(rows * c)).map { _ in 2 * rng.nextFloat() - 1 }
    let x = try Tensor(xv, shape: [rows, c], engine: engine, requiresGrad: true)
    let dy = try Tensor(dyv, shape: [rows, c], engine: engine)
    let reference = Reference.softmax(x: xv.map(Double.init), classes: c)
    let y = try x.softmax()
    try checkClose("softmax y", try y.toArray(), reference, atol: 1e-6)
    try y.backward(dy)
    try checkClose("softmax dx", try gradient(x), Reference.softmaxBackward(y: reference, dy: dyv.map(Double.init), classes: c), atol: 1e-6)
    let shape = "\(rows)x\(c)", elements = Double(rows * c)
    try bench.memory("softmax_forward", shape: shape, variant: SoftmaxFamily.descriptor.variants[0], bytes: 8 * elements) {
        try forwardEvents(engine) { try x.softmax() }
    }
    try bench.memory("softmax_forward_backward", shape: shape, variant: SoftmaxFamily.descriptor.variants[0], bytes: 20 * elements) {
        try forwardBackwardEvents([x], dy: dy) { try x.softmax() }
    }
}

/// 2×2 max pooling with stride 2 of [N, C, H, W] (the reference network's first pooling): forward,
/// and forward + backward, with the variant `PoolFamily` picks, checked against `PrismReference`
/// before timing. Bytes: the forward reads x and writes y and the argmax (1.5 per input element
/// after the 4 of x); the backward writes dx and reads dy and the argmax.
func benchPool(_ bench: Bench, shape input: [Int]) throws {
    guard bench.wants("pool") else { return }
    let engine = bench.engine
    var rng = SplitMix64(seed: 13)
    let count = input.reduce(1, *)
    let xv = (0..<count).map { _ in 2 * rng.nextFloat() - 1 }
    let x = try Tensor(xv, shape: input, engine: engine, requiresGrad: true)
    let reference = Reference.maxPool2d(x: xv.map(Double.init), shape: input, kernel: (2, 2), stride: (2, 2))
    let dyv = (0..<reference.y.count).map { _ in 2 * rng.nextFloat() - 1 }
    let dy = try Tensor(dyv, shape: reference.shape, engine: engine)
    let y = try maxPool2d(x, kernel: (2, 2))
    try checkClose("pool y", try y.toArray(), reference.y, atol: 0, rtol: 0)
    try y.backward(dy)
    try checkClose("pool dx", try gradient(x),
                   Reference.maxPool2dBackward(dy: dyv.map(Double.init), argmax: reference.argmax, inputShape: input), atol: 0, rtol: 0)
    let label = "N\(input[0]) C\(input[1]) H\(input[2]) W\(input[3]) 2x2"
    let variant = try PoolFamily.choose(input: input, kernel: (2, 2), engine: engine).rawValue
    try bench.memory("pool_max_forward", shape: label, variant: variant, bytes: 4 * Double(count) * 1.5) {
        try forwardEvents(engine) { try maxPool2d(x, kernel: (2, 2)) }
    }
    try bench.memory("pool_max_forward_backward", shape: label, variant: variant, bytes: 4 * Double(count) * 3) {
        try forwardBackwardEvents([x], dy: dy) { try maxPool2d(x, kernel: (2, 2)) }
    }
}
