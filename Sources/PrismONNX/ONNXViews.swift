import Foundation
import PrismFormats
import PrismGraph

// Values whose batch axis moves. PyTorch's exports of attention transpose the batch away from the
// first axis and merge it with the heads ([N, T, D] → [T, N, D] → [T, N·H, d] → [N·H, T, d]), while
// a Prism value always keeps the batch first. Such layout changes are therefore not emitted as they
// come: a Transpose, Reshape, Squeeze or Unsqueeze of a value makes a view (`ONNXView`) of a Prism
// value, and nodes are emitted only where an op needs its input laid out (the batch alone on the
// first axis, or the op's axis last and free of the batch). An op that would need the batch
// elsewhere is refused.

/// An ONNX value that is a Prism value seen through a transpose and a reshape: ONNX axis i is the
/// Prism axes `groups[i]` of `node` merged, major first (axis 0 the batch, axis k the example's
/// axis k − 1); an empty group is an axis of size 1. Every Prism axis lies in one group.
struct ONNXView: Equatable {
    var node: String
    var groups: [[Int]]

    /// Whether the view is the Prism value itself.
    var isIdentity: Bool { groups.enumerated().allSatisfy { $0.element == [$0.offset] } }
    /// The Prism axes in the ONNX value's element order.
    var order: [Int] { groups.flatMap { $0 } }
}

extension ONNXImporter {
    /// The Prism value of `value` as a view (the identity for a plain value); nil for a constant.
    func view(_ value: ONNXValue?) -> ONNXView? {
        switch value {
        case let .node(name)?: return ONNXView(node: name, groups: (0...(shapes[name]?.count ?? 0)).map { [$0] })
        case let .view(v)?: return v
        default: return nil
        }
    }

    /// A view as an import value: the Prism value itself when the view is the identity.
    func settle(_ v: ONNXView) -> ONNXValue { v.isIdentity ? .node(v.node) : .view(v) }

    /// The size of Prism axis `axis` of `node` (0 for the batch).
    func axisSize(_ node: String, _ axis: Int) -> Int { axis == 0 ? 0 : shapes[node]?[axis - 1] ?? 0 }

    /// The ONNX shape of a view.
    func sizes(_ v: ONNXView) -> [Dim] {
        v.groups.map { group in
            let factor = group.filter { $0 != 0 }.reduce(1) { $0 * axisSize(v.node, $1) }
            return group.contains(0) ? .batch(times: factor) : .fixed(factor)
        }
    }

    /// The view's Prism value permuted so that its axes follow `order` (a permutation of its axes,
    /// the batch first), the groups renumbered.
    mutating func permuteAxes(_ v: ONNXView, to order: [Int], name: String, site: Site) throws -> ONNXView {
        guard order != Array(order.indices) else { return v }
        let made = try emit(PermuteSchema.kind, ["dims": .array(order.map { .int($0) })], inputs: [v.node], name: name, site: site)
        guard case let .node(p) = made else { return v }
        var position = [Int](repeating: 0, count: order.count)
        for (k, axis) in order.enumerated() { position[axis] = k }
        return ONNXView(node: p, groups: v.groups.map { $0.map { position[$0] } })
    }

    /// The view's Prism value reshaped so that each group of consecutive axes listed in `merges`
    /// becomes one axis.
    mutating func mergeAxes(_ v: ONNXView, _ merges: [[Int]], name: String, site: Site) throws -> ONNXView {
        let runs = merges.filter { $0.count > 1 }
        guard !runs.isEmpty, let shape = shapes[v.node] else { return v }
        var newIndex: [Int: Int] = [0: 0], perExample: [Int] = [], k = 1
        var axis = 1
        while axis <= shape.count {
            if let run = runs.first(where: { $0.first == axis }) {
                perExample.append(run.reduce(1) { $0 * shape[$1 - 1] })
                for a in run { newIndex[a] = k }
                axis = run.last! + 1
            } else {
                perExample.append(shape[axis - 1])
                newIndex[axis] = k
                axis += 1
            }
            k += 1
        }
        // A merge of every axis after the batch is a flatten (which LRP passes through).
        let made = perExample.count == 1
            ? try emit(FlattenSchema.kind, inputs: [v.node], name: name, site: site)
            : try emit(ReshapeSchema.kind, ["shape": .array(perExample.map { .int($0) })], inputs: [v.node], name: name, site: site)
        guard case let .node(p) = made else { return v }
        var seen = Set<Int>()
        let groups = v.groups.map { group in group.compactMap { a -> Int? in
            let n = newIndex[a] ?? 0
            return seen.insert(n).inserted ? n : nil
        } }
        return ONNXView(node: p, groups: groups)
    }

