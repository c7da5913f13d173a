import Prism
import PrismReference
import PrismTestSupport
import Testing

@Suite struct OptimizerTests {
    /// A parameter with a fixed gradient per step (the gradient is set directly, as backward would).
    func parameter(_ values: [Float], _ engine: Engine) throws -> Tensor {
        try Tensor(values, shape: [values.count], engine: engine, requiresGrad: true)
    }

    func setGrad(_ p: Tensor, _ g: [Float]) throws {
        // grad is set the way backward sets it: through a recorded op whose gradient is g.
        p.zeroGrad()
        let view = try p.reshaped([p.count])
        try view.backward(try Tensor(g, shape: [p.count], engine: p.engine))
    }

    struct SGDCase: CustomStringConvertible, Sendable {
        let momentum, dampening, weightDecay: Float
        let nesterov: Bool
        var description: String { "momentum \(momentum) dampening \(dampening) wd \(weightDecay) nesterov \(nesterov)" }
    }

    @Test(arguments: [SGDCase(momentum: 0, dampening: 0, weightDecay: 0, nesterov: false),
                      SGDCase(momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false),
                      SGDCase(momentum: 0.9, dampening: 0.1, weightDecay: 1e-2, nesterov: false),
                      SGDCase(momentum: 0.8, dampening: 0, weightDecay: 5e-3, nesterov: true)])
    func sgdMatchesTheReferenceOverSeveralSteps(_ c: SGDCase) throws {
        let engine = try testEngine()
        let n = TestSizes.pick([1, 33, 257], small: [1, 33])
        for size in n {
            let p0 = seededFloats(size, seed: 1)
            let p = try parameter(p0, engine)
            let opt = try SGD([p], lr: 0.1, momentum: c.momentum, dampening: c.dampening, weightDecay: c.weightDecay, nesterov: c.nesterov)
            var refP = p0.map(Double.init), refBuf = [Double](repeating: 0, count: size)
            for step in 0..<4 {
                let g = seededFloats(size, seed: UInt64(10 + step))
                try setGrad(p, g)
                try opt.step()
                (refP, refBuf) = Reference.sgdStep(p: refP, g: g.map(Double.init), buf: refBuf, lr: 0.1, momentum: Double(c.momentum),
                                                   dampening: Double(c.dampening), weightDecay: Double(c.weightDecay),
                                                   nesterov: c.nesterov, first: step == 0)
            }
            expectClose(try p.toArray(), refP, atol: 1e-6, rtol: 1e-5, "SGD \(c) size \(size)")
        }
    }

    @Test(arguments: [(Float(0), false), (Float(0.05), false), (Float(0.05), true)])
    func adamMatchesTheReferenceOverSeveralSteps(weightDecay: Float, decoupled: Bool) throws {
        let engine = try testEngine()
        for size in TestSizes.pick([1, 7, 257], small: [1, 7]) {
            let p0 = seededFloats(size, seed: 2)
            let p = try parameter(p0, engine)
            let opt = try Adam([p], lr: 0.01, betas: (0.9, 0.99), eps: 1e-8, weightDecay: weightDecay, decoupledWeightDecay: decoupled)
            var ref = (p: p0.map(Double.init), m: [Double](repeating: 0, count: size), v: [Double](repeating: 0, count: size))
            for step in 1...5 {
                let g = seededFloats(size, seed: UInt64(20 + step))
                try setGrad(p, g)
                try opt.step()
                ref = Reference.adamStep(p: ref.p, g: g.map(Double.init), m: ref.m, v: ref.v, t: step, lr: 0.01, beta1: 0.9,
                                         beta2: 0.99, eps: 1e-8, weightDecay: Double(weightDecay), decoupled: decoupled)
            }
            expectClose(try p.toArray(), ref.p, atol: 1e-6, rtol: 1e-5, "Adam wd \(weightDecay) decoupled \(decoupled) size \(size)")
        }
    }

    @Test func adamStateRoundTripsAndResumesExactly() throws {
        let engine = try testEngine()
        let a = try parameter(seededFloats(9, seed: 3), engine)
        let b = try parameter(seededFloats(9, seed: 3), engine)
        let optA = try Adam([a], lr: 0.05)
        for s in 0..<3 { try setGrad(a, seededFloats(9, seed: UInt64(30 + s))); try optA.step() }
        // b: copy a's parameters and state into a fresh optimizer, then both take the same steps.
        try b.storage.write(try a.toArray())
        let optB = try Adam([b], lr: 0.05)
        try optB.load(state: try optA.state())
        #expect(optB.stepCount == 3)
        for s in 3..<5 {
            let g = seededFloats(9, seed: UInt64(30 + s))
            try setGrad(a, g); try optA.step()
            try setGrad(b, g); try optB.step()
        }
        #expect(try a.toArray() == b.toArray())
        #expect(throws: TensorError.self) { try optB.load(state: ["step": [1]]) }
    }

    @Test func parametersWithoutGradientsAreLeftAlone() throws {
        let engine = try testEngine()
        let p = try parameter([1, 2, 3], engine)
        try Adam([p], lr: 0.1).step()
        try SGD([p], lr: 0.1, momentum: 0.9).step()
        #expect(try p.toArray() == [1, 2, 3])
        #expect(throws: TensorError.self) { try SGD([p, p], lr: 0.1) }
        #expect(throws: TensorError.self) { try Adam([p], lr: -1) }
    }

    @Test func clipGradNormScalesToTheMaximum() throws {
        let engine = try testEngine()
        let a = try parameter(seededFloats(3000, seed: 4), engine)
        let b = try parameter(seededFloats(5, seed: 5), engine)
        let ga = seededFloats(3000, seed: 6), gb = seededFloats(5, seed: 7)
        try setGrad(a, ga)
        try setGrad(b, gb)
        let expected = (ga + gb).reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let norm = try clipGradNorm([a, b], maxNorm: 1)
        #expect(abs(Double(norm) - expected) <= 1e-4 * expected)
        let scale = 1 / (expected + 1e-6)
        expectClose(try #require(a.grad).toArray(), ga.map { Double($0) * scale }, atol: 1e-7, rtol: 1e-4, "clipped a")
        expectClose(try #require(b.grad).toArray(), gb.map { Double($0) * scale }, atol: 1e-7, rtol: 1e-4, "clipped b")
        // Under the maximum nothing changes.
        try setGrad(b, gb)
        _ = try clipGradNorm([b], maxNorm: 1000)
        #expect(try #require(b.grad).toArray() == gb)
    }
}
