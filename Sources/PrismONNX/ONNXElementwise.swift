import Foundation
import PrismFormats
import PrismGraph

// The element-wise ONNX ops: Add, Sub, Mul, Div, Pow with NumPy broadcasting (two graph values, or
// a graph value and a constant), the unary functions, HardSigmoid, Clip and PRelu.

extension ONNXImporter {
    /// The Prism op kinds of ONNX's binary arithmetic.
    static let binaryKinds = ["Add": AddSchema.kind, "Sub": SubSchema.kind, "Mul": MulSchema.kind, "Div": DivSchema.kind, "Pow": PowSchema.kind]
    /// The Prism op kinds of ONNX's unary functions.
    static let unaryKinds = ["Neg": NegSchema.kind, "Sqrt": SqrtSchema.kind, "Exp": ExpSchema.kind, "Log": LogSchema.kind,
                             "Erf": ErfSchema.kind, "Reciprocal": ReciprocalSchema.kind]

    /// Add, Sub, Mul, Div or Pow: of two graph values (the second broadcast over the first; Add and
    /// Mul swap them when the first is the smaller), or of a graph value and a constant on either side
    /// (a node with the constant as its buffer `other`). An Add of a constant right after a MatMul
    /// becomes that linear layer's bias.
    /// - Throws: `DataError` naming the node when the operands do not broadcast so.
    mutating func binary(_ node: Onnx_NodeProto, _ inputs: [ONNXValue?], site: Site) throws -> ONNXValue {
        _ = try Attributes(node, site: site, known: [])
        let op = node.opType
        guard let kind = Self.binaryKinds[op], inputs.count == 2 else { throw site.fail("needs two inputs") }
        let commutative = op == "Add" || op == "Mul"
        switch (inputs[0], inputs[1]) {
        case let (.node(p)?, .node(q)?):
            let (sp, sq) = (shapes[p] ?? [], shapes[q] ?? [])
            if valueBroadcasts(sq, over: sp) { return try emit(kind, inputs: [p, q], name: name(for: node), site: site) }
            if commutative, valueBroadcasts(sp, over: sq) { return try emit(kind, inputs: [q, p], name: name(for: node), site: site) }
            if sp.count == sq.count, zip(sp, sq).allSatisfy({ $0 == $1 || $0 == 1 || $1 == 1 }) {
                // NumPy's broadcast over axes that are not one block: each operand repeated to the result's shape first.
                let target = zip(sp, sq).map { max($0, $1) }
                var operands: [String] = []
                for v in [p, q] {
                    if shapes[v] == target { operands.append(v); continue }
                    let made = try emit(BroadcastToSchema.kind, ["shape": .array(target.map { .int($0) })], inputs: [v], name: layoutName(for: node), site: site)
                    guard case let .node(b) = made else { throw site.fail("could not broadcast its operands") }
                    operands.append(b)
                }
                return try emit(kind, inputs: operands, name: name(for: node), site: site)
            }
            let which = commutative ? "one of the values broadcasts over the other" : "the second value broadcasts over the first"
            throw site.fail("inputs of shapes [batch] + \(sp) and [batch] + \(sq); Prism imports \(op) of two values of one rank where \(which) (on one block of axes)")
        case (.node(let p)?, let c?), (let c?, .node(let p)?):
            let constantFirst: Bool
            if case .node? = inputs[0] { constantFirst = false } else { constantFirst = true }
            let constant = try floatConstant(c, allowIntegers: op == "Pow" && !constantFirst, site: site)
            if op == "Add", let fused = fuseBias(p, constant, constantInput: node.input[constantFirst ? 0 : 1]) { return fused }
            let other = try constantOperand(constant, over: p, site: site)
            var config: [String: JSONValue] = ["other_shape": .array(other.shape.map { .int($0) })]
            if constantFirst, !commutative { config["other_first"] = .bool(true) }
            return try emit(kind, config, inputs: [p], parameters: ["other": other], name: name(for: node), site: site)
        case let (a?, b?):
            return .float(try foldBinary(op, try floatConstant(a, allowIntegers: false, site: site),
                                         try floatConstant(b, allowIntegers: op == "Pow", site: site), site: site))
        default:
            throw site.fail("has a missing input")
        }
    }

