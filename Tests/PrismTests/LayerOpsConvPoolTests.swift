import Prism
import PrismReference
import PrismTestSupport
import Testing

/// One grouped convolution: input [n, c, h, w], weight [k, c / groups, r, s].
struct GroupedConvCase: CustomStringConvertible, Sendable {
    var n, c, h, w, k, r, s: Int
    var groups = 1
    var stride = (1, 1), padding = (0, 0), dilation = (1, 1)
    var bias = true
    var relu = false

    var description: String {
        "x[\(n),\(c),\(h),\(w)] w[\(k),\(c / groups),\(r),\(s)] groups \(groups) stride \(stride) pad \(padding) dil \(dilation)"
            + (bias ? "" : " no bias") + (relu ? " relu" : "")
    }
    var xShape: [Int] { [n, c, h, w] }
    var wShape: [Int] { [k, c / groups, r, s] }
}

@Suite struct LayerOpsConvTests {
    static let cases: [GroupedConvCase] = [
        // Depthwise (groups = C), odd channels, stride on one axis.
        GroupedConvCase(n: 3, c: 5, h: 9, w: 7, k: 5, r: 3, s: 3, groups: 5, stride: (2, 1), padding: (1, 1)),
        // Depthwise with a channel multiplier of 2 and a rectangular kernel.
        GroupedConvCase(n: 2, c: 3, h: 6, w: 11, k: 6, r: 1, s: 3, groups: 3, stride: (1, 2), padding: (0, 1), bias: false),
        // Two groups, dilation and padding differing per axis.
        GroupedConvCase(n: 3, c: 6, h: 7, w: 8, k: 4, r: 3, s: 2, groups: 2, padding: (2, 1), dilation: (2, 1)),
        // Four output channels per work-item (8 per group: two blocks per group), dilation and padding.
        GroupedConvCase(n: 2, c: 8, h: 7, w: 6, k: 16, r: 3, s: 3, groups: 2, stride: (1, 2), padding: (2, 1), dilation: (2, 1)),
        // Two groups with the fused ReLU.
        GroupedConvCase(n: 1, c: 4, h: 5, w: 5, k: 6, r: 2, s: 2, groups: 2, stride: (2, 2), relu: true),
        // More channels per group than the direct kernels take: one dense convolution per group.
        GroupedConvCase(n: 3, c: 18, h: 6, w: 7, k: 4, r: 3, s: 3, groups: 2, stride: (1, 2), padding: (1, 1)),
        GroupedConvCase(n: 2, c: 27, h: 5, w: 5, k: 6, r: 2, s: 3, groups: 3, dilation: (2, 1), relu: true),
        // groups = 1 (the existing kernels): rectangular kernel, per-axis stride, padding and dilation.
        GroupedConvCase(n: 3, c: 3, h: 10, w: 9, k: 5, r: 2, s: 3, stride: (2, 1), padding: (0, 2), dilation: (1, 2)),
        GroupedConvCase(n: 2, c: 1, h: 7, w: 12, k: 3, r: 4, s: 1, stride: (1, 3), padding: (2, 0), dilation: (2, 1), bias: false),
    ]

    @Test(arguments: cases)
    func groupedConvMatchesReference(_ cs: GroupedConvCase) throws {
        try check(cs, grouping: .automatic)
    }

    /// Each way of running a grouped convolution, forced, on every grouped case (the automatic rule
    /// picks the block-diagonal way for the thin groups and one convolution per group for the others).
    @Test(arguments: cases.filter { $0.groups > 1 }, [Conv2DGroupedVariant.blockDiagonal, .direct, .perGroup])
    func everyGroupedWayMatchesReference(_ cs: GroupedConvCase, _ grouping: Conv2DGroupedVariant) throws {
        try check(cs, grouping: grouping)
    }

    @Test func theGroupedRuleWeighsGroupsAgainstChannels() {
        #expect(Conv2DGroupedFamily.preference(groups: 2, channelsPerGroup: 4).first == .blockDiagonal)
        #expect(Conv2DGroupedFamily.preference(groups: 16, channelsPerGroup: 1).first == .blockDiagonal)
        #expect(Conv2DGroupedFamily.preference(groups: 32, channelsPerGroup: 4).first == .direct)
        #expect(Conv2DGroupedFamily.preference(groups: 2, channelsPerGroup: 9).first == .perGroup)
        #expect(Conv2DGroupedFamily.preference(groups: 32, channelsPerGroup: 16).first == .perGroup)
    }

