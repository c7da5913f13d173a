import Foundation

/// What filter pruning did to one channel group (`ChannelGroups`).
public struct PrunedChannels: Codable, Equatable, Sendable {
    /// The group's number in `ChannelGroups(spec:)` of the pruned model's original.
    public var group: Int
    /// The layers whose filters are these channels (several when a residual connection ties them).
    public var sources: [String]
    public var channels: Int
    public var kept: Int
    /// The channels kept, in order.
    public var keptChannels: [Int]

    enum CodingKeys: String, CodingKey {
        case group, sources, channels, kept
        case keptChannels = "kept_channels"
    }
}

extension ModelSpec {
    /// The same graph with every changeable channel group (`ChannelGroups`: the outputs of each
    /// convolution and hidden Linear layer, tied groups together) at `factor` times its width, rounded,
    /// at least 1; the layers reading them resized to match. The output layer keeps its outputs.
    /// - Throws: `TensorError` for a factor outside (0, 1] or a graph with no changeable channels.
    public func scaledWidth(_ factor: Double) throws -> ModelSpec {
        guard factor > 0, factor <= 1, factor.isFinite else { throw TensorError("width: factor \(factor) must lie in (0, 1]") }
        let groups = try ChannelGroups(spec: self)
        guard !groups.changeable.isEmpty else {
            throw TensorError("width: no layer of this model can change width (\(groups.groups.compactMap(\.fixedBecause).first ?? "no convolution or Linear layer"))")
        }
        var keep: [Int: [Int]] = [:]
        for g in groups.changeable {
            keep[g] = Array(0..<max(1, Int((Double(groups.groups[g].size) * factor).rounded())))
        }
        var spec = try groups.resized(keep: keep)
        spec.architecture = architecture
        return spec
    }
}

extension Model {
    /// L2-norm filter pruning (Li et al., "Pruning Filters for Efficient ConvNets", 2017, with the L2
    /// norm): in every changeable channel group (`ChannelGroups`) the `amount` fraction of channels
    /// (rounded as Python rounds, halves to even; at least one kept) whose filters have the smallest 2-norm — over all the
    /// group's source layers' weights and biases together, so channels tied by a residual connection are
    /// scored and removed together; every group scored on this model's weights before any is removed,
    /// the "independent" strategy of Li et al. — is removed: the filters, the matching input channels or Linear
    /// columns of the layers reading them, and BatchNorm's entries. Ties go by position (the first
    /// goes first). A model with masks (`prune`) is pruned as its masked weights.
    /// - Returns: the smaller model (on this model's engine) and what each group lost.
    /// - Throws: `TensorError` for an amount outside [0, 1) or a model with no changeable channels.
    public func pruneFilters(amount: Double) throws -> (model: Model, groups: [PrunedChannels]) {
        guard amount >= 0, amount < 1, amount.isFinite else { throw TensorError("prune filters: amount \(amount) must lie in [0, 1)") }
        let analysis = try ChannelGroups(spec: spec)
        guard !analysis.changeable.isEmpty else {
            throw TensorError("prune filters: no channel of this model can be removed (\(analysis.groups.compactMap(\.fixedBecause).first ?? "no convolution or Linear layer"))")
        }
        let state = try plainState()
        var keep: [Int: [Int]] = [:], report: [PrunedChannels] = []
        for g in analysis.changeable {
            let group = analysis.groups[g]
            var squares = [Double](repeating: 0, count: group.size)
            for source in group.sources {
                for name in [source + ".weight", source + ".bias"] {
                    guard let t = state[name] else { continue }
                    let per = t.values.count / group.size
                    for c in 0..<group.size {
                        for v in t.values[(c * per)..<((c + 1) * per)] { squares[c] += Double(v) * Double(v) }
                    }
                }
            }
            let removed = min(Int((amount * Double(group.size)).rounded(.toNearestOrEven)), group.size - 1)
            let order = (0..<group.size).sorted { squares[$0] != squares[$1] ? squares[$0] < squares[$1] : $0 < $1 }
            keep[g] = order.dropFirst(removed).sorted()
            report.append(PrunedChannels(group: g, sources: group.sources, channels: group.size, kept: group.size - removed, keptChannels: keep[g]!))
        }
        var smaller = try analysis.resized(keep: keep)
        smaller.architecture = spec.architecture
        let model = try Model(spec: smaller, seed: 0, engine: engine)
        try model.loadStateDict(try analysis.sliced(state, keep: keep), source: "filter pruning")
        return (model, report)
    }

    /// The parameters and buffers under their plain names (a masked weight as its masked values).
    func plainState() throws -> [String: HostTensor] {
        var dict: [String: HostTensor] = [:]
        for (name, tensor) in namedParameters + namedBuffers {
            var values = try tensor.toArray()
            if let mask = masks[name] {
                for (i, m) in try mask.toArray().enumerated() where m == 0 { values[i] = 0 }
            }
            dict[name] = HostTensor(shape: tensor.shape, values: values)
        }
        return dict
    }
}
