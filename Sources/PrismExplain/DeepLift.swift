import Foundation
import Prism
import PrismCL

/// DeepLIFT (Shrikumar et al. 2017, the rescale rule) and DeepSHAP (Lundberg & Lee 2017: DeepLIFT
/// averaged over background references, shap's `DeepExplainer`) through a `Model`'s graph.
///
/// Each pair of an instance x and a reference r is one row of a device batch. Multipliers
/// m = ∂Δf_c / ∂Δv flow from the target output (m = 1) back to the input, node by node, by the rule
/// of each op (`DeepLiftRule`); the attribution is φ = m ⊙ (x − r) at the input. The rules:
/// - linear ops (Linear, Conv2D, ConvTranspose2D, BatchNorm in evaluation, average pooling, Add,
///   Sub, a product or quotient by a constant, Cat, sums and means, reshapes, Pad, Upsample,
///   Dropout in evaluation): the op's own backward (the vector–Jacobian product), exact;
/// - element-wise nonlinearities (ReLU, LeakyReLU, ELU, SiLU, GELU, Hardswish, Hardsigmoid,
///   Hardtanh, PReLU, Sigmoid, Tanh, exp, log, sqrt, erf, reciprocal, a power by a constant, fake
///   quantization): the rescale rule m_in = m · Δy / Δx, and the gradient where |Δx| ≤ 10⁻⁶ (as shap);
///   Softmax and LogSoftmax as shap treats Softmax (the same ratio, element by element; Softmax over
///   the last axis kept exact where one score of a row stays while the rest moves), GroupNorm with its
///   statistics treated as part of that nonlinearity; LayerNorm split exactly into its centered
///   values and its inverse deviation (`layerNormMultiplier`), which tends to the gradient;
/// - MaxPool2D: shap's rule — each window's Δ goes to the positions of its maxima in x and in r;
/// - a product of two varying values (Mul, MatMul: bilinear f(a, b)): Δf = f(Δa, b̄) + f(ā, Δb) with
///   ā, b̄ the means of the instance's and the reference's values, exactly; a quotient a / b as the
///   product a · (1/b) with 1/b under the rescale rule (−1 / (b·b_r), exact);
/// - amax: shap's rule for maxima; a power of two values: the two-player Shapley split of its Δ
///   (exact); the built-in vision transformer's blocks through the steps they are made of, each
///   with its primitive's rule (its patch embedding and class token are linear);
/// - embeddings, comparisons and casts have no rule: `explain` refuses such models, naming the node.
///
/// Every rule conserves: the contributions entering a node (Σ m_in ⊙ Δin over its inputs) equal
/// those leaving it (Σ m_out ⊙ Δout), checked node by node on the device; the largest gap, relative
/// to the magnitude of the terms summed (max(1, Σ|m ⊙ Δ|), the scale of float32 rounding in those
/// sums), is `settings["conservation_gap"]`. Summation to delta follows:
/// Σφ = f_c(x) − mean over references of f_c(r); `outputs` hold f(x) and `baseValues` the mean of
/// f(r), so `Explanation.additivityGap` is its error, whose largest magnitude is
/// `settings["summation_gap"]`. No rescaling forces it.
public struct DeepLift: AttributionMethod {
    /// The references of each instance.
    public enum References: Sendable {
        /// One reference per instance (or one for all): DeepLIFT.
        case baseline(AttributionBaseline)
        /// Every row is a reference of every instance, and φ is the mean over them (weighted by
        /// `weights`, one per row, when given: k-means centroids): DeepSHAP.
        case background([Float], weights: [Float]? = nil)
    }

    public let model: Model
    public var references: References
    /// Model rows (instance–reference pairs) per device batch (nil: sized from the device's memory).
    public var rowsPerChunk: Int?

    public var name: String {
        if case .background = references { return "deepshap" }
        return "deeplift"
    }

    public init(model: Model, references: References = .baseline(.zeros), rowsPerChunk: Int? = nil) {
        self.model = model
        self.references = references
        self.rowsPerChunk = rowsPerChunk
    }

    /// Differences |Δx| at or below this take the gradient in the rescale rule.
    public static let rescaleEpsilon: Float = 1e-6

