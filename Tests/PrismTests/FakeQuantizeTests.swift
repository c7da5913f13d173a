import Prism
import PrismTestSupport
import Testing

@Suite struct FakeQuantizeTests {
    /// fake_quantize against its definition (round half to even, saturation) and its backward, the
    /// straight-through estimator.
    @Test func fakeQuantizeMatchesItsDefinition() throws {
        let engine = try testEngine()
        let scale: Float = 0.05, zero = 3, range = -8...7
        var values = seededFloats(301, seed: 9, low: -1, high: 1)
        values += [0.025 * 1, 0.075, -0.125, 10, -10]  // halves of a step (ties to even) and saturation
        let x = try Tensor(values, shape: [values.count], engine: engine, requiresGrad: true)
        let y = try x.fakeQuantize(scale: scale, zeroPoint: zero, quantMin: range.lowerBound, quantMax: range.upperBound)
        let expected = values.map { v -> Double in
            let q = min(max((v / scale).rounded(.toNearestOrEven) + Float(zero), Float(range.lowerBound)), Float(range.upperBound))
            return Double((q - Float(zero)) * scale)
        }
        expectClose(try y.toArray(), expected, atol: 1e-7, rtol: 0, "fake_quantize")
        try y.backward(try Tensor.ones([values.count], engine: engine))
        let mask = values.map { v -> Double in
            let q = (v / scale).rounded(.toNearestOrEven) + Float(zero)
            return q >= Float(range.lowerBound) && q <= Float(range.upperBound) ? 1 : 0
        }
        expectClose(try #require(x.grad).toArray(), mask, atol: 0, rtol: 0, "straight-through gradient")
        #expect(throws: TensorError.self) { try x.fakeQuantize(scale: 0, zeroPoint: 0, quantMin: 0, quantMax: 255) }
    }
}
