import PrismReference
import PrismTestSupport
import Testing

@Suite struct Conv2DReferenceTests {
    @Test func forwardByHand() {
        // x = 1…9 as a 3×3 image, w = [[1, 0], [0, −1]]: y[p][q] = x[p][q] − x[p+1][q+1] = −4 everywhere, + bias 0.5.
        let x = (1...9).map(Double.init)
        let r = Reference.conv2d(x: x, xShape: [1, 1, 3, 3], w: [1, 0, 0, -1], wShape: [1, 1, 2, 2], bias: [0.5])
        #expect(r.shape == [1, 1, 2, 2])
        #expect(r.y == [-3.5, -3.5, -3.5, -3.5])
        // Padding 1, stride 2: corners see one pixel each through the weight's inner taps.
        let p = Reference.conv2d(x: x, xShape: [1, 1, 3, 3], w: [1, 0, 0, -1], wShape: [1, 1, 2, 2], bias: nil,
                                 stride: (2, 2), padding: (1, 1))
        #expect(p.shape == [1, 1, 2, 2])
        #expect(p.y == [-1, -3, -7, -9 + 5])
        // Dilation 2 on a 3×3 input with a 2×2 kernel touches the four corners.
        let d = Reference.conv2d(x: x, xShape: [1, 1, 3, 3], w: [1, 1, 1, 1], wShape: [1, 1, 2, 2], bias: nil, dilation: (2, 2))
        #expect(d.y == [1 + 3 + 7 + 9])
    }

    struct Case: Sendable {
        var xShape, wShape: [Int]
        var stride, padding, dilation: (Int, Int)
    }

    @Test(arguments: [
        Case(xShape: [2, 2, 5, 6], wShape: [3, 2, 3, 2], stride: (2, 1), padding: (1, 0), dilation: (1, 2)),
        Case(xShape: [1, 3, 4, 4], wShape: [2, 3, 3, 3], stride: (1, 1), padding: (1, 1), dilation: (1, 1)),
        Case(xShape: [2, 1, 7, 5], wShape: [2, 1, 2, 3], stride: (2, 2), padding: (0, 1), dilation: (2, 1)),
    ])
    func backwardMatchesFiniteDifferences(_ cs: Case) {
        let (xShape, wShape, stride, padding, dilation) = (cs.xShape, cs.wShape, cs.stride, cs.padding, cs.dilation)
        let x = seededFloats(xShape.reduce(1, *), seed: 1).map(Double.init)
        let w = seededFloats(wShape.reduce(1, *), seed: 2).map(Double.init)
        let b = seededFloats(wShape[0], seed: 3).map(Double.init)
        func f(_ x: [Double], _ w: [Double], _ b: [Double]) -> [Double] {
            Reference.conv2d(x: x, xShape: xShape, w: w, wShape: wShape, bias: b, stride: stride, padding: padding, dilation: dilation).y
        }
        let dy = seededFloats(f(x, w, b).count, seed: 4).map(Double.init)
        let g = Reference.conv2dBackward(dy: dy, x: x, xShape: xShape, w: w, wShape: wShape,
                                         stride: stride, padding: padding, dilation: dilation)
        expectClose(g.dx, finiteDifferences(at: x) { dot(dy, f($0, w, b)) }, atol: 1e-6, rtol: 1e-5, "dx")
        expectClose(g.dw, finiteDifferences(at: w) { dot(dy, f(x, $0, b)) }, atol: 1e-6, rtol: 1e-5, "dw")
        expectClose(g.db, finiteDifferences(at: b) { dot(dy, f(x, w, $0)) }, atol: 1e-6, rtol: 1e-5, "db")
    }
}
