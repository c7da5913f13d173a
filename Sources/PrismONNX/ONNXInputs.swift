import Foundation
import PrismFormats
import PrismGraph

// Models of several inputs and integer values: token ids read by an embedding (Gather from a
// weight), attention masks compared, cast, chosen between (Where), broadcast over the heads
// (Expand) and clamped (Max, Min).

extension ONNXImporter {
    /// The element types a graph input may have, by ONNX data type.
    static let inputTypes: [Int32: ElementType] = [
        Int32(Onnx_TensorProto.DataType.float.rawValue): .float32, Int32(Onnx_TensorProto.DataType.int64.rawValue): .int64,
        Int32(Onnx_TensorProto.DataType.int32.rawValue): .int32, Int32(Onnx_TensorProto.DataType.bool.rawValue): .bool,
    ]

    /// One graph input's per-example shape, element type and the batch size the file fixes (nil: symbolic).
    /// - Throws: `DataError` naming the input: no known rank, a dtype Prism does not take, no axis after
    ///   the batch, or an axis after the batch without a fixed size.
    static func describe(input: Onnx_ValueInfoProto, source: String) throws -> (shape: [Int], type: ElementType, batch: Int?) {
        guard case let .tensorType(tensor)? = input.type.value, tensor.hasShape else {
            throw DataError("\(source): input '\(input.name)' is not a tensor of known rank")
        }
        guard let type = inputTypes[tensor.elemType] else {
            throw DataError("\(source): input '\(input.name)' has dtype \(dataTypeName(tensor.elemType)); Prism imports float32, int64, int32 and bool inputs")
        }
        let dims = tensor.shape.dim
        guard dims.count >= 2 else {
            throw DataError("\(source): input '\(input.name)' has rank \(dims.count); Prism needs a batch axis and at least one more")
        }
        var batch: Int?
        if case let .dimValue(n)? = dims[0].value {
            guard n > 0, n <= Int64(Int32.max) else { throw DataError("\(source): input '\(input.name)' has batch size \(n)") }
            batch = Int(n)
        }
        var shape: [Int] = []
        for (axis, dim) in dims.enumerated().dropFirst() {
            guard case let .dimValue(n)? = dim.value, n > 0, n <= Int64(Int32.max) else {
                let what = dim.dimParam.isEmpty ? "no fixed size" : "the symbolic size '\(dim.dimParam)'"
                throw DataError("\(source): input '\(input.name)' has \(what) on axis \(axis); Prism needs every axis but the first (the batch) fixed")
            }
            shape.append(Int(n))
        }
        guard HostMemory.product(shape) != nil else { throw DataError("\(source): input '\(input.name)' of shape \(shape) is too large") }
        return (shape, type, batch)
    }

    /// The element type of Prism value `name`.
    func type(of name: String) -> ElementType { types[name] ?? .float32 }

    /// A number from a constant of one element, as a config scalar; nil when `value` is not one.
    func scalarConstant(_ value: ONNXValue?) -> Scalar? {
        switch value {
        case let .float(t)? where t.values.count == 1: return Scalar(Double(t.values[0]))
        case let .int(c)? where c.values.count == 1: return c.values[0].value.map { Scalar(Double($0)) }
        default: return nil
        }
    }

