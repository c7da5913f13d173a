import Foundation
import Prism
import PrismGraph

/// Attention explanations of a vision transformer (a `Model` with `TransformerBlock`s after a
/// `PatchEmbedding`): the attention probabilities of every layer and head, attention rollout
/// (Abnar & Zuidema 2020) and gradient-weighted attention rollout ("attention × gradient", Chefer et
/// al. 2021). Maps are read from the class token's row and laid on the image's patch grid.
public struct AttentionMaps {
    /// One instance's attention: per layer, [heads, T, T] row-major, rows summing to 1.
    public struct Probabilities: Sendable {
        public var layers: [[Double]]
        public var heads: Int
        public var tokens: Int
        /// Per layer, the gradient of the target output with respect to the probabilities, when asked for.
        public var gradients: [[Double]]?

        public init(layers: [[Double]], heads: Int, tokens: Int, gradients: [[Double]]? = nil) {
            self.layers = layers
            self.heads = heads
            self.tokens = tokens
            self.gradients = gradients
        }
    }

    public let model: Model
    /// Model rows per device batch.
    public var rowsPerChunk: Int
    /// The side of the square patches the image is cut into.
    let patch: Int
    /// An imported vision transformer's attention: its softmax nodes over the keys, in order, and
    /// the axis of their per-example output that holds the heads (nil: one head, [T, T]); nil for
    /// Prism's own transformer blocks.
    let softmaxNodes: (names: [String], headAxis: Int?)?

    /// - Throws: `ExplainError` when the model is not a vision transformer: neither Prism's patch
    ///   embedding and transformer blocks, nor an imported graph whose first convolution cuts the
    ///   image into patches (kernel = stride) and whose softmax nodes give [heads, T, T] attention over
    ///   the patches and a class token.
    public init(model: Model, rowsPerChunk: Int = 64) throws {
        guard rowsPerChunk > 0 else { throw ExplainError("attention maps: rows per chunk must be positive, got \(rowsPerChunk)") }
        self.model = model
        self.rowsPerChunk = rowsPerChunk
        if model.ops.contains(where: { $0 is TransformerBlock }), let embedding = model.ops.first as? PatchEmbedding {
            (patch, softmaxNodes) = (embedding.patch, nil)
            return
        }
        let shape = model.spec.inputShape
        guard shape.count == 3, let conv = model.ops.first(where: { $0 is Conv2DLayer }) as? Conv2DLayer,
              conv.weight.shape[2] == conv.weight.shape[3], conv.stride == (conv.weight.shape[2], conv.weight.shape[3]),
              conv.padding == (0, 0), shape[1] % conv.stride.0 == 0, shape[2] % conv.stride.1 == 0 else {
            throw ExplainError("attention maps: the model is not a vision transformer (no patch embedding and transformer blocks, nor a first convolution cutting the image into square patches)")
        }
        let p = conv.stride.0, tokens = (shape[1] / p) * (shape[2] / p) + 1
        var names: [String] = [], headAxis: Int?? = .none
        for (i, node) in model.graph.nodes.enumerated() where node.spec.op == SoftmaxSchema.kind {
            let out = node.info.output
            guard out.last == tokens, (try? SoftmaxSchema.axis(JSONValue.decode(SoftmaxSchema.Config.self, from: node.spec.attributes), rank: out.count)) == out.count - 1 else { continue }
            let axis: Int?
            switch out.count {
            case 2 where out[0] == tokens: axis = nil
            case 3 where out[0] != tokens && out[1] == tokens: axis = 0
            case 3 where out[0] == tokens && out[1] != tokens: axis = 1
            default: continue
            }
            if case let .some(previous) = headAxis, previous != axis { continue }
            headAxis = .some(axis)
            names.append(model.activationName(i))
        }
        guard !names.isEmpty, case let .some(axis) = headAxis else {
            throw ExplainError("attention maps: no softmax node gives attention over the \(tokens - 1) patches and a class token ([heads, \(tokens), \(tokens)])")
        }
        (patch, softmaxNodes) = (p, (names, axis))
    }

    var blocks: [TransformerBlock] { model.ops.compactMap { $0 as? TransformerBlock } }

    /// The patch grid (rows, columns) and the patch side.
    public var grid: (rows: Int, columns: Int, patch: Int) {
        let shape = model.spec.inputShape
        return (shape[1] / patch, shape[2] / patch, patch)
    }

    /// One layer's captured attention of `rows` examples as [rows, heads, T, T] values.
    func headsFirst(_ values: [Float], rows: Int, shape: [Int]) -> (values: [Float], heads: Int, tokens: Int) {
        guard let nodes = softmaxNodes else { return (values, shape[0], shape[2]) }   // Prism's blocks: [H, T, T]
        guard let axis = nodes.headAxis else { return (values, 1, shape.last ?? 0) }
        let t = shape[2], h = shape[axis]
        guard axis == 1 else { return (values, h, t) }
        // [T, H, T] per example → [H, T, T].
        var out = [Float](repeating: 0, count: values.count)
        for r in 0..<rows { for q in 0..<t { for k in 0..<h { for j in 0..<t {
            out[((r * h + k) * t + q) * t + j] = values[((r * t + q) * h + k) * t + j]
        } } } }
        return (out, h, t)
    }

