import Foundation
import Testing
import Prism
import PrismFormats
import PrismGraph
import PrismONNX
import PrismTestSupport

/// An int8-quantized cnn (`QuantizedModel`) exported in QDQ form — int8 weight initializers through
/// DequantizeLinear, QuantizeLinear/DequantizeLinear on the activations — and run by onnxruntime:
/// its logits within one step of the output's quantization of Prism's integer kernels.
@Suite struct ONNXQuantizedExportTests {
    @Test func onnxruntimeRunsTheQuantizedModelWithinOneStep() throws {
        let engine = try testEngine()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("prism-onnx-qdq-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let images = ONNXExportTests.fixtures + "/fashion-mnist-subset"
        let train = try LabeledData(try ImageDataset.loadMNISTFormat(directory: images, split: .train))
        let test = try LabeledData(try ImageDataset.loadMNISTFormat(directory: images, split: .test))
        var spec = try ModelSpec.cnn()
        spec.inputNormalization = train.channelStatistics()
        let model = try Model(spec: spec, seed: 1, engine: engine)
        try Trainer(model: model, config: TrainingConfig(epochs: 1, batchSize: 64, learningRate: 1e-3, seed: 1)).fit(train: train)
        let quantized = try QuantizedModel(model, calibration: try (0..<48).flatMap { try train.example($0).features }, count: 48)
        let (simSpec, tensors, weights) = try quantized.simulation()
        let int8 = Dictionary(uniqueKeysWithValues: weights.map { ("\($0.key).weight", ONNXExport.Int8Weight(shape: $0.value.shape, values: $0.value.values, scales: $0.value.scales)) })
        let path = folder + "/q.onnx"
        try Data(try ONNXExport.serialized(spec: simSpec, tensors: tensors, int8Weights: int8, source: "quantized cnn")).write(to: URL(fileURLWithPath: path))
        // The file holds int8 weights: about a quarter of the float export.
        let float = try ONNXExport.serialized(spec: spec, tensors: try model.stateDict(), source: "cnn")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(size * 3 < float.count, "\(size) bytes against \(float.count)")
        let x = try (0..<16).flatMap { try test.example($0).features }
        // onnxruntime with its graph optimizations off runs the QDQ graph as written: Prism's float
        // simulation to float rounding, and Prism's integer kernels within one step of the output.
        let ort = try ONNXRuntime.run(model: path, input: x, shape: [16, 1, 28, 28], optimize: false, folder: folder)
        let integer = try engine.noGrad { try quantized(try Tensor(x, shape: [16, 1, 28, 28], engine: engine)).toArray() }
        let simulation = try Model(spec: simSpec, seed: 0, engine: engine)
        try simulation.loadStateDict(tensors)
        let simulated = try engine.noGrad { try simulation(try Tensor(x, shape: [16, 1, 28, 28], engine: engine)).toArray() }
        let close = closeness(ort, simulated, atol: 1e-5, rtol: 1e-5)
        #expect(close.passed, "onnxruntime against Prism's simulation: \(close)")
        let step = try #require(quantized.outputQuantization).scale
        let worst = zip(ort, integer).map { abs($0 - $1) }.max() ?? .infinity
        #expect(ort.count == integer.count && worst <= step * 1.001, "onnxruntime against Prism's integer kernels: \(worst / step) steps")
    }

    /// A residual graph (BatchNorm folded into its convolution, an integer Add with its ReLU, a
    /// Hardswish and a global average pooling in float, flatten into Linear) exported in QDQ form:
    /// onnxruntime computes Prism's float simulation, and Prism's integer kernels within two steps.
    @Test func aResidualGraphExportsInQDQForm() throws {
        let engine = try testEngine()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("prism-onnx-qdq-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let spec = try ModelSpec.decode(json: #"""
        {"format": 2, "input_shape": [2, 9, 9], "outputs": 4, "architecture": "custom", "nodes": [
          {"name": "a", "op": "conv2d", "in_channels": 2, "out_channels": 6, "kernel_size": 3, "padding": 1, "bias": false},
          {"name": "bn", "op": "batchnorm2d", "num_features": 6},
          {"name": "r", "op": "relu"},
          {"name": "b", "op": "conv2d", "in_channels": 6, "out_channels": 6, "kernel_size": 3, "padding": 1},
          {"name": "sum", "op": "add", "inputs": ["b", "r"]},
          {"name": "s", "op": "relu"},
          {"name": "pool", "op": "maxpool2d", "kernel_size": 2},
          {"name": "hs", "op": "hardswish"},
          {"name": "gap", "op": "adaptiveavgpool2d", "output_size": 1},
          {"name": "flat", "op": "flatten"},
          {"name": "fc", "op": "linear", "in_features": 6, "out_features": 4}
        ]}
        """#)
        let model = try Model(spec: spec, seed: 2, engine: engine)
        var state = try model.stateDict()
        state["bn.running_mean"] = HostTensor(shape: [6], values: seededFloats(6, seed: 5, low: -0.3, high: 0.3))
        state["bn.running_var"] = HostTensor(shape: [6], values: seededFloats(6, seed: 6, low: 0.5, high: 2))
        try model.loadStateDict(state)
        let quantized = try QuantizedModel(model, calibration: seededFloats(48 * 162, seed: 7, low: -1, high: 1), count: 48)
        #expect(quantized.folded.count == 1 && quantized.floatNodes == ["'hs' (hardswish)", "'gap' (adaptiveavgpool2d)", "'flat' (flatten)"])
        let (simSpec, tensors, weights) = try quantized.simulation()
        let int8 = Dictionary(uniqueKeysWithValues: weights.map { ("\($0.key).weight", ONNXExport.Int8Weight(shape: $0.value.shape, values: $0.value.values, scales: $0.value.scales)) })
        let path = folder + "/residual.onnx"
        try Data(try ONNXExport.serialized(spec: simSpec, tensors: tensors, int8Weights: int8, source: "quantized residual graph")).write(to: URL(fileURLWithPath: path))
        let x = seededFloats(12 * 162, seed: 8, low: -1, high: 1)
        let ort = try ONNXRuntime.run(model: path, input: x, shape: [12, 2, 9, 9], optimize: false, folder: folder)
        let simulation = try Model(spec: simSpec, seed: 0, engine: engine)
        try simulation.loadStateDict(tensors)
        let (simulated, integer) = try engine.noGrad {
            (try simulation(try Tensor(x, shape: [12, 2, 9, 9], engine: engine)).toArray(), try quantized(try Tensor(x, shape: [12, 2, 9, 9], engine: engine)).toArray())
        }
        let close = closeness(ort, simulated, atol: 1e-5, rtol: 1e-5)
        #expect(close.passed, "onnxruntime against Prism's simulation: \(close)")
        let step = try #require(quantized.outputQuantization).scale
        let worst = zip(ort, integer).map { abs($0 - $1) }.max() ?? .infinity
        #expect(ort.count == integer.count && worst <= step * 2.001, "onnxruntime against Prism's integer kernels: \(worst / step) steps")
    }
}
