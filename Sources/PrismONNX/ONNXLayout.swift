import Foundation
import PrismFormats
import PrismGraph

// The ONNX layout, matrix-product, reduction and normalization ops on graph values: Transpose,
// Reshape, Flatten, Squeeze, Unsqueeze, Gather, Slice and Split (through views, see ONNXViews.swift),
// MatMul of two values, Softmax and LogSoftmax over any axis, ReduceMean/ReduceSum/ReduceMax,
// LayerNormalization and Gelu; and element-wise and last-axis ops applied to views.

/// The ONNX ops that apply element by element (with at most constant operands of one element), so a
/// view's Prism value can take them whatever its layout.
private let elementwiseOps: Set<String> = [
    "Relu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "LeakyRelu", "Elu", "Gelu", "Erf", "Sqrt", "Neg", "Exp", "Log",
    "Reciprocal", "Abs", "Identity", "Dropout", "Clip", "Add", "Sub", "Mul", "Div", "Pow",
]

extension ONNXImporter {
    /// The value of a layout, product, reduction or normalization node, or of an op applied to a
    /// view; nil when the general translation takes `node`.
    mutating func translateLayout(_ node: Onnx_NodeProto, _ inputs: [ONNXValue?], _ site: Site) throws -> ONNXValue? {
        let op = node.opType
        func value(_ i: Int) -> ONNXValue? { i < inputs.count ? inputs[i] : nil }
        func ints(_ i: Int, _ what: String) throws -> [Int]? {
            guard case let .int(c)? = value(i) else { return nil }
            return try c.values.map { guard let v = $0.value else { throw site.fail("its \(what) depend on the batch size") }; return v }
        }
        func normalized(_ axis: Int, rank: Int) throws -> Int {
            let a = axis < 0 ? axis + rank : axis
            guard a >= 0, a < rank else { throw site.fail("axis \(axis) is outside rank \(rank)") }
            return a
        }
        if let through = try throughView(node, inputs, site) { return through }
        switch op {
        case "Transpose":
            guard let v = view(value(0)) else { return nil }
            let rank = v.groups.count
            let perm = try Attributes(node, site: site, known: ["perm"]).ints("perm") ?? Array((0..<rank).reversed())
            guard perm.count == rank, perm.sorted() == Array(0..<rank) else { throw site.fail("perm \(perm) is not a permutation of \(rank) axes") }
            return settle(ONNXView(node: v.node, groups: perm.map { v.groups[$0] }))
        case "Reshape":
            guard let v = view(value(0)) else { return nil }
            let allowZero = try Attributes(node, site: site, known: ["allowzero"]).int("allowzero", 0) != 0
            guard case let .int(target)? = value(1), target.shape.count == 1 else { throw site.fail("the target shape is not a constant; Prism needs it known at import") }
            return try reshapeView(v, target: target.values, allowZero: allowZero, node: node, site: site)
        case "Flatten":
            guard let v = view(value(0)) else { return nil }
            let given = try Attributes(node, site: site, known: ["axis"]).int("axis", 1), rank = v.groups.count
            let axis = given < 0 ? given + rank : given
            guard axis >= 0, axis <= rank else { throw site.fail("axis \(given) is outside rank \(rank)") }
            if axis == 1, case .node? = value(0) { return nil }
            return settle(ONNXView(node: v.node, groups: [Array(v.groups[..<axis].joined()), Array(v.groups[axis...].joined())]))
        case "Unsqueeze":
            guard let v = view(value(0)) else { return nil }
            _ = try Attributes(node, site: site, known: [])
            guard let axes = try ints(1, "axes") else { throw site.fail("needs its axes as the second input (opset 13)") }
            let rank = v.groups.count + axes.count
            var groups = v.groups
            for a in try axes.map({ try normalized($0, rank: rank) }).sorted() { groups.insert([], at: a) }
            return settle(ONNXView(node: v.node, groups: groups))
        case "Squeeze":
            guard var v = view(value(0)) else { return nil }
            _ = try Attributes(node, site: site, known: [])
            let sizes = sizes(v)
            let axes = try ints(1, "axes").map { try $0.map { try normalized($0, rank: sizes.count) } }
                ?? sizes.indices.filter { sizes[$0] == .fixed(1) }
            for a in Set(axes).sorted(by: >) {
                guard sizes[a] == .fixed(1) else { throw site.fail("axis \(a) of size \(sizes[a]) cannot be squeezed") }
                v = try dropAxis(v, a, name: name(for: node), site: site)
            }
            return settle(v)
        case "Gather":
            guard var v = view(value(0)), case let .int(index)? = value(1) else { return nil }
            let axis = try normalized(try Attributes(node, site: site, known: ["axis"]).int("axis", 0), rank: v.groups.count)
            guard index.values.count == 1, let i = index.values[0].value else {
                throw site.fail("gathers \(index.values.count) entries; Prism imports Gather of one constant index from a graph value")
            }
            let a = try singleAxis(v, axis, site: site), size = axisSize(v.node, a)
            guard (-size..<size).contains(i) else { throw site.fail("index \(i) is outside an axis of \(size)") }
            let start = i < 0 ? i + size : i
            v = try narrowView(v, axis: a, range: start..<(start + 1), name: name(for: node), site: site)
            if index.shape.isEmpty { v = try dropAxis(v, axis, name: name(for: node), site: site) }
            return settle(v)
        case "Slice":
            guard var v = view(value(0)) else { return nil }
            _ = try Attributes(node, site: site, known: [])
            guard let starts = try ints(1, "starts"), let ends = try ints(2, "ends") else { throw site.fail("needs constant starts and ends") }
            let axes = try ints(3, "axes") ?? Array(0..<starts.count), steps = try ints(4, "steps") ?? starts.map { _ in 1 }
            guard starts.count == ends.count, axes.count == starts.count, steps.count == starts.count else {
                throw site.fail("starts, ends, axes and steps differ in length")
            }
            for (k, axis) in axes.enumerated() {
                let a = try normalized(axis, rank: v.groups.count)
                if steps[k] != 1 {
                    v = try stridedSlice(v, axis: a, start: starts[k], end: ends[k], step: steps[k], node: node, site: site)
                    continue
                }
                // [0, end of any size) keeps the whole axis, the batch's too.
                if starts[k] == 0, ends[k] >= Int(Int32.max) { continue }
                let n = try groupSize(v, a, site: site)
                func clamp(_ x: Int) -> Int { min(max(x < 0 ? x + n : x, 0), n) }
                let (s, e) = (clamp(starts[k]), clamp(ends[k]))
                guard s < e else { throw site.fail("the slice [\(starts[k]), \(ends[k])) of an axis of \(n) is empty") }
                v = try narrowGroup(v, axis: a, range: s..<e, name: name(for: node), site: site)
            }
            return settle(v)
        case "MatMul":
            guard let a = view(value(0)), let b = view(value(1)) else { return nil }
            _ = try Attributes(node, site: site, known: [])
            let x = try materialize(a, site: site, for: node), y = try materialize(b, site: site, for: node)
            return try emit(MatmulSchema.kind, inputs: [x, y], name: name(for: node), site: site)
        case "Softmax", "LogSoftmax":
            guard let v = view(value(0)) else { return nil }
            let x = try materialize(v, site: site, for: node), shape = shapes[x] ?? []
            let axis = try normalized(try Attributes(node, site: site, known: ["axis"]).int("axis", -1), rank: shape.count + 1)
            guard axis >= 1 else { throw site.fail("axis 0 is the batch; Prism imports \(op) over an axis after the batch") }
            return try emit(op == "Softmax" ? SoftmaxSchema.kind : LogSoftmaxSchema.kind, axis == shape.count ? [:] : ["dim": .int(axis)],
                            inputs: [x], name: name(for: node), site: site)
        case "ReduceMean", "ReduceSum", "ReduceMax":
            guard let v = view(value(0)) else { return nil }
            let a = try Attributes(node, site: site, known: ["axes", "keepdims", "noop_with_empty_axes"])
            let rank = v.groups.count
            let given = try ints(1, "axes") ?? a.ints("axes")
            if given?.isEmpty ?? true, try a.int("noop_with_empty_axes", 0) != 0 { return value(0) }
            let axes = try (given?.isEmpty ?? true ? Array(0..<rank) : given!).map { try normalized($0, rank: rank) }
            let keep = try a.int("keepdims", 1) != 0
            // Global average pooling of [N, C, H, W] stays the pooling op (which LRP explains).
            if op == "ReduceMean", rank == 4, Set(axes) == [2, 3], case .node? = value(0) { return nil }
            guard !axes.contains(0) else { throw site.fail("axes \(axes) include the batch; Prism imports \(op) over axes after the batch") }
            let x = try materialize(v, site: site, for: node)
            let kind = op == "ReduceMean" ? MeanKind.name : op == "ReduceSum" ? SumKind.name : AmaxKind.name
            return try emit(kind, ["dim": .array(axes.sorted().map { .int($0) }), "keepdim": .bool(keep)], inputs: [x], name: name(for: node), site: site)
        case "LayerNormalization":
            guard let v = view(value(0)) else { return nil }
            let x = try materialize(v, site: site, for: node), shape = shapes[x] ?? []
            let a = try Attributes(node, site: site, known: ["axis", "epsilon", "stash_type"])
            let axis = try normalized(try a.int("axis", -1), rank: shape.count + 1)
            guard axis == shape.count else { throw site.fail("axis \(axis) of a rank-\(shape.count + 1) value; Prism imports LayerNormalization over the last axis") }
            guard case let .float(scale)? = value(1) else { throw site.fail("its scale (input 1) must be a float32 initializer or constant") }
            let width = shape[shape.count - 1]
            var bias = HostTensor(shape: [width], values: [Float](repeating: 0, count: width))
            if let b = value(2) {
                guard case let .float(t) = b else { throw site.fail("its bias (input 2) must be a float32 initializer or constant") }
                bias = t
            }
            let weightName = node.input.count > 1 ? node.input[1] : nil
            return try emit(LayerNormSchema.kind, ["normalized_shape": .int(width), "eps": decimal(try a.float("epsilon", 1e-5))], inputs: [x],
                            parameters: ["weight": HostTensor(shape: [scale.values.count], values: scale.values),
                                         "bias": HostTensor(shape: [bias.values.count], values: bias.values)],
                            name: name(for: node, weight: weightName), site: site)
        case "Gelu":
            guard let v = view(value(0)) else { return nil }
            let x = try materialize(v, site: site, for: node)
            let approximate = try Attributes(node, site: site, known: ["approximate"]).string("approximate") ?? "none"
            guard approximate == "none" || approximate == "tanh" else { throw site.fail("approximate '\(approximate)'; Prism imports 'none' and 'tanh'") }
            return try emit(GELUSchema.kind, approximate == "none" ? [:] : ["approximate": .string(approximate)], inputs: [x], name: name(for: node), site: site)
        default:
            break
        }
        // Any other op reads its views laid out plainly (or refuses them).
        guard inputs.contains(where: { if case .view? = $0 { true } else { false } }) else { return nil }
        var plain = inputs
        for (k, input) in inputs.enumerated() {
            if case let .view(w)? = input { plain[k] = .node(try materialize(w, site: site, for: node)) }
        }
        return try translate(node, plain, site)
    }