    /// The attention probabilities of every layer for each instance; with `targets`, also their
    /// gradients with respect to each instance's target output.
    public func probabilities(instances: [Float], targets: [Int]? = nil) throws -> [Probabilities] {
        let d = model.spec.inputShape.reduce(1, *)
        guard d > 0, !instances.isEmpty, instances.count % d == 0 else {
            throw ExplainError("attention maps: \(instances.count) values are not a whole number of inputs of shape \(model.spec.inputShape)")
        }
        let n = instances.count / d
        if let targets {
            guard targets.count == n else { throw ExplainError("attention maps: \(targets.count) targets for \(n) instances") }
            if let bad = targets.first(where: { !(0..<model.spec.classCount).contains($0) }) {
                throw ExplainError("attention maps: target class \(bad) is outside 0..<\(model.spec.classCount)")
            }
        }
        if let nodes = softmaxNodes {
            // An imported graph: its softmax nodes captured by name (their gradients kept).
            return try collect(instances: instances, targets: targets) { x in
                let (output, captured) = try model.forward(x, capture: Set(nodes.names))
                return (output, try nodes.names.map { name in
                    guard let t = captured[name] else { throw ExplainError("attention maps: node '\(name)' was not captured") }
                    return t
                })
            }
        }
        let blocks = self.blocks
        for block in blocks { block.attention.keepsProbabilities = true }
        defer { for block in blocks { block.attention.keepsProbabilities = false } }
        return try collect(instances: instances, targets: targets) { x in
            (try model(x), try blocks.map { block in
                guard let p = block.attention.probabilities else { throw ExplainError("attention maps: a block kept no probabilities") }
                return p
            })
        }
    }

    /// Runs the model over `instances` in chunks with its parameters frozen, reading each layer's
    /// attention from `forward` (the output and the layers' probabilities) and, with `targets`,
    /// their gradients of each instance's target output.
    private func collect(instances: [Float], targets: [Int]?, forward: (Tensor) throws -> (Tensor, [Tensor])) throws -> [Probabilities] {
        let d = model.spec.inputShape.reduce(1, *), n = instances.count / d, c = model.spec.classCount
        let parameters = model.parameters
        let saved = parameters.map(\.requiresGrad)
        for p in parameters { p.requiresGrad = false }
        defer { for (p, r) in zip(parameters, saved) { p.requiresGrad = r } }
        var result: [Probabilities] = []
        var start = 0
        while start < n {
            let rows = min(rowsPerChunk, n - start)
            let x = try Tensor(Array(instances[(start * d)..<((start + rows) * d)]), shape: [rows] + model.spec.inputShape,
                               engine: model.engine, requiresGrad: targets != nil)
            func run() throws {
                let (output, maps) = try forward(x)
                var gradients: [[Float]]?
                if let targets {
                    var seed = [Float](repeating: 0, count: rows * c)
                    for r in 0..<rows { seed[r * c + targets[start + r]] = 1 }
                    try output.backward(try Tensor(seed, shape: output.shape, engine: model.engine))
                    gradients = try maps.map { map in
                        guard let g = map.grad else { throw ExplainError("attention maps: the output does not depend on the attention") }
                        return try g.toArray()
                    }
                }
                let laid = try maps.map { headsFirst(try $0.toArray(), rows: rows, shape: Array($0.shape.dropFirst())) }
                let laidGradients = gradients.map { g in zip(g, maps).map { headsFirst($0, rows: rows, shape: Array($1.shape.dropFirst())).values } }
                let (heads, t) = (laid[0].heads, laid[0].tokens)
                let per = heads * t * t
                for r in 0..<rows {
                    result.append(Probabilities(layers: laid.map { $0.values[(r * per)..<((r + 1) * per)].map(Double.init) }, heads: heads, tokens: t,
                                                gradients: laidGradients?.map { $0[(r * per)..<((r + 1) * per)].map(Double.init) }))
                }
            }
            if targets == nil { try model.engine.noGrad { try run() } } else { try run() }
            start += rows
        }
        return result
    }

    /// Attention rollout: per layer the heads' mean Ā, with the residual path Â = ½Ā + ½I (rows
    /// renormalized), multiplied from the first layer up: R = Â_L ··· Â_1. [T, T] row-major.
    /// - Parameter residual: add the identity for the skip connection (the paper's choice).
    public static func rollout(_ p: Probabilities, residual: Bool = true) -> [Double] {
        let t = p.tokens
        var r = identity(t)
        for layer in p.layers {
            var a = headMean(layer, heads: p.heads, tokens: t)
            if residual {
                for i in 0..<t {
                    var sum = 0.0
                    for j in 0..<t { a[i * t + j] = 0.5 * a[i * t + j] + (i == j ? 0.5 : 0); sum += a[i * t + j] }
                    for j in 0..<t { a[i * t + j] /= sum }
                }
            }
            r = multiply(a, r, t)
        }
        return r
    }