    /// The name of a layout node (permute, reshape) emitted for `node`'s input: `node`'s name with
    /// `.layout`, so the node of `node`'s own op keeps the module's name (`fc1`).
    func layoutName(for node: Onnx_NodeProto) -> String {
        let base = name(for: node) + ".layout"
        var candidate = base, n = 1
        while shapes[candidate] != nil || nodes.contains(where: { $0.name == candidate }) {
            n += 1
            candidate = "\(base)_\(n)"
        }
        return candidate
    }

    /// The Prism value holding `v` with the batch alone first and the other axes in ONNX order
    /// (emitting the permute and reshape that takes).
    /// - Throws: `DataError` when the batch is not the view's first axis alone.
    mutating func materialize(_ v: ONNXView, site: Site, for node: Onnx_NodeProto) throws -> String {
        if v.isIdentity { return v.node }
        guard v.groups.first == [0] else {
            throw site.fail("reads a value of shape \(sizes(v)) whose batch is not alone on the first axis; Prism keeps the batch first")
        }
        var w = try permuteAxes(v, to: v.order, name: layoutName(for: node), site: site)
        w = try mergeAxes(w, w.groups, name: layoutName(for: node), site: site)
        // Axes of size 1 (empty groups) are inserted by a reshape to the ONNX shape.
        if w.groups.count != (shapes[w.node]?.count ?? 0) + 1 {
            let target = sizes(w).dropFirst().map { size -> JSONValue in if case let .fixed(n) = size { .int(n) } else { .int(-1) } }
            let made = try emit(ReshapeSchema.kind, ["shape": .array(target)], inputs: [w.node], name: layoutName(for: node), site: site)
            guard case let .node(p) = made else { return w.node }
            return p
        }
        return w.node
    }

    /// `v` with its last ONNX axis as the Prism value's last axis, alone (the batch moved first, the
    /// other axes in ONNX order), for an op over the last axis.
    /// - Throws: `DataError` when the last axis holds the batch or has size 1 by an unsqueeze.
    mutating func lastAxisLaid(_ v: ONNXView, site: Site, for node: Onnx_NodeProto) throws -> ONNXView {
        let rank = (shapes[v.node]?.count ?? 0)
        if v.groups.last == [rank] { return v }
        guard let last = v.groups.last, !last.isEmpty, !last.contains(0) else {
            throw site.fail("works on the last axis of a value of shape \(sizes(v)), which holds the batch; Prism keeps the batch apart")
        }
        let order = [0] + v.order.filter { $0 != 0 }
        var w = try permuteAxes(v, to: order, name: layoutName(for: node), site: site)
        if let tail = w.groups.last, tail.count > 1 { w = try mergeAxes(w, [tail], name: layoutName(for: node), site: site) }
        return w
    }

