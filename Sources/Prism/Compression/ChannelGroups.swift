import Foundation

/// The channels of a graph model that can be removed or resized, found by following every value's
/// channel axis through the graph (the dependency graph torch-pruning builds): a convolution or Linear
/// layer makes a group of output channels; activations, pooling, dropout and normalization pass it on
/// (BatchNorm's per-channel tensors follow it); a residual `add`/`sub`/`mul` of two values ties their
/// groups together (both must lose the same channels), also when one is broadcast over the pixels
/// (a squeeze-and-excitation scale [C, 1, 1] times the features [C, H, W]); `cat` along the channels lays groups side by
/// side; `flatten` of [C, H, W] turns each channel into a block of H·W features of the next Linear.
/// The layers that read a group (convolutions, Linear, depthwise convolutions) lose the matching
/// input channels or columns.
///
/// A group is **fixed** (cannot change) when it reaches the model's output, an op this analysis does
/// not follow (attention, layer norm, reshape, grouped convolutions, …), or an element-wise op whose
/// other operand is not a channel group of the same layout. Everything it cannot prove safe is fixed.
public struct ChannelGroups: Sendable {
    /// One set of channels that change together.
    public struct Group: Sendable, Equatable {
        /// The number of channels.
        public var size: Int
        /// The nodes (convolution, Linear) whose outputs are these channels: their weights' and biases'
        /// first axis. In graph order.
        public var sources: [String]
        /// Why the group cannot change, when it cannot.
        public var fixedBecause: String?
        public var isFixed: Bool { fixedBecause != nil }
    }

    /// A run of a value's channel axis: `count` channels of group `group`, each `block` elements wide
    /// (1 for channels, H·W after a flatten).
    struct Segment: Sendable, Equatable {
        var group: Int
        var count: Int
        var block: Int
    }

    /// How a node's parameters follow the groups.
    enum Role: Sendable {
        /// Its output channels (weight and bias axis 0) are group `group`; `input` (nil: untracked) are the
        /// channels it reads (weight axis 1).
        case source(group: Int, input: [Segment]?)
        /// Per-channel parameters along axis 0 follow `input` (BatchNorm, depthwise convolution).
        case follower(input: [Segment])
    }

    public let spec: ModelSpec
    /// The groups, numbered as `channelGroup(of:)` and the keep lists of `resized` number them.
    public private(set) var groups: [Group] = []
    /// Per node index: its role, when its parameters follow groups.
    var roles: [Int: Role] = [:]

