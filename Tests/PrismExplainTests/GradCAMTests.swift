import Foundation
import Prism
import PrismExplain
import PrismReference
import PrismTestSupport
import Testing

@Suite struct GradCAMTests {
    @Test func bilinearUpsamplingMatchesPyTorch() {
        // torch.nn.functional.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]), size=4, mode="bilinear", align_corners=False)
        let up = GradCAM.upsample([1, 2, 3, 4], from: (2, 2), to: (4, 4))
        #expect(up == [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4])
        #expect(GradCAM.upsample([2.5], from: (1, 1), to: (3, 5)) == [Double](repeating: 2.5, count: 15))
    }

    /// Conv(1→2, 3×3) + ReLU + Flatten + Linear: the gradient of logit c with respect to the ReLU
    /// output is the row W_c of the linear layer, so α_k is the mean of W_c over channel k's block,
    /// and the activation comes from the reference convolution: an answer with no device gradient in it.
    @Test func closedFormOnConvThenLinear() throws {
        let engine = try testEngine()
        let spec = ModelSpec(architecture: "custom", inputShape: [1, 6, 7], classCount: 3, layers: [
            .conv2d(inChannels: 1, outChannels: 2, kernel: 3, stride: 1, padding: 0), .relu, .flatten,
            .linear(inFeatures: 2 * 4 * 5, outFeatures: 3),
        ])
        let net = try Model(spec: spec, seed: 61, engine: engine)
        let p = try ReferenceNetwork(net).parameters
        let x = seededFloats(2 * 42, seed: 62)
        let result = try GradCAM(model: DifferentiableModel(net), layer: "1.relu", rowsPerChunk: 1)
            .explainWithCoarseMap(instances: x, targets: .classes([0, 2]))
        #expect(result.coarseSize.height == 4 && result.coarseSize.width == 5)
        #expect(result.explanation.featureCount == 42 && result.explanation.outputCount == 2)
        for i in 0..<2 {
            let conv = Reference.conv2d(x: x[(i * 42)..<((i + 1) * 42)].map(Double.init), xShape: [1, 1, 6, 7],
                                        w: p["0.weight"]!, wShape: [2, 1, 3, 3], bias: p["0.bias"]).y
            let a = Reference.unary(0, x: conv)
            for (t, c) in [0, 2].enumerated() {
                let wc = Array(p["3.weight"]![(c * 40)..<((c + 1) * 40)])
                var map = [Double](repeating: 0, count: 20)
                for k in 0..<2 {
                    let alpha = wc[(k * 20)..<((k + 1) * 20)].reduce(0, +) / 20
                    for q in 0..<20 { map[q] += alpha * a[k * 20 + q] }
                }
                map = map.map { max($0, 0) }
                let coarse = (0..<20).map { Float(result.coarse[(i * 20 + $0) * 2 + t]) }
                let check = closeness(coarse, map, atol: 1e-5, rtol: 1e-4, label: "coarse \(i) \(c)")
                #expect(check.passed, Comment(rawValue: check.message))
                let up = closeness(attributionFloats(result.explanation, instance: i, output: t),
                                   GradCAM.upsample(map, from: (4, 5), to: (6, 7)), atol: 1e-5, rtol: 1e-4, label: "upsampled")
                #expect(up.passed, Comment(rawValue: up.message))
            }
        }
    }

    /// On the reference CNN at its second convolution: the map computed in plain Swift from the
    /// activation and gradient captured by a separate forward/backward, at two chunk sizes; without
    /// the ReLU the map keeps its negative part.
    @Test(arguments: [1, 16])
    func referenceCNNMatchesCapturedActivationAndGradient(rowsPerChunk: Int) throws {
        let engine = try testEngine()
        let net = try AttributionNetworks.cnn(engine)
        let x = seededFloats(3 * 100, seed: 63, low: 0, high: 1)
        let layer = net.activationName(3)
        #expect(layer == "3.conv2d")
        let labels = [2, 0, 1]
        let signed = try GradCAM(model: DifferentiableModel(net), layer: layer, relu: false, rowsPerChunk: rowsPerChunk)
            .explainWithCoarseMap(instances: x, targets: .perInstance(labels))
        let cam = try GradCAM(model: DifferentiableModel(net), layer: layer, rowsPerChunk: rowsPerChunk)
            .explainWithCoarseMap(instances: x, targets: .perInstance(labels))
        #expect(cam.coarseSize.height == 2 && cam.coarseSize.width == 2)  // 10 → conv 8 → pool 4 → conv 2
        // The independent computation: forward with capture, backward of Σ_i f_{label_i}(x_i).
        let input = try Tensor(x, shape: [3, 1, 10, 10], engine: engine, requiresGrad: true)
        let (out, acts) = try net.forward(input, capture: [layer])
        var seed = [Float](repeating: 0, count: 9)
        for (i, c) in labels.enumerated() { seed[i * 3 + c] = 1 }
        try out.backward(try Tensor(seed, shape: [3, 3], engine: engine))
        let a = try acts[layer]!.toArray(), g = try acts[layer]!.grad!.toArray()
        for p in net.parameters { p.zeroGrad() }
        var sawNegative = false
        let plane = 4
        for i in 0..<3 {
            var map = [Double](repeating: 0, count: plane)
            for k in 0..<64 {
                var alpha = 0.0
                for q in 0..<plane { alpha += Double(g[(i * 64 + k) * plane + q]) }
                for q in 0..<plane { map[q] += alpha / Double(plane) * Double(a[(i * 64 + k) * plane + q]) }
            }
            sawNegative = sawNegative || map.contains { $0 < 0 }
            let s = closeness((0..<plane).map { Float(signed.coarse[i * plane + $0]) }, map, atol: 1e-6, rtol: 1e-4, label: "signed \(i)")
            #expect(s.passed, Comment(rawValue: s.message))
            let r = closeness((0..<plane).map { Float(cam.coarse[i * plane + $0]) }, map.map { max($0, 0) }, atol: 1e-6, rtol: 1e-4, label: "relu \(i)")
            #expect(r.passed, Comment(rawValue: r.message))
            let up = closeness(attributionFloats(cam.explanation, instance: i, output: 0),
                               GradCAM.upsample(map.map { max($0, 0) }, from: (2, 2), to: (10, 10)), atol: 1e-6, rtol: 1e-4)
            #expect(up.passed, Comment(rawValue: up.message))
        }
        #expect(sawNegative, "the test should exercise the ReLU")
    }

    @Test func unknownOrFlatLayersAreRejected() throws {
        let engine = try testEngine()
        let net = try AttributionNetworks.cnn(engine)
        let x = [Float](repeating: 0.5, count: 100)
        #expect(throws: (any Error).self) { try GradCAM(model: DifferentiableModel(net), layer: "3.relu6").explain(instances: x, targets: .classes([0])) }
        #expect(throws: ExplainError.self) { try GradCAM(model: DifferentiableModel(net), layer: "6.flatten").explain(instances: x, targets: .classes([0])) }
    }
}