    /// - Returns: values [instances][input elements][targets]; `outputs` f(x), `baseValues` the mean
    ///   of f over the instance's references.
    /// - Throws: `ExplainError` naming a node without a rule, or for references of the wrong size.
    public func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation {
        let start = DispatchTime.now()
        let differentiable = DifferentiableModel(model)
        let setup = try AttributionSetup(model: differentiable, instances: instances, targets: targets, rowsPerChunk: rowsPerChunk)
        for (i, op) in model.ops.enumerated() where !((op as? any DeepLiftRule)?.hasDeepLiftRule ?? false) {
            throw ExplainError("\(name): no rule for node \(i) '\(model.nodeName(i))' (\(op.kind)); DeepLIFT has rules for \(DeepLift.supportedOps.joined(separator: ", "))")
        }
        let engine = model.engine, d = differentiable.elementCount, n = setup.instanceCount, slots = targets.outputCount
        let c = differentiable.classCount
        // The reference rows, how many each instance pairs with, and their weights (summing to 1).
        let (referenceRows, perInstance, share): ([Float], Int, [Double]) = try {
            switch references {
            case let .baseline(baseline):
                return (try baseline.rows(instanceCount: n, elementCount: d, method: name), 1, [1])
            case let .background(rows, weights):
                guard !rows.isEmpty, rows.count % d == 0 else {
                    throw ExplainError("\(name): the background's \(rows.count) values are not a whole number of inputs of \(d) elements")
                }
                let count = rows.count / d
                guard let weights else { return (rows, count, [Double](repeating: 1 / Double(count), count: count)) }
                let total = weights.reduce(0.0) { $0 + Double($1) }
                guard weights.count == count, weights.allSatisfy({ $0.isFinite && $0 >= 0 }), total > 0 else {
                    throw ExplainError("\(name): \(weights.count) background weights for \(count) rows, or some negative or all zero")
                }
                return (rows, count, weights.map { Double($0) / total })
            }
        }()
        let shared = { if case .background = references { return true } else { return false } }()
        guard let pairCount = HostMemory.product([n, perInstance]) else {
            throw ExplainError("\(name): \(n) instances × \(perInstance) references overflow a 64-bit count")
        }
        var values = [Double](repeating: 0, count: n * d * slots)
        var outputs = [Float](repeating: 0, count: n * c)
        var baseSums = [Double](repeating: 0, count: n * c)
        var conservationGap = 0.0
        var evaluations = 0
        try differentiable.frozen {
            var first = 0
            while first < pairCount {
                let rows = min(setup.rowsPerChunk, pairCount - first)
                var xs = [Float](), rs = [Float]()
                xs.reserveCapacity(rows * d)
                rs.reserveCapacity(rows * d)
                for p in first..<(first + rows) {
                    let (i, j) = (p / perInstance, p % perInstance)
                    xs += instances[(i * d)..<((i + 1) * d)]
                    let row = shared ? j : i
                    rs += referenceRows[(row * d)..<((row + 1) * d)]
                }
                let shape = [rows] + model.spec.inputShape
                let (vx, vr, fx, fr): ([Tensor], [Tensor], [Float], [Float]) = try engine.noGrad {
                    let vx = try model.values(try Tensor(xs, shape: shape, engine: engine))
                    let vr = try model.values(try Tensor(rs, shape: shape, engine: engine))
                    return (vx, vr, try vx[model.graph.output].toArray(), try vr[model.graph.output].toArray())
                }
                for p in first..<(first + rows) where p % perInstance == 0 {
                    let i = p / perInstance
                    outputs.replaceSubrange((i * c)..<((i + 1) * c), with: fx[((p - first) * c)..<((p - first + 1) * c)])
                }
                for r in 0..<rows {
                    let i = (first + r) / perInstance
                    let w = share[(first + r) % perInstance]
                    for k in 0..<c { baseSums[i * c + k] += w * Double(fr[r * c + k]) }
                }
                var nodes = [DeepLiftNode?](repeating: nil, count: model.ops.count)
                var deltas = [Tensor?](repeating: nil, count: vx.count)
                let delta = try engine.noGrad { try vx[0] - vr[0] }
                deltas[0] = delta
                for t in 0..<slots {
                    var seed = [Float](repeating: 0, count: rows * c)
                    for r in 0..<rows { seed[r * c + targets.classes(instance: (first + r) / perInstance)[t]] = 1 }
                    let (m, gap) = try propagate(try Tensor(seed, shape: [rows, c], engine: engine), x: vx, reference: vr,
                                                 nodes: &nodes, deltas: &deltas)
                    conservationGap = Swift.max(conservationGap, gap)
                    let phi = try engine.noGrad { try m * delta }.toArray()
                    for r in 0..<rows {
                        let i = (first + r) / perInstance, w = share[(first + r) % perInstance]
                        for e in 0..<d { values[(i * d + e) * slots + t] += w * Double(phi[r * d + e]) }
                    }
                }
                evaluations += 2 * rows * (1 + slots)
                first += rows
            }
        }
        let baseValues = setup.targetOutputs(baseSums.map { Float($0) })
        var explanation = try Explanation(method: name, instanceCount: n, featureCount: d, outputCount: slots, values: values,
                                          baseValues: baseValues, outputs: setup.targetOutputs(outputs),
                                          modelEvaluations: evaluations, seconds: 0,
                                          settings: ["references": .int(perInstance), "targets": .string(targets.description),
                                                     "rows_per_chunk": .int(setup.rowsPerChunk),
                                                     "conservation_gap": .double(conservationGap)])
        if case let .baseline(baseline) = references { explanation.settings["baseline"] = .string(baseline.description) }
        var gap = 0.0
        for i in 0..<n {
            for t in 0..<slots { gap = Swift.max(gap, abs(explanation.additivityGap(instance: i, output: t) ?? 0)) }
        }
        explanation.settings["summation_gap"] = .double(gap)
        explanation.seconds = AttributionSetup.seconds(since: start)
        return explanation
    }