    func check(_ cs: GroupedConvCase, grouping: Conv2DGroupedVariant) throws {
        let engine = try testEngine()
        let x = seededFloats(cs.xShape.reduce(1, *), seed: 51)
        let w = seededFloats(cs.wShape.reduce(1, *), seed: 52, low: -0.5, high: 0.5)
        let b = seededFloats(cs.k, seed: 53)
        let xt = try Tensor(x, shape: cs.xShape, engine: engine, requiresGrad: true)
        let wt = try Tensor(w, shape: cs.wShape, engine: engine, requiresGrad: true)
        let bt = cs.bias ? try Tensor(b, shape: [cs.k], engine: engine, requiresGrad: true) : nil
        let y = try conv2d(xt, weight: wt, bias: bt, stride: cs.stride, padding: cs.padding, dilation: cs.dilation,
                           groups: cs.groups, relu: cs.relu, grouping: grouping)
        let ref = Reference.conv2d(x: doubles(x), xShape: cs.xShape, w: doubles(w), wShape: cs.wShape, bias: cs.bias ? doubles(b) : nil,
                                   stride: cs.stride, padding: cs.padding, dilation: cs.dilation, groups: cs.groups)
        let expected = cs.relu ? Reference.unary(0, x: ref.y) : ref.y
        #expect(y.shape == ref.shape)
        expectClose(try y.toArray(), expected, atol: 1e-5, rtol: 1e-4, "grouped conv forward \(cs) \(grouping)")

        let dy = seededFloats(y.count, seed: 54)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        // The ReLU's gradient passes where the output is positive.
        let dyPassed = zip(doubles(dy), expected).map { $1 > 0 || !cs.relu ? $0 : 0 }
        let grads = Reference.conv2dBackward(dy: dyPassed, x: doubles(x), xShape: cs.xShape, w: doubles(w), wShape: cs.wShape,
                                             stride: cs.stride, padding: cs.padding, dilation: cs.dilation, groups: cs.groups)
        expectClose(try #require(xt.grad).toArray(), grads.dx, atol: 1e-5, rtol: 1e-4, "grouped conv dx \(cs) \(grouping)")
        expectClose(try #require(wt.grad).toArray(), grads.dw, atol: 1e-4, rtol: 1e-4, "grouped conv dw \(cs) \(grouping)")
        if let bt { expectClose(try #require(bt.grad).toArray(), grads.db, atol: 1e-4, rtol: 1e-4, "grouped conv db \(cs) \(grouping)") }
    }

    /// The grouped reference's backward against finite differences of its forward.
    @Test func groupedReferenceBackwardMatchesFiniteDifferences() {
        let (xShape, wShape) = ([2, 4, 5, 4], [6, 2, 3, 2])
        let x = doubles(seededFloats(xShape.reduce(1, *), seed: 55)), w = doubles(seededFloats(wShape.reduce(1, *), seed: 56))
        let b = doubles(seededFloats(6, seed: 57))
        func f(_ x: [Double], _ w: [Double], _ b: [Double]) -> [Double] {
            Reference.conv2d(x: x, xShape: xShape, w: w, wShape: wShape, bias: b, stride: (2, 1), padding: (1, 1), dilation: (1, 2), groups: 2).y
        }
        let dy = doubles(seededFloats(f(x, w, b).count, seed: 58))
        let g = Reference.conv2dBackward(dy: dy, x: x, xShape: xShape, w: w, wShape: wShape, stride: (2, 1), padding: (1, 1),
                                         dilation: (1, 2), groups: 2)
        expectClose(g.dx, finiteDifferences(at: x) { dot(dy, f($0, w, b)) }, atol: 1e-6, rtol: 1e-5, "dx")
        expectClose(g.dw, finiteDifferences(at: w) { dot(dy, f(x, $0, b)) }, atol: 1e-6, rtol: 1e-5, "dw")
        expectClose(g.db, finiteDifferences(at: b) { dot(dy, f(x, w, $0)) }, atol: 1e-6, rtol: 1e-5, "db")
    }

    @Test func refusesGroupsThatDoNotDivide() throws {
        let engine = try testEngine()
        let x = try Tensor.zeros([1, 6, 4, 4], engine: engine)
        #expect(errorMessage { try conv2d(x, weight: try Tensor.zeros([6, 1, 3, 3], engine: engine), bias: nil, groups: 4) }
            == "conv2d: groups 4 must be ≥ 1 and divide both 6 input and 6 output channels: [1, 6, 4, 4] × [6, 1, 3, 3]")
        #expect(errorMessage { try conv2d(x, weight: try Tensor.zeros([5, 2, 3, 3], engine: engine), bias: nil, groups: 3) }
            == "conv2d: groups 3 must be ≥ 1 and divide both 6 input and 5 output channels: [1, 6, 4, 4] × [5, 2, 3, 3]")
        #expect(errorMessage { try conv2d(x, weight: try Tensor.zeros([4, 3, 3, 3], engine: engine), bias: nil, groups: 2) } == nil)
        #expect(errorMessage { try conv2d(x, weight: try Tensor.zeros([4, 2, 3, 3], engine: engine), bias: nil, groups: 2) }
            == "conv2d: input has 6 channels in 2 groups of 3, weight expects 2 per group: [1, 6, 4, 4] × [4, 2, 3, 3]")
        #expect(errorMessage { try conv2d(x, weight: try Tensor.zeros([4, 3, 3, 3], engine: engine), bias: try Tensor.zeros([3], engine: engine), groups: 2) }
            == "conv2d: bias must have shape [4]: [3] × [4, 3, 3, 3]")
        #expect(errorMessage { try conv2d(x, weight: try Tensor.zeros([6, 6, 3, 3], engine: engine), bias: nil, groups: 0) }
            == "conv2d: groups 0 must be ≥ 1 and divide both 6 input and 6 output channels: [1, 6, 4, 4] × [6, 6, 3, 3]")
    }
}

