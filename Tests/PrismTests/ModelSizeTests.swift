import Foundation
import Prism
import PrismTestSupport
import Testing

/// Model descriptions with sizes past any memory, overflowing products or zero strides are refused
/// in one line before a layer is built.
@Suite struct ModelSizeTests {
    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    @Test func parametersPastTheDeviceAreRefusedBeforeBuilding() throws {
        let engine = try testEngine()
        let spec = try ModelSpec.mlp(inputShape: [784], hidden: [1_000_000, 1_000_000], classes: 10)
        // 784·10^6 + 10^6 + 10^12 + 10^6 + 10^7 + 10 parameters of 4 bytes.
        #expect(try spec.checkedParameterCount() == 784_000_000 + 1_000_000 + 1_000_000_000_000 + 1_000_000 + 10_000_000 + 10)
        let text = message { _ = try Model(spec: spec, seed: 0, engine: engine) }
        #expect(text.hasPrefix("model: 1000796000010 parameters need 4.0 TB on the device (1 copy); \(engine.device.name) has "), "\(text)")
        #expect(!text.contains("\n"))
        let training = message { try spec.requireMemory(device: engine.device, copies: 4, source: "--arch mlp") }
        #expect(training.hasPrefix("--arch mlp: 1000796000010 parameters need 16 TB on the device (4 copies); "), "\(training)")
    }

    @Test func overflowingAndNonPositiveSizesAreRefused() throws {
        let huge = ModelSpec(architecture: "mlp", inputShape: [1 << 40], classCount: 1 << 40,
                             layers: [.linear(inFeatures: 1 << 40, outFeatures: 1 << 40)])
        #expect(message { _ = try huge.checkedParameterCount(source: "m.safetensors") }
            == "m.safetensors: model: node 0 '0' (linear): parameter 'weight' of shape [1099511627776, 1099511627776] overflows a 64-bit count")
        let zeroStride = ModelSpec(architecture: "cnn", inputShape: [1, 8, 8], classCount: 2,
                                   layers: [.conv2d(inChannels: 1, outChannels: 2, kernel: 3, stride: 0, padding: 0)])
        #expect(message { _ = try zeroStride.checkedParameterCount(source: "m.safetensors") }.hasPrefix("m.safetensors: model: node 0 '0' (conv2d): "))
        #expect(message { _ = try zeroStride.layerOutputShapes() }.contains("needs a positive kernel, stride and dilation"))
        let zeroPool = ModelSpec(architecture: "cnn", inputShape: [1, 8, 8], classCount: 2, layers: [.maxPool2d(kernel: 2, stride: 0)])
        #expect(message { _ = try zeroPool.layerOutputShapes() }.contains("needs a positive kernel, stride and dilation"))
        let wide = ModelSpec(architecture: "mlp", inputShape: [1 << 32, 1 << 32, 4], classCount: 2, layers: [.flatten])
        #expect(message { _ = try wide.layerOutputShapes() }.contains("has more elements than an Int can count"))
    }

    @Test func metadataClaimingHugeOutputsIsCheckedAgainstTheTensorsFirst() throws {
        let engine = try testEngine()
        let dir = temporaryDirectory("model-size")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spec = try ModelSpec.mlp(inputShape: [6], hidden: [4], classes: 3)
        let path = dir + "/m.safetensors"
        try Model(spec: spec, seed: 1, engine: engine).save(path: path)
        var file = try SafetensorsFile.read(path: path)
        var forged = spec
        forged.classCount = 1 << 40
        forged.nodes[forged.nodes.count - 1] = LayerSpec.linear(inFeatures: 4, outFeatures: 1 << 40).node(name: "\(forged.nodes.count - 1)")
        file.metadata[Model.specMetadataKey] = try forged.json()
        try file.write(path: path)
        #expect(message { _ = try Model.load(path: path, engine: engine) }
            == "\(path): tensor '3.weight' has shape [3, 4], the model expects [1099511627776, 4]")
    }

    @Test func specParameterShapesAreTheBuiltModelsParameters() throws {
        let engine = try testEngine()
        for spec in [try ModelSpec.cnn(), try ModelSpec.vit(height: 14, width: 14, patch: 7, dim: 16, depth: 1, heads: 2, mlpDim: 8),
                     try ModelSpec.mlp(inputShape: [5], hidden: [3, 2], classes: 4)] {
            let model = try Model(spec: spec, seed: 0, engine: engine)
            #expect(spec.namedParameterShapes.map(\.name) == model.namedParameters.map(\.name), "\(spec.architecture)")
            #expect(spec.namedParameterShapes.map(\.shape) == model.namedParameters.map(\.tensor.shape), "\(spec.architecture)")
            #expect(try spec.checkedParameterCount() == model.parameterCount)
        }
    }
}