    /// A view whose group `axis` is one Prism axis (not the batch): that Prism axis.
    func singleAxis(_ v: ONNXView, _ axis: Int, site: Site) throws -> Int {
        guard v.groups.indices.contains(axis) else { throw site.fail("axis \(axis) is outside rank \(v.groups.count)") }
        guard v.groups[axis].count == 1, let a = v.groups[axis].first, a != 0 else {
            throw site.fail("axis \(axis) of a value of shape \(sizes(v)) is \(v.groups[axis].contains(0) ? "the batch's" : "a merge of axes"); Prism slices one axis after the batch")
        }
        return a
    }

    /// The size of ONNX axis `axis` of a view that does not hold the batch.
    func groupSize(_ v: ONNXView, _ axis: Int, site: Site) throws -> Int {
        guard v.groups.indices.contains(axis) else { throw site.fail("axis \(axis) is outside rank \(v.groups.count)") }
        guard !v.groups[axis].contains(0) else { throw site.fail("axis \(axis) of a value of shape \(sizes(v)) holds the batch; Prism slices axes after the batch") }
        return v.groups[axis].reduce(1) { $0 * axisSize(v.node, $1) }
    }

    /// The view with ONNX axis `axis` narrowed to `range`: its major Prism axis narrowed, which takes
    /// a range aligned to the size of the axes merged after it.
    mutating func narrowGroup(_ v: ONNXView, axis: Int, range: Range<Int>, name: String, site: Site) throws -> ONNXView {
        let size = try groupSize(v, axis, site: site)
        guard range != 0..<size else { return v }
        guard let major = v.groups[axis].first else { throw site.fail("cannot slice an axis of size 1 to \(range)") }
        let inner = v.groups[axis].dropFirst().reduce(1) { $0 * axisSize(v.node, $1) }
        guard range.lowerBound % inner == 0, range.upperBound % inner == 0 else {
            throw site.fail("slices \(range) of axis \(axis) of a value of shape \(sizes(v)), which merges axes of \(v.groups[axis].map { axisSize(v.node, $0) }) unevenly for it")
        }
        return try narrowView(v, axis: major, range: (range.lowerBound / inner)..<(range.upperBound / inner), name: name, site: site)
    }

    /// The view with Prism axis `axis` narrowed to `range` (a new Prism value, the groups kept).
    mutating func narrowView(_ v: ONNXView, axis: Int, range: Range<Int>, name: String, site: Site) throws -> ONNXView {
        if range == 0..<axisSize(v.node, axis) { return v }
        let made = try emit(NarrowSchema.kind, ["dim": .int(axis), "start": .int(range.lowerBound), "length": .int(range.count)],
                            inputs: [v.node], name: name, site: site)
        guard case let .node(p) = made else { return v }
        return ONNXView(node: p, groups: v.groups)
    }

    /// The view without ONNX axis `axis` (of size 1); its Prism axes (of size 1) are reshaped away.
    mutating func dropAxis(_ v: ONNXView, _ axis: Int, name: String, site: Site) throws -> ONNXView {
        var groups = v.groups
        let orphans = groups.remove(at: axis)
        guard !orphans.isEmpty, let shape = shapes[v.node] else { return ONNXView(node: v.node, groups: groups) }
        let kept = [0] + (1...max(shape.count, 1)).filter { $0 <= shape.count && !orphans.contains($0) }
        let made = try emit(ReshapeSchema.kind, ["shape": .array(kept.dropFirst().map { .int(shape[$0 - 1]) })], inputs: [v.node], name: name, site: site)
        guard case let .node(p) = made else { return v }
        return ONNXView(node: p, groups: groups.map { $0.map { kept.firstIndex(of: $0) ?? 0 } })
    }

    /// The view with ONNX axis `axis` (one Prism axis) sliced from `start` to `end` by `step` (≠ 1;
    /// negative steps run backwards), as ONNX's Slice clamps them: an `index_select` of the positions.
    mutating func stridedSlice(_ v: ONNXView, axis: Int, start: Int, end: Int, step: Int, node: Onnx_NodeProto, site: Site) throws -> ONNXView {
        guard step != 0 else { throw site.fail("step 0") }
        let a = try singleAxis(v, axis, site: site), n = axisSize(v.node, a)
        var positions: [Int] = []
        if step > 0 {
            func clamp(_ x: Int) -> Int { min(max(x < 0 ? x + n : x, 0), n) }
            positions = Array(stride(from: clamp(start), to: clamp(end), by: step))
        } else {
            func clamp(_ x: Int, _ low: Int, _ high: Int) -> Int { min(max(x < 0 ? x + n : x, low), high) }
            let e = end < -n ? -1 : clamp(end, -1, n - 1)
            positions = Array(stride(from: clamp(start, 0, n - 1), to: e, by: step))
        }
        guard !positions.isEmpty else { throw site.fail("the slice [\(start), \(end)) by \(step) of an axis of \(n) is empty") }
        if positions == Array(0..<n) { return v }
        let made = try emit(IndexSelectSchema.kind, ["dim": .int(a), "index": .array(positions.map { .int($0) })], inputs: [v.node], name: name(for: node), site: site)
        guard case let .node(p) = made else { return v }
        return ONNXView(node: p, groups: v.groups)
    }
}