    /// `op` of two float constants, with NumPy broadcasting, computed at import (in Double, rounded once).
    func foldBinary(_ op: String, _ a: HostTensor, _ b: HostTensor, site: Site) throws -> HostTensor {
        let rank = max(a.shape.count, b.shape.count)
        let pa = [Int](repeating: 1, count: rank - a.shape.count) + a.shape, pb = [Int](repeating: 1, count: rank - b.shape.count) + b.shape
        guard zip(pa, pb).allSatisfy({ $0 == $1 || $0 == 1 || $1 == 1 }) else { throw site.fail("constants of shapes \(a.shape) and \(b.shape) do not broadcast") }
        let shape = zip(pa, pb).map { max($0, $1) }
        guard let count = HostMemory.product(shape), count <= 1 << 24 else { throw site.fail("folds to a constant too large") }
        let (x, y) = (expanded(a.values, pa, to: shape), expanded(b.values, pb, to: shape))
        let values = zip(x, y).map { p, q -> Float in
            let (u, v) = (Double(p), Double(q))
            switch op {
            case "Add": return Float(u + v)
            case "Sub": return Float(u - v)
            case "Mul": return Float(u * v)
            case "Div": return Float(u / v)
            default: return Float(Foundation.pow(u, v))
            }
        }
        return HostTensor(shape: shape, values: values)
    }

    /// A unary function of a float constant, computed at import (in Double, rounded once).
    func foldUnary(_ op: String, _ t: HostTensor) -> HostTensor {
        HostTensor(shape: t.shape, values: t.values.map { p in
            let v = Double(p)
            switch op {
            case "Neg": return Float(-v)
            case "Sqrt": return Float(v.squareRoot())
            case "Exp": return Float(Foundation.exp(v))
            case "Log": return Float(Foundation.log(v))
            case "Erf": return Float(Foundation.erf(v))
            default: return Float(1 / v)
            }
        })
    }

    /// `values` of shape `from` (of `shape`'s rank, each axis equal or 1) repeated to `shape`.
    func expanded(_ values: [Float], _ from: [Int], to shape: [Int]) -> [Float] {
        if from == shape { return values }
        var strides = [Int](repeating: 0, count: shape.count), s = 1
        for k in shape.indices.reversed() {
            strides[k] = from[k] == 1 ? 0 : s
            s *= from[k]
        }
        return (0..<shape.reduce(1, *)).map { i in
            var rest = i, j = 0
            for k in shape.indices.reversed() {
                j += (rest % shape[k]) * strides[k]
                rest /= shape[k]
            }
            return values[j]
        }
    }

