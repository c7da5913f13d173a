import Foundation
import PrismFormats
import PrismGraph

// Input normalization at import: `(x − mean) / std` per channel in front of the graph, as Prism's
// export writes it and as PyTorch exports a model that normalizes its own input, becomes the model's
// `inputNormalization` (so it takes raw inputs and explanations stay in their space) instead of nodes.

extension ONNXImporter {
    /// The leading `Sub` of a per-channel constant from the input and `Div` by a positive per-channel
    /// constant (twice at most: a feature standardization, then a normalization, composed into one).
    /// - Returns: the normalization, the indices of the nodes it replaces and the value it stands for
    ///   (the last `Div`'s output), or nil when the graph does not start so.
    func leadingNormalization(input: String) -> (normalization: ModelSpec.InputNormalization, nodes: Set<Int>, output: String)? {
        let channels = inputShape.first ?? 0
        var value = input, mean: [Double] = [], std: [Double] = [], replaced: Set<Int> = []
        for _ in 0..<2 {
            guard uses[value, default: 0] == 1,
                  let sub = graph.node.firstIndex(where: { $0.opType == "Sub" && $0.input.first == value }),
                  let m = perChannel(graph.node[sub], channels: channels), let subOutput = graph.node[sub].output.first,
                  uses[subOutput, default: 0] == 1,
                  let div = graph.node.firstIndex(where: { $0.opType == "Div" && $0.input.first == subOutput }),
                  let s = perChannel(graph.node[div], channels: channels), s.allSatisfy({ $0 > 0 && $0.isFinite }),
                  let divOutput = graph.node[div].output.first, !divOutput.isEmpty else { break }
            // ((x − m₁)/s₁ − m₂)/s₂ = (x − (m₁ + m₂·s₁)) / (s₁·s₂)
            if mean.isEmpty {
                (mean, std) = (m.map(Double.init), s.map(Double.init))
            } else {
                mean = (0..<channels).map { mean[$0] + Double(m[$0]) * std[$0] }
                std = (0..<channels).map { std[$0] * Double(s[$0]) }
            }
            replaced.formUnion([sub, div])
            value = divOutput
        }
        guard !replaced.isEmpty else { return nil }
        let normalization = ModelSpec.InputNormalization(mean: mean.map { Float($0) }, std: std.map { Float($0) })
        guard (try? normalization.validate(inputShape: inputShape)) != nil else { return nil }
        return (normalization, replaced, value)
    }

    /// The per-channel values of a binary node's second input when it is a float constant laid over
    /// the input's first axis after the batch: [C, 1, …], [1, C, 1, …], or one value for every channel.
    func perChannel(_ node: Onnx_NodeProto, channels: Int) -> [Float]? {
        guard node.input.count == 2, node.attribute.isEmpty, node.domain.isEmpty || node.domain == "ai.onnx",
              case let .float(c)? = values[node.input[1]] else { return nil }
        let rank = inputShape.count
        var shape = c.shape
        if shape.count == rank + 1, shape.first == 1 { shape.removeFirst() }
        if c.values.count == 1, shape.count <= rank { return [Float](repeating: c.values[0], count: channels) }
        guard shape.count == rank, shape.first == channels, shape.dropFirst().allSatisfy({ $0 == 1 }), c.values.count == channels else { return nil }
        return c.values
    }
}
