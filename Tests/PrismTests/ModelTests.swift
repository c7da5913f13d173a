import Foundation
import Prism
import PrismReference
import PrismTestSupport
import Testing

/// The committed fixtures folder.
let fixturesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").path

func fixture(_ name: String) -> String { (fixturesDirectory as NSString).appendingPathComponent(name) }

/// The network of `Tests/Fixtures/make_golden.py`: Conv(1→4, 3)-ReLU-MaxPool 2-Conv(4→8, 3)-ReLU-MaxPool 2-
/// Flatten-Linear(32→10) on 14×14 images.
let goldenSpec = ModelSpec(architecture: "custom", inputShape: [1, 14, 14], classCount: 10, layers: [
    .conv2d(inChannels: 1, outChannels: 4, kernel: 3, stride: 1, padding: 0), .relu, .maxPool2d(kernel: 2, stride: 2),
    .conv2d(inChannels: 4, outChannels: 8, kernel: 3, stride: 1, padding: 0), .relu, .maxPool2d(kernel: 2, stride: 2),
    .flatten, .linear(inFeatures: 32, outFeatures: 10),
])

/// The network of `golden.safetensors` with its weights loaded, the fixture, and its input batch [3, 1, 14, 14].
func goldenModel(_ engine: Engine) throws -> (model: Model, golden: SafetensorsFile, input: HostTensor) {
    let golden = try SafetensorsFile.read(path: fixture("golden.safetensors"))
    let model = try Model(spec: goldenSpec, seed: 1, engine: engine)
    try model.loadStateDict(golden.tensors, source: "golden.safetensors", strict: false)
    return (model, golden, try golden.tensor("input", shape: [3, 1, 14, 14]))
}

@Suite struct ModelTests {
    /// Forward, loss, every parameter gradient and the input gradient against PyTorch (float64) values.
    @Test func goldenCNNMatchesPyTorch() throws {
        let engine = try testEngine()
        let (model, golden, input) = try goldenModel(engine)
        let labels = try golden.tensor("labels", shape: [3]).values.map { Int32($0) }
        let x = try Tensor(input.values, shape: input.shape, engine: engine, requiresGrad: true)
        let logits = try model(x)
        expectClose(try logits.toArray(), try golden.tensor("logits", shape: [3, 10]).values, atol: 1e-5, rtol: 1e-4, "logits")
        let loss = try crossEntropy(logits, labels: labels)
        expectClose(try loss.toArray(), try golden.tensor("loss", shape: [1]).values, atol: 1e-6, rtol: 1e-5, "loss")
        try loss.backward()
        for (name, parameter) in model.namedParameters {
            let expected = try golden.tensor("grad." + name, shape: parameter.shape)
            expectClose(try #require(parameter.grad).toArray(), expected.values, atol: 1e-6, rtol: 1e-4, "grad \(name)")
        }
        expectClose(try #require(x.grad).toArray(), try golden.tensor("grad.input", shape: [3, 1, 14, 14]).values,
                    atol: 1e-7, rtol: 1e-4, "grad input")
    }

    /// Ten Adam steps on one fixed batch lower the loss (a model that can learn it).
    @Test func adamStepsReduceTheLossOnAFixedBatch() throws {
        let engine = try testEngine()
        let golden = try SafetensorsFile.read(path: fixture("golden.safetensors"))
        let model = try Model(spec: goldenSpec, seed: 1, engine: engine)
        try model.loadStateDict(golden.tensors, strict: false)
        let input = try golden.tensor("input")
        let labels = try golden.tensor("labels").values.map { Int32($0) }
        let x = try Tensor(input.values, shape: input.shape, engine: engine)
        let adam = try Adam(model.parameters, lr: 1e-2)
        var losses: [Float] = []
        for _ in 0..<11 {
            let loss = try crossEntropy(try model(x), labels: labels)
            losses.append(try loss.item())
            adam.zeroGrad()
            try loss.backward()
            try adam.step()
        }
        #expect(losses[10] < 0.5 * losses[0], "losses \(losses)")
        #expect(losses.allSatisfy { $0.isFinite })
    }

    /// A saved model reloads with identical outputs, and its file carries the spec.
    @Test func saveAndLoadRoundTrip() throws {
        let engine = try testEngine()
        let spec = try ModelSpec.cnn(height: 12, width: 12, classes: 4)
        let model = try Model(spec: spec, seed: 7, engine: engine)
        let path = NSTemporaryDirectory() + "prism-roundtrip-\(getpid()).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try model.save(path: path)
        let (loaded, file) = try Model.load(path: path, engine: engine)
        #expect(loaded.spec == spec)
        #expect(Set(file.tensors.keys) == ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias", "9.weight", "9.bias"])
        let x = try Tensor.uniform([2, 1, 12, 12], seed: 3, engine: engine)
        #expect(try model(x).toArray() == loaded(x).toArray())
    }

    @Test func loadingReportsMissingAndMisshapenTensors() throws {
        let engine = try testEngine()
        let model = try Model(spec: goldenSpec, seed: 1, engine: engine)
        var tensors = try model.stateDict()
        tensors["3.weight"] = nil
        #expect(throws: DataError("m.safetensors: missing tensor '3.weight' (shape [8, 4, 3, 3])")) {
            try model.loadStateDict(tensors, source: "m.safetensors")
        }
        tensors["3.weight"] = HostTensor(shape: [8, 4, 3, 2], values: [Float](repeating: 0, count: 192))
        #expect(throws: DataError("m.safetensors: tensor '3.weight' has shape [8, 4, 3, 2], the model expects [8, 4, 3, 3]")) {
            try model.loadStateDict(tensors, source: "m.safetensors")
        }
    }

    /// Named activations keep their gradients (attribution methods read them).
    @Test func capturedActivationsKeepTheirGradients() throws {
        let engine = try testEngine()
        let model = try Model(spec: goldenSpec, seed: 2, engine: engine)
        let x = try Tensor.uniform([2, 1, 14, 14], seed: 5, engine: engine)
        let (out, activations) = try model.forward(x, capture: ["4.relu"])
        let loss = try crossEntropy(out, labels: [1, 2])
        try loss.backward()
        let act = try #require(activations["4.relu"])
        #expect(act.shape == [2, 8, 4, 4])
        let grad = try #require(act.grad).toArray()
        #expect(grad.contains { $0 != 0 })
        // The max pool after layer 4 sends each 2×2 window's gradient to one pixel: at most a quarter are non-zero.
        #expect(grad.filter { $0 != 0 }.count <= grad.count / 4)
        #expect(throws: TensorError.self) { try model.forward(x, capture: ["9.nothing"]) }
    }
}