    /// The multipliers of the model's (normalized) input from `seed` at the output, node by node
    /// from the last (a value read by several nodes sums their multipliers), and the largest
    /// conservation gap of any node. `nodes` holds each node's context for this chunk (built on the
    /// first target and reused by the others: forward passes recorded once, differences computed once).
    private func propagate(_ seed: Tensor, x vx: [Tensor], reference vr: [Tensor], nodes: inout [DeepLiftNode?],
                           deltas: inout [Tensor?]) throws -> (Tensor, Double) {
        let graph = model.graph, engine = model.engine
        func delta(_ v: Int) throws -> Tensor {
            if let d = deltas[v] { return d }
            let d = try engine.noGrad { try vx[v] - vr[v] }
            deltas[v] = d
            return d
        }
        var multipliers = [Tensor?](repeating: nil, count: vx.count)
        multipliers[graph.output] = seed
        var worst = 0.0
        for i in graph.nodes.indices.reversed() {
            guard let m = multipliers[i + 1] else { continue }
            multipliers[i + 1] = nil
            let op = model.ops[i], node = graph.nodes[i]
            guard let rule = op as? any DeepLiftRule else { throw ExplainError("\(name): no rule for node \(i) '\(node.spec.name)' (\(op.kind))") }
            let context = try nodes[i] ?? DeepLiftNode(inputs: node.inputs.map { vx[$0] }, references: node.inputs.map { vr[$0] },
                                                        output: vx[i + 1], referenceOutput: vr[i + 1],
                                                        inputDeltas: try node.inputs.map(delta), outputDelta: try delta(i + 1))
            nodes[i] = context
            let parts = try rule.multipliers(m, context)
            guard parts.count == context.inputs.count, zip(parts, context.inputs).allSatisfy({ $0.shape == $1.shape }) else {
                throw ExplainError("\(name): node '\(node.spec.name)' (\(op.kind)) gave multipliers of shapes \(parts.map(\.shape)) for inputs \(context.inputs.map(\.shape))")
            }
            // Conservation at this node: Σ m_in ⊙ Δin over the inputs against Σ m_out ⊙ Δout, per row.
            // The gap is measured against the terms' magnitude, the scale of float32 rounding in the sums.
            let rows = m.shape[0]
            func sums(_ m: Tensor, _ d: Tensor) throws -> (totals: [Double], magnitudes: [Double]) {
                let out = try Tensor.empty([2 * rows], engine: engine)
                try engine.launch("deeplift.cl", "deeplift_row_dot", global: [rows], local: [1],
                                  [m.storage, d.storage, out.storage, Int32(rows), Int32(d.count / rows)])
                let both = try out.toArray().map(Double.init)
                return (Array(both[0..<rows]), Array(both[rows...]))
            }
            var entering = [Double](repeating: 0, count: rows), scale = [Double](repeating: 1, count: rows)
            for k in parts.indices {
                let (totals, magnitudes) = try sums(parts[k], context.inputDeltas[k])
                for r in 0..<rows { entering[r] += totals[r]; scale[r] = Swift.max(scale[r], magnitudes[r]) }
            }
            let leaving = try sums(m, context.outputDelta)
            for r in 0..<rows {
                worst = Swift.max(worst, abs(entering[r] - leaving.totals[r]) / Swift.max(scale[r], leaving.magnitudes[r]))
            }
            try accumulate(parts, at: node.inputs, into: &multipliers)
        }
        guard let input = multipliers[0] else { throw ExplainError("\(name): no multiplier reaches the input") }
        return (input, worst)
    }

    /// The ops with a rule (the registry kinds of the standard `DeepLiftRule` conformances).
    public static let supportedOps = [Linear.kind, Conv2DLayer.kind, ConvTranspose2DLayer.kind, MaxPool2DLayer.kind, AvgPool2DLayer.kind,
                                      AdaptiveAvgPool2DLayer.kind, BatchNorm1D.kind, BatchNorm2D.kind, Add.kind, Sub.kind, Mul.kind, Div.kind,
                                      Pow.kind, MatMul.kind, Cat.kind, Softmax.kind, LogSoftmax.kind, LayerNormLayer.kind, GroupNorm.kind, ReLU.kind, LeakyReLU.kind, ELU.kind, SiLU.kind, GELU.kind, Hardswish.kind,
                                      Hardsigmoid.kind, Hardtanh.kind, PReLU.kind, Sigmoid.kind, Tanh.kind, Dropout.kind, Flatten.kind,
                                      Reshape.kind, Permute.kind, Narrow.kind, BroadcastTo.kind, IndexSelect.kind, MeanKind.name, SumKind.name,
                                      Upsample.kind, Pad.kind, NegKind.name, SqrtKind.name, ExpKind.name, LogKind.name, ErfKind.name,
                                      ReciprocalKind.name, FakeQuantize.kind, Expand.kind, AmaxKind.name, PatchEmbedding.kind,
                                      TransformerBlock.kind, ClassTokenLayer.kind]
}

/// One node of one chunk as its DeepLIFT rule sees it: its inputs and outputs for the instances and
/// their references, their differences, and the forward passes a rule records (once per chunk: the
/// targets after the first reuse them).
public final class DeepLiftNode {
    public let inputs: [Tensor], references: [Tensor]
    public let output: Tensor, referenceOutput: Tensor
    /// inputs − references, output − referenceOutput.
    public let inputDeltas: [Tensor], outputDelta: Tensor
    private var tapes: [String: (leaves: [Tensor], output: Tensor)] = [:]
    private var values: [String: [Tensor]] = [:]
    private var children: [String: [DeepLiftNode]] = [:]

    init(inputs: [Tensor], references: [Tensor], output: Tensor, referenceOutput: Tensor, inputDeltas: [Tensor], outputDelta: Tensor) {
        self.inputs = inputs
        self.references = references
        self.output = output
        self.referenceOutput = referenceOutput
        self.inputDeltas = inputDeltas
        self.outputDelta = outputDelta
    }

    /// Tensors computed once per chunk under `key` (means of inputs and references, slopes).
    public func cached(_ key: String, _ make: () throws -> [Tensor]) throws -> [Tensor] {
        if let v = values[key] { return v }
        let v = try make()
        values[key] = v
        return v
    }

