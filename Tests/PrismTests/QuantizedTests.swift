import Foundation
import Prism
import PrismReference
import PrismTestSupport
import Testing

/// The int8 kernels (`quantized.cl`) against the plain-Swift integer reference, bit for bit, at
/// awkward sizes, with and without the fused ReLU, over multipliers below and above 1; the fixed-point
/// multiplier against its real value; quantization against torch's rounding.
@Suite struct QuantizedTests {
    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] { seededFloats(count, seed: seed, low: 0, high: 255.99).map { UInt8($0) } }
    static func weights(_ count: Int, seed: UInt64) -> [Int8] { seededFloats(count, seed: seed, low: -127.99, high: 127.99).map { Int8($0) } }

    @Test func fixedPointMultipliersHoldTheirRealValue() throws {
        for real in [1e-9, 3.7e-5, 0.0123, 0.25, 0.5, 0.7071, 0.999_999_999, 1.0, 1.5, 37.25, 1000.0] {
            let m = try FixedPointMultiplier(real)
            #expect((1 << 30)...Int32.max ~= m.multiplier, "\(real)")
            let back = Double(m.multiplier) * pow(2, Double(m.shift - 31))
            #expect(abs(back - real) <= real * 1e-9, "\(real): \(back)")
            // acc · M in fixed point is round(acc · M) within one (the real product's rounding).
            for acc: Int32 in [0, 1, -1, 77, -77, 123_456, -987_654, 2_000_000] where abs(Double(acc) * real) < 1e9 {
                let q = QuantizedReference.requantize(acc, multiplier: m.multiplier, shift: m.shift)
                #expect(abs(Double(q) - Double(acc) * real) <= 1, "\(acc) · \(real) → \(q)")
            }
        }
        #expect(errorMessage { _ = try FixedPointMultiplier(0) } == "requantization: multiplier 0.0 must be positive and finite")
        #expect(errorMessage { _ = try FixedPointMultiplier(1e20) } != nil)
        // gemmlowp's rounding: ties away from zero.
        #expect(QuantizedReference.dividePOT(5, 1) == 3 && QuantizedReference.dividePOT(-5, 1) == -3 && QuantizedReference.dividePOT(-6, 2) == -2)
    }

    @Test func quantizeAndDequantizeRoundTrip() throws {
        let engine = try testEngine()
        let q = try AffineQuantization(low: -1.3, high: 2.1)
        #expect(q.zeroPoint == 98 && abs(q.scale - 3.4 / 255) < 1e-7)
        // Values on and between the grid's points, ties included, and out of range.
        let x = seededFloats(1000, seed: 3, low: -2, high: 3) + (0..<20).map { (Float($0) - 10 + 0.5) * q.scale } + [-100, 100]
        let quantized = try Tensor(x, shape: [x.count], engine: engine).quantized(q)
        #expect(try quantized.values() == QuantizedReference.quantize(x, invScale: 1 / q.scale, zeroPoint: q.zeroPoint))
        let back = try quantized.dequantized().toArray()
        for (i, v) in x.enumerated() where v > -1.3 && v < 2.1 {
            #expect(abs(back[i] - v) <= q.scale / 2 * 1.0001, "\(v) → \(back[i])")
        }
        // A range without zero is widened to hold it: zero is exact.
        let positive = try AffineQuantization(low: 0.5, high: 4)
        #expect(positive.zeroPoint == 0 && positive.scale == 4 / 255)
    }

    @Test(arguments: [(1, 1, 1), (5, 37, 13), (7, 64, 32), (3, 129, 17), (2, 16, 1)])
    func linearMatchesTheIntegerReferenceBitForBit(_ sizes: (Int, Int, Int)) throws {
        let engine = try testEngine()
        let (m, k, n) = sizes
        let x = Self.bytes(m * k, seed: UInt64(m * 100 + k))
        let wf = seededFloats(n * k, seed: UInt64(n + 7), low: -0.5, high: 0.5)
        let bias = seededFloats(n, seed: 9, low: -0.2, high: 0.2)
        let w = try QuantizedWeights(weights: wf, shape: [n, k], bias: bias)
        for (input, output, relu) in [(AffineQuantization(scale: 0.02, zeroPoint: 120), AffineQuantization(scale: 0.05, zeroPoint: 100), false),
                                      (AffineQuantization(scale: 0.004, zeroPoint: 0), AffineQuantization(scale: 0.0001, zeroPoint: 30), true),
                                      (AffineQuantization(scale: 0.3, zeroPoint: 255), AffineQuantization(scale: 0.001, zeroPoint: 128), false)] {
            let xq = try QuantizedTensor(engine: engine, shape: [m, k], storage: try engine.context.buffer(x), quantization: input)
            let y = try quantizedLinear(xq, w, output: output, relu: relu)
            let (b, multipliers) = try w.requantization(input: input, output: output)
            let expected = QuantizedReference.linear(x: x, w: w.values, bias: b, multiplier: multipliers.map(\.multiplier), shift: multipliers.map(\.shift),
                                                     m: m, n: n, k: k, zx: input.zeroPoint, zy: output.zeroPoint, lo: relu ? output.zeroPoint : 0)
            #expect(try y.values() == expected, "\(sizes) \(input) → \(output)")
        }
    }

    @Test(arguments: [(1, 3, 8, 8, 4, 3, 1, 1, 1), (2, 5, 9, 7, 6, 3, 2, 1, 1), (1, 2, 11, 10, 9, 5, 1, 2, 2), (3, 1, 6, 6, 1, 1, 1, 0, 1)])
    func convolutionMatchesTheIntegerReferenceBitForBit(_ s: (Int, Int, Int, Int, Int, Int, Int, Int, Int)) throws {
        let engine = try testEngine()
        let (batch, c, h, wd, oc, kernel, stride, padding, dilation) = s
        let x = Self.bytes(batch * c * h * wd, seed: UInt64(h * 10 + wd))
        let w = try QuantizedWeights(weights: seededFloats(oc * c * kernel * kernel, seed: UInt64(oc), low: -1, high: 1),
                                     shape: [oc, c, kernel, kernel], bias: seededFloats(oc, seed: 4, low: -1, high: 1))
        let (input, output) = (AffineQuantization(scale: 0.01, zeroPoint: 37), AffineQuantization(scale: 0.08, zeroPoint: 90))
        for relu in [false, true] {
            let xq = try QuantizedTensor(engine: engine, shape: [batch, c, h, wd], storage: try engine.context.buffer(x), quantization: input)
            let y = try quantizedConv2D(xq, w, stride: (stride, stride), padding: (padding, padding), dilation: (dilation, dilation),
                                        output: output, relu: relu)
            let (b, multipliers) = try w.requantization(input: input, output: output)
            let expected = QuantizedReference.conv2d(x: x, w: w.values, bias: b, multiplier: multipliers.map(\.multiplier), shift: multipliers.map(\.shift),
                                                     batch: batch, channels: c, height: h, width: wd, outChannels: oc, kernel: (kernel, kernel),
                                                     stride: (stride, stride), padding: (padding, padding), dilation: (dilation, dilation),
                                                     zx: input.zeroPoint, zy: output.zeroPoint, lo: relu ? output.zeroPoint : 0)
            #expect(try y.values() == expected, "\(s), relu \(relu)")
            // And the integer result is the float convolution of the dequantized operands, within one step of the output.
            let real = try conv2d(try xq.dequantized(), weight: try Tensor(w.dequantized, shape: w.shape, engine: engine),
                                  bias: try Tensor(w.bias!, shape: [oc], engine: engine), stride: (stride, stride), padding: (padding, padding),
                                  dilation: (dilation, dilation)).toArray()
            let got = try y.dequantized().toArray()
            for i in got.indices {
                let clipped = min(max(real[i], output.scale * Float(-(relu ? 0 : output.zeroPoint))), output.scale * Float(255 - output.zeroPoint))
                #expect(abs(got[i] - clipped) <= output.scale * 1.01, "\(i): \(got[i]) vs \(real[i])")
            }
        }
    }

    @Test func maxPoolingOfBytes() throws {
        let engine = try testEngine()
        let x = Self.bytes(2 * 3 * 7 * 6, seed: 12)
        let q = try quantizedMaxPool2D(try QuantizedTensor(engine: engine, shape: [2, 3, 7, 6], storage: try engine.context.buffer(x),
                                                           quantization: AffineQuantization(scale: 0.1, zeroPoint: 3)), kernel: 2, stride: 2)
        #expect(q.shape == [2, 3, 3, 3])
        let values = try q.values()
        for plane in 0..<6 { for oy in 0..<3 { for ox in 0..<3 {
            let window = [(0, 0), (0, 1), (1, 0), (1, 1)].map { x[plane * 42 + (2 * oy + $0.0) * 6 + 2 * ox + $0.1] }
            #expect(values[plane * 9 + oy * 3 + ox] == window.max()!)
        } } }
    }

    /// The integer Add (TensorFlow Lite's) against the reference bit for bit, over scales that make
    /// either input the larger, outputs coarser and finer than the inputs, with and without a fused
    /// ReLU; and within one output step of the real sum of the dequantized inputs.
    @Test(arguments: [(0.02, 0.05, 0.04), (0.3, 0.001, 0.2), (0.004, 0.004, 0.0005), (0.1, 0.09, 0.5)])
    func addMatchesTheIntegerReferenceBitForBit(_ scales: (Double, Double, Double)) throws {
        let engine = try testEngine()
        let n = 1003
        let (a, b) = (Self.bytes(n, seed: 41), Self.bytes(n, seed: 42))
        let qa = AffineQuantization(scale: Float(scales.0), zeroPoint: 17), qb = AffineQuantization(scale: Float(scales.1), zeroPoint: 200)
        let output = AffineQuantization(scale: Float(scales.2), zeroPoint: 111)
        let ta = try QuantizedTensor(engine: engine, shape: [1, n], storage: try engine.context.buffer(a), quantization: qa)
        let tb = try QuantizedTensor(engine: engine, shape: [1, n], storage: try engine.context.buffer(b), quantization: qb)
        let (ma, mb, my) = try quantizedAddMultipliers(qa, qb, output: output)
        for relu in [false, true] {
            let y = try quantizedAdd(ta, tb, output: output, relu: relu).values()
            let expected = QuantizedReference.add(a: a, b: b, za: qa.zeroPoint, ma: (ma.multiplier, ma.shift), zb: qb.zeroPoint, mb: (mb.multiplier, mb.shift),
                                                  zy: output.zeroPoint, my: (my.multiplier, my.shift), lo: relu ? output.zeroPoint : 0)
            #expect(y == expected, "\(scales), relu \(relu)")
            for i in 0..<n {
                var real = qa.scale * Float(Int32(a[i]) - qa.zeroPoint) + qb.scale * Float(Int32(b[i]) - qb.zeroPoint)
                if relu { real = max(real, 0) }
                let clipped = min(max(real, output.scale * Float(-output.zeroPoint)), output.scale * Float(255 - output.zeroPoint))
                #expect(abs(output.scale * Float(Int32(y[i]) - output.zeroPoint) - clipped) <= output.scale * 0.5001, "\(i)")
            }
        }
        let other = try QuantizedTensor(engine: engine, shape: [n, 1], storage: try engine.context.buffer(b), quantization: qb)
        #expect(errorMessage { _ = try quantizedAdd(ta, other, output: output) } != nil)
        // ReLU of bytes: max(q, z).
        let r = try quantizedReLU(ta).values()
        #expect(r == a.map { max($0, UInt8(qa.zeroPoint)) })
    }

    /// Dynamic quantization: the input quantized over its own range at run time, integer sums
    /// dequantized to float — equal, to float rounding, to the exact sums of the quantized operands.
    @Test(arguments: [false, true])
    func dynamicQuantizationMatchesTheExactSums(_ convolution: Bool) throws {
        let engine = try testEngine()
        let (shape, wshape) = convolution ? ([2, 3, 9, 7], [5, 3, 3, 3]) : ([6, 37], [11, 37])
        let x = seededFloats(shape.reduce(1, *), seed: 31, low: -1.5, high: 2.5)
        let w = try QuantizedWeights(weights: seededFloats(wshape.reduce(1, *), seed: 32), shape: wshape, bias: seededFloats(wshape[0], seed: 33))
        for relu in [false, true] {
            let y = try dynamicQuantized(try Tensor(x, shape: shape, engine: engine), w,
                                         convolution: convolution ? ((1, 2), (1, 0), (1, 1)) : nil, relu: relu)
            let q = try AffineQuantization(low: x.min()!, high: x.max()!)
            let xq = QuantizedReference.quantize(x, invScale: 1 / q.scale, zeroPoint: q.zeroPoint)
            // The exact result of the quantized operands, from the reference's integer sums with a unit multiplier chain
            // replaced by float: Σ (q_x − z) q_w · s_x s_w[c] + b[c].
            let real = xq.map { Float(Int32($0) - q.zeroPoint) * q.scale }
            let expected: [Float]
            if convolution {
                expected = try conv2d(try Tensor(real, shape: shape, engine: engine), weight: try Tensor(w.dequantized, shape: wshape, engine: engine),
                                      bias: try Tensor(w.bias!, shape: [wshape[0]], engine: engine), stride: (1, 2), padding: (1, 0), relu: relu).toArray()
            } else {
                expected = try linear(try Tensor(real, shape: shape, engine: engine), weight: try Tensor(w.dequantized, shape: wshape, engine: engine),
                                      bias: try Tensor(w.bias!, shape: [wshape[0]], engine: engine), relu: relu).toArray()
            }
            let close = closeness(try y.toArray(), expected, atol: 1e-4, rtol: 1e-4)
            #expect(y.shape == (convolution ? [2, 5, 9, 3] : [6, 11]) && close.passed, "\(close)")
        }
    }
}