extension ModelTests {
    /// Shape inference over the reference CNN: 28×28 → conv 26×26 → pool 13×13 → conv 11×11 → pool 5×5.
    @Test func layerOutputShapesOfTheReferenceCNN() throws {
        let spec = try ModelSpec.cnn()
        #expect(try spec.layerOutputShapes() == [[32, 26, 26], [32, 26, 26], [32, 13, 13], [64, 11, 11], [64, 11, 11], [64, 5, 5],
                                                  [1600], [128], [128], [10]])
        #expect(spec.peakActivationElements == 2 * 32 * 26 * 26)
        let broken = ModelSpec(architecture: "custom", inputShape: [5], classCount: 2, layers: [.linear(inFeatures: 4, outFeatures: 2)])
        #expect(throws: TensorError("model: node 0 '0' (linear): expects 4 features on the last axis, input shape [5]")) {
            try broken.layerOutputShapes()
        }
    }
}

extension ModelTests {
    /// Conv2D and Linear followed by ReLU run fused; asking for the layer's own output runs the pair
    /// unfused and gives the pre-activation (with negatives), and the model's output is the same.
    @Test func fusedLayersGiveTheSameOutputAndUnfuseForCapture() throws {
        let engine = try testEngine()
        let spec = try ModelSpec.cnn(height: 12, width: 12, classes: 5)
        let model = try Model(spec: spec, seed: 4, engine: engine)
        let x = try Tensor.uniform([2, 1, 12, 12], low: -1, high: 1, seed: 8, engine: engine)
        let fused = try model(x).toArray()
        let (out, acts) = try model.forward(x, capture: ["0.conv2d", "1.relu", "7.linear"])
        #expect(try out.toArray() == fused)
        let pre = try #require(acts["0.conv2d"]).toArray(), post = try #require(acts["1.relu"]).toArray()
        #expect(pre.contains { $0 < 0 })
        #expect(post == pre.map { $0 < 0 ? 0 : $0 })
        #expect(try #require(acts["7.linear"]).toArray().contains { $0 < 0 })
    }
}

