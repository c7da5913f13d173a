import Foundation
@testable import Prism
import PrismTestSupport
import Testing

/// Model descriptions whose sizes do not add up: refused with one line naming the file and the
/// layer, never a trap (a stride of 0 divided by zero; a `classCount` other than the last layer's
/// width made evaluation read past the logits, or quietly score the wrong columns).
@Suite struct ModelSpecHostileTests {
    /// The file of a saved 3 → 4 → 10 classifier whose stored spec is then changed by `edit`.
    static func fileWithSpec(_ edit: (inout ModelSpec) -> Void) throws -> String {
        let engine = try testEngine()
        let model = try Model(spec: try ModelSpec.mlp(inputShape: [3], hidden: [4], classes: 10), seed: 1, engine: engine)
        let path = temporaryDirectory("spec-hostile") + "/m.safetensors"
        try model.save(path: path)
        var file = try SafetensorsFile.read(path: path)
        var spec = try ModelSpec.decode(json: try #require(file.metadata[Model.specMetadataKey]))
        edit(&spec)
        file.metadata[Model.specMetadataKey] = try spec.json()
        try file.write(path: path)
        return path
    }

    @Test(arguments: [12, 5, 0])
    func aClassCountOtherThanTheLastLayersWidthIsRefused(_ classes: Int) throws {
        let path = try Self.fileWithSpec { $0.classCount = classes }
        let engine = try testEngine()
        let expected = classes > 0 ? "model: the output node '3' gives [10] per example, but the model says \(classes) outputs"
                                   : "model: classCount 0 is not a positive number of outputs"
        // Loading checks the description's sizes before the layers: no outputs at all is refused there.
        let whenLoaded = classes > 0 ? expected : "0 outputs (at least 1 needed)"
        #expect(throws: DataError("\(path): \(whenLoaded)")) { try Model.load(path: path, engine: engine) }
        #expect(throws: DataError("\(path): \(whenLoaded)")) { try LoadedModel(path: path, engine: engine) }
        var spec = try ModelSpec.mlp(inputShape: [3], hidden: [4], classes: 10)
        spec.classCount = classes
        #expect(throws: TensorError(expected)) { try Model(spec: spec, seed: 0, engine: engine) }
    }

    @Test func zeroStridesKernelsAndPatchesAreRefusedNotDividedBy() throws {
        func sizes(kernel: Int, stride: Int, padding: Int) -> String {
            "needs a positive kernel, stride and dilation and a non-negative padding (kernel \(kernel), stride \(stride), padding \(padding), dilation 1)"
        }
        let cases: [(LayerSpec, String)] = [
            (.conv2d(inChannels: 1, outChannels: 2, kernel: 3, stride: 0, padding: 0), sizes(kernel: 3, stride: 0, padding: 0)),
            (.conv2d(inChannels: 1, outChannels: 2, kernel: 0, stride: 1, padding: 0), sizes(kernel: 0, stride: 1, padding: 0)),
            (.conv2d(inChannels: 1, outChannels: 2, kernel: 3, stride: 1, padding: -2), sizes(kernel: 3, stride: 1, padding: -2)),
            (.conv2d(inChannels: 1, outChannels: 2, kernel: 3, stride: 1, padding: Int.max), "padding \(Int.max) or dilation 1 is too large"),
            (.maxPool2d(kernel: 2, stride: 0), sizes(kernel: 2, stride: 0, padding: 0)),
            (.avgPool2d(kernel: 0, stride: 2), sizes(kernel: 0, stride: 2, padding: 0)),
            (.patchEmbedding(channels: 1, height: 8, width: 8, patch: 0, dim: 4), "needs a positive patch that splits the image and a positive width"),
        ]
        for (layer, reason) in cases {
            let spec = ModelSpec(architecture: "custom", inputShape: [1, 8, 8], classCount: 2, layers: [layer])
            #expect(throws: TensorError("model: node 0 '0' (\(layer.node(name: "0").op)): \(reason), input shape [1, 8, 8]")) {
                try spec.layerOutputShapes()
            }
        }
    }

    @Test func flattenedSizesThatOverflowAreRefused() throws {
        let spec = ModelSpec(architecture: "custom", inputShape: [1, 1 << 32, 1 << 32], classCount: 2,
                             layers: [.flatten, .linear(inFeatures: 2, outFeatures: 2)])
        #expect(throws: TensorError("model: node 0 '0' (flatten): has more elements than an Int can count, input shape [1, 4294967296, 4294967296]")) {
            try spec.layerOutputShapes()
        }
        #expect(throws: TensorError("model: input shape [1, 4294967296, 4294967296] needs positive sizes")) {
            try spec.validate()
        }
    }
}
