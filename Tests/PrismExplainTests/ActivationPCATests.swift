import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

/// The embedding view's PCA against numpy's SVD of the same centered matrix
/// (`Tests/Fixtures/make_pca_fixture.py`), and the activations it reads from a model.
@Suite struct ActivationPCATests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/pca.safetensors").path

    @Test func componentsEqualNumpysSVDUpToSign() throws {
        let engine = try testEngine()
        let file = try SafetensorsFile.read(path: Self.fixture)
        let x = try file.tensor("x").values
        let pca = try ActivationPCA.fit(try Tensor(x, shape: [300, 12], engine: engine), components: 12)
        let reference = try file.tensor("components").values, variance = try file.tensor("explained_variance").values
        for j in 0..<12 {
            let got = Array(pca.components[(j * 12)..<((j + 1) * 12)]), want = Array(reference[(j * 12)..<((j + 1) * 12)])
            let sign: Float = zip(got, want).reduce(0) { $0 + $1.0 * $1.1 } < 0 ? -1 : 1
            let worst = zip(got, want).map { abs(sign * $0 - $1) }.max()!
            #expect(worst <= 1e-4, "component \(j): max difference \(worst)")
            #expect(abs(pca.explainedVariance[j] - Double(variance[j])) <= 1e-4 * Double(variance[0]), "variance \(j)")
        }
        expectClose(pca.mean.map(Double.init), try file.tensor("mean").values.map(Double.init), atol: 1e-5, rtol: 1e-5, "mean")
        #expect(abs(pca.explainedVarianceRatio.reduce(0, +) - 1) < 1e-6)
        // The projections are the centered rows times the components.
        let two = try ActivationPCA.fit(try Tensor(x, shape: [300, 12], engine: engine), components: 2)
        for row in [0, 157, 299] {
            for j in 0..<2 {
                let want = (0..<12).reduce(0.0) { $0 + Double(x[row * 12 + $1] - two.mean[$1]) * Double(two.components[j * 12 + $1]) }
                #expect(abs(Double(two.projections[row * 2 + j]) - want) <= 1e-4 * max(1, abs(want)), "row \(row) component \(j)")
            }
        }
    }

    @Test func readsThePenultimateLayerAndRefusesWhatItCannotDo() throws {
        let engine = try testEngine()
        let net = try AttributionNetworks.reluMLP(engine)
        let layer = try ActivationPCA.defaultLayer(of: net)
        let inputs = seededFloats(40 * 12, seed: 3)
        let a = try ActivationPCA.activations(of: net, layer: layer, inputs: inputs, rowsPerChunk: 7)
        #expect(a.shape == [40, 8])
        // The same rows as one forward pass capturing the layer.
        let whole = try engine.noGrad { try net.forward(try Tensor(inputs, shape: [40, 1, 3, 4], engine: engine), capture: [layer]).activations[layer]! }
        expectClose(try a.toArray().map(Double.init), try whole.toArray().map(Double.init), atol: 0, rtol: 0, "chunked activations")
        #expect(throws: ExplainError.self) { try ActivationPCA.fit(a, components: 9) }
        #expect(throws: ExplainError.self) { try ActivationPCA.fit(try Tensor.zeros([1, 8], engine: engine), components: 1) }
        #expect(throws: (any Error).self) { try ActivationPCA.activations(of: net, layer: "nope", inputs: inputs) }
    }
}
