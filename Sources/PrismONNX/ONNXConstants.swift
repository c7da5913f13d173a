import Foundation
import PrismFormats
import PrismGraph

// Folding at import: `Constant` nodes and the shape arithmetic that PyTorch's exporters write around
// a `Reshape` (`x.view(x.size(0), -1)` becomes Shape → Gather → Unsqueeze → Concat → Reshape), on
// integer constants whose entries may be the batch size.

/// An ONNX node's attributes, refused unless the importer reads them.
struct Attributes {
    let map: [String: Onnx_AttributeProto]
    let site: Site

    /// - Throws: `DataError` naming the first attribute not in `known`.
    init(_ node: Onnx_NodeProto, site: Site, known: Set<String>) throws {
        var map: [String: Onnx_AttributeProto] = [:]
        for attribute in node.attribute {
            guard known.contains(attribute.name) else {
                let reads = known.isEmpty ? "reads no attributes" : "reads \(known.sorted().joined(separator: ", "))"
                throw site.fail("attribute '\(attribute.name)' is not supported; Prism's import of \(node.opType) \(reads)")
            }
            map[attribute.name] = attribute
        }
        (self.map, self.site) = (map, site)
    }

    func has(_ name: String) -> Bool { map[name] != nil }

    func int(_ name: String, _ fallback: Int) throws -> Int {
        guard let a = map[name] else { return fallback }
        guard a.type == .int || (a.type == .undefined && a.hasI) else { throw site.fail("attribute '\(name)' is not an integer") }
        guard (-Int64(Int32.max)...Int64(Int32.max)).contains(a.i) else { throw site.fail("attribute '\(name)' = \(a.i) is out of range") }
        return Int(a.i)
    }

    func ints(_ name: String) throws -> [Int]? {
        guard let a = map[name] else { return nil }
        guard a.type == .ints || (a.type == .undefined && !a.ints.isEmpty) else { throw site.fail("attribute '\(name)' is not a list of integers") }
        guard a.ints.allSatisfy({ (-Int64(Int32.max)...Int64(Int32.max)).contains($0) }) else { throw site.fail("attribute '\(name)' = \(a.ints) is out of range") }
        return a.ints.map { Int($0) }
    }

    func float(_ name: String, _ fallback: Float) throws -> Float {
        guard let a = map[name] else { return fallback }
        guard a.type == .float || (a.type == .undefined && a.hasF) else { throw site.fail("attribute '\(name)' is not a float") }
        guard a.f.isFinite else { throw site.fail("attribute '\(name)' = \(a.f) is not finite") }
        return a.f
    }

    func string(_ name: String) throws -> String? {
        guard let a = map[name] else { return nil }
        guard a.type == .string || (a.type == .undefined && a.hasS) else { throw site.fail("attribute '\(name)' is not a string") }
        return String(decoding: a.s, as: UTF8.self)
    }

    func tensor(_ name: String) -> Onnx_TensorProto? { map[name].flatMap { $0.hasT ? $0.t : nil } }
}

/// A float attribute as the decimal it was written as (0.1, not 0.10000000149011612).
func decimal(_ value: Float) -> JSONValue { .double(Double(String(describing: value)) ?? Double(value)) }

/// A (height, width) attribute in a Prism node: one int when both are equal.
func pair(_ h: Int, _ w: Int) -> JSONValue { h == w ? .int(h) : .array([.int(h), .int(w)]) }

extension ONNXImporter {
    /// A `Constant` node's value.
    func constant(_ node: Onnx_NodeProto, site: Site) throws -> ONNXValue {
        let a = try Attributes(node, site: site, known: ["value", "value_float", "value_floats", "value_int", "value_ints"])
        guard a.map.count == 1 else { throw site.fail("needs exactly one of value, value_float(s), value_int(s)") }
        if let t = a.tensor("value") {
            do { return try t.constant() } catch let error as DataError { throw site.fail(error.message) }
        }
        if a.has("value_float") { return .float(HostTensor(shape: [], values: [try a.float("value_float", 0)])) }
        if let f = a.map["value_floats"] { return .float(HostTensor(shape: [f.floats.count], values: f.floats)) }
        if a.has("value_int") { return .int(IntConstant(shape: [], values: [.fixed(try a.int("value_int", 0))])) }
        if let v = try a.ints("value_ints") { return .int(IntConstant(shape: [v.count], values: v.map { .fixed($0) })) }
        throw site.fail("value of an unsupported kind; Prism imports float32 and int64 constants")
    }