    /// Analyzes `spec`'s graph.
    /// - Throws: `TensorError` when the spec does not check as a graph.
    public init(spec: ModelSpec) throws {
        self.spec = spec
        let graph = try spec.validate()
        var parent: [Int] = [], sizes: [Int] = [], sources: [[String]] = [], fixed: [String?] = []
        func find(_ g: Int) -> Int {
            var g = g
            while parent[g] != g { parent[g] = parent[parent[g]]; g = parent[g] }
            return g
        }
        func newGroup(_ size: Int, source: String) -> Int {
            parent.append(parent.count); sizes.append(size); sources.append([source]); fixed.append(nil)
            return parent.count - 1
        }
        func fix(_ segments: [Segment]?, _ why: String) {
            for s in segments ?? [] where fixed[find(s.group)] == nil { fixed[find(s.group)] = why }
        }
        func union(_ a: Int, _ b: Int) {
            let (x, y) = (find(a), find(b))
            guard x != y else { return }
            parent[y] = x
            sources[x] += sources[y]
            if fixed[x] == nil { fixed[x] = fixed[y] }
        }
        func int(_ node: NodeSpec, _ key: String) -> Int? {
            if case let .int(v)? = node.attributes[key] { return v }
            return nil
        }
        // Per value (0: the input, i + 1: node i's output): its channel axis's segments, nil when untracked.
        var values: [[Segment]?] = [nil]
        let passThrough: Set<String> = ["relu", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid", "hardtanh", "gelu", "leakyrelu",
                                        "elu", "dropout", "maxpool2d", "avgpool2d", "adaptiveavgpool2d"]
        for (i, node) in graph.nodes.enumerated() {
            let spec = node.spec
            let inputs = node.inputs.map { values[$0] }
            let shapes = node.inputs.map { graph.shape(ofValue: $0, input: self.spec.inputShape) }
            let why = "it reaches node '\(spec.name)' (\(spec.op)), whose channels are not followed"
            var out: [Segment]?
            switch spec.op {
            case "conv2d":
                let groupsAttribute = int(spec, "groups") ?? 1
                let (cin, cout) = (int(spec, "in_channels") ?? 0, int(spec, "out_channels") ?? 0)
                if groupsAttribute == 1 {
                    let g = newGroup(cout, source: spec.name)
                    roles[i] = .source(group: g, input: inputs[0])
                    out = [Segment(group: g, count: cout, block: 1)]
                } else if groupsAttribute == cin, cin == cout, let input = inputs[0] {
                    roles[i] = .follower(input: input)
                    out = input
                } else {
                    fix(inputs[0], why)
                }
            case "linear":
                let cout = int(spec, "out_features") ?? 0
                if shapes[0].count == 1 {
                    let g = newGroup(cout, source: spec.name)
                    roles[i] = .source(group: g, input: inputs[0])
                    out = [Segment(group: g, count: cout, block: 1)]
                } else {
                    fix(inputs[0], why)
                }
            case "batchnorm2d", "batchnorm1d":
                if let input = inputs[0] {
                    roles[i] = .follower(input: input)
                    out = input
                }
            case let op where passThrough.contains(op):
                if [1, 3].contains(shapes[0].count) { out = inputs[0] } else { fix(inputs[0], why) }
            case "flatten":
                let start = int(spec, "start_dim") ?? 1, end = int(spec, "end_dim") ?? -1
                let rank = shapes[0].count
                if rank == 1 {
                    out = inputs[0]
                } else if rank == 3, start == 1, end == -1 || end == 3, let input = inputs[0] {
                    let plane = shapes[0][1] * shapes[0][2]
                    out = input.map { Segment(group: $0.group, count: $0.count, block: $0.block * plane) }
                } else {
                    fix(inputs[0], why)
                }
            case "add", "sub", "mul":
                // Same layout on the channel axis; images may broadcast over the pixels (a squeeze-and-
                // excitation scale [C, 1, 1] times the features [C, H, W]).
                let broadcastable = shapes.count == 2 && shapes[0].count == shapes[1].count && shapes[0].first == shapes[1].first
                    && (shapes[0] == shapes[1] || (shapes[0].count == 3 && zip(shapes[0].dropFirst(), shapes[1].dropFirst()).allSatisfy { $0 == $1 || $0 == 1 || $1 == 1 }))
                if broadcastable, [1, 3].contains(shapes[0].count), let a = inputs[0], let b = inputs[1],
                   a.count == b.count, zip(a, b).allSatisfy({ $0.count == $1.count && $0.block == $1.block }) {
                    for (x, y) in zip(a, b) { union(x.group, y.group) }
                    out = shapes[0].reduce(1, *) >= shapes[1].reduce(1, *) ? a : b
                } else {
                    for input in inputs { fix(input, "node '\(spec.name)' (\(spec.op)) combines it with a value of another layout") }
                }
            case "cat":
                let rank = shapes[0].count
                let dim = int(spec, "dim") ?? 1
                if [1, 3].contains(rank), dim == 1 || dim == -rank, inputs.allSatisfy({ $0 != nil }) {
                    out = inputs.flatMap { $0! }
                } else {
                    for input in inputs { fix(input, why) }
                }
            default:
                for input in inputs { fix(input, why) }
            }
            values.append(out)
        }
        fix(values[graph.output], "they are the model's outputs")
        // Number the root groups 0, 1, … and rewrite the segments and roles with those numbers.
        var number: [Int: Int] = [:]
        let position = Dictionary(uniqueKeysWithValues: spec.nodes.enumerated().map { ($1.name, $0) })
        for g in parent.indices where find(g) == g {
            number[g] = groups.count
            groups.append(Group(size: sizes[g], sources: sources[g].sorted { position[$0]! < position[$1]! }, fixedBecause: fixed[g]))
        }
        func renumber(_ s: [Segment]?) -> [Segment]? { s?.map { Segment(group: number[find($0.group)]!, count: $0.count, block: $0.block) } }
        for (i, role) in roles {
            switch role {
            case let .source(g, input): roles[i] = .source(group: number[find(g)]!, input: renumber(input))
            case let .follower(input): roles[i] = .follower(input: renumber(input)!)
            }
        }
    }

    /// The groups that can change.
    public var changeable: [Int] { groups.indices.filter { !groups[$0].isFixed } }

    /// `spec` with each group `g` of `keep` reduced to `keep[g].count` channels (groups absent keep all):
    /// every source's outputs, every reader's inputs and every follower's features resized.
    /// - Throws: `TensorError` when a keep list names a fixed group, is empty, or holds an index outside the group.
    public func resized(keep: [Int: [Int]]) throws -> ModelSpec {
        try check(keep)
        func kept(_ g: Int) -> Int { keep[g]?.count ?? groups[g].size }
        func width(_ segments: [Segment]) -> Int { segments.reduce(0) { $0 + kept($1.group) * $1.block } }
        var out = spec
        for (i, role) in roles {
            var node = out.nodes[i]
            switch (node.op, role) {
            case let ("conv2d", .source(g, input)):
                node.attributes["out_channels"] = .int(kept(g))
                if let input { node.attributes["in_channels"] = .int(width(input)) }
            case let ("linear", .source(g, input)):
                node.attributes["out_features"] = .int(kept(g))
                if let input { node.attributes["in_features"] = .int(width(input)) }
            case let ("conv2d", .follower(input)):
                for key in ["in_channels", "out_channels", "groups"] { node.attributes[key] = .int(width(input)) }
            case let (_, .follower(input)):
                node.attributes["num_features"] = .int(width(input))
            default:
                throw TensorError("channel groups: node '\(node.name)' (\(node.op)) has no resizing rule")
            }
            out.nodes[i] = node
        }
        try out.validate()
        return out
    }