    /// Gradient-weighted rollout (Chefer et al. 2021): Ā = mean over heads of (∇A ⊙ A)⁺, and
    /// R ← R + Ā·R from R = I, layer by layer. [T, T] row-major.
    /// - Throws: `ExplainError` when the probabilities carry no gradients.
    public static func gradientRollout(_ p: Probabilities) throws -> [Double] {
        guard let gradients = p.gradients else { throw ExplainError("attention × gradient: no gradients were computed") }
        let t = p.tokens, h = p.heads
        var r = identity(t)
        for (a, g) in zip(p.layers, gradients) {
            let weighted = headMean(zip(a, g).map { max(0, $0 * $1) }, heads: h, tokens: t)
            let ar = multiply(weighted, r, t)
            for k in r.indices { r[k] += ar[k] }
        }
        return r
    }

    /// The class token's row without itself: one value per patch, row by row over the grid.
    public static func classRow(_ map: [Double], tokens t: Int) -> [Double] {
        Array(map[1..<t])
    }

    static func identity(_ t: Int) -> [Double] {
        var m = [Double](repeating: 0, count: t * t)
        for i in 0..<t { m[i * t + i] = 1 }
        return m
    }

    static func headMean(_ layer: [Double], heads: Int, tokens t: Int) -> [Double] {
        var mean = [Double](repeating: 0, count: t * t)
        for h in 0..<heads { for k in 0..<(t * t) { mean[k] += layer[h * t * t + k] / Double(heads) } }
        return mean
    }

    /// a·b for t×t matrices.
    static func multiply(_ a: [Double], _ b: [Double], _ t: Int) -> [Double] {
        var c = [Double](repeating: 0, count: t * t)
        for i in 0..<t { for k in 0..<t where a[i * t + k] != 0 { for j in 0..<t { c[i * t + j] += a[i * t + k] * b[k * t + j] } } }
        return c
    }
}

/// Attention rollout or attention × gradient as an attribution method: one value per patch (the
/// features are the patch grid, like superpixels of the patch side), from the class token's row.
/// Rollout does not depend on the class; every target gets the same map.
public struct AttentionAttribution: AttributionMethod {
    public enum Kind: String, Sendable {
        case rollout
        case gradient = "attention-gradient"
    }

    public let maps: AttentionMaps
    public var kind: Kind

    public var name: String { kind == .rollout ? "attention-rollout" : "attention-gradient" }

    public init(model: Model, kind: Kind = .rollout, rowsPerChunk: Int = 64) throws {
        maps = try AttentionMaps(model: model, rowsPerChunk: rowsPerChunk)
        self.kind = kind
    }

    /// - Returns: values [instances][patches][targets].
    public func explain(instances: [Float], targets: AttributionTargets) throws -> Explanation {
        let start = DispatchTime.now()
        let model = maps.model
        let d = model.spec.inputShape.reduce(1, *)
        guard d > 0, !instances.isEmpty, instances.count % d == 0 else {
            throw ExplainError("\(name): \(instances.count) values are not a whole number of inputs of shape \(model.spec.inputShape)")
        }
        let n = instances.count / d
        try targets.validate(instanceCount: n, classCount: model.spec.classCount)
        let slots = targets.outputCount
        let (rows, columns, _) = maps.grid
        let m = rows * columns
        var values = [Double](repeating: 0, count: n * m * slots)
        var evaluations = 0
        switch kind {
        case .rollout:
            let all = try maps.probabilities(instances: instances)
            evaluations = n
            for (i, p) in all.enumerated() {
                let row = AttentionMaps.classRow(AttentionMaps.rollout(p), tokens: p.tokens)
                for j in 0..<m { for s in 0..<slots { values[(i * m + j) * slots + s] = row[j] } }
            }
        case .gradient:
            for s in 0..<slots {
                let all = try maps.probabilities(instances: instances, targets: (0..<n).map { targets.classes(instance: $0)[s] })
                evaluations += n
                for (i, p) in all.enumerated() {
                    let row = AttentionMaps.classRow(try AttentionMaps.gradientRollout(p), tokens: p.tokens)
                    for j in 0..<m { values[(i * m + j) * slots + s] = row[j] }
                }
            }
        }
        return try Explanation(method: name, instanceCount: n, featureCount: m, outputCount: slots, values: values,
                               featureNames: (0..<m).map { "patch \($0)" }, modelEvaluations: evaluations,
                               seconds: Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9,
                               settings: ["targets": .string(targets.description), "grid": .ints([rows, columns])])
    }
}