    /// Folds the shape ops on integer constants: Shape, Gather, Unsqueeze, Squeeze, Concat, Slice
    /// (along axis 0), ConstantOfShape, Transpose (two-dimensional), Cast, Reshape, Add/Sub/Mul/Div. Nil when `node` is not one of these on constants.
    func fold(_ node: Onnx_NodeProto, _ inputs: [ONNXValue?], site: Site) throws -> ONNXValue? {
        func int(_ i: Int) -> IntConstant? { if i < inputs.count, case let .int(c)? = inputs[i] { return c } else { return nil } }
        func fixed(_ c: IntConstant, _ what: String) throws -> [Int] {
            try c.values.map { guard let v = $0.value else { throw site.fail("its \(what) depends on the batch size, which Prism does not fold here") }; return v }
        }
        func axis(_ a: Int, rank: Int) throws -> Int {
            let r = a < 0 ? a + rank : a
            guard r >= 0, r < rank else { throw site.fail("axis \(a) is outside rank \(rank)") }
            return r
        }
        switch node.opType {
        case "Shape":
            let full: [Dim]
            switch inputs.count == 1 ? inputs[0] : nil {
            case let .int(c)?: full = c.shape.map { .fixed($0) }
            case let .float(t)?: full = t.shape.map { .fixed($0) }
            case let other: guard let v = view(other) else { return nil }; full = sizes(v)
            }
            let a = try Attributes(node, site: site, known: ["start", "end"])
            let rank = full.count
            func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + rank : v, 0), rank) }
            let start = clamp(try a.int("start", 0)), end = clamp(try a.int("end", rank))
            let values = start < end ? Array(full[start..<end]) : []
            return .int(IntConstant(shape: [values.count], values: values))
        case "Gather":
            guard let data = int(0), let indices = int(1) else { return nil }
            let a = try Attributes(node, site: site, known: ["axis"])
            guard data.shape.count == 1, try a.int("axis", 0) == 0 else { throw site.fail("Prism folds Gather on one-dimensional constants only") }
            let values = try fixed(indices, "index").map { i -> Dim in
                let j = i < 0 ? i + data.values.count : i
                guard data.values.indices.contains(j) else { throw site.fail("index \(i) is outside \(data.values.count) entries") }
                return data.values[j]
            }
            return .int(IntConstant(shape: indices.shape, values: values))
        case "Unsqueeze", "Squeeze":
            guard let data = int(0) else { return nil }
            _ = try Attributes(node, site: site, known: [])
            let axes = try int(1).map { try fixed($0, "axes") }
            var shape = data.shape
            if node.opType == "Unsqueeze" {
                guard let axes else { throw site.fail("needs its axes as the second input (opset 13)") }
                let rank = shape.count + axes.count
                for a in try axes.map({ try axis($0, rank: rank) }).sorted() { shape.insert(1, at: a) }
            } else if let axes {
                for a in try Set(axes.map { try axis($0, rank: shape.count) }).sorted(by: >) {
                    guard shape[a] == 1 else { throw site.fail("axis \(a) of size \(shape[a]) cannot be squeezed") }
                    shape.remove(at: a)
                }
            } else {
                shape.removeAll { $0 == 1 }
            }
            return .int(IntConstant(shape: shape, values: data.values))
        case "Concat":
            let parts = inputs.compactMap { value -> IntConstant? in if case let .int(c)? = value { return c } else { return nil } }
            guard parts.count == inputs.count, !parts.isEmpty else { return nil }
            _ = try Attributes(node, site: site, known: ["axis"])
            guard parts.allSatisfy({ $0.shape.count == 1 }) else { throw site.fail("Prism folds Concat of one-dimensional constants only") }
            let values = parts.flatMap(\.values)
            return .int(IntConstant(shape: [values.count], values: values))
        case "ConstantOfShape":
            guard inputs.count == 1, let shape = int(0) else { return nil }
            let a = try Attributes(node, site: site, known: ["value"])
            let dims = try fixed(shape, "shape")
            guard dims.allSatisfy({ $0 >= 0 }), let count = HostMemory.product(dims), count <= 1 << 16 else {
                throw site.fail("shape \(dims); Prism folds ConstantOfShape to at most 65536 entries")
            }
            guard let t = a.tensor("value") else { return .float(HostTensor(shape: dims, values: [Float](repeating: 0, count: count))) }
            let fill: ONNXValue
            do { fill = try t.constant() } catch let error as DataError { throw site.fail(error.message) }
            switch fill {
            case let .int(c) where c.values.count == 1: return .int(IntConstant(shape: dims, values: Array(repeating: c.values[0], count: count)))
            case let .float(f) where f.values.count == 1: return .float(HostTensor(shape: dims, values: Array(repeating: f.values[0], count: count)))
            default: throw site.fail("value must hold one int64 or float32 entry")
            }
        case "Transpose":
            guard inputs.count == 1, let data = int(0) else { return nil }
            let perm = try Attributes(node, site: site, known: ["perm"]).ints("perm") ?? [1, 0]
            guard data.shape.count == 2, perm == [1, 0] || perm == [0, 1] else { throw site.fail("Prism folds Transpose of two-dimensional constants only") }
            if perm == [0, 1] { return .int(data) }
            let (rows, cols) = (data.shape[0], data.shape[1])
            let values = (0..<(rows * cols)).map { i in data.values[(i % rows) * cols + i / rows] }
            return .int(IntConstant(shape: [cols, rows], values: values))
        case "Slice":
            guard let whole = int(0), let starts = int(1), let ends = int(2) else { return nil }
            _ = try Attributes(node, site: site, known: [])
            // Along axis 0: the rows of [n, rest…], each `inner` entries.
            guard let n = whole.shape.first else { throw site.fail("Prism folds Slice of constants of rank ≥ 1 only") }
            let inner = n > 0 ? whole.values.count / n : 0
            let data = IntConstant(shape: [n], values: (0..<n).map { .fixed($0) })
            let s = try fixed(starts, "starts"), e = try fixed(ends, "ends")
            let axes = try int(3).map { try fixed($0, "axes") } ?? [0], steps = try int(4).map { try fixed($0, "steps") } ?? [1]
            guard s.count == 1, e.count == 1, axes == [0] || axes == [-whole.shape.count], steps.count == 1, steps[0] != 0 else {
                throw site.fail("Prism folds Slice along axis 0 with one start, end and nonzero step")
            }
            let step = min(max(steps[0], -n - 1), n + 1)  // a longer step takes one entry, as the given one does
            func clamp(_ v: Int, _ low: Int, _ high: Int) -> Int { min(max(v < 0 ? v + n : v, low), high) }
            var out: [Dim] = []
            if step > 0 {
                for i in stride(from: clamp(s[0], 0, n), to: clamp(e[0], 0, n), by: step) { out.append(data.values[i]) }
            } else {
                let end = e[0] < -n ? -1 : clamp(e[0], -1, n - 1)
                for i in stride(from: clamp(s[0], 0, n - 1), to: end, by: step) { out.append(data.values[i]) }
            }
            let rows = out.compactMap(\.value)
            return .int(IntConstant(shape: [rows.count] + whole.shape.dropFirst(), values: rows.flatMap { whole.values[($0 * inner)..<(($0 + 1) * inner)] }))
        case "Cast":
            guard inputs.count == 1, let value = inputs[0] else { return nil }
            let to = try Attributes(node, site: site, known: ["to", "saturate", "round_mode"]).int("to", 0)
            switch (value, Onnx_TensorProto.DataType(rawValue: to)) {
            case (.int, .int64?), (.int, .int32?), (.float, .float?), (.node, .float?), (.view, .float?): return value
            case let (.int(c), .float?):
                return .float(HostTensor(shape: c.shape, values: try fixed(c, "value").map { Float($0) }))
            default:
                throw site.fail("casts to \(dataTypeName(Int32(clamping: to))); Prism imports Cast to float32 of float32 values and between int64 and int32 constants")
            }
        case "Reshape":
            guard inputs.count == 2, let target = int(1) else { return nil }
            let count: Int, make: ([Int]) -> ONNXValue
            switch inputs[0] {
            case let .int(c)?: (count, make) = (c.values.count, { .int(IntConstant(shape: $0, values: c.values)) })
            case let .float(t)?: (count, make) = (t.values.count, { .float(HostTensor(shape: $0, values: t.values)) })
            default: return nil
            }
            var shape = try fixed(target, "target shape")
            if let i = shape.firstIndex(of: -1) {
                let rest = shape.enumerated().filter { $0.offset != i }.map(\.element)
                guard let known = HostMemory.product(rest), known > 0, count % known == 0 else { throw site.fail("cannot reshape \(count) values to \(shape)") }
                shape[i] = count / known
            }
            guard shape.allSatisfy({ $0 >= 0 }), HostMemory.product(shape) == count else { throw site.fail("cannot reshape \(count) values to \(shape)") }
            return make(shape)
        case "Add", "Sub", "Mul", "Div", "Mod":
            guard inputs.count == 2, let a = int(0), let b = int(1) else { return nil }
            guard try Attributes(node, site: site, known: ["fmod"]).int("fmod", 0) == 0 else { throw site.fail("fmod 1 on integers is not supported") }
            let (x, y) = (a.values, b.values)
            guard x.count == y.count || x.count == 1 || y.count == 1 else { throw site.fail("Prism folds \(node.opType) of constants of one shape (or a scalar)") }
            let n = max(x.count, y.count)
            let values = try (0..<n).map { i -> Dim in
                try arithmetic(node.opType, x[x.count == 1 ? 0 : i], y[y.count == 1 ? 0 : i], site: site)
            }
            return .int(IntConstant(shape: x.count >= y.count ? a.shape : b.shape, values: values))
        case "Equal":
            guard inputs.count == 2, let a = int(0), let b = int(1) else { return nil }
            _ = try Attributes(node, site: site, known: [])
            return .int(try elementwiseInts(a, b, site: site) { p, q in
                switch (p, q) {
                case let (.fixed(u), .fixed(v)): return .fixed(u == v ? 1 : 0)
                case let (.batch(k), .batch(m)): return .fixed(k == m ? 1 : 0)
                // The batch size is positive: it equals no number below 1.
                case let (.batch, .fixed(v)) where v < 1, let (.fixed(v), .batch) where v < 1: return .fixed(0)
                default: throw site.fail("compares \(p) with \(q), which depends on the batch size")
                }
            })
        case "Where":
            guard inputs.count == 3, let condition = int(0) else { return nil }
            _ = try Attributes(node, site: site, known: [])
            let flags = try fixed(condition, "condition")
            if let x = int(1), let y = int(2) {
                guard x.shape == y.shape, condition.shape == x.shape || condition.values.count == 1 else {
                    throw site.fail("Prism folds Where of constants of one shape")
                }
                let values = x.values.indices.map { i in flags[flags.count == 1 ? 0 : i] != 0 ? x.values[i] : y.values[i] }
                return .int(IntConstant(shape: x.shape, values: values))
            }
            return nil
        case "Range":
            guard inputs.count == 3, let start = int(0), let limit = int(1), let delta = int(2) else { return nil }
            _ = try Attributes(node, site: site, known: [])
            let (s, l, d) = (try fixed(start, "start"), try fixed(limit, "limit"), try fixed(delta, "delta"))
            guard s.count == 1, l.count == 1, d.count == 1, d[0] != 0 else { throw site.fail("needs scalar start, limit and a nonzero delta") }
            let count = max(0, (l[0] - s[0] + d[0] - (d[0] > 0 ? 1 : -1)) / d[0])
            guard count <= 1 << 24 else { throw site.fail("folds to \(count) entries, too many") }
            return .int(IntConstant(shape: [count], values: (0..<count).map { .fixed(s[0] + $0 * d[0]) }))
        default:
            return nil
        }
    }

    /// `f` entry by entry over two integer constants of one shape (or a scalar and a constant).
    func elementwiseInts(_ a: IntConstant, _ b: IntConstant, site: Site, _ f: (Dim, Dim) throws -> Dim) throws -> IntConstant {
        let (x, y) = (a.values, b.values)
        guard x.count == y.count || x.count == 1 || y.count == 1 else { throw site.fail("Prism folds integer constants of one shape (or a scalar)") }
        let values = try (0..<max(x.count, y.count)).map { i in try f(x[x.count == 1 ? 0 : i], y[y.count == 1 ? 0 : i]) }
        return IntConstant(shape: x.count >= y.count ? a.shape : b.shape, values: values)
    }
}