/// A PyTorch pickle passed where a safetensors model is expected says what it is and how to convert it.
@Suite struct ForeignModelFileTests {
    @Test func pytorchPicklesAreNamedWithTheConversion() throws {
        let engine = try testEngine()
        let dir = temporaryDirectory("foreign-model")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let conversion = "not a safetensors file; convert it in Python: safetensors.torch.save_file(model.state_dict(), \"m.safetensors\")"
        for (name, bytes, kind) in [
            ("zip.pt", [0x50, 0x4B, 0x03, 0x04, 0x14, 0, 0, 0] as [UInt8], "a PyTorch checkpoint (torch.save's zip archive of pickles)"),
            ("legacy.pt", [0x80, 0x02, 0x8A, 0x0A, 0x6C], "a Python pickle (protocol 2, as torch.save wrote before PyTorch 1.6)"),
            ("p5.pkl", [0x80, 0x05, 0x95], "a Python pickle (protocol 5, as torch.save wrote before PyTorch 1.6)"),
        ] {
            let path = dir + "/" + name
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let text: String
            do { _ = try LoadedModel(path: path, engine: engine); text = "no error" } catch { text = "\(error)" }
            #expect(text == "\(path): \(kind), \(conversion)")
        }
        // A safetensors file whose header is 0x0380 bytes long opens with a pickle's protocol-3 mark.
        let spec = try ModelSpec.mlp(inputShape: [3], hidden: [], classes: 2)
        let model = try Model(spec: spec, seed: 1, engine: engine)
        var matched = false
        for padding in 0..<1200 where !matched {
            let path = dir + "/m.safetensors"
            try model.save(path: path, metadata: ["pad": String(repeating: "x", count: padding)])
            let head = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)).prefix(2))
            guard head == [0x80, 0x03] else { continue }
            matched = true
            #expect(throws: Never.self) { _ = try Model.load(path: path, engine: engine) }
        }
        #expect(matched)
        // Other bytes go on to the safetensors reader.
        try Data([0x80, 0x09, 0, 0]).write(to: URL(fileURLWithPath: dir + "/other"))
        #expect(throws: Never.self) { try ForeignModelFile.refusePyTorchPickle(path: dir + "/other") }
    }
}

@Suite struct PeakActivationTests {
    /// A vision transformer whose attention matrix overflows an Int: the estimate saturates, no trap.
    @Test func hugeTransformersSaturate() {
        let t = 1 << 31
        let spec = ModelSpec(architecture: "vit", inputShape: [1, t, 1], classCount: 2, layers: [
            .patchEmbedding(channels: 1, height: t, width: 1, patch: 1, dim: 1), .transformerBlock(dim: 1, heads: 1, mlpDim: 1),
        ])
        #expect(spec.peakActivationElements == 1 << 59)
        let small = try! ModelSpec.mlp(inputShape: [5], hidden: [3], classes: 2)
        #expect(small.peakActivationElements == 10)  // Flatten: its input 5 and output 5 alive at once
    }
}