extension ModelTests {
    /// A residual Add followed by ReLU runs as one kernel when the sum has no other reader: the same
    /// output and input gradient as the two nodes apart (capturing the sum keeps them apart), taped and
    /// inside `noGrad`.
    @Test func residualAddAndReLURunAsOneKernel() throws {
        let engine = try testEngine()
        let spec = try ModelSpec.decode(json: """
        {"format": 2, "architecture": "custom", "input_shape": [5], "outputs": 3, "nodes": [
          {"name": "fc1", "op": "linear", "in_features": 5, "out_features": 6},
          {"name": "fc2", "op": "linear", "in_features": 6, "out_features": 6},
          {"name": "sum", "op": "add", "inputs": ["fc2", "fc1"]},
          {"name": "act", "op": "relu"},
          {"name": "fc3", "op": "linear", "in_features": 6, "out_features": 3}
        ]}
        """)
        let model = try Model(spec: spec, seed: 3, engine: engine)
        let values = seededFloats(7 * 5, seed: 31)
        func run(capture: Set<String>) throws -> (y: [Float], dx: [Float], sum: [Float]?) {
            let x = try Tensor(values, shape: [7, 5], engine: engine, requiresGrad: true)
            let (y, acts) = try model.forward(x, capture: capture)
            try y.sum().backward()
            return (try y.toArray(), try #require(x.grad).toArray(), try acts["sum"]?.toArray())
        }
        let fused = try run(capture: []), apart = try run(capture: ["sum"])
        let sum = try #require(apart.sum)
        #expect(sum.contains { $0 < 0 } && sum.contains { $0 > 0 })
        #expect(fused.y == apart.y)
        #expect(fused.dx == apart.dx)
        let inference = try engine.noGrad { try model(try Tensor(values, shape: [7, 5], engine: engine)).toArray() }
        #expect(inference == fused.y)
    }

    /// Inference (inside `noGrad`) runs Conv2D → ReLU → MaxPool2D(2) as one pooled convolution on a CPU
    /// device; its logits equal the taped forward's (separate convolution and pooling kernels) bit for
    /// bit, for the golden network against PyTorch's values and for the reference cnn.
    @Test func inferenceWithPooledConvolutionsEqualsTheTapedForward() throws {
        let engine = try testEngine()
        let (small, golden, input) = try goldenModel(engine)
        let x = try Tensor(input.values, shape: input.shape, engine: engine)
        let inference = try engine.noGrad { try small(x).toArray() }
        #expect(inference == (try small(x).toArray()))
        expectClose(inference, try golden.tensor("logits", shape: [3, 10]).values, atol: 1e-5, rtol: 1e-4, "golden logits")

        // (Under the simulator the golden network alone; Conv2DTests force each pooled kernel there.)
        if TestSizes.small { return }
        let cnn = try Model(spec: try ModelSpec.cnn(), seed: 5, engine: engine)
        let images = try Tensor(seededFloats(5 * 784, seed: 9, low: 0, high: 1), shape: [5, 1, 28, 28], engine: engine)
        let taped = try cnn(images).toArray()
        let fused = try engine.noGrad { try cnn(images).toArray() }
        #expect(fused == taped)
        // Capturing a pooled layer's activation runs that block unfused, with the same result.
        let captured = try engine.noGrad { try cnn.forward(images, capture: ["2.maxpool2d"]) }
        #expect(try captured.output.toArray() == taped)
        #expect(captured.activations["2.maxpool2d"]?.shape == [5, 32, 13, 13])
    }
}

/// The spec's input normalization: the model on raw inputs equals the same weights on inputs
/// normalized on the host, the gradient reaches the raw input scaled by 1/std, and the constants
/// travel with the file.
@Suite struct InputNormalizationTests {
    @Test(arguments: [1, 3])
    func normalizedModelEqualsHostNormalizedInputs(_ channels: Int) throws {
        let engine = try testEngine()
        // The reference CNN's layers (convolution + ReLU + pooling twice, flatten, linear) at a
        // fraction of its widths: the normalization is the first node whatever follows it.
        var spec = ModelSpec(architecture: "cnn", inputShape: [channels, 12, 12], classCount: 4, layers: [
            .conv2d(inChannels: channels, outChannels: 6, kernel: 3, stride: 1, padding: 0), .relu, .maxPool2d(kernel: 2, stride: 2),
            .conv2d(inChannels: 6, outChannels: 8, kernel: 3, stride: 1, padding: 0), .relu, .maxPool2d(kernel: 2, stride: 2),
            .flatten, .linear(inFeatures: 8, outFeatures: 12), .relu, .linear(inFeatures: 12, outFeatures: 4),
        ])
        let plain = try Model(spec: spec, seed: 5, engine: engine)
        let mean: [Float] = [0.25, 0.5, -0.1].prefix(channels).map { $0 }, std: [Float] = [0.3, 2, 0.7].prefix(channels).map { $0 }
        spec.inputNormalization = .init(mean: mean, std: std)
        let model = try Model(spec: spec, seed: 5, engine: engine)
        try model.loadStateDict(try plain.stateDict())
        let (n, plane) = (3, 144)
        let raw = seededFloats(n * channels * plane, seed: 11)
        var normalized = raw
        for e in 0..<n { for c in 0..<channels { for p in 0..<plane {
            let i = (e * channels + c) * plane + p
            normalized[i] = (raw[i] - mean[c]) / std[c]
        } } }
        let x = try Tensor(raw, shape: [n, channels, 12, 12], engine: engine, requiresGrad: true)
        let xn = try Tensor(normalized, shape: [n, channels, 12, 12], engine: engine, requiresGrad: true)
        let y = try model(x), yn = try plain(xn)
        expectClose(try y.toArray(), doubles(try yn.toArray()), atol: 1e-5, rtol: 1e-5, "logits, \(channels) channels")
        try y.sum().backward()
        try yn.sum().backward()
        let g = try #require(x.grad).toArray(), gn = try #require(xn.grad).toArray()
        var expected = [Double](repeating: 0, count: g.count)
        for i in g.indices { expected[i] = Double(gn[i]) / Double(std[(i / plane) % channels]) }
        expectClose(g, expected, atol: 1e-6, rtol: 1e-4, "input gradient, \(channels) channels")
        // Inference (pooled convolutions outside the tape) starts from the normalized input too.
        let inference = try engine.noGrad { try model(try Tensor(raw, shape: [n, channels, 12, 12], engine: engine)).toArray() }
        expectClose(inference, doubles(try yn.toArray()), atol: 1e-5, rtol: 1e-5, "inference logits")

        let path = NSTemporaryDirectory() + "prism-normalized-\(getpid())-\(channels).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try model.save(path: path)
        let (loaded, file) = try Model.load(path: path, engine: engine)
        #expect(loaded.spec.inputNormalization == spec.inputNormalization)
        #expect(file.metadata[Model.specMetadataKey]?.contains("\"input_normalization\"") == true)
        #expect(try loaded(x).toArray() == y.toArray())
    }

