import Foundation
import Prism
import PrismReference
import PrismTestSupport
import Testing

/// The gradient of a leaf after `backward`, as doubles.
private func gradient(_ t: Tensor) throws -> [Double] { doubles(try #require(t.grad).toArray()) }

@Suite struct LayerOpsActivationTests {
    /// An activation under test: the device op and its reference.
    struct Activation: CustomStringConvertible, Sendable {
        let name: String
        let device: @Sendable (Tensor) throws -> Tensor
        let reference: @Sendable ([Double]) -> [Double]
        var description: String { name }
    }

    static let activations: [Activation] = [
        Activation(name: "leakyRelu 0.01", device: { try $0.leakyRelu(negativeSlope: 0.01) },
                   reference: { Reference.leakyRelu(x: $0, negativeSlope: 0.01) }),
        Activation(name: "leakyRelu 0.2", device: { try $0.leakyRelu(negativeSlope: 0.2) },
                   reference: { Reference.leakyRelu(x: $0, negativeSlope: 0.2) }),
        Activation(name: "elu 1", device: { try $0.elu(alpha: 1) }, reference: { Reference.elu(x: $0, alpha: 1) }),
        Activation(name: "elu 0.7", device: { try $0.elu(alpha: 0.7) }, reference: { Reference.elu(x: $0, alpha: 0.7) }),
        Activation(name: "silu", device: { try $0.silu() }, reference: { Reference.silu(x: $0) }),
        Activation(name: "hardswish", device: { try $0.hardswish() }, reference: { Reference.hardswish(x: $0) }),
        Activation(name: "hardtanh", device: { try $0.hardtanh() }, reference: { Reference.hardtanh(x: $0, minValue: -1, maxValue: 1) }),
        Activation(name: "hardtanh 0 6 (relu6)", device: { try $0.hardtanh(min: 0, max: 6) },
                   reference: { Reference.hardtanh(x: $0, minValue: 0, maxValue: 6) }),
        Activation(name: "hardtanh -2.5 0.75", device: { try $0.hardtanh(min: -2.5, max: 0.75) },
                   reference: { Reference.hardtanh(x: $0, minValue: -2.5, maxValue: 0.75) }),
        Activation(name: "hardsigmoid", device: { try $0.hardsigmoid() }, reference: { Reference.hardsigmoid(x: $0) }),
        Activation(name: "hardsigmoid 0.2 0.5", device: { try $0.hardsigmoid(alpha: 0.2, beta: 0.5) },
                   reference: { Reference.hardsigmoid(x: $0, alpha: 0.2, beta: 0.5) }),
        Activation(name: "hardsigmoid -0.3 0.1", device: { try $0.hardsigmoid(alpha: -0.3, beta: 0.1) },
                   reference: { Reference.hardsigmoid(x: $0, alpha: -0.3, beta: 0.1) }),
    ]

    /// Forward against the reference, backward against finite differences of the reference, on
    /// values spread over every piece of each function (|x| up to 6, past hardswish's ±3).
    @Test(arguments: activations, [1, 37, 1000])
    func activationMatchesReference(_ act: Activation, _ n: Int) throws {
        let engine = try testEngine()
        let x = seededFloats(n, seed: 11, low: -6, high: 6)
        let xt = try Tensor(x, shape: [n], engine: engine, requiresGrad: true)
        let y = try act.device(xt)
        #expect(y.shape == [n])
        expectClose(try y.toArray(), act.reference(doubles(x)), atol: 1e-6, rtol: 1e-5, "\(act) forward n=\(n)")
        let dy = seededFloats(n, seed: 12)
        try y.backward(try Tensor(dy, shape: [n], engine: engine))
        let fd = finiteDifferences(at: doubles(x)) { dot(doubles(dy), act.reference($0)) }
        expectClose(try #require(xt.grad).toArray(), fd, atol: 1e-5, rtol: 1e-4, "\(act) backward n=\(n)")
    }

    /// ELU's eˣ − 1 keeps its relative accuracy where eˣ − 1 would cancel (small |x|), and on both
    /// sides of the kernel's switch from the series to exp at |x| = ½.
    @Test func eluIsAccurateNearZero() throws {
        let engine = try testEngine()
        let x: [Float] = [-1e-7, -3e-5, -1e-3, -0.0625, -0.3, -0.4999, -0.5, -0.5001, -0.7, -2, -17, -90]
        let y = try Tensor(x, shape: [x.count], engine: engine).elu(alpha: 1).toArray()
        for (v, got) in zip(x, y) {
            let exact = Foundation.expm1(Double(v))
            #expect(abs(Double(got) - exact) <= 3e-7 * abs(exact), "elu(\(v)) = \(got), exact \(exact)")
        }
    }

    /// At the kinks the gradient takes PyTorch's side: the negative side at 0 for leaky ReLU and
    /// ELU, the middle piece x/3 + 1/2 at ±3 for hardswish.
    @Test func kinksTakePyTorchsSide() throws {
        let engine = try testEngine()
        func slopes(_ values: [Float], _ f: (Tensor) throws -> Tensor) throws -> [Float] {
            let x = try Tensor(values, shape: [values.count], engine: engine, requiresGrad: true)
            try f(x).backward(try Tensor.ones([values.count], engine: engine))
            return try #require(x.grad).toArray()
        }
        #expect(try slopes([0, 1, -1]) { try $0.leakyRelu(negativeSlope: 0.25) } == [0.25, 1, 0.25])
        #expect(try slopes([0, 2]) { try $0.elu(alpha: 0.5) } == [0.5, 1])
        #expect(try slopes([-3, 3, -4, 4, 0]) { try $0.hardswish() } == [-0.5, 1.5, 0, 1, 0.5])
        #expect(try slopes([0]) { try $0.silu() } == [0.5])
        #expect(try slopes([0, 6, -1, 7, 3]) { try $0.hardtanh(min: 0, max: 6) } == [0, 0, 0, 0, 1])
        #expect(try slopes([-3, 3, -4, 4, 0]) { try $0.hardsigmoid() } == [0, 0, 0, 0, Float(1.0 / 6)])
    }

    /// NaN passes through hardtanh (as torch.clamp lets it), and PyTorch's hardsigmoid values.
    @Test func hardtanhPassesNaNAndHardsigmoidHitsItsCorners() throws {
        let engine = try testEngine()
        let x = try Tensor([.nan, -7, 7, 1.5], shape: [4], engine: engine)
        let y = try x.hardtanh(min: 0, max: 6).toArray()
        #expect(y[0].isNaN && y[1] == 0 && y[2] == 6 && y[3] == 1.5)
        #expect(try x.hardsigmoid().toArray().dropFirst() == [0, 1, 0.75])
        #expect(errorMessage { try x.hardtanh(min: 1, max: 0) } == "hardtanh: needs min_val ≤ max_val, got 1.0 and 0.0")
    }

    @Test func referencesHitTheirDefinitions() {
        #expect(Reference.leakyRelu(x: [-2, 0, 3], negativeSlope: 0.1) == [-0.2, 0, 3])
        #expect(Reference.hardswish(x: [-4, -3, 0, 3, 4]) == [-0, -0, 0, 3, 4])
        expectClose(Reference.hardswish(x: [1]), [4.0 / 6], atol: 1e-15, rtol: 0, "hardswish(1)")
        expectClose(Reference.elu(x: [-1, 2], alpha: 2), [2 * (1 / 2.718281828459045 - 1), 2], atol: 1e-12, rtol: 0, "elu")
        expectClose(Reference.silu(x: [0, 1]), [0, 1 / (1 + 1 / 2.718281828459045)], atol: 1e-12, rtol: 0, "silu")
    }

    @Test func refusesNonFiniteParameters() throws {
        let x = try Tensor.zeros([2], engine: try testEngine())
        #expect(errorMessage { try x.leakyRelu(negativeSlope: .nan) } == "leakyRelu: negative slope must be finite, got nan")
        #expect(errorMessage { try x.elu(alpha: .infinity) } == "elu: alpha must be finite, got inf")
    }
}

@Suite struct LayerOpsAdaptivePoolTests {
    struct Case: CustomStringConvertible, Sendable {
        var shape: [Int]
        var out: (Int, Int)
        var description: String { "x\(shape) → \(out)" }
    }

    static let cases: [Case] = [
        Case(shape: [3, 5, 7, 7], out: (3, 3)),
        Case(shape: [3, 2, 5, 5], out: (2, 2)),
        Case(shape: [2, 3, 7, 5], out: (3, 2)),
        Case(shape: [1, 3, 6, 9], out: (3, 3)),
        Case(shape: [2, 1, 4, 3], out: (6, 5)),   // more outputs than inputs: windows repeat pixels
        Case(shape: [3, 7, 5, 6], out: (1, 1)),
    ]

    @Test(arguments: cases)
    func adaptiveAvgPoolMatchesReference(_ cs: Case) throws {
        let engine = try testEngine()
        let x = seededFloats(cs.shape.reduce(1, *), seed: 21)
        let xt = try Tensor(x, shape: cs.shape, engine: engine, requiresGrad: true)
        let y = try adaptiveAvgPool2d(xt, outputSize: cs.out)
        let ref = Reference.adaptiveAvgPool2d(x: doubles(x), shape: cs.shape, outputSize: cs.out)
        #expect(y.shape == ref.shape)
        expectClose(try y.toArray(), ref.y, atol: 1e-6, rtol: 1e-5, "adaptive forward \(cs)")
        let dy = seededFloats(y.count, seed: 22)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        let fd = finiteDifferences(at: doubles(x)) { dot(doubles(dy), Reference.adaptiveAvgPool2d(x: $0, shape: cs.shape, outputSize: cs.out).y) }
        expectClose(try #require(xt.grad).toArray(), fd, atol: 1e-5, rtol: 1e-4, "adaptive backward \(cs)")
    }

    @Test func referenceWindowsArePyTorchs() {
        // 7 → 3: rows [0, 3), [2, 5), [4, 7); 5 → 2: [0, 3), [2, 5).
        let x = (0..<7).map(Double.init)
        expectClose(Reference.adaptiveAvgPool2d(x: x, shape: [1, 1, 1, 7], outputSize: (1, 3)).y, [1, 3, 5], atol: 0, rtol: 0, "7 → 3")
        expectClose(Reference.adaptiveAvgPool2d(x: Array(x[0..<5]), shape: [1, 1, 5, 1], outputSize: (2, 1)).y, [1, 3], atol: 0, rtol: 0, "5 → 2")
    }

    @Test func refusesBadShapes() throws {
        let engine = try testEngine()
        #expect(errorMessage { try adaptiveAvgPool2d(try Tensor.zeros([2, 3, 4], engine: engine), outputSize: (1, 1)) }
            == "adaptiveAvgPool2d: input must have rank 4 [N, C, H, W] with positive sizes: [2, 3, 4]")
        #expect(errorMessage { try adaptiveAvgPool2d(try Tensor.zeros([1, 1, 4, 4], engine: engine), outputSize: (0, 2)) }
            == "adaptiveAvgPool2d: output size 0×2 must be at least 1×1: [1, 1, 4, 4]")
    }
}

@Suite struct LayerOpsBatchNormTests {
    static let shapes: [[Int]] = [[3, 5], [3, 5, 4, 3], [4, 3, 7], [3, 1, 2, 5], [2, 7, 3, 4]]

    @Test(arguments: shapes, [true, false])
    func inferenceMatchesReference(_ shape: [Int], _ affine: Bool) throws {
        let engine = try testEngine()
        let c = shape[1], n = shape.reduce(1, *)
        let x = seededFloats(n, seed: 31, low: -2, high: 2)
        let mean = seededFloats(c, seed: 32), variance = seededFloats(c, seed: 33, low: 0.1, high: 2)
        let w = seededFloats(c, seed: 34, low: 0.5, high: 1.5), b = seededFloats(c, seed: 35)
        let xt = try Tensor(x, shape: shape, engine: engine, requiresGrad: true)
        let wt = try Tensor(w, shape: [c], engine: engine, requiresGrad: true)
        let bt = try Tensor(b, shape: [c], engine: engine, requiresGrad: true)
        let y = try batchNorm(xt, runningMean: try Tensor(mean, shape: [c], engine: engine),
                              runningVar: try Tensor(variance, shape: [c], engine: engine),
                              weight: affine ? wt : nil, bias: affine ? bt : nil, eps: 1e-5)
        func ref(_ x: [Double], _ w: [Double]?, _ b: [Double]?) -> [Double] {
            Reference.batchNorm(x: x, shape: shape, mean: doubles(mean), variance: doubles(variance), weight: w, bias: b, eps: 1e-5)
        }
        let (xd, wd, bd) = (doubles(x), affine ? doubles(w) : nil, affine ? doubles(b) : nil)
        #expect(y.shape == shape)
        expectClose(try y.toArray(), ref(xd, wd, bd), atol: 1e-5, rtol: 1e-5, "bn eval forward \(shape)")
        let dy = doubles(seededFloats(n, seed: 36))
        try y.backward(try Tensor(dy.map(Float.init), shape: shape, engine: engine))
        expectClose(try #require(xt.grad).toArray(), finiteDifferences(at: xd) { dot(dy, ref($0, wd, bd)) }, atol: 1e-5, rtol: 1e-4, "bn eval dx \(shape)")
        if affine {
            expectClose(try #require(wt.grad).toArray(), finiteDifferences(at: doubles(w)) { dot(dy, ref(xd, $0, bd)) }, atol: 1e-4, rtol: 1e-4, "bn eval dw \(shape)")
            expectClose(try #require(bt.grad).toArray(), finiteDifferences(at: doubles(b)) { dot(dy, ref(xd, wd, $0)) }, atol: 1e-4, rtol: 1e-4, "bn eval db \(shape)")
        }
    }

    @Test(arguments: shapes, [true, false])
    func trainingMatchesReference(_ shape: [Int], _ affine: Bool) throws {
        let engine = try testEngine()
        let c = shape[1], n = shape.reduce(1, *)
        // An offset and a spread per channel, so the statistics differ from 0 and 1.
        let x = seededFloats(n, seed: 41, low: -2, high: 2).enumerated().map { i, v in
            let ch = (i / shape[2...].reduce(1, *)) % c
            return v * Float(1 + ch) + Float(ch) - 1
        }
        let w = seededFloats(c, seed: 44, low: 0.5, high: 1.5), b = seededFloats(c, seed: 45)
        let xt = try Tensor(x, shape: shape, engine: engine, requiresGrad: true)
        let wt = try Tensor(w, shape: [c], engine: engine, requiresGrad: true)
        let bt = try Tensor(b, shape: [c], engine: engine, requiresGrad: true)
        let result = try batchNormTraining(xt, weight: affine ? wt : nil, bias: affine ? bt : nil, eps: 1e-5)
        func ref(_ x: [Double], _ w: [Double]?, _ b: [Double]?) -> (y: [Double], mean: [Double], unbiasedVariance: [Double]) {
            Reference.batchNormTraining(x: x, shape: shape, weight: w, bias: b, eps: 1e-5)
        }
        let (xd, wd, bd) = (doubles(x), affine ? doubles(w) : nil, affine ? doubles(b) : nil)
        let expected = ref(xd, wd, bd)
        #expect(result.output.shape == shape)
        expectClose(try result.output.toArray(), expected.y, atol: 1e-5, rtol: 1e-4, "bn train forward \(shape)")
        expectClose(try result.mean.toArray(), expected.mean, atol: 1e-5, rtol: 1e-5, "bn train mean \(shape)")
        expectClose(try result.variance.toArray(), expected.unbiasedVariance, atol: 1e-5, rtol: 1e-4, "bn train variance \(shape)")
        let dy = doubles(seededFloats(n, seed: 46))
        try result.output.backward(try Tensor(dy.map(Float.init), shape: shape, engine: engine))
        expectClose(try #require(xt.grad).toArray(), finiteDifferences(at: xd) { dot(dy, ref($0, wd, bd).y) }, atol: 1e-4, rtol: 1e-3, "bn train dx \(shape)")
        if affine {
            expectClose(try #require(wt.grad).toArray(), finiteDifferences(at: doubles(w)) { dot(dy, ref(xd, $0, bd).y) }, atol: 1e-4, rtol: 1e-4, "bn train dw \(shape)")
            expectClose(try #require(bt.grad).toArray(), finiteDifferences(at: doubles(b)) { dot(dy, ref(xd, wd, $0).y) }, atol: 1e-4, rtol: 1e-4, "bn train db \(shape)")
        }
    }

    @Test func referenceStatisticsArePyTorchs() {
        // One channel holding 1, 2, 3, 6: mean 3, biased variance 3.5, unbiased 14 / 3.
        let r = Reference.batchNormTraining(x: [1, 2, 3, 6], shape: [2, 1, 2], weight: nil, bias: nil, eps: 0)
        expectClose(r.mean, [3], atol: 0, rtol: 0, "mean")
        expectClose(r.unbiasedVariance, [14.0 / 3], atol: 1e-15, rtol: 0, "unbiased variance")
        expectClose(r.y, [-2, -1, 0, 3].map { $0 / 3.5.squareRoot() }, atol: 1e-15, rtol: 0, "normalized")
    }

    @Test func refusesBadShapes() throws {
        let engine = try testEngine()
        let x = try Tensor.zeros([2, 3, 2], engine: engine)
        let c3 = try Tensor.ones([3], engine: engine), c2 = try Tensor.ones([2], engine: engine)
        #expect(errorMessage { try batchNorm(x, runningMean: c3, runningVar: c2, weight: nil, bias: nil, eps: 1e-5) }
            == "batchNorm: runningVar must have shape [3]: [2, 3, 2] × [2]")
        #expect(errorMessage { try batchNorm(try Tensor.zeros([3], engine: engine), runningMean: c3, runningVar: c3, weight: nil, bias: nil, eps: 1e-5) }
            == "batchNorm: input must have rank 2 or more [N, C, …]: [3]")
        #expect(errorMessage { try batchNormTraining(x, weight: c2, bias: nil, eps: 1e-5).output }
            == "batchNormTraining: weight must have shape [3]: [2, 3, 2] × [2]")
        #expect(errorMessage { try batchNormTraining(try Tensor.zeros([1, 3], engine: engine), weight: nil, bias: nil, eps: 1e-5).output }
            == "batchNormTraining: needs more than one value per channel: [1, 3]")
    }
}