    /// The contexts of a composite op's steps, made once per chunk under `key` (see `DeepLiftSteps`).
    func steps(_ key: String, _ make: () throws -> [DeepLiftNode]) throws -> [DeepLiftNode] {
        if let c = children[key] { return c }
        let c = try make()
        children[key] = c
        return c
    }

    /// The vector–Jacobian products of `forward` at `at` with `m`, one per tensor of `at`; the forward
    /// pass is recorded under `key` on first use and its graph kept for the other targets.
    public func backward(_ m: Tensor, key: String, at: [Tensor], _ forward: ([Tensor]) throws -> Tensor) throws -> [Tensor] {
        let tape: (leaves: [Tensor], output: Tensor)
        if let recorded = tapes[key] {
            tape = recorded
        } else {
            let leaves = try at.map { try Tensor(engine: $0.engine, shape: $0.shape, storage: $0.storage, requiresGrad: true) }
            tape = (leaves, try forward(leaves))
            tapes[key] = tape
        }
        guard tape.output.shape == m.shape else {
            throw ExplainError("deeplift: a rule's forward gives shape \(tape.output.shape), its multiplier has \(m.shape)")
        }
        for leaf in tape.leaves { leaf.zeroGrad() }
        try tape.output.backward(try m.detached(), retainGraph: true)
        return try tape.leaves.map { leaf in
            guard let g = leaf.grad else { throw ExplainError("deeplift: a rule's forward recorded no backward") }
            return g
        }
    }
}

/// How an op hands multipliers from its output to its inputs (see `DeepLift`).
public protocol DeepLiftRule: Op {
    /// The multipliers of each input (of its shape), from `multiplier` at the output.
    func multipliers(_ multiplier: Tensor, _ node: DeepLiftNode) throws -> [Tensor]
    /// Whether this instance of the op has a rule (a family of ops may have one for some kinds only).
    var hasDeepLiftRule: Bool { get }
}

extension DeepLiftRule {
    public var hasDeepLiftRule: Bool { true }

    /// The op's own backward at the node's inputs (linear ops).
    func linearMultipliers(_ m: Tensor, _ node: DeepLiftNode) throws -> [Tensor] {
        try node.backward(m, key: "x", at: node.inputs) { try forward($0, training: false) }
    }

    /// The rescale rule of an element-wise function of the first input: m · Δy / Δx, the gradient
    /// where |Δx| ≤ `DeepLift.rescaleEpsilon`.
    func rescaled(_ m: Tensor, _ node: DeepLiftNode) throws -> Tensor {
        try rescaleMultiplier(m, node) { try self.forward($0, training: false) }
    }
}

/// The rescale rule of `forward`, an element-wise function of the node's first input (see `rescaled`).
func rescaleMultiplier(_ m: Tensor, _ node: DeepLiftNode, _ forward: @escaping ([Tensor]) throws -> Tensor) throws -> Tensor {
    let x = node.inputs[0], engine = x.engine
    let g = try node.backward(m, key: "x", at: [x], forward)[0]
    let out = try Tensor.empty(x.shape, engine: engine)
    let n = x.count
    try engine.launch("deeplift.cl", "deeplift_rescale", global: [(n + 63) / 64 * 64], local: [64],
                      [m.storage, x.storage, node.references[0].storage, node.output.storage, node.referenceOutput.storage, g.storage,
                       out.storage, DeepLift.rescaleEpsilon, Int32(n)])
    return out
}

/// Adds each part to the multipliers of the value it belongs to (a value read by several nodes sums them).
func accumulate(_ parts: [Tensor], at values: [Int], into multipliers: inout [Tensor?]) throws {
    for (v, part) in zip(values, parts) {
        if let existing = multipliers[v] {
            multipliers[v] = try part.engine.noGrad { try existing + part }
        } else {
            multipliers[v] = part
        }
    }
}

/// Contributions `c` (of an input's shape) over that input's Δ: the multipliers that hand them on
/// (0 where |Δ| ≤ `eps`, 10⁻⁷ by default, where the rules give no contribution).
func dividedByDelta(_ c: Tensor, _ delta: Tensor, eps: Float = 1e-7) throws -> Tensor {
    let engine = c.engine, n = delta.count
    let out = try Tensor.empty(delta.shape, engine: engine)
    try engine.launch("deeplift.cl", "deeplift_divide", global: [(n + 63) / 64 * 64], local: [64],
                      [c.storage, delta.storage, out.storage, eps, Int32(n)])
    return out
}