    /// The value of a node that reads integer values or makes them (an embedding of token ids, a
    /// mask's comparison, cast or choice), or that broadcasts or clamps a value; nil when the
    /// general translation takes `node`.
    mutating func translateTyped(_ node: Onnx_NodeProto, _ inputs: [ONNXValue?], _ site: Site) throws -> ONNXValue? {
        let op = node.opType
        func value(_ i: Int) -> ONNXValue? { i < inputs.count ? inputs[i] : nil }
        func plain(_ i: Int) throws -> String? {
            switch value(i) {
            case let .node(name)?: return name
            case let .view(v)?: return try materialize(v, site: site, for: node)
            default: return nil
            }
        }
        /// An element-wise op of input 0 alone: on a view's Prism value, seen through the same view.
        func elementwise(_ body: (inout ONNXImporter, String) throws -> ONNXValue) throws -> ONNXValue? {
            switch value(0) {
            case let .node(x)?: return try body(&self, x)
            case let .view(v)?:
                let made = try body(&self, v.node)
                guard case let .node(p) = made, shapes[p]?.count == shapes[v.node]?.count else { return made }
                return settle(ONNXView(node: p, groups: v.groups))
            default: return nil
            }
        }
        switch op {
        case "ConstantOfShape":
            // A float constant for every example ([batch, …] from the Shape of a value): an `expand` node.
            guard inputs.count == 1, case let .int(target)? = value(0), target.values.first == .batch(times: 1), target.values.count >= 2 else { return nil }
            let a = try Attributes(node, site: site, known: ["value"])
            var fill: Float = 0
            if let t = a.tensor("value") {
                let made: ONNXValue
                do { made = try t.constant() } catch let error as DataError { throw site.fail(error.message) }
                guard case let .float(f) = made, f.values.count == 1 else {
                    throw site.fail("fills a shape that depends on the batch size with integers; Prism repeats float32 constants for every example")
                }
                fill = f.values[0]
            }
            let sizes = try target.values.dropFirst().map { d -> Int in
                guard let n = d.value, n > 0 else { throw site.fail("shape \(target.values): the sizes after the batch must be fixed and positive") }
                return n
            }
            guard let count = HostMemory.product(sizes), count <= 1 << 24 else { throw site.fail("shape \(target.values) is too large") }
            return try emit(ExpandSchema.kind, ["shape": .array(sizes.map { .int($0) })], inputs: [GraphAnalysis.inputName],
                            parameters: ["value": HostTensor(shape: sizes, values: [Float](repeating: fill, count: count))], name: name(for: node), site: site)
        case "Gather":
            // Rows of a constant table picked by a graph value of indices: an embedding.
            guard case let .float(table)? = value(0), let ids = try plain(1) else { return nil }
            let axis = try Attributes(node, site: site, known: ["axis"]).int("axis", 0)
            guard axis == 0, table.shape.count == 2 else {
                throw site.fail("gathers along axis \(axis) of a constant of shape \(table.shape); Prism imports Gather of rows of a matrix (an embedding)")
            }
            guard type(of: ids) == .int64 || type(of: ids) == .int32 else {
                throw site.fail("its indices are \(type(of: ids).rawValue); an embedding takes int64 or int32 ids")
            }
            let config: [String: JSONValue] = ["num_embeddings": .int(table.shape[0]), "embedding_dim": .int(table.shape[1])]
            return try emit(EmbeddingSchema.kind, config, inputs: [ids], parameters: ["weight": table], name: name(for: node, weight: node.input.first), site: site)
        case "Equal", "Less", "Greater":
            let kind = op == "Equal" ? EqualKind.name : op == "Less" ? LessKind.name : GreaterKind.name
            _ = try Attributes(node, site: site, known: [])
            switch (view(value(0)), view(value(1))) {
            case (_?, _?):
                guard let x = try plain(0), let y = try plain(1) else { return nil }
                return try emit(kind, inputs: [x, y], name: name(for: node), site: site)
            case (_?, nil):
                guard let other = scalarConstant(value(1)) else { throw site.fail("compares a value with a constant of more than one element; Prism imports comparisons with a number") }
                return try elementwise { importer, x in try importer.emit(kind, ["other": other.json], inputs: [x], name: importer.name(for: node), site: site) }
            case (nil, _?):
                guard op == "Equal", let other = scalarConstant(value(0)), let y = try plain(1) else {
                    throw site.fail("compares a constant with a value; Prism imports comparisons of a value with a number (Equal either way round)")
                }
                return try emit(kind, ["other": other.json], inputs: [y], name: name(for: node), site: site)
            case (nil, nil):
                return nil
            }
        case "Not":
            _ = try Attributes(node, site: site, known: [])
            return try elementwise { importer, x in
                guard importer.type(of: x) == .bool else { throw site.fail("negates \(importer.type(of: x).rawValue) values; Not takes bool") }
                return try importer.emit(EqualKind.name, ["other": .double(0)], inputs: [x], name: importer.name(for: node), site: site)
            }
        case "Cast":
            let to = try Attributes(node, site: site, known: ["to", "saturate", "round_mode"]).int("to", 0)
            return try elementwise { importer, x in try importer.cast(x, to: to, node: node, site: site) }
        case "Where":
            guard inputs.count == 3, let condition = try plain(0) else { return nil }
            _ = try Attributes(node, site: site, known: [])
            guard type(of: condition) == .bool else { throw site.fail("its condition is \(type(of: condition).rawValue); Where takes a bool condition") }
            var config: [String: JSONValue] = [:], operands = [condition]
            for (k, key) in [(1, "x"), (2, "y")] {
                if let number = scalarConstant(value(k)) {
                    config[key] = number.json
                } else if let v = try plain(k) {
                    guard shapes[v] == shapes[condition] else {
                        throw site.fail("chooses between values of shapes [batch] + \(shapes[condition] ?? []) and [batch] + \(shapes[v] ?? []); Prism imports Where of one shape or with numbers")
                    }
                    operands.append(v)
                } else {
                    throw site.fail("input \(k) is a constant of more than one element; Prism imports Where between values of the condition's shape and numbers")
                }
            }
            return try emit(WhereSchema.kind, config, inputs: operands, name: name(for: node), site: site)
        case "Expand":
            guard let x = try plain(0) else { return nil }
            _ = try Attributes(node, site: site, known: [])
            guard case let .int(target)? = value(1), target.shape.count == 1 else { throw site.fail("the target shape is not a constant; Prism needs it known at import") }
            let have = shapes[x] ?? [], rank = have.count + 1
            guard target.values.count <= rank else {
                throw site.fail("expands a value of shape [batch] + \(have) to rank \(target.values.count); Prism expands within the value's rank")
            }
            let want = [Dim](repeating: .fixed(1), count: rank - target.values.count) + target.values
            switch want[0] {
            case .fixed(1), .batch(times: 1): break
            default: throw site.fail("expands the batch axis to \(want[0]); Prism keeps the batch")
            }
            var shape: [Int] = []
            for (h, w) in zip(have, want.dropFirst()) {
                guard let n = w.value, n == h || n == 1 || h == 1 else {
                    throw site.fail("expands [batch] + \(have) to \(target.values); Prism expands axes of size 1 to fixed sizes")
                }
                shape.append(n == 1 ? h : n)
            }
            if shape == have { return .node(x) }
            return try emit(BroadcastToSchema.kind, ["shape": .array(shape.map { .int($0) })], inputs: [x], name: name(for: node), site: site)
        case "Max", "Min":
            guard inputs.count == 2, view(value(0)) != nil || view(value(1)) != nil else { return nil }
            _ = try Attributes(node, site: site, known: [])
            let (x, bound): (String?, Scalar?)
            if let b = scalarConstant(value(1)) { (x, bound) = (try plain(0), b) } else if let b = scalarConstant(value(0)) { (x, bound) = (try plain(1), b) } else {
                throw site.fail("Prism imports \(op) of a value and a number (a clamp)")
            }
            guard let x, let bound, bound.value.isFinite else { throw site.fail("Prism imports \(op) of a value and a finite number (a clamp)") }
            let config: [String: JSONValue] = op == "Max"
                ? ["min_val": .double(bound.value), "max_val": .double(Double(Float.greatestFiniteMagnitude))]
                : ["min_val": .double(-Double(Float.greatestFiniteMagnitude)), "max_val": .double(bound.value)]
            return try emit(HardtanhSchema.kind, config, inputs: [x], name: name(for: node), site: site)
        default:
            return nil
        }
    }

    /// Prism value `x` cast to ONNX data type `to`.
    mutating func cast(_ x: String, to: Int, node: Onnx_NodeProto, site: Site) throws -> ONNXValue {
        guard let target = Self.inputTypes[Int32(clamping: to)] else {
            throw site.fail("casts to \(dataTypeName(Int32(clamping: to))); Prism imports casts to float32, int64, int32 and bool")
        }
        let from = type(of: x)
        if from == target || (from.isInteger && target.isInteger && from != .bool && target != .bool) || (from == .bool && target.isInteger) {
            // The values stay (integers of every type are held as 32-bit on the device; bool is 0 or 1).
            return .node(x)
        }
        if target == .bool {
            // x ≠ 0, as a cast to bool reads it.
            let zero = try emit(EqualKind.name, ["other": .double(0)], inputs: [x], name: name(for: node), site: site)
            guard case let .node(z) = zero else { return zero }
            return try emit(EqualKind.name, ["other": .double(0)], inputs: [z], name: name(for: node), site: site)
        }
        return try emit(CastSchema.kind, ["dtype": .string(target.rawValue)], inputs: [x], name: name(for: node), site: site)
    }
}