    /// The state dict of `resized(keep:)` from the full model's `state`: each source's kept filters
    /// (weight and bias, axis 0), each reader's kept input channels or Linear columns (weight axis 1),
    /// each follower's kept features (axis 0 of all its tensors but counters).
    /// - Throws: `TensorError` as `resized`, or when a tensor of `state` is missing or of an unexpected shape.
    public func sliced(_ state: [String: HostTensor], keep: [Int: [Int]]) throws -> [String: HostTensor] {
        try check(keep)
        func indices(_ segments: [Segment]) -> [Int] {
            var result: [Int] = [], offset = 0
            for s in segments {
                for c in keep[s.group] ?? Array(0..<s.count) { result += (offset + c * s.block)..<(offset + (c + 1) * s.block) }
                offset += s.count * s.block
            }
            return result
        }
        var out = state
        func slice(_ name: String, axis: Int, _ index: [Int], size: Int) throws {
            guard let t = out[name] else { throw TensorError("channel groups: the state has no tensor '\(name)'") }
            guard t.shape.count > axis, t.shape[axis] == size else {
                throw TensorError("channel groups: tensor '\(name)' of shape \(t.shape) does not have \(size) entries on axis \(axis)")
            }
            out[name] = t.selecting(index, axis: axis)
        }
        for (i, role) in roles {
            let name = spec.nodes[i].name
            switch role {
            case let .source(g, input):
                let own = keep[g] ?? Array(0..<groups[g].size)
                try slice(name + ".weight", axis: 0, own, size: groups[g].size)
                if out[name + ".bias"] != nil { try slice(name + ".bias", axis: 0, own, size: groups[g].size) }
                if let input { try slice(name + ".weight", axis: 1, indices(input), size: input.reduce(0) { $0 + $1.count * $1.block }) }
            case let .follower(input):
                let size = input.reduce(0) { $0 + $1.count * $1.block }
                for key in out.keys where key.hasPrefix(name + ".") && !Model.ignoredTensorSuffixes.contains(where: key.hasSuffix) {
                    try slice(key, axis: 0, indices(input), size: size)
                }
            }
        }
        return out
    }

    /// The input channels or columns each reader of a group reads, as (tensor name, axis-1 indices) —
    /// zeroing them in a full model gives the outputs of the model with those channels removed.
    public func readerColumns(removing keep: [Int: [Int]]) throws -> [(name: String, columns: [Int])] {
        try check(keep)
        var result: [(String, [Int])] = []
        for (i, role) in roles.sorted(by: { $0.key < $1.key }) {
            guard case let .source(_, input?) = role else { continue }
            var columns: [Int] = [], offset = 0
            for s in input {
                let kept = Set(keep[s.group] ?? Array(0..<s.count))
                for c in 0..<s.count where !kept.contains(c) { columns += (offset + c * s.block)..<(offset + (c + 1) * s.block) }
                offset += s.count * s.block
            }
            if !columns.isEmpty { result.append((spec.nodes[i].name + ".weight", columns)) }
        }
        return result
    }

    private func check(_ keep: [Int: [Int]]) throws {
        for (g, list) in keep {
            guard groups.indices.contains(g) else { throw TensorError("channel groups: no group \(g)") }
            if let why = groups[g].fixedBecause { throw TensorError("channel groups: the channels of \(groups[g].sources.joined(separator: ", ")) cannot change: \(why)") }
            guard !list.isEmpty, list.allSatisfy({ (0..<groups[g].size).contains($0) }), Set(list).count == list.count else {
                throw TensorError("channel groups: group \(g) keeps \(list.count) channels; give 1 to \(groups[g].size) distinct indices below \(groups[g].size)")
            }
        }
    }
}

extension HostTensor {
    /// The entries at `index` along `axis`, in that order.
    func selecting(_ index: [Int], axis: Int) -> HostTensor {
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *), n = shape[axis]
        var values: [Float] = []
        values.reserveCapacity(outer * index.count * inner)
        for o in 0..<outer {
            for j in index { values += self.values[((o * n + j) * inner)..<((o * n + j + 1) * inner)] }
        }
        var s = shape
        s[axis] = index.count
        return HostTensor(shape: s, values: values)
    }
}