/// One pooling with PyTorch's options.
struct PoolOptionsCase: CustomStringConvertible, Sendable {
    var shape: [Int]
    var kernel: (Int, Int)
    var stride: (Int, Int)
    var padding = (0, 0)
    var ceilMode = true
    /// The output size PyTorch gives (P, Q).
    var expected: (Int, Int)

    var description: String { "x\(shape) kernel \(kernel) stride \(stride) pad \(padding) ceil \(ceilMode)" }
}

@Suite struct LayerOpsPoolTests {
    static let cases: [PoolOptionsCase] = [
        // Partial last window on both axes (odd sizes, 2×2 stride 2): the vector kernel must not run.
        PoolOptionsCase(shape: [3, 5, 7, 9], kernel: (2, 2), stride: (2, 2), expected: (4, 5)),
        // Padding and a last window reaching past the padded input.
        PoolOptionsCase(shape: [2, 3, 8, 6], kernel: (3, 3), stride: (2, 2), padding: (1, 1), expected: (5, 4)),
        // Ceil mode drops a window that would start in the right padding: (5 + 2 − 2 + 1) / 2 + 1 = 4 → 3.
        PoolOptionsCase(shape: [1, 3, 5, 5], kernel: (2, 2), stride: (2, 2), padding: (1, 1), expected: (3, 3)),
        // Rectangular, per-axis stride; ceil mode changes only Q.
        PoolOptionsCase(shape: [3, 2, 10, 7], kernel: (3, 2), stride: (1, 3), padding: (1, 0), expected: (10, 3)),
        // Without ceil mode (count_include_pad is what varies).
        PoolOptionsCase(shape: [2, 3, 7, 9], kernel: (3, 3), stride: (2, 2), padding: (1, 1), ceilMode: false, expected: (4, 5)),
        PoolOptionsCase(shape: [3, 5, 7, 9], kernel: (2, 2), stride: (2, 2), ceilMode: false, expected: (3, 4)),
    ]

