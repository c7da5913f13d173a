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

/// Max or average pooling of [N, C, H, W]: forward, and forward + backward, with the variant
/// `PoolFamily` picks (max pooling), checked against `PrismReference` before timing. Bytes: the
/// forward reads x and writes y (and, max pooling, the argmax); the backward reads dy (and the argmax)
/// and writes dx.
func benchPool(_ bench: Bench, shape input: [Int], kernel: (Int, Int) = (2, 2), stride: (Int, Int) = (2, 2),
               padding: (Int, Int) = (0, 0), average: Bool = false) throws {
    let kind = average ? "avg" : "max"
    guard bench.wants("pool_\(kind)_forward") || bench.wants("pool_\(kind)_forward_backward") else { return }
    let engine = bench.engine
    var rng = SplitMix64(seed: 13)
    let count = input.reduce(1, *)
    let xv = (0..<count).map { _ in 2 * rng.nextFloat() - 1 }
    let x = try Tensor(xv, shape: input, engine: engine, requiresGrad: true)
    let xd = xv.map(Double.init)
    let pool: (Tensor) throws -> Tensor = average
        ? { try avgPool2d($0, kernel: kernel, stride: stride, padding: padding) }
        : { try maxPool2d($0, kernel: kernel, stride: stride, padding: padding) }
    let y = try pool(x)
    let dyv = (0..<y.count).map { _ in 2 * rng.nextFloat() - 1 }
    let dy = try Tensor(dyv, shape: y.shape, engine: engine)
    try y.backward(dy)
    if average {
        try checkClose("pool y", try y.toArray(), Reference.avgPool2d(x: xd, shape: input, kernel: kernel, stride: stride, padding: padding).y,
                       atol: 1e-6, rtol: 1e-5)
        try checkClose("pool dx", try gradient(x), Reference.avgPool2dBackward(dy: dyv.map(Double.init), inputShape: input, kernel: kernel,
                                                                               stride: stride, padding: padding), atol: 1e-6, rtol: 1e-5)
    } else {
        let reference = Reference.maxPool2d(x: xd, shape: input, kernel: kernel, stride: stride, padding: padding)
        try checkClose("pool y", try y.toArray(), reference.y, atol: 0, rtol: 0)
        // Overlapping windows sum several dy into a pixel in float.
        try checkClose("pool dx", try gradient(x),
                       Reference.maxPool2dBackward(dy: dyv.map(Double.init), argmax: reference.argmax, inputShape: input), atol: 1e-6, rtol: 1e-5)
    }
    var label = "N\(input[0]) C\(input[1]) H\(input[2]) W\(input[3]) \(kernel.0)x\(kernel.1)"
    if stride != kernel { label += "/\(stride.0)" }
    if padding != (0, 0) { label += " pad \(padding.0)" }
    let variant = average ? "general" : try PoolFamily.choose(input: input, kernel: kernel, stride: stride, padding: padding, engine: engine).rawValue
    let perOutput = average ? 4.0 : 8.0
    let pass = 4 * Double(count) + perOutput * Double(y.count)
    try bench.memory("pool_\(kind)_forward", shape: label, variant: variant, bytes: pass) {
        try forwardEvents(engine) { try pool(x) }
    }
    try bench.memory("pool_\(kind)_forward_backward", shape: label, variant: variant, bytes: 2 * pass) {
        try forwardBackwardEvents([x], dy: dy) { try pool(x) }
    }
}

/// The poolings beside the reference network's: a ResNet stem's 3×3 / 2 max pooling with padding, an
/// Inception-style 3×3 / 1 average pooling, and 2×2 pooling of small planes (3×3 outputs), as
/// `benchPool` times them.
func benchPoolWindows(_ bench: Bench, batch: Int) throws {
    let quarter = max(1, batch / 4)
    try benchPool(bench, shape: [quarter, 16, 56, 56], kernel: (3, 3), stride: (2, 2), padding: (1, 1))
    try benchPool(bench, shape: [quarter, 16, 28, 28], kernel: (3, 3), stride: (1, 1), padding: (1, 1), average: true)
    try benchPool(bench, shape: [batch * 4, 16, 6, 6])
}