/// Softmax over rows of `width` elements, element by element as shap treats it (m · Δp / Δs), kept
/// exact where a score stays (|Δs_i| ≤ `DeepLift.rescaleEpsilon`) while the rest of its row moves —
/// a class token's score of itself, say. With p_i = e^{s_i}/Z, such a score's Δp_i = −e^{s_i}·ΔZ/(Z·Z_r)
/// comes from ΔZ = Σ_j Δe^{s_j} over the moving scores, so the row's uncarried total
/// U = Σ_staying m_i·Δp_i = A·ΔZ with A = −Σ_staying m_i·e^{s_i} / (Z·Z_r) goes to the moving scores
/// by their part of ΔZ: m_in_j += A·Δe^{s_j}/Δs_j (exponentials after a maximum common to both rows).
/// Exact, no cancelling denominator; where no score stays, A = 0 and this is shap's rule.
func softmaxMultiplier(_ m: Tensor, _ node: DeepLiftNode, width: Int, _ forward: @escaping ([Tensor]) throws -> Tensor) throws -> Tensor {
    let base = try rescaleMultiplier(m, node, forward)
    let engine = m.engine, dx = node.inputDeltas[0]
    guard width > 0, dx.count % width == 0 else { return base }
    let rows = dx.count / width
    return try engine.noGrad {
        let (s, sr) = (try node.inputs[0].reshaped([rows, width]), try node.references[0].reshaped([rows, width]))
        let top = try concat([s, sr], axis: 1).amax(axis: 1, keepDims: true)
        let (e, er) = (try (try s - top).exp(), try (try sr - top).exp())
        let z = try e.sum(axis: 1, keepDims: true) * (try er.sum(axis: 1, keepDims: true))
        // 1 where the score moved, 0 where it stayed: Δs / Δs, with 0 at |Δs| ≤ ε.
        let delta = try dx.reshaped([rows, width])
        let staying = try (try dividedByDelta(delta, delta, eps: DeepLift.rescaleEpsilon)).scaled(by: -1) + 1
        let a = try (try (try m.reshaped([rows, width]) * staying * e).sum(axis: 1, keepDims: true) * z.reciprocal()).scaled(by: -1)
        let share = try dividedByDelta(try e - er, delta, eps: DeepLift.rescaleEpsilon)
        return try base + (try share * a).reshaped(dx.shape)
    }
}

/// shap's rule for maxima (max pooling, amax), with `forward` the op at its first input: with y, y_r
/// the maxima of x and r and c = max(y, y_r), each Δy = (c − y_r) + (y − c) goes to x's maximum (the
/// first part) and r's maximum (the second); multipliers are those contributions over Δx there.
func maximumMultiplier(_ m: Tensor, _ node: DeepLiftNode, _ forward: @escaping ([Tensor]) throws -> Tensor) throws -> Tensor {
    let engine = node.output.engine
    let shares = try node.cached("shares") {
        try engine.noGrad {
            let up = try node.outputDelta.relu()  // c − y_r
            return [up, try node.outputDelta - up]  // y − c
        }
    }
    let (rise, fall) = try engine.noGrad { (try m * shares[0], try m * shares[1]) }
    let atX = try node.backward(rise, key: "x", at: [node.inputs[0]], forward)[0]
    let atR = try node.backward(fall, key: "r", at: [node.references[0]], forward)[0]
    return try dividedByDelta(try engine.noGrad { try atX + atR }, node.inputDeltas[0])
}

/// Two varying inputs of an element-wise f(a, b) that is not bilinear (a power of two values): the
/// two-player Shapley split of Δf, c_a = ½[(f(a, b_r) − f(a_r, b_r)) + (f(a, b) − f(a_r, b))] and
/// c_b = Δf − c_a, exact by construction; each summed over the positions its input is broadcast to,
/// over that input's Δ.
func shapleyPairMultipliers(_ m: Tensor, _ node: DeepLiftNode, _ f: @escaping (Tensor, Tensor) throws -> Tensor) throws -> [Tensor] {
    let engine = m.engine
    let (a, b, ar, br) = (node.inputs[0], node.inputs[1], node.references[0], node.references[1])
    let shares = try node.cached("pair") {
        try engine.noGrad {
            let ca = try ((try f(a, br) - node.referenceOutput) + (node.output - (try f(ar, b)))).scaled(by: 0.5)
            let cb = try node.outputDelta - ca
            // The mixed terms f(a, b_r), f(a_r, b) can be infinite or NaN where f(a, b) and f(a_r, b_r) are not.
            let finite = { (t: Tensor) in try t.toArray().allSatisfy(\.isFinite) }
            if try finite(node.outputDelta), try !finite(ca) || !finite(cb) {
                throw ExplainError("deeplift: a power of two values: a mixed term f(a, b_r) or f(a_r, b) is not finite (0 to a negative power, a negative base to a fractional one) where the instance's and the reference's are; the two-player split needs both")
            }
            return [ca, cb, try Tensor.zeros(node.output.shape, engine: engine)]
        }
    }
    return try [0, 1].map { k in
        let spread = try engine.noGrad { try m * shares[k] }
        // Summed back to the input's shape: the backward of broadcasting it to the output's.
        let summed = try node.backward(spread, key: "pair\(k)", at: [node.inputs[k]]) { try shares[2].add($0[0]) }[0]
        return try dividedByDelta(summed, node.inputDeltas[k])
    }
}