    @Test(arguments: cases)
    func maxPoolMatchesReference(_ cs: PoolOptionsCase) throws {
        let engine = try testEngine()
        let x = PoolTests.distinctValues(cs.shape.reduce(1, *), seed: 61)
        let xt = try Tensor(x, shape: cs.shape, engine: engine, requiresGrad: true)
        let y = try maxPool2d(xt, kernel: cs.kernel, stride: cs.stride, padding: cs.padding, ceilMode: cs.ceilMode)
        let ref = Reference.maxPool2d(x: doubles(x), shape: cs.shape, kernel: cs.kernel, stride: cs.stride, padding: cs.padding, ceilMode: cs.ceilMode)
        #expect(y.shape == [cs.shape[0], cs.shape[1], cs.expected.0, cs.expected.1])
        #expect(ref.shape == y.shape)
        expectClose(try y.toArray(), ref.y, atol: 0, rtol: 0, "max pool \(cs)")
        let dy = seededFloats(y.count, seed: 62)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        let dx = Reference.maxPool2dBackward(dy: doubles(dy), argmax: ref.argmax, inputShape: cs.shape)
        expectClose(try #require(xt.grad).toArray(), dx, atol: 1e-6, rtol: 1e-6, "max pool dx \(cs)")
    }

    @Test(arguments: cases, [true, false])
    func avgPoolMatchesReference(_ cs: PoolOptionsCase, _ countIncludePad: Bool) throws {
        let engine = try testEngine()
        let x = seededFloats(cs.shape.reduce(1, *), seed: 63)
        let xt = try Tensor(x, shape: cs.shape, engine: engine, requiresGrad: true)
        let y = try avgPool2d(xt, kernel: cs.kernel, stride: cs.stride, padding: cs.padding, ceilMode: cs.ceilMode, countIncludePad: countIncludePad)
        func ref(_ x: [Double]) -> (y: [Double], shape: [Int]) {
            Reference.avgPool2d(x: x, shape: cs.shape, kernel: cs.kernel, stride: cs.stride, padding: cs.padding,
                                ceilMode: cs.ceilMode, countIncludePad: countIncludePad)
        }
        let expected = ref(doubles(x))
        #expect(y.shape == [cs.shape[0], cs.shape[1], cs.expected.0, cs.expected.1])
        #expect(expected.shape == y.shape)
        expectClose(try y.toArray(), expected.y, atol: 1e-6, rtol: 1e-5, "avg pool \(cs) include pad \(countIncludePad)")
        let dy = seededFloats(y.count, seed: 64)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        let dx = Reference.avgPool2dBackward(dy: doubles(dy), inputShape: cs.shape, kernel: cs.kernel, stride: cs.stride, padding: cs.padding,
                                             ceilMode: cs.ceilMode, countIncludePad: countIncludePad)
        expectClose(try #require(xt.grad).toArray(), dx, atol: 1e-6, rtol: 1e-5, "avg pool dx \(cs) include pad \(countIncludePad)")
        // The reference backward against finite differences of the reference forward.
        expectClose(dx, finiteDifferences(at: doubles(x)) { dot(doubles(dy), ref($0).y) }, atol: 1e-7, rtol: 1e-6, "avg reference dx \(cs)")
    }

    /// PyTorch's divisors at the corners: AvgPool2d(3, 2, padding=1, ceil_mode=True) over a 4×4 of ones
    /// gives 4/9 at (0, 0) with count_include_pad (padding counts) and, at the last window, rows and
    /// columns [3, 6) clipped to the padded input [3, 5): 2·2 = 4 cells of which 1 is a pixel: 1/4.
    @Test func referenceDivisorsArePyTorchs() {
        let ones = [Double](repeating: 1, count: 16)
        let included = Reference.avgPool2d(x: ones, shape: [1, 1, 4, 4], kernel: (3, 3), stride: (2, 2), padding: (1, 1), ceilMode: true)
        #expect(included.shape == [1, 1, 3, 3])
        expectClose([included.y[0], included.y[8]], [4.0 / 9, 1.0 / 4], atol: 1e-15, rtol: 0, "count_include_pad")
        let excluded = Reference.avgPool2d(x: ones, shape: [1, 1, 4, 4], kernel: (3, 3), stride: (2, 2), padding: (1, 1), ceilMode: true,
                                           countIncludePad: false)
        expectClose(excluded.y, [Double](repeating: 1, count: 9), atol: 1e-15, rtol: 0, "exclude pad")
    }

    @Test func ceilModeKeepsTheVectorKernelOff() throws {
        let engine = try testEngine()
        let x = try Tensor.zeros([1, 1, 7, 9], engine: engine)
        #expect(throws: TensorError.self) { try maxPool2d(x, kernel: (2, 2), ceilMode: true, variant: .window2x2) }
        #expect(try PoolFamily.choose(input: [1, 1, 7, 9], kernel: (2, 2), ceilMode: true, engine: engine) == .general)
        // Ceil mode without a partial window keeps it (planes of 64 outputs or more: on a CPU smaller ones go to the general kernel).
        #expect(try PoolFamily.choose(input: [1, 1, 16, 18], kernel: (2, 2), ceilMode: true, engine: engine) == .window2x2)
        #expect(try maxPool2d(x, kernel: (2, 2), ceilMode: true).shape == [1, 1, 4, 5])
        #expect(try maxPool2d(x, kernel: (2, 2), variant: .window2x2).shape == [1, 1, 3, 4])
    }
}