    /// An element-wise or last-axis op whose input is a view, run on the view's Prism value and
    /// seen through the same view; nil when no input is a view or the op needs the layout.
    mutating func throughView(_ node: Onnx_NodeProto, _ inputs: [ONNXValue?], _ site: Site) throws -> ONNXValue? {
        guard let i = inputs.firstIndex(where: { if case .view? = $0 { true } else { false } }), case let .view(v)? = inputs[i] else { return nil }
        let op = node.opType
        var laid = v, substituted = inputs
        func scalar(_ value: ONNXValue?) -> Bool {
            switch value {
            case let .float(t)?: t.values.count <= 1
            case let .int(c)?: c.values.count <= 1
            case nil: true
            default: false
            }
        }
        let others = inputs.indices.filter { $0 != i }
        if elementwiseOps.contains(op), others.allSatisfy({ scalar(inputs[$0]) }) {
            // Applies as it is.
        } else if elementwiseOps.contains(op), others.count == 1, case let .view(w)? = inputs[others[0]], w.groups == v.groups,
                  shapes[w.node] == shapes[v.node] {
            substituted[others[0]] = .node(w.node)
        } else if ["MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "LayerNormalization", "Softmax", "LogSoftmax"].contains(op),
                  i == 0 || (i == 1 && (op == "Add" || op == "Mul")), lastAxisOnly(node, inputs, view: i, rank: v.groups.count) {
            laid = try lastAxisLaid(v, site: site, for: node)
        } else {
            return nil
        }
        substituted[i] = .node(laid.node)
        let made = try translate(node, substituted, site)
        guard case let .node(p) = made, let shape = shapes[p], shape.count == shapes[laid.node]?.count else { return made }
        return settle(ONNXView(node: p, groups: laid.groups))
    }

    /// Whether `node` works on the last axis of its input `view` alone (its other inputs constants
    /// over that axis).
    func lastAxisOnly(_ node: Onnx_NodeProto, _ inputs: [ONNXValue?], view: Int, rank: Int) -> Bool {
        for (k, input) in inputs.enumerated() where k != view {
            switch (node.opType, input) {
            case (_, nil), ("LayerNormalization", .float?), ("Gemm", .float?): continue
            case let ("MatMul", .float(t)?): if t.shape.count != 2 { return false }
            case let (_, .float(t)?): if !t.shape.dropLast().allSatisfy({ $0 == 1 }) { return false }
            default: return false
            }
        }
        if ["Softmax", "LogSoftmax", "LayerNormalization"].contains(node.opType) {
            let axis = node.attribute.first { $0.name == "axis" }.map { Int($0.i) } ?? -1
            return axis == -1 || axis == rank - 1
        }
        if node.opType == "Gemm" { return !node.attribute.contains { $0.name == "transA" && $0.i != 0 } }
        return true
    }

    /// A Reshape of a view to `target` (the batch, numbers, -1, and 0 for "keep" unless `allowZero`):
    /// the view regrouped, the Prism value reshaped only where an axis is split.
    mutating func reshapeView(_ v: ONNXView, target entries: [Dim], allowZero: Bool, node: Onnx_NodeProto, site: Site) throws -> ONNXValue {
        let current = sizes(v)
        let perExample = (shapes[v.node] ?? []).reduce(1, *)
        // The target as axis sizes.
        var target: [Dim?] = try entries.enumerated().map { i, entry in
            switch entry {
            case let .batch(k): return .batch(times: k)
            case .fixed(-1): return nil
            case .fixed(0) where !allowZero:
                guard i < current.count else { throw site.fail("target \(entries) copies axis \(i) of a rank-\(current.count) value") }
                return current[i]
            case let .fixed(n):
                guard n > 0 else { throw site.fail("target \(entries) has an empty or negative size") }
                return .fixed(n)
            }
        }
        guard target.filter({ $0 == nil }).count <= 1 else { throw site.fail("target \(entries) leaves two sizes to infer") }
        let fixedProduct = target.reduce(1) { p, t in if case let .fixed(n)? = t { p * n } else if case let .batch(k)? = t { p * k } else { p } }
        let hasBatch = target.contains { if case .batch? = $0 { true } else { false } }
        if let hole = target.firstIndex(where: { $0 == nil }) {
            guard fixedProduct > 0, hasBatch || fixedBatch != nil || perExample % fixedProduct == 0 else {
                throw site.fail("cannot reshape \(current) to \(entries)")
            }
            // With the batch size fixed in the file, the inferred size counts it as a number.
            if hasBatch || fixedBatch != nil {
                let total = hasBatch ? perExample : (fixedBatch ?? 1) * perExample
                guard total % fixedProduct == 0 else { throw site.fail("cannot reshape \(current) to \(entries)") }
                target[hole] = .fixed(total / fixedProduct)
            } else {
                target[hole] = .batch(times: perExample / fixedProduct)
            }
        }
        // Walk the Prism axes in ONNX element order, cutting them into the target's axes.
        let order = v.order
        var parts: [Int: [Int]] = [:]       // Prism axis → the sizes it is split into
        var groups: [[(axis: Int, part: Int)]] = []
        var k = 0, left = order.first.map { axisSize(v.node, $0) } ?? 0
        var partIndex = 0
        func advance() { k += 1; partIndex = 0; left = k < order.count ? axisSize(v.node, order[k]) : 0 }
        for size in target.map({ $0! }) {
            var group: [(axis: Int, part: Int)] = []
            var need: Int, batchNeeded: Bool
            switch size {
            case let .fixed(n):
                if let b = fixedBatch, k < order.count, order[k] == 0, n % b == 0 { (need, batchNeeded) = (n / b, true) } else { (need, batchNeeded) = (n, false) }
            case let .batch(times): (need, batchNeeded) = (times, true)
            }
            while need > 1 || batchNeeded {
                guard k < order.count else { throw site.fail("cannot reshape \(current) to \(entries)") }
                let axis = order[k]
                if axis == 0 {
                    // A batch size fixed in the file is a number here.
                    if !batchNeeded, let b = fixedBatch, need % b == 0 { need /= b } else {
                        guard batchNeeded else { throw site.fail("target \(entries) of a value of shape \(current) does not keep the batch on an axis of its own or merged whole") }
                    }
                    group.append((0, 0)); batchNeeded = false; advance(); continue
                }
                if left <= need, need % left == 0 {
                    group.append((axis, partIndex)); parts[axis, default: []].append(left); need /= left; advance()
                } else if left > need, left % need == 0 {
                    group.append((axis, partIndex)); parts[axis, default: []].append(need); left /= need; partIndex += 1; need = 1
                } else {
                    throw site.fail("target \(entries) of a value of shape \(current) splits an axis unevenly")
                }
            }
            // Axes of size 1 join the axis before them, unless it holds the batch and another follows.
            let last = groups.count == target.count - 1
            while k < order.count, order[k] != 0, left == 1, last || !group.contains(where: { $0.axis == 0 }) { group.append((order[k], partIndex)); parts[order[k], default: []].append(1); advance() }
            groups.append(group)
        }
        guard k == order.count else { throw site.fail("cannot reshape \(current) to \(entries)") }
        // Split the Prism axes cut in several parts.
        let shape = shapes[v.node] ?? []
        var holder = v.node, index: [Int: [Int]] = [0: [0]], next = 1, perAxis: [Int] = []
        for axis in 1...max(shape.count, 1) where axis <= shape.count {
            let p = parts[axis] ?? [shape[axis - 1]]
            index[axis] = Array(next..<(next + p.count))
            next += p.count
            perAxis += p
        }
        if perAxis != shape {
            let made = try emit(ReshapeSchema.kind, ["shape": .array(perAxis.map { .int($0) })], inputs: [v.node], name: name(for: node), site: site)
            guard case let .node(p) = made else { throw site.fail("cannot reshape \(current) to \(entries)") }
            holder = p
        }
        return settle(ONNXView(node: holder, groups: groups.map { $0.map { index[$0.axis]![$0.part] } }))
    }

    /// The outputs of a Split of a graph value: one narrow per output that is read.
    mutating func split(_ node: Onnx_NodeProto, _ inputs: [ONNXValue?], _ site: Site) throws -> [ONNXValue?] {
        guard let v = view(inputs.first ?? nil) else { throw site.fail("Prism imports Split of values computed from the model's input") }
        let a = try Attributes(node, site: site, known: ["axis", "num_outputs"])
        let rank = v.groups.count, given = try a.int("axis", 0)
        let axis = given < 0 ? given + rank : given
        let size = try groupSize(v, axis, site: site)
        var lengths: [Int]
        if inputs.count > 1, let splits = inputs[1] {
            guard case let .int(c) = splits, let fixed = Optional(c.values.compactMap(\.value)), fixed.count == c.values.count else {
                throw site.fail("its split sizes are not constant numbers")
            }
            lengths = fixed
        } else {
            let n = try a.int("num_outputs", node.output.count)
            guard n > 0 else { throw site.fail("num_outputs \(n) is not positive") }
            let chunk = (size + n - 1) / n
            lengths = (0..<n).map { max(0, min(chunk, size - $0 * chunk)) }
        }
        guard lengths.count == node.output.count, lengths.allSatisfy({ $0 > 0 }), lengths.reduce(0, +) == size else {
            throw site.fail("split sizes \(lengths) into \(node.output.count) outputs do not cover an axis of \(size)")
        }
        var start = 0, outputs: [ONNXValue?] = []
        for (name, length) in zip(node.output, lengths) {
            if !name.isEmpty, uses[name, default: 0] > 0 {
                outputs.append(settle(try narrowGroup(v, axis: axis, range: start..<(start + length), name: self.name(for: node), site: site)))
            } else {
                outputs.append(nil)
            }
            start += length
        }
        return outputs
    }
}