/// Layer normalization over rows of γ's width, y = γ ⊙ c·s + β with c = x − mean(x) and
/// s = 1/√(mean(c²) + ε), split exactly: Δ(c_i·s) = s̄·Δc_i + c̄_i·Δs (means of the instance's and the
/// reference's values). The first part is linear in Δc; the row's Δs, weighted by Σ m_i γ_i c̄_i, goes
/// to the c_j in proportion to their share of its linearization (∂s/∂c_j at c̄, times Δc_j), rescaled
/// so the shares add up to Δs; the centering is linear. Every row conserves exactly, and as the
/// reference nears the instance the multipliers tend to the gradient (which the element-wise ratio
/// of shap's Softmax treatment does not: a row's statistics couple its elements).
func layerNormMultiplier(_ m: Tensor, _ node: DeepLiftNode, weight: Tensor, eps: Float) throws -> Tensor {
    let x = node.inputs[0], engine = m.engine, n = weight.count
    guard n > 0, x.count % n == 0 else { throw ExplainError("deeplift: layer norm of width \(n) over a tensor of shape \(x.shape)") }
    let rows = x.count / n
    return try engine.noGrad {
        func centered(_ t: Tensor) throws -> Tensor {
            let v = try t.reshaped([rows, n])
            return try v - (try v.mean(axis: 1, keepDims: true))
        }
        let (c, cr) = (try centered(x), try centered(node.references[0]))
        // a = √(v + ε), b = √(v_r + ε) with v = mean(c²): s = 1/a, s_r = 1/b.
        let a = try ((try (c * c).mean(axis: 1, keepDims: true)) + eps).sqrt(), b = try ((try (cr * cr).mean(axis: 1, keepDims: true)) + eps).sqrt()
        let cBar = try (c + cr).scaled(by: 0.5), sBar = try (try a.reciprocal() + b.reciprocal()).scaled(by: 0.5)
        let mg = try m.reshaped([rows, n]) * weight
        // The row's K·Δs (K = Σ m_i γ_i c̄_i) over its linearization Σ_j ∂s/∂c_j(c̄)·Δc_j, in closed form:
        // Δs = (v_r − v)/(a·b·(a + b)) and Σ_j c̄_j·Δc_j = n·(v − v_r)/2, so each c_j gets −2K·c̄_j/(n·a·b·(a + b))
        // (no difference of nearly equal numbers divided by another).
        let k = try (mg * cBar).sum(axis: 1, keepDims: true)
        let coefficient = try (try k * (try (try a * b * (try a + b)).reciprocal())).scaled(by: -2 / Float(n))
        let mc = try (mg * sBar) + (cBar * coefficient)
        return try (mc - (try mc.mean(axis: 1, keepDims: true))).reshaped(x.shape)
    }
}

/// A composite op's forward as steps over earlier values (value 0: the op's input), each with the
/// rule of the primitive op it is; DeepLIFT runs through them as through the graph, so the composite
/// conserves as its steps do.
struct DeepLiftSteps {
    /// `rows(width)`: softmax over rows of that width (`softmaxMultiplier`).
    /// `custom`: a rule of its own (a layer norm's).
    enum Rule { case linear, rescale, rows(Int), bilinear, custom((Tensor, DeepLiftNode) throws -> Tensor) }
    struct Step {
        var rule: Rule
        var inputs: [Int]
        var forward: ([Tensor]) throws -> Tensor
    }
    private(set) var steps: [Step] = []

    /// Adds a step; returns its value's index.
    mutating func add(_ rule: Rule, _ inputs: [Int], _ forward: @escaping ([Tensor]) throws -> Tensor) -> Int {
        steps.append(Step(rule: rule, inputs: inputs, forward: forward))
        return steps.count
    }

    /// The multipliers of the op's input from `m` at its output (the last step's value).
    func multipliers(_ m: Tensor, _ node: DeepLiftNode) throws -> Tensor {
        let engine = m.engine
        let contexts = try node.steps("steps") {
            var vx = [node.inputs[0]], vr = [node.references[0]]
            return try engine.noGrad {
                for step in steps {
                    vx.append(try step.forward(step.inputs.map { vx[$0] }))
                    vr.append(try step.forward(step.inputs.map { vr[$0] }))
                }
                return try steps.enumerated().map { i, step in
                    DeepLiftNode(inputs: step.inputs.map { vx[$0] }, references: step.inputs.map { vr[$0] }, output: vx[i + 1], referenceOutput: vr[i + 1],
                                 inputDeltas: try step.inputs.map { try vx[$0] - vr[$0] }, outputDelta: try vx[i + 1] - vr[i + 1])
                }
            }
        }
        var multipliers = [Tensor?](repeating: nil, count: steps.count + 1)
        multipliers[steps.count] = m
        for i in steps.indices.reversed() {
            guard let mi = multipliers[i + 1] else { continue }
            let step = steps[i], context = contexts[i]
            let parts: [Tensor] = switch step.rule {
            case .linear: try context.backward(mi, key: "x", at: context.inputs, step.forward)
            case .rescale: [try rescaleMultiplier(mi, context, step.forward)]
            case let .rows(width): [try softmaxMultiplier(mi, context, width: width, step.forward)]
            case let .custom(rule): [try rule(mi, context)]
            case .bilinear: try bilinearPair(mi, context) { try step.forward([$0, $1]) }
            }
            try accumulate(parts, at: step.inputs, into: &multipliers)
        }
        guard let input = multipliers[0] else { throw ExplainError("deeplift: no multiplier reaches a composite op's input") }
        return input
    }
}

/// A bilinear f(a, b) of two values: Δf = f(Δa, b̄) + f(ā, Δb) with ā = (a + a_r)/2, so
/// m_a = ∂⟨f(a, b̄), m⟩/∂a and m_b = ∂⟨f(ā, b), m⟩/∂b.
func bilinearPair(_ m: Tensor, _ node: DeepLiftNode, _ f: @escaping (Tensor, Tensor) throws -> Tensor) throws -> [Tensor] {
    let means = try node.cached("means") {
        try m.engine.noGrad { try zip(node.inputs, node.references).map { x, r in try (x + r).scaled(by: 0.5) } }
    }
    let ma = try node.backward(m, key: "a", at: [node.inputs[0]]) { try f($0[0], means[1]) }[0]
    let mb = try node.backward(m, key: "b", at: [node.inputs[1]]) { try f(means[0], $0[0]) }[0]
    return [ma, mb]
}

