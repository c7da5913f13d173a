import Prism
import PrismTestSupport
import Testing

/// `conv_transpose2d`, `upsample` and `pad` against plain-Swift references in Double (written from
/// PyTorch's definitions, not from the ops' compositions), their backward against finite differences.
@Suite struct UpsamplingTests {
    /// y of a transposed convolution by scattering: every input pixel adds its weighted kernel into the output.
    static func convTranspose(_ x: [Double], _ xs: [Int], _ w: [Double], _ ws: [Int], bias: [Double]?, stride: (Int, Int), padding: (Int, Int),
                              outputPadding: (Int, Int), dilation: (Int, Int), groups: Int) -> (y: [Double], shape: [Int]) {
        let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]), (kg, r, s) = (ws[1], ws[2], ws[3]), k = ws[1] * groups
        let ho = (h - 1) * stride.0 - 2 * padding.0 + dilation.0 * (r - 1) + outputPadding.0 + 1
        let wo = (wd - 1) * stride.1 - 2 * padding.1 + dilation.1 * (s - 1) + outputPadding.1 + 1
        var y = [Double](repeating: 0, count: n * k * ho * wo)
        for e in 0..<n { for o in 0..<k { for i in 0..<ho * wo { y[(e * k + o) * ho * wo + i] = bias?[o] ?? 0 } } }
        for e in 0..<n { for ci in 0..<c { for iy in 0..<h { for ix in 0..<wd {
            let v = x[((e * c + ci) * h + iy) * wd + ix]
            let group = ci / (c / groups)
            for j in 0..<kg { for a in 0..<r { for b in 0..<s {
                let oy = iy * stride.0 - padding.0 + a * dilation.0, ox = ix * stride.1 - padding.1 + b * dilation.1
                guard oy >= 0, oy < ho, ox >= 0, ox < wo else { continue }
                y[((e * k + group * kg + j) * ho + oy) * wo + ox] += v * w[((ci * kg + j) * r + a) * s + b]
            } } }
        } } } }
        return (y, [n, k, ho, wo])
    }

    /// Cases: input shape, weight shape [Cin, Cout / groups, R, S], stride, padding, output padding, dilation, groups.
    static let convCases: [(x: [Int], w: [Int], stride: (Int, Int), padding: (Int, Int), extra: (Int, Int), dilation: (Int, Int), groups: Int)] = [
        ([2, 3, 4, 5], [3, 2, 3, 3], (2, 2), (1, 1), (1, 1), (1, 1), 1),
        ([1, 2, 3, 4], [2, 3, 2, 3], (1, 1), (0, 0), (0, 0), (1, 1), 1),
        ([2, 2, 3, 3], [2, 4, 3, 2], (3, 2), (1, 0), (2, 1), (2, 1), 1),
        ([1, 5, 2, 3], [5, 1, 1, 1], (2, 3), (0, 0), (1, 0), (1, 1), 1),
        ([1, 9, 3, 2], [9, 2, 3, 3], (2, 1), (2, 1), (0, 0), (1, 2), 1),
        ([2, 4, 3, 3], [4, 3, 3, 2], (2, 2), (1, 0), (1, 0), (1, 1), 2),
        ([1, 3, 2, 4], [3, 1, 2, 2], (2, 1), (0, 1), (1, 0), (1, 1), 3),
    ]

    @Test(arguments: convCases.indices)
    func convTransposeMatchesReferenceAndFiniteDifferences(_ index: Int) throws {
        let t = Self.convCases[index]
        let engine = try testEngine()
        let x = seededFloats(t.x.reduce(1, *), seed: 300 + UInt64(index), low: -1, high: 1)
        let w = seededFloats(t.w.reduce(1, *), seed: 310 + UInt64(index), low: -1, high: 1)
        let b = seededFloats(t.w[1] * t.groups, seed: 320 + UInt64(index))
        let xt = try Tensor(x, shape: t.x, engine: engine, requiresGrad: true)
        let wt = try Tensor(w, shape: t.w, engine: engine, requiresGrad: true)
        let bt = try Tensor(b, shape: [b.count], engine: engine, requiresGrad: true)
        let y = try convTranspose2d(xt, weight: wt, bias: bt, stride: t.stride, padding: t.padding, outputPadding: t.extra, dilation: t.dilation,
                                    groups: t.groups)
        func ref(_ x: [Double], _ w: [Double], _ b: [Double]) -> (y: [Double], shape: [Int]) {
            Self.convTranspose(x, t.x, w, t.w, bias: b, stride: t.stride, padding: t.padding, outputPadding: t.extra, dilation: t.dilation,
                                groups: t.groups)
        }
        let (xd, wd, bd) = (doubles(x), doubles(w), doubles(b))
        let expected = ref(xd, wd, bd)
        #expect(y.shape == expected.shape)
        expectClose(try y.toArray(), expected.y, atol: 1e-4, rtol: 1e-4, "y case \(index)")
        let dy = seededFloats(y.count, seed: 330 + UInt64(index))
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        let g = doubles(dy)
        expectClose(try #require(xt.grad).toArray(), finiteDifferences(at: xd) { dot(g, ref($0, wd, bd).y) }, atol: 1e-3, rtol: 1e-3, "dx case \(index)")
        expectClose(try #require(wt.grad).toArray(), finiteDifferences(at: wd) { dot(g, ref(xd, $0, bd).y) }, atol: 1e-3, rtol: 1e-3, "dw case \(index)")
        expectClose(try #require(bt.grad).toArray(), finiteDifferences(at: bd) { dot(g, ref(xd, wd, $0).y) }, atol: 1e-3, rtol: 1e-3, "db case \(index)")
    }

    @Test func convTransposeRefusesOutputPaddingAtTheStride() throws {
        let engine = try testEngine()
        let x = try Tensor.zeros([1, 2, 3, 3], engine: engine), w = try Tensor.zeros([2, 2, 3, 3], engine: engine)
        #expect(throws: TensorError.self) { try convTranspose2d(x, weight: w, bias: nil, stride: (2, 2), outputPadding: (2, 0)) }
        #expect(throws: TensorError.self) { try convTranspose2d(x, weight: try Tensor.zeros([3, 2, 3, 3], engine: engine), bias: nil) }
    }

    /// PyTorch's upsample on one axis written out: the source coordinate of output i, then its taps.
    static func resample(_ x: [Double], outer: Int, n: Int, inner: Int, out: Int, scale: Double?, bilinear: Bool, alignCorners: Bool) -> [Double] {
        var y = [Double](repeating: 0, count: outer * out * inner)
        for i in 0..<out {
            var terms: [(Int, Double)]
            if !bilinear {
                let ratio = scale.map { 1 / $0 } ?? Double(n) / Double(out)
                terms = [(min(Int((Double(i) * ratio).rounded(.down)), n - 1), 1)]
            } else {
                var src = alignCorners ? (out > 1 ? Double(i) * Double(n - 1) / Double(out - 1) : 0)
                    : (Double(i) + 0.5) * (scale.map { 1 / $0 } ?? Double(n) / Double(out)) - 0.5
                src = max(src, 0)
                let lo = Int(src.rounded(.down)), hi = lo < n - 1 ? lo + 1 : lo
                terms = [(lo, 1 - (src - Double(lo))), (hi, src - Double(lo))]
            }
            for o in 0..<outer { for j in 0..<inner { for (src, weight) in terms {
                y[(o * out + i) * inner + j] += weight * x[(o * n + src) * inner + j]
            } } }
        }
        return y
    }

    static let upsampleCases: [(x: [Int], size: (Int, Int), scale: (Double, Double)?, mode: UpsampleMode, align: Bool)] = [
        ([2, 3, 4, 5], (8, 10), (2, 2), .nearest, false),
        ([1, 2, 3, 5], (7, 4), nil, .nearest, false),
        ([2, 2, 4, 3], (8, 6), (2, 2), .bilinear, false),
        ([1, 3, 3, 5], (7, 4), nil, .bilinear, false),
        ([1, 2, 3, 4], (6, 9), nil, .bilinear, true),
        ([2, 1, 5, 2], (7, 5), (1.5, 2.5), .bilinear, false),
        ([1, 2, 1, 3], (1, 5), nil, .bilinear, true),
    ]

    @Test(arguments: upsampleCases.indices)
    func upsampleMatchesReferenceAndFiniteDifferences(_ index: Int) throws {
        let t = Self.upsampleCases[index]
        let engine = try testEngine()
        let x = seededFloats(t.x.reduce(1, *), seed: 400 + UInt64(index), low: -2, high: 2)
        let xt = try Tensor(x, shape: t.x, engine: engine, requiresGrad: true)
        let y = try upsample(xt, size: t.size, scale: t.scale, mode: t.mode, alignCorners: t.align)
        #expect(y.shape == [t.x[0], t.x[1], t.size.0, t.size.1])
        func ref(_ x: [Double]) -> [Double] {
            let nc = t.x[0] * t.x[1], bilinear = t.mode == .bilinear
            let rows = Self.resample(x, outer: nc, n: t.x[2], inner: t.x[3], out: t.size.0, scale: t.scale?.0, bilinear: bilinear, alignCorners: t.align)
            return Self.resample(rows, outer: nc * t.size.0, n: t.x[3], inner: 1, out: t.size.1, scale: t.scale?.1, bilinear: bilinear, alignCorners: t.align)
        }
        let xd = doubles(x)
        expectClose(try y.toArray(), ref(xd), atol: 1e-5, rtol: 1e-5, "y case \(index)")
        let dy = seededFloats(y.count, seed: 410 + UInt64(index))
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        let g = doubles(dy)
        expectClose(try #require(xt.grad).toArray(), finiteDifferences(at: xd) { dot(g, ref($0)) }, atol: 1e-3, rtol: 1e-3, "dx case \(index)")
    }

    static let padCases: [(x: [Int], pads: (Int, Int, Int, Int), mode: PadMode, value: Float)] = [
        ([2, 3, 4, 5], (1, 2, 0, 3), .constant, 0),
        ([1, 2, 3, 2], (0, 1, 2, 1), .constant, -1.5),
        ([2, 1, 4, 5], (2, 1, 3, 2), .reflect, 0),
        ([1, 2, 3, 4], (3, 0, 1, 4), .replicate, 0),
        ([3, 7], (2, 3, 0, 0), .constant, 0.25),
    ]

    @Test(arguments: padCases.indices)
    func padMatchesReferenceAndFiniteDifferences(_ index: Int) throws {
        let t = Self.padCases[index]
        let engine = try testEngine()
        let x = seededFloats(t.x.reduce(1, *), seed: 500 + UInt64(index), low: -2, high: 2)
        let xt = try Tensor(x, shape: t.x, engine: engine, requiresGrad: true)
        let y = try pad2d(xt, pads: t.pads, mode: t.mode, value: t.value)
        let r = t.x.count, (h, w) = (t.x[r - 2], t.x[r - 1])
        let (ho, wo) = (h + t.pads.2 + t.pads.3, w + t.pads.0 + t.pads.1)
        #expect(y.shape == Array(t.x.dropLast(2)) + [ho, wo])
        func source(_ i: Int, _ n: Int) -> Int? {
            if (0..<n).contains(i) { return i }
            switch t.mode {
            case .constant: return nil
            case .replicate: return i < 0 ? 0 : n - 1
            case .reflect: return i < 0 ? -i : 2 * n - 2 - i
            }
        }
        func ref(_ x: [Double]) -> [Double] {
            let outer = t.x.dropLast(2).reduce(1, *)
            var y = [Double]()
            for o in 0..<outer { for i in 0..<ho { for j in 0..<wo {
                if let si = source(i - t.pads.2, h), let sj = source(j - t.pads.0, w) { y.append(x[(o * h + si) * w + sj]) } else { y.append(Double(t.value)) }
            } } }
            return y
        }
        let xd = doubles(x)
        expectClose(try y.toArray(), ref(xd), atol: 0, rtol: 0, "y case \(index)")
        let dy = seededFloats(y.count, seed: 510 + UInt64(index))
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        let g = doubles(dy)
        expectClose(try #require(xt.grad).toArray(), finiteDifferences(at: xd) { dot(g, ref($0)) }, atol: 1e-3, rtol: 1e-3, "dx case \(index)")
    }

    /// The three ops as graph nodes: shapes from the schemas, outputs against the tensor functions.
    @Test func graphNodes() throws {
        let engine = try testEngine()
        let json = """
        {"format": 2, "input_shape": [2, 5, 4], "outputs": 3, "nodes": [
          {"name": "up", "op": "conv_transpose2d", "in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1},
          {"name": "near", "op": "upsample", "scale_factor": 2},
          {"name": "bil", "op": "upsample", "size": [5, 7], "mode": "bilinear", "align_corners": true},
          {"name": "pad", "op": "pad", "pad": [1, 0, 2, 1], "value": 0.5},
          {"name": "flat", "op": "flatten"}, {"name": "fc", "op": "linear", "in_features": 192, "out_features": 3}]}
        """
        let model = try Model(spec: try ModelSpec.decode(json: json, source: "up.json"), seed: 5, engine: engine)
        #expect(model.namedParameters.map(\.name).prefix(2) == ["up.weight", "up.bias"])
        let x = try Tensor(seededFloats(2 * 40, seed: 600), shape: [2, 2, 5, 4], engine: engine)
        let acts = try model.forward(x, capture: ["up", "near", "bil", "pad"]).activations
        let params = Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.name, $0.tensor) })
        let up = try convTranspose2d(x, weight: try #require(params["up.weight"]), bias: params["up.bias"], stride: (2, 2), padding: (1, 1), outputPadding: (1, 1))
        #expect(up.shape == [2, 3, 10, 8])
        expectClose(try #require(acts["up"]).toArray(), doubles(try up.toArray()), atol: 0, rtol: 0, "up")
        let near = try upsample(up, size: (20, 16), scale: (2, 2), mode: .nearest)
        expectClose(try #require(acts["near"]).toArray(), doubles(try near.toArray()), atol: 0, rtol: 0, "near")
        let bil = try upsample(near, size: (5, 7), mode: .bilinear, alignCorners: true)
        expectClose(try #require(acts["bil"]).toArray(), doubles(try bil.toArray()), atol: 0, rtol: 0, "bil")
        let pad = try pad2d(bil, pads: (1, 0, 2, 1), value: 0.5)
        #expect(pad.shape == [2, 3, 8, 8])
        expectClose(try #require(acts["pad"]).toArray(), doubles(try pad.toArray()), atol: 0, rtol: 0, "pad")
        for (bad, message) in [("\"output_padding\": 1}", "\"output_padding\": 2}"), ("\"scale_factor\": 2}", "\"scale_factor\": 2, \"size\": 3}")] {
            let spec = json.replacingOccurrences(of: bad, with: message)
            #expect(throws: (any Error).self) { try ModelSpec.decode(json: spec, source: "up.json").validate() }
        }
    }
}