/// p op q on integer constants (Add, Sub, Mul, Div truncating toward zero, Mod with the divisor's
/// sign as ONNX's fmod 0), where a multiple of the batch size may be scaled by a number, divided by
/// one that divides its factor, or shifted by zero.
/// - Throws: `DataError` on division by zero, overflow, or other arithmetic on the batch size.
func arithmetic(_ op: String, _ p: Dim, _ q: Dim, site: Site) throws -> Dim {
    switch (p, q) {
    case let (.fixed(a), .fixed(b)):
        let (r, overflow): (Int, Bool)
        switch op {
        case "Add": (r, overflow) = a.addingReportingOverflow(b)
        case "Sub": (r, overflow) = a.subtractingReportingOverflow(b)
        case "Mul": (r, overflow) = a.multipliedReportingOverflow(by: b)
        default:
            guard b != 0 else { throw site.fail("divides by zero") }
            if op == "Div" {
                (r, overflow) = a.dividedReportingOverflow(by: b)
            } else {
                let (m, o) = a.remainderReportingOverflow(dividingBy: b)
                (r, overflow) = (m != 0 && (m < 0) != (b < 0) ? m + b : m, o)
            }
        }
        guard !overflow else { throw site.fail("overflows") }
        return .fixed(r)
    case let (.batch(k), .fixed(m)) where op == "Mul", let (.fixed(m), .batch(k)) where op == "Mul":
        guard case let (r, false) = k.multipliedReportingOverflow(by: m), r > 0 else { throw site.fail("overflows") }
        return .batch(times: r)
    case let (.batch(k), .fixed(m)) where op == "Div" && m > 0 && k % m == 0:
        return .batch(times: k / m)
    case (.batch, .fixed(0)) where op == "Add" || op == "Sub", (.fixed(0), .batch) where op == "Add":
        return p == .fixed(0) ? q : p
    default:
        throw site.fail("computes \(p) \(op) \(q), which Prism does not fold (arithmetic on the batch size other than scaling it)")
    }
}

