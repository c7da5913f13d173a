import Foundation

/// Which weights magnitude pruning ranks together.
public enum PruningScope: String, Codable, Sendable, CaseIterable {
    /// All prunable weights at once (`torch.nn.utils.prune.global_unstructured` with L1Unstructured):
    /// layers end with different sparsities.
    case global
    /// Each weight tensor alone (`prune.l1_unstructured` per layer): every layer ends at the amount.
    case layer
}

/// What pruning removed from one weight tensor.
public struct PrunedTensor: Codable, Equatable, Sendable {
    public var name: String
    public var count: Int
    public var zeros: Int
    public var sparsity: Double { count == 0 ? 0 : Double(zeros) / Double(count) }
}

extension Model {
    /// The suffixes of a pruned parameter's tensors in a state dict, as `torch.nn.utils.prune` names
    /// them: `conv1.weight_orig` and `conv1.weight_mask`.
    public static let prunedOriginalSuffix = "_orig"
    public static let pruningMaskSuffix = "_mask"

    /// The weights magnitude pruning considers: every weight of rank 2 or more (Linear, convolution,
    /// transposed convolution, attention projections) — not biases, normalization scales or embeddings' positions.
    public var prunableWeights: [(name: String, tensor: Tensor)] {
        namedParameters.filter { $0.name.hasSuffix(".weight") && $0.tensor.rank >= 2 }
    }

    /// L1 (magnitude) unstructured pruning: zeroes the `amount` fraction of the prunable weights with
    /// the smallest |w| — per tensor (`.layer`: ⌊amount · n⌉ of each, rounded as torch's
    /// `_compute_nparams_toprune` rounds, with Python's `round`: halves to even) or over all of them (`.global`: ⌊amount · total⌉) — and keeps a mask per
    /// tensor, so training keeps the pruned weights at zero (`applyMasks`) and the model file holds
    /// `NAME_orig` and `NAME_mask` as `torch.nn.utils.prune` does. Weights pruned before count as |w| = 0,
    /// so they stay pruned: `amount` is the sparsity afterwards, not a fraction of what remains.
    /// Ties in |w| are broken by position (the first goes first).
    /// - Returns: each prunable tensor's count and zeros.
    /// - Throws: `TensorError` for an amount outside [0, 1] or a model without prunable weights.
    @discardableResult
    public func prune(amount: Double, scope: PruningScope) throws -> [PrunedTensor] {
        guard amount >= 0, amount <= 1, amount.isFinite else { throw TensorError("prune: amount \(amount) is outside [0, 1]") }
        let weights = prunableWeights
        guard !weights.isEmpty else { throw TensorError("prune: the model has no weights of rank 2 or more to prune") }
        var values = try weights.map { try $0.tensor.toArray() }
        // Weights pruned already are zero whatever their storage says.
        for (i, w) in weights.enumerated() {
            if let mask = masks[w.name] {
                let m = try mask.toArray()
                for j in values[i].indices where m[j] == 0 { values[i][j] = 0 }
            }
        }
        var keep = values.map { [Float](repeating: 1, count: $0.count) }
        /// Marks the `k` smallest |w| among `entries` (tensor, index) as pruned.
        func pruneSmallest(_ k: Int, of entries: [(Int, Int)]) {
            let order = entries.sorted { a, b in
                let (x, y) = (abs(values[a.0][a.1]), abs(values[b.0][b.1]))
                return x != y ? x < y : (a.0, a.1) < (b.0, b.1)
            }
            for (t, j) in order.prefix(k) { keep[t][j] = 0 }
        }
        switch scope {
        case .layer:
            for t in values.indices {
                pruneSmallest(Int((amount * Double(values[t].count)).rounded(.toNearestOrEven)), of: values[t].indices.map { (t, $0) })
            }
        case .global:
            let all = values.indices.flatMap { t in values[t].indices.map { (t, $0) } }
            pruneSmallest(Int((amount * Double(all.count)).rounded(.toNearestOrEven)), of: all)
        }
        var report: [PrunedTensor] = []
        for (t, w) in weights.enumerated() {
            let mask = try Tensor(keep[t], shape: w.tensor.shape, engine: engine)
            masks[w.name] = mask
            report.append(PrunedTensor(name: w.name, count: keep[t].count, zeros: keep[t].reduce(0) { $0 + ($1 == 0 ? 1 : 0) }))
        }
        try applyMasks()
        return report
    }

    /// Multiplies every masked parameter by its mask, on the device (after each optimizer step, so
    /// pruned weights stay zero while the others train).
    public func applyMasks() throws {
        guard !masks.isEmpty else { return }
        let byName = Dictionary(namedParameters.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        for (name, mask) in masks {
            guard let parameter = byName[name] else { continue }
            let masked = try engine.noGrad { try parameter * mask }
            _ = try parameter.storage.copy(from: masked.storage)
        }
    }

    /// Drops the masks (`torch.nn.utils.prune.remove`): the pruned weights stay zero, the model file
    /// holds plain `NAME` tensors again.
    public func finalizePruning() {
        masks = [:]
    }

    /// Splits a state dict's pruned parameters (`NAME_orig` + `NAME_mask`, or `NAME` + `NAME_mask`)
    /// into `NAME` = weights · mask and the masks.
    /// - Throws: `DataError` naming the tensor for a mask without weights, of another shape, or with
    ///   values other than 0 and 1.
    static func separatingMasks(_ tensors: [String: HostTensor], parameters: Set<String>,
                                source: String) throws -> (tensors: [String: HostTensor], masks: [String: HostTensor]) {
        var plain = tensors, masks: [String: HostTensor] = [:]
        for (key, mask) in tensors where key.hasSuffix(pruningMaskSuffix) {
            let name = String(key.dropLast(pruningMaskSuffix.count))
            guard parameters.contains(name) else { continue }
            let originalKey = name + prunedOriginalSuffix
            guard let weights = tensors[originalKey] ?? tensors[name] else {
                throw DataError("\(source): pruning mask \(displayed(key)) without \(displayed(originalKey)) or \(displayed(name))")
            }
            guard weights.shape == mask.shape else {
                throw DataError("\(source): pruning mask \(displayed(key)) has shape \(mask.shape), its weights \(weights.shape)")
            }
            guard mask.values.allSatisfy({ $0 == 0 || $0 == 1 }) else {
                throw DataError("\(source): pruning mask \(displayed(key)) holds values other than 0 and 1")
            }
            if tensors[originalKey] != nil, tensors[name] != nil {
                throw DataError("\(source): both \(displayed(originalKey)) and \(displayed(name)) for the pruned \(displayed(name))")
            }
            plain[name] = HostTensor(shape: weights.shape, values: zip(weights.values, mask.values).map { $1 == 0 ? 0 : $0 })
            plain[key] = nil
            plain[originalKey] = nil
            masks[name] = mask
        }
        return (plain, masks)
    }
}