    /// A spec without the field (every file written before it existed) decodes with none, and bad
    /// constants are refused with the reason.
    @Test func oldSpecsDecodeAndBadConstantsAreRefused() throws {
        let engine = try testEngine()
        var spec = try ModelSpec.mlp(inputShape: [2, 3], hidden: [4], classes: 2)
        #expect(!(try spec.json()).contains("inputNormalization"))
        #expect(try ModelSpec.decode(json: try spec.json()).inputNormalization == nil)
        spec.inputNormalization = .init(mean: [0], std: [1])
        #expect(throws: TensorError.self) { try Model(spec: spec, seed: 0, engine: engine) }
        spec.inputNormalization = .init(mean: [0, 1], std: [1, 0])
        #expect(throws: TensorError.self) { try Model(spec: spec, seed: 0, engine: engine) }
        spec.inputNormalization = .init(mean: [0, 1], std: [1, 2])
        _ = try Model(spec: spec, seed: 0, engine: engine)
    }

    /// Per-channel statistics over every example, against the closed form.
    @Test func channelStatisticsOfLabeledData() throws {
        // Two examples of shape [2, 2]: channel 0 holds 1, 3 and 5, 7; channel 1 is constant 4.
        let data = try LabeledData(features: [1, 3, 4, 4, 5, 7, 4, 4], labels: [0, 1], exampleShape: [2, 2], classCount: 2)
        let s = data.channelStatistics()
        #expect(s.mean == [4, 4])
        #expect(abs(s.std[0] - Float(5).squareRoot()) < 1e-6)  // values 1, 3, 5, 7 about 4: variance 5
        #expect(s.std[1] == 1)  // no spread
    }
}