/// Linear ops: the multipliers are the op's backward.
protocol LinearDeepLift: DeepLiftRule {}
extension LinearDeepLift {
    public func multipliers(_ multiplier: Tensor, _ node: DeepLiftNode) throws -> [Tensor] { try linearMultipliers(multiplier, node) }
}
extension Linear: LinearDeepLift {}
extension Conv2DLayer: LinearDeepLift {}
extension ConvTranspose2DLayer: LinearDeepLift {}
extension AvgPool2DLayer: LinearDeepLift {}
extension AdaptiveAvgPool2DLayer: LinearDeepLift {}
extension BatchNorm1D: LinearDeepLift {}
extension BatchNorm2D: LinearDeepLift {}
extension Cat: LinearDeepLift {}
extension Dropout: LinearDeepLift {}
extension Flatten: LinearDeepLift {}
extension Reshape: LinearDeepLift {}
extension Permute: LinearDeepLift {}
extension Narrow: LinearDeepLift {}
extension BroadcastTo: LinearDeepLift {}
extension Upsample: LinearDeepLift {}
extension Pad: LinearDeepLift {}
/// The built-in vision transformer's patch embedding (a convolution plus the class token and the
/// positions, constants whose Δ is zero) and its class-token read-out are linear in their input.
extension PatchEmbedding: LinearDeepLift {}
extension ClassTokenLayer: LinearDeepLift {}

/// The built-in transformer block, through the steps it is made of, each with its primitive's rule:
/// LayerNorm (`layerNormMultiplier`), the Q/K/V projection, the heads (reshapes), Q·Kᵀ (bilinear),
/// softmax (as shap, kept exact per row), P·V (bilinear), the output projection, the residual sums,
/// the MLP's Linear layers and GELU (rescale) — as an imported transformer's nodes are explained.
extension TransformerBlock: DeepLiftRule {
    public func multipliers(_ multiplier: Tensor, _ node: DeepLiftNode) throws -> [Tensor] {
        let x = node.inputs[0]
        guard x.rank == 3 else { throw ExplainError("deeplift: a transformer block expects [B, T, D], got \(x.shape)") }
        let (b, t, d) = (x.shape[0], x.shape[1], x.shape[2])
        let heads = attention.heads, dh = d / heads
        let (qkv, proj) = (attention.qkv, attention.proj)
        var g = DeepLiftSteps()
        let n1 = g.add(.custom { try self.norm1.multipliers($0, $1)[0] }, [0]) { try self.norm1($0[0]) }
        let packed = g.add(.linear, [n1]) { try linear($0[0], weight: qkv.weight, bias: qkv.bias) }
        var qkvHeads: [Int] = []
        for j in 0..<3 {
            qkvHeads.append(g.add(.linear, [packed]) {
                try $0[0].reshaped([b, t, 3, heads, dh]).permuted([2, 0, 3, 1, 4]).sliced(axis: 0, range: j..<(j + 1)).reshaped([b * heads, t, dh])
            })
        }
        let scores = g.add(.bilinear, [qkvHeads[0], qkvHeads[1]]) { try matmul($0[0], $0[1], transposeB: true).scaled(by: 1 / Float(dh).squareRoot()) }
        let p = g.add(.rows(t), [scores]) { try $0[0].softmax() }
        let o = g.add(.bilinear, [p, qkvHeads[2]]) {
            try matmul($0[0], $0[1]).reshaped([b, heads, t, dh]).permuted([0, 2, 1, 3]).reshaped([b, t, d])
        }
        let attended = g.add(.linear, [o]) { try linear($0[0], weight: proj.weight, bias: proj.bias) }
        let h = g.add(.linear, [0, attended]) { try $0[0].add($0[1]) }
        let n2 = g.add(.custom { try self.norm2.multipliers($0, $1)[0] }, [h]) { try self.norm2($0[0]) }
        let z = g.add(.linear, [n2]) { try linear($0[0], weight: self.fc1.weight, bias: self.fc1.bias) }
        let gelu = g.add(.rescale, [z]) { try $0[0].gelu() }
        let mlp = g.add(.linear, [gelu]) { try linear($0[0], weight: self.fc2.weight, bias: self.fc2.bias) }
        _ = g.add(.linear, [h, mlp]) { try $0[0].add($0[1]) }
        return [try g.multipliers(multiplier, node)]
    }
}
extension IndexSelect: DeepLiftRule {
    public func multipliers(_ multiplier: Tensor, _ node: DeepLiftNode) throws -> [Tensor] {
        guard constant != nil, node.inputs.count == 1 else { throw ExplainError("deeplift: no rule for index_select with positions given as an input") }
        return try node.backward(multiplier, key: "x", at: node.inputs) { try forward(values: [.float($0[0])], training: false).float() }
    }
}

/// A constant repeated for every example (a class token): its input gives the batch size only.
extension Expand: DeepLiftRule {
    public func multipliers(_ multiplier: Tensor, _ node: DeepLiftNode) throws -> [Tensor] {
        [try Tensor.zeros(node.inputs[0].shape, engine: node.inputs[0].engine)]
    }
}

