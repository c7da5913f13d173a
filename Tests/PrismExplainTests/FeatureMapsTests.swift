import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

/// Feature maps against the captured activation, and each channel's top examples against a ranking
/// of the whole set's activations done on the host.
@Suite struct FeatureMapsTests {
    @Test func mapsAndTopExamplesMatchTheActivations() throws {
        let engine = try testEngine()
        let net = try AttributionNetworks.cnn(engine)
        let layer = net.activationName(1)
        let inputs = seededFloats(23 * 100, seed: 9, low: 0, high: 1)
        let all = try engine.noGrad { try net.forward(try Tensor(inputs, shape: [23, 1, 10, 10], engine: engine), capture: [layer]).activations[layer]! }
        let (c, plane) = (all.shape[1], all.count / (23 * all.shape[1]))
        let values = try all.toArray()
        let (maps, shape) = try FeatureMaps.maps(of: net, layer: layer, input: Array(inputs[300..<400]))
        #expect(shape == Array(all.shape.dropFirst()))
        expectClose(maps.map(Double.init), values[(3 * c * plane)..<(4 * c * plane)].map(Double.init), atol: 1e-6, rtol: 1e-6, "maps of example 3")

        let top = try FeatureMaps.topExamples(of: net, layer: layer, inputs: inputs, k: 5, rowsPerChunk: 4)
        #expect(top.count == c)
        for ch in 0..<c {
            let means = (0..<23).map { e in (0..<plane).reduce(0.0) { $0 + Double(values[(e * c + ch) * plane + $1]) } / Double(plane) }
            let expected = (0..<23).sorted { means[$0] != means[$1] ? means[$0] > means[$1] : $0 < $1 }.prefix(5)
            // Equal means may order either way in float32: compare the means, and the indices where means differ clearly.
            for (j, index) in top[ch].indices.enumerated() {
                #expect(abs(Double(top[ch].means[j]) - means[expected[expected.startIndex + j]]) <= 1e-5, "channel \(ch) rank \(j)")
                #expect(abs(means[index] - means[expected[expected.startIndex + j]]) <= 1e-5, "channel \(ch) rank \(j): example \(index)")
            }
        }
        #expect(throws: ExplainError.self) { try FeatureMaps.maps(of: net, layer: net.activationName(net.ops.count - 1), input: Array(inputs[0..<100])) }
    }
}