/// A trained cnn quantized (left out of the Oclgrind run: it trains a network; the kernels are checked
/// there by `QuantizedTests`).
@Suite struct QuantizedModelTests {
    /// The reference cnn trained briefly on the fixture, quantized with 64 calibration images: the
    /// integer model computes its float simulation (the QDQ graph) within one step of the output's
    /// quantization, the simulation runs through every node with gradients, and both stay near the
    /// float model.
    @Test func aQuantizedCNNComputesItsSimulation() throws {
        let engine = try testEngine()
        let (train, test) = try fixtureImages()
        var spec = try ModelSpec.cnn()
        spec.inputNormalization = train.channelStatistics()
        let model = try Model(spec: spec, seed: 0, engine: engine)
        try Trainer(model: model, config: TrainingConfig(epochs: 2, batchSize: 64, learningRate: 1e-3, seed: 0)).fit(train: train)
        let calibration = try (0..<64).flatMap { try train.example($0).features }
        #expect(errorMessage { _ = try QuantizedModel(model, calibration: calibration, count: 64, observer: .percentile(20)) }
                == "calibration: percentile 20.0 must lie in (50, 100]")
        let quantized = try QuantizedModel(model, calibration: calibration, count: 64)
        let (simSpec, tensors, weights) = try quantized.simulation()
        #expect(Set(weights.keys) == ["0", "3", "7", "9"])
        #expect(simSpec.nodes.filter { $0.op == "fake_quantize" }.count == 5)
        let simulation = try Model(spec: simSpec, seed: 0, engine: engine)
        try simulation.loadStateDict(tensors)
        let x = try Tensor(try (0..<100).flatMap { try test.example($0).features }, shape: [100, 1, 28, 28], engine: engine)
        let (integer, simulated, float) = try engine.noGrad { (try quantized(x).toArray(), try simulation(x).toArray(), try model(x).toArray()) }
        let step = try #require(quantized.outputQuantization).scale
        let worst = zip(integer, simulated).map { abs($0 - $1) }.max()!
        #expect(worst <= step * 1.001, "integer vs simulation: \(worst / step) steps")
        // Against the float model: the logits within a few output steps, the same class for nearly every image.
        let drift = zip(integer, float).map { abs($0 - $1) }.max()!
        #expect(drift <= 8 * step, "integer vs float: \(drift / step) steps")
        let agree = (0..<100).filter { i in
            let row = { (v: [Float]) in (0..<10).max { v[i * 10 + $0] < v[i * 10 + $1] }! }
            return row(integer) == row(float)
        }.count
        #expect(agree >= 95, "\(agree) of 100 predictions agree")
        // Gradients pass through the fake quantization (straight through inside the range).
        let input = try Tensor(try test.example(0).features, shape: [1, 1, 28, 28], engine: engine, requiresGrad: true)
        try simulation(input).sum().backward()
        #expect(try #require(input.grad).toArray().contains { $0 != 0 })
        // A node without an integer kernel runs in float; a model with nothing to run in integers is refused.
        let gelu = ModelSpec(architecture: "custom", inputShape: [4], classCount: 2, layers: [.linear(inFeatures: 4, outFeatures: 3), .gelu, .linear(inFeatures: 3, outFeatures: 2)])
        let mixed = try QuantizedModel(try Model(spec: gelu, seed: 0, engine: engine), calibration: (0..<8).map { Float($0) / 4 - 1 }, count: 2)
        #expect(mixed.floatNodes == ["'1' (gelu)"])
        let none = ModelSpec(architecture: "custom", inputShape: [2], classCount: 2, layers: [.gelu])
        #expect(errorMessage { _ = try QuantizedModel(try Model(spec: none, seed: 0, engine: engine), calibration: [0, 1], count: 1) }
                == "quantize: the model has no conv2d of one group, linear or add node to run in integers")
    }

    /// A graph beyond a chain (FilterPruningTests' residual add, concatenation, BatchNorm, depthwise
    /// convolution, flatten into Linear): the BatchNorm folds into its convolution, the Add and its
    /// ReLU run in integers, the concatenation, depthwise convolution and the float-fed pooling and
    /// flatten run in float, and the integer model computes its simulation within rounding.
    @Test func aResidualGraphFoldsBatchNormAndRunsTheRestInFloat() throws {
        let engine = try testEngine()
        let model = try Model(spec: try FilterPruningTests.spec(), seed: 3, engine: engine)
        var state = try model.stateDict()
        state["bn.running_mean"] = HostTensor(shape: [6], values: seededFloats(6, seed: 5, low: -0.3, high: 0.3))
        state["bn.running_var"] = HostTensor(shape: [6], values: seededFloats(6, seed: 6, low: 0.5, high: 2))
        state["bn.weight"] = HostTensor(shape: [6], values: seededFloats(6, seed: 7, low: 0.5, high: 1.5))
        state["bn.bias"] = HostTensor(shape: [6], values: seededFloats(6, seed: 8, low: -0.2, high: 0.2))
        try model.loadStateDict(state)
        let quantized = try QuantizedModel(model, calibration: seededFloats(64 * 192, seed: 9, low: 0, high: 1), count: 64)
        #expect(quantized.folded.keys.map(model.nodeName) == ["bn"])
        #expect(quantized.steps.map(\.kind) == [.conv, .conv, .add, .conv, .float, .float, .float, .float, .linear, .linear])
        #expect(quantized.steps[0].relu && !quantized.steps[1].relu && quantized.steps[2].relu && quantized.steps[8].relu)
        #expect(quantized.floatNodes == ["'cat' (cat)", "'d' (conv2d)", "'pool' (maxpool2d)", "'flat' (flatten)"])
        #expect(quantized.calibrated == [0, 3, 4, 6, 7, 11, 13, 14])
        let (simSpec, tensors, _) = try quantized.simulation()
        #expect(!simSpec.nodes.contains { $0.name == "bn" } && simSpec.nodes.filter { $0.op == "fake_quantize" }.count == 8)
        #expect(simSpec.nodes.first { $0.name == "r" }?.inputs == ["a"] && tensors["bn.weight"] == nil && tensors["a.bias"] != nil)
        let simulation = try Model(spec: simSpec, seed: 0, engine: engine)
        try simulation.loadStateDict(tensors)
        let x = try Tensor(seededFloats(40 * 192, seed: 10, low: 0, high: 1), shape: [40, 3, 8, 8], engine: engine)
        let (integer, simulated, float) = try engine.noGrad { (try quantized(x).toArray(), try simulation(x).toArray(), try model(x).toArray()) }
        let step = try #require(quantized.outputQuantization).scale
        let worst = zip(integer, simulated).map { abs($0 - $1) }.max()!
        #expect(worst <= 2.001 * step, "integer vs simulation: \(worst / step) steps")
        let drift = zip(integer, float).map { abs($0 - $1) }.max()!
        #expect(drift <= 12 * step, "integer vs float: \(drift / step) steps")
    }

    /// The residual CNN exported from PyTorch and imported (BatchNorm folded by the exporter, a
    /// grouped dilated convolution, LeakyReLU, ceil-mode pooling, a standalone BatchNorm, ELU,
    /// average pooling, Hardswish, concatenation, global pooling, Sigmoid): quantized, every node
    /// without an integer kernel named, and the integer model within rounding of its simulation.
    @Test func anImportedResidualCNNQuantizes() throws {
        let engine = try testEngine()
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/onnx").path
        let model = try Model.load(path: folder + "/residual_cnn_torchscript.onnx", engine: engine).model
        let d = model.spec.inputShape.reduce(1, *)
        let quantized = try QuantizedModel(model, calibration: seededFloats(64 * d, seed: 11, low: -1, high: 1), count: 64)
        let kinds = Dictionary(grouping: quantized.steps, by: \.kind).mapValues(\.count)
        #expect(kinds[.conv] == 3 && kinds[.linear] == 2 && kinds[.add] == 1, "\(kinds)")
        #expect(quantized.floatNodes.contains { $0.hasPrefix("'block.conv1' (conv2d)") } && quantized.floatNodes.contains { $0.contains("(hardswish)") })
        let (simSpec, tensors, _) = try quantized.simulation()
        let simulation = try Model(spec: simSpec, seed: 0, engine: engine)
        try simulation.loadStateDict(tensors)
        let x = try Tensor(seededFloats(32 * d, seed: 12, low: -1, high: 1), shape: [32] + model.spec.inputShape, engine: engine)
        let (integer, simulated) = try engine.noGrad { (try quantized(x).toArray(), try simulation(x).toArray()) }
        let step = try #require(quantized.outputQuantization).scale
        let worst = zip(integer, simulated).map { abs($0 - $1) }.max()!
        #expect(worst <= 2.001 * step, "integer vs simulation: \(worst / step) steps")
    }
}