    /// Whether a value of per-example shape `b` broadcasts over one of shape `a` as NumPy and Prism
    /// (`Broadcast.of`, batch axes included) both read it, giving `a`.
    func valueBroadcasts(_ b: [Int], over a: [Int]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $1 == $0 || $1 == 1 } && Broadcast.of([2] + b, over: [2] + a) != nil
    }

    /// A float constant operand; integer ones (a Pow's exponent) as floats.
    func floatConstant(_ value: ONNXValue, allowIntegers: Bool, site: Site) throws -> HostTensor {
        switch value {
        case let .float(t): return t
        case let .int(c) where allowIntegers:
            let values = try c.values.map { d -> Float in
                guard let v = d.value else { throw site.fail("its exponent depends on the batch size") }
                return Float(v)
            }
            return HostTensor(shape: c.shape, values: values)
        default: throw site.fail("its constant operand is not float32")
        }
    }

    /// The constant `c` as the buffer of a Prism binary node over the graph value `x`: its ONNX shape
    /// when Prism's broadcast reads it as NumPy does, else expanded to the value's per-example shape.
    /// - Throws: `DataError` when `c` varies along the batch axis or would broadcast the value itself.
    func constantOperand(_ c: HostTensor, over x: String, site: Site) throws -> HostTensor {
        let shape = shapes[x] ?? [], rank = shape.count + 1
        guard c.shape.count <= rank else {
            throw site.fail("a constant of shape \(c.shape) over a value of shape [batch] + \(shape); Prism imports constants that broadcast over the value")
        }
        let padded = [Int](repeating: 1, count: rank - c.shape.count) + c.shape
        guard padded[0] == 1 else { throw site.fail("a constant of shape \(c.shape) varies along the batch axis; Prism imports constants the same for every example") }
        let per = Array(padded.dropFirst())
        guard zip(per, shape).allSatisfy({ $0 == $1 || $0 == 1 }) else {
            throw site.fail("a constant of shape \(c.shape) would broadcast the value of shape [batch] + \(shape) itself; Prism imports constants that broadcast over the value")
        }
        if c.shape.drop(while: { $0 == 1 }).count <= shape.count, Broadcast.of(c.shape, over: [2] + shape) != nil { return c }
        // Broadcast over axes that are not one block: the constant repeated to the value's shape.
        guard HostMemory.product(shape) != nil else { throw site.fail("the value is too large") }
        let values = expanded(c.values, per, to: shape)
        return HostTensor(shape: shape, values: values)
    }

    /// The Add of a constant right after a MatMul-made linear node (read by nothing else), as that
    /// node's bias; nil when the Add is not such.
    mutating func fuseBias(_ p: String, _ c: HostTensor, constantInput: String) -> ONNXValue? {
        guard let i = biasless[p], uses[constantInput, default: 0] == 1, let width = shapes[p]?.last,
              c.values.count == width, c.shape.last == width, c.shape.dropLast().allSatisfy({ $0 == 1 }) else { return nil }
        biasless[p] = nil
        nodes[i].attributes["bias"] = nil
        tensors["\(p).bias"] = HostTensor(shape: [width], values: c.values)
        return .node(p)
    }

    /// HardSigmoid: PyTorch's Hardsigmoid for alpha 1/6 and beta 0.5 (its export), else with alpha and beta.
    mutating func hardSigmoid(_ node: Onnx_NodeProto, _ x: String, site: Site) throws -> ONNXValue {
        let a = try Attributes(node, site: site, known: ["alpha", "beta"])
        let alpha = try a.float("alpha", 0.2), beta = try a.float("beta", 0.5)
        let config: [String: JSONValue] = alpha == Float(1.0 / 6) && beta == 0.5 ? [:] : ["alpha": decimal(alpha), "beta": decimal(beta)]
        return try emit(HardsigmoidSchema.kind, config, inputs: [x], name: name(for: node), site: site)
    }

    /// Clip with constant bounds: hardtanh(min, max) (ReLU6 is Clip(0, 6)), a ReLU for Clip(0, none),
    /// the value itself without bounds.
    mutating func clip(_ node: Onnx_NodeProto, _ inputs: [ONNXValue?], _ x: String, site: Site) throws -> ONNXValue {
        _ = try Attributes(node, site: site, known: [])
        func bound(_ i: Int, _ what: String) throws -> Float? {
            guard i < inputs.count, let v = inputs[i] else { return nil }
            guard case let .float(t) = v, t.values.count == 1, !t.values[0].isNaN else {
                throw site.fail("its \(what) (input \(i)) is not a float32 constant scalar; Prism imports Clip with constant bounds")
            }
            return t.values[0]
        }
        let low = try bound(1, "min"), high = try bound(2, "max")
        switch (low, high) {
        case (nil, nil): return .node(x)
        case (0?, nil): return try emit(ReLUSchema.kind, inputs: [x], name: name(for: node), site: site)
        default:
            let config = ["min_val": decimal(low ?? -.greatestFiniteMagnitude), "max_val": decimal(high ?? .greatestFiniteMagnitude)]
            return try emit(HardtanhSchema.kind, config, inputs: [x], name: name(for: node), site: site)
        }
    }

    /// PRelu with a constant slope: one for all channels, or one per channel (axis 1) as PyTorch exports it.
    mutating func prelu(_ node: Onnx_NodeProto, _ inputs: [ONNXValue?], _ x: String, site: Site) throws -> ONNXValue {
        _ = try Attributes(node, site: site, known: [])
        guard inputs.count == 2, case let .float(slope)? = inputs[1] else { throw site.fail("its slope (input 1) must be a float32 initializer or constant") }
        let shape = shapes[x] ?? []
        let stripped = Array(slope.shape.drop(while: { $0 == 1 }))
        let channels = slope.values.count
        let perChannel = channels > 1 && !shape.isEmpty && shape[0] == channels && stripped.count <= shape.count
            && stripped == [channels] + [Int](repeating: 1, count: max(stripped.count - 1, 0)) && stripped.count == shape.count
        guard channels == 1 || perChannel else {
            throw site.fail("slope of shape \(slope.shape) over a value of shape [batch] + \(shape); Prism imports one slope or one per channel (axis 1)")
        }
        let weightName = node.input.count > 1 ? node.input[1] : nil
        return try emit(PReLUSchema.kind, channels == 1 ? [:] : ["num_parameters": .int(channels)], inputs: [x],
                        parameters: ["weight": HostTensor(shape: [channels], values: slope.values)], name: name(for: node, weight: weightName), site: site)
    }
}