/// Sums and means are linear; amax takes shap's rule for maxima (as max pooling over the axis).
extension Reduction: DeepLiftRule {
    public func multipliers(_ multiplier: Tensor, _ node: DeepLiftNode) throws -> [Tensor] {
        if Kind.self == AmaxKind.self { return [try maximumMultiplier(multiplier, node) { try self.forward($0, training: false) }] }
        return try linearMultipliers(multiplier, node)
    }
}

/// Element-wise nonlinearities: the rescale rule.
protocol RescaleDeepLift: DeepLiftRule {}
extension RescaleDeepLift {
    public func multipliers(_ multiplier: Tensor, _ node: DeepLiftNode) throws -> [Tensor] { [try rescaled(multiplier, node)] }
}
extension ReLU: RescaleDeepLift {}
extension LeakyReLU: RescaleDeepLift {}
extension ELU: RescaleDeepLift {}
extension SiLU: RescaleDeepLift {}
extension GELU: RescaleDeepLift {}
extension Hardswish: RescaleDeepLift {}
extension Hardsigmoid: RescaleDeepLift {}
extension Hardtanh: RescaleDeepLift {}
extension PReLU: RescaleDeepLift {}
extension Sigmoid: RescaleDeepLift {}
extension Tanh: RescaleDeepLift {}
extension UnaryLayer: RescaleDeepLift {}
extension FakeQuantize: RescaleDeepLift {}
/// Softmax as shap's DeepExplainer handles it (its `nonlinear_1d`), and group norm with its statistics
/// treated the same way: each output element's Δy over its own input's Δx. Not element-wise functions,
/// but the element-wise ratio conserves wherever Δx ≠ 0; over the last axis `softmaxMultiplier`
/// keeps it exact where it is 0.
extension Softmax: DeepLiftRule {
    public func multipliers(_ multiplier: Tensor, _ node: DeepLiftNode) throws -> [Tensor] {
        let x = node.inputs[0]
        guard try SoftmaxSchema.axis(config, rank: x.rank - 1) + 1 == x.rank - 1 else { return [try rescaled(multiplier, node)] }
        return [try softmaxMultiplier(multiplier, node, width: x.shape[x.rank - 1]) { try self.forward($0, training: false) }]
    }
}
extension LogSoftmax: RescaleDeepLift {}
extension LayerNormLayer: DeepLiftRule {
    public func multipliers(_ multiplier: Tensor, _ node: DeepLiftNode) throws -> [Tensor] {
        [try layerNormMultiplier(multiplier, node, weight: weight, eps: eps)]
    }
}
extension GroupNorm: RescaleDeepLift {}

/// shap's rule for max pooling (see `maximumMultiplier`): each window's Δ goes to its maxima in x and in r.
extension MaxPool2DLayer: DeepLiftRule {
    public func multipliers(_ multiplier: Tensor, _ node: DeepLiftNode) throws -> [Tensor] {
        [try maximumMultiplier(multiplier, node) { try self.forward($0, training: false) }]
    }
}

private extension Array where Element == Tensor {
    var pair: (Tensor, Tensor) { (self[0], self[1]) }
}

/// A bilinear op of two values (Mul, MatMul): see `bilinearPair`. With a constant operand the op is linear.
extension DeepLiftRule {
    func bilinearMultipliers(_ m: Tensor, _ node: DeepLiftNode, _ f: @escaping (Tensor, Tensor) throws -> Tensor) throws -> [Tensor] {
        try bilinearPair(m, node, f)
    }
}
extension MatMul: DeepLiftRule {
    public func multipliers(_ multiplier: Tensor, _ node: DeepLiftNode) throws -> [Tensor] {
        guard node.inputs.count == 2 else { return try linearMultipliers(multiplier, node) }
        return try bilinearMultipliers(multiplier, node) { try self.forward([$0, $1], training: false) }
    }
}

extension BinaryLayer: DeepLiftRule {
    public func multipliers(_ multiplier: Tensor, _ node: DeepLiftNode) throws -> [Tensor] {
        if Kind.self == PowKind.self {
            guard node.inputs.count == 2 else { return [try rescaled(multiplier, node)] }
            return try shapleyPairMultipliers(multiplier, node) { try self.forward([$0, $1], training: false) }
        }
        // Sums, differences, and products or quotients by a constant are linear.
        if node.inputs.count == 1 || Kind.self == AddKind.self || Kind.self == SubKind.self { return try linearMultipliers(multiplier, node) }
        if Kind.self == MulKind.self { return try bilinearMultipliers(multiplier, node) { try $0.mul($1) } }
        // a / b = a · q with q = 1/b: Δ(a·q) = q̄·Δa + ā·Δq, and Δq = −Δb / (b·b_r) exactly.
        let engine = multiplier.engine
        let (a, b, ar, br) = (node.inputs[0], node.inputs[1], node.references[0], node.references[1])
        let parts = try node.cached("quotient") {
            try engine.noGrad {
                [try (a + ar).scaled(by: 0.5), try (b.reciprocal() + br.reciprocal()).scaled(by: 0.5), try (b * br).reciprocal().scaled(by: -1),
                 try Tensor.zeros(b.shape, engine: engine)]
            }
        }
        let (aMean, qMean, slope) = (parts[0], parts[1], parts[2])
        let ma = try node.backward(multiplier, key: "a", at: [a]) { try $0[0].mul(qMean) }[0]
        let mq = try node.backward(multiplier, key: "q", at: [parts[3]]) { try aMean.mul($0[0]) }[0]
        return [ma, try engine.noGrad { try mq * slope }]
    }
}
