import Foundation
import PrismONNX

/// A model: the graph of a `ModelSpec` built on an engine, one op per node, run in the nodes'
/// (topological) order. Parameters are named `<node>.<name>` as the nodes' PyTorch modules name
/// them, so a state dict moves between Prism and PyTorch unchanged (a chain built by `Model`
/// has nodes "0", "1", … and parameters `0.weight`, as `nn.Sequential`).
public final class Model {
    public let engine: Engine
    public let spec: ModelSpec
    /// The checked graph (inputs resolved to value numbers, shapes inferred).
    public let graph: GraphAnalysis
    /// One op per node, in node order.
    public let ops: [any Op]
    /// Pruning masks by parameter name (1 kept, 0 pruned; `prune(amount:scope:)`, or read from a
    /// file): training keeps the pruned weights at zero, and the model is saved as
    /// `torch.nn.utils.prune` keeps a pruned module (`NAME_orig`, `NAME_mask`).
    public internal(set) var masks: [String: Tensor] = [:]
    /// `spec.inputNormalization` on the device: the mean and 1/std shaped [1, C, 1, …] to broadcast
    /// over a batch (nil without one, or with a single channel, which runs as one affine map).
    private let normalization: (mean: Tensor, inverseStd: Tensor)?
    /// How many nodes read each value (the output counts once more).
    private let readers: [Int]
    /// The fusion plan (one optional fused run per starting node) for each way the model has run:
    /// training or not, on the tape or not, which nodes captured.
    private var plans: [PlanKey: [FusedRun?]] = [:]
    private let plansLock = NSLock()

    private struct PlanKey: Hashable {
        var training: Bool
        var taped: Bool
        var captured: Set<Int>
    }

    /// Builds `spec`'s nodes with PyTorch's default initialization, seeded.
    /// - Throws: `TensorError` naming the node whose op, attributes or shapes do not fit, or when the
    ///   output is not `spec.classCount` wide (see `ModelSpec.validate`); `DataError` when the
    ///   parameters would not fit in the device's or the host's memory (checked before anything is
    ///   allocated).
    public init(spec: ModelSpec, seed: UInt64, engine: Engine) throws {
        let graph = try spec.validate()
        try spec.requireMemory(device: engine.device)
        var ops: [any Op] = []
        for (i, node) in graph.nodes.enumerated() {
            let nodeSeed = seed &+ UInt64(i) &* 0x1000_0000_01B3
            let shapes = node.inputs.map { graph.shape(ofValue: $0, input: spec.inputShape) }
            do {
                ops.append(try OpRegistry.make(node.spec.op, node.spec.attributes, shapes, seed: nodeSeed, engine: engine))
            } catch let error as TensorError {
                throw TensorError("model: node \(i) \(node.spec): \(error.message)")
            }
        }
        if let n = spec.inputNormalization {
            try n.validate(inputShape: spec.inputShape)
        }
        if let n = spec.inputNormalization, n.mean.count > 1 {
            let shape = [1, n.mean.count] + [Int](repeating: 1, count: spec.inputShape.count - 1)
            normalization = (try Tensor(n.mean, shape: shape, engine: engine), try Tensor(n.std.map { 1 / $0 }, shape: shape, engine: engine))
        } else {
            normalization = nil
        }
        var readers = [Int](repeating: 0, count: graph.nodes.count + 1)
        for node in graph.nodes { for v in node.inputs { readers[v] += 1 } }
        readers[graph.output] += 1
        self.readers = readers
        self.engine = engine
        self.spec = spec
        self.graph = graph
        self.ops = ops
    }

    /// The first layer's input: `x` after the spec's input normalization (`x` itself without one),
    /// recording its backward, so that gradients reach the raw input.
    public func normalizedInput(_ x: Tensor) throws -> Tensor {
        guard let n = spec.inputNormalization else { return x }
        if let normalization {
            return try x.sub(normalization.mean).mul(normalization.inverseStd)
        }
        let inverse = 1 / n.std[0]
        return try x.affine(scale: inverse, shift: -n.mean[0] * inverse)
    }

    /// Node `i`'s name.
    public func nodeName(_ i: Int) -> String { graph.nodes[i].spec.name }

    /// The index of the node named `name`, if any.
    public func nodeIndex(_ name: String) -> Int? { graph.nodes.firstIndex { $0.spec.name == name } }

    /// Every trainable tensor under its state-dict name (`<node>.<name>`), in node order.
    public var namedParameters: [(name: String, tensor: Tensor)] {
        ops.enumerated().flatMap { i, op in op.parameters.map { ("\(nodeName(i)).\($0.name)", $0.tensor) } }
    }

    /// Saved, untrained state (BatchNorm's running statistics) under state-dict names, in node order.
    public var namedBuffers: [(name: String, tensor: Tensor)] {
        ops.enumerated().flatMap { i, op in op.buffers.map { ("\(nodeName(i)).\($0.name)", $0.tensor) } }
    }

    public var parameters: [Tensor] { namedParameters.map(\.tensor) }

    /// The number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// The name of node `i`'s output activation: the node's name — or, for a node named by its
    /// position in a chain, `"<i>.<op>"` (e.g. `"1.relu"`). `forward(capture:)` accepts both
    /// spellings for every node.
    public func activationName(_ i: Int) -> String {
        let name = nodeName(i)
        return name.allSatisfy(\.isNumber) ? "\(name).\(ops[i].kind)" : name
    }

    /// The node an activation name refers to (either spelling of `activationName`).
    public func node(activation name: String) -> Int? {
        graph.nodes.indices.first { i in nodeName(i) == name || "\(nodeName(i)).\(ops[i].kind)" == name }
    }

    /// The model's inputs besides its first (`input` nodes: an attention mask beside token ids), in
    /// node order: name, per-example shape and element type.
    public var extraInputs: [(name: String, shape: [Int], type: ElementType)] {
        graph.nodes.compactMap { node in
            node.spec.op == InputSchema.kind ? (node.spec.name, node.info.output, node.info.type) : nil
        }
    }

    /// Values of the extra inputs for one example, used by every forward pass that is not given them
    /// (`forward(_:inputs:)`), repeated over its batch: what explainers run with when they perturb the
    /// first input of one instance (its token ids) and keep the rest (its attention mask).
    /// Set with `bind(_:)`; nil when nothing is bound.
    public private(set) var boundInputs: [String: BoundInput]?
    /// The bound inputs on the device, repeated for the last batch size used.
    private var boundCache: (rows: Int, values: [String: GraphValue])?

    /// One example's value of an extra input, kept on the host (see `boundInputs`).
    public struct BoundInput: Sendable {
        /// The example's values (integers stored exactly as Double up to 2^53).
        public var values: [Double]
        public var type: ElementType
        public init(values: [Double], type: ElementType) { (self.values, self.type) = (values, type) }
    }

    /// Binds one example's values of the extra inputs (see `boundInputs`); nil unbinds.
    /// - Throws: `TensorError` naming an input that the model does not have, one that is missing,
    ///   or values that do not fill its shape.
    public func bind(_ inputs: [String: BoundInput]?) throws {
        defer { boundCache = nil }
        guard let inputs else { boundInputs = nil; return }
        let extra = extraInputs
        for name in inputs.keys.sorted() where !extra.contains(where: { $0.name == name }) {
            throw TensorError("model: no input named '\(name)'; its extra inputs are \(extra.map { "'\($0.name)'" }.joined(separator: ", "))")
        }
        for input in extra {
            guard let value = inputs[input.name] else { throw TensorError("model: input '\(input.name)' is not given") }
            let count = input.shape.reduce(1, *)
            guard value.values.count == count else {
                throw TensorError("model: input '\(input.name)' takes \(count) values per example (shape \(input.shape)), got \(value.values.count)")
            }
        }
        boundInputs = inputs
    }

    /// The bound inputs repeated for a batch of `rows`.
    private func boundValues(rows: Int) throws -> [String: GraphValue] {
        guard let bound = boundInputs else { return [:] }
        if let cache = boundCache, cache.rows == rows { return cache.values }
        var values: [String: GraphValue] = [:]
        for input in extraInputs {
            guard let b = bound[input.name] else { continue }
            let shape = [rows] + input.shape
            var repeated: [Double] = []
            repeated.reserveCapacity(rows * b.values.count)
            for _ in 0..<rows { repeated += b.values }
            if input.type == .float32 {
                values[input.name] = .float(try Tensor(repeated.map { Float($0) }, shape: shape, engine: engine))
            } else {
                guard let type = IntegerType(rawValue: input.type.rawValue) else { throw TensorError("model: input '\(input.name)' has no integer type \(input.type.rawValue)") }
                let ints = try repeated.map { v -> Int64 in
                    guard let i = Int64(exactly: v) else { throw TensorError("model: input '\(input.name)' holds \(v), not an integer") }
                    return i
                }
                values[input.name] = .integer(try IntTensor(ints, shape: shape, dtype: type, engine: engine))
            }
        }
        boundCache = (rows, values)
        return values
    }

    /// Runs the model on float32 inputs.
    /// - Parameters:
    ///   - x: [batch] + `spec.inputShape`.
    ///   - training: dropout active, BatchNorm on batch statistics.
    ///   - capture: activation names (see `activationName`) to return; each captured activation keeps
    ///     its gradient after `backward()` (`retainGrad`), which attribution methods read.
    /// - Throws: `TensorError` when `x` does not have the model's input shape or type, or a name is not
    ///   a float32 node.
    /// - Returns: the output and the captured activations by the names asked for.
    ///
    /// A model whose input is integer (token ids) takes them as float32 whole numbers too (as
    /// explainers' perturbations pass them): they are cast to the input's type, refused when one
    /// is not a whole number that fits it.
    public func forward(_ x: Tensor, training: Bool = false, capture: Set<String> = []) throws -> (output: Tensor, activations: [String: Tensor]) {
        try run(.float(x), inputs: [:], training: training, capture: capture)
    }

    /// Runs a model whose input is integer (token ids, indices: `spec.inputType`).
    /// - Throws: as `forward(_:training:capture:)`.
    public func forward(_ x: IntTensor, training: Bool = false, capture: Set<String> = []) throws -> (output: Tensor, activations: [String: Tensor]) {
        try run(.integer(x), inputs: [:], training: training, capture: capture)
    }

    /// Runs a model of several inputs: `x` is the first (the model's `input`), `inputs` the others by
    /// name (`extraInputs`), each with `x`'s batch or a batch of 1 (repeated). Inputs not given are
    /// the bound ones (`bind(_:)`).
    /// - Throws: `TensorError` naming an input that is missing, unknown, or of the wrong shape or type.
    /// - Parameter overrides: nodes whose output is given rather than computed, by node name: the
    ///   rest of the graph runs from these values (gradients reach them; attributions at a layer, such
    ///   as an embedding's output, read them).
    public func forward(_ x: GraphValue, inputs: [String: GraphValue], overrides: [String: Tensor] = [:], training: Bool = false,
                        capture: Set<String> = []) throws -> (output: Tensor, activations: [String: Tensor]) {
        try run(x, inputs: inputs, overrides: overrides, training: training, capture: capture)
    }

    /// The input checked against the spec's shape and type, normalized.
    private func input(_ x: GraphValue) throws -> GraphValue {
        let expected = spec.inputType ?? .float32
        guard x.shape.count == spec.inputShape.count + 1, Array(x.shape.dropFirst()) == spec.inputShape else {
            throw TensorError("model: input has shape \(x.shape), the model expects [batch] + \(spec.inputShape)")
        }
        switch x {
        case let .float(t):
            if expected.isInteger, let type = IntegerType(rawValue: expected.rawValue) {
                return .integer(try wholeNumbers(t, as: type))
            }
            guard expected == .float32 else { throw TensorError("model: the input is float32, the model takes \(expected.rawValue) values") }
            return .float(try normalizedInput(t))
        case let .integer(t):
            guard expected.isInteger else { throw TensorError("model: the input is \(t.dtype.rawValue), the model takes float32 values") }
            return x
        }
    }

    /// Float32 whole numbers as integers of `type` (token ids passed as floats).
    /// - Throws: `TensorError` naming the first value that is not a whole number or does not fit.
    private func wholeNumbers(_ t: Tensor, as type: IntegerType) throws -> IntTensor {
        let (cast, flagged) = try t.castToInteger(type, wholeNumbers: true)
        guard let (i, value) = flagged else { return cast }
        guard value.isFinite, value.rounded(.towardZero) == value else {
            throw TensorError("model: the input takes \(type.rawValue) values; element \(i) is \(value), not a whole number")
        }
        throw t.integerCastError(type, index: i, value: value)
    }

    /// The extra inputs of a run: those given, else the bound ones, each checked and repeated to
    /// `rows` when given for one example.
    private func feed(_ given: [String: GraphValue], rows: Int) throws -> [String: GraphValue] {
        let extra = extraInputs
        for name in given.keys.sorted() where !extra.contains(where: { $0.name == name }) {
            throw TensorError("model: no input named '\(name)'\(extra.isEmpty ? "; the model has one input" : "; its extra inputs are \(extra.map { "'\($0.name)'" }.joined(separator: ", "))")")
        }
        if extra.isEmpty { return [:] }
        let bound = given.count < extra.count ? try boundValues(rows: rows) : [:]
        var fed: [String: GraphValue] = [:]
        for input in extra {
            guard var value = given[input.name] ?? bound[input.name] else {
                throw TensorError("model: input '\(input.name)' ([batch] + \(input.shape), \(input.type.rawValue)) is not given")
            }
            guard value.shape.count == input.shape.count + 1, Array(value.shape.dropFirst()) == input.shape else {
                throw TensorError("model: input '\(input.name)' has shape \(value.shape), the model expects [batch] + \(input.shape)")
            }
            switch value {
            case let .float(t):
                guard input.type == .float32 else { throw TensorError("model: input '\(input.name)' is float32, the model takes \(input.type.rawValue) values") }
                if t.shape[0] == 1, rows > 1 { value = .float(try t.broadcast(to: [rows] + input.shape)) }
            case let .integer(t):
                guard input.type.isInteger else { throw TensorError("model: input '\(input.name)' is \(t.dtype.rawValue), the model takes float32 values") }
                if t.shape[0] == 1, rows > 1 {
                    let one = try t.toArray()
                    var repeated: [Int64] = []
                    repeated.reserveCapacity(one.count * rows)
                    for _ in 0..<rows { repeated += one }
                    value = .integer(try IntTensor(repeated, shape: [rows] + input.shape, dtype: t.dtype, engine: engine))
                }
            }
            guard value.shape[0] == rows else {
                throw TensorError("model: input '\(input.name)' has a batch of \(value.shape[0]), the first input \(rows)")
            }
            fed[input.name] = value
        }
        return fed
    }

    private func run(_ x: GraphValue, inputs given: [String: GraphValue], overrides named: [String: Tensor] = [:], training: Bool,
                     capture: Set<String>) throws -> (output: Tensor, activations: [String: Tensor]) {
        var overrides: [Int: Tensor] = [:]
        for (name, value) in named {
            guard let i = nodeIndex(name) else { throw TensorError("model: no node named '\(name)' to give the output of") }
            guard graph.nodes[i].info.type == .float32, value.shape == [x.shape[0]] + graph.nodes[i].info.output else {
                throw TensorError("model: the value given for node '\(name)' has shape \(value.shape); the node computes [\(x.shape[0])] + \(graph.nodes[i].info.output) float32 values")
            }
            overrides[i] = value
        }
        var captureNodes: [Int: [String]] = [:]
        for name in capture.sorted() {
            guard let i = node(activation: name) else {
                throw TensorError("model: no activation named '\(name)'; names are \(graph.nodes.indices.map(activationName).joined(separator: ", "))")
            }
            guard graph.nodes[i].info.type == .float32 else {
                throw TensorError("model: activation '\(name)' holds \(graph.nodes[i].info.type.rawValue) values; only float32 activations have gradients to keep")
            }
            captureNodes[i, default: []].append(name)
        }
        var values = [GraphValue?](repeating: nil, count: ops.count + 1)
        var pending = readers
        values[0] = try input(x)
        let fed = try feed(given, rows: x.shape[0])
        var captured: [String: Tensor] = [:]
        func release(_ node: Int) {
            for v in graph.nodes[node].inputs {
                pending[v] -= 1
                if pending[v] == 0 { values[v] = nil }
            }
        }
        func keep(_ out: Tensor, _ i: Int) {
            out.name = activationName(i)
            values[i + 1] = .float(out)
            if let names = captureNodes[i] {
                out.retainGrad()
                for name in names { captured[name] = out }
            }
        }
        // Given node outputs end any fused run: the plan is matched without fusion then.
        let plan = overrides.isEmpty ? fusionPlan(PlanKey(training: training, taped: engine.isGradEnabled, captured: Set(captureNodes.keys)))
                                     : [FusedRun?](repeating: nil, count: ops.count)
        var i = 0
        while i < ops.count {
            if let given = overrides[i] {
                keep(given, i)
                release(i)
                i += 1
                continue
            }
            if let fused = plan[i], case let inputs = graph.nodes[i].inputs.compactMap({ v -> Tensor? in
                if case let .float(t)? = values[v] { return t } else { return nil }
            }), inputs.count == graph.nodes[i].inputs.count {
                keep(try fused.run(inputs), fused.last)
                for n in i...fused.last { release(n) }
                i = fused.last + 1
                continue
            }
            if ops[i] is InputNode, let value = fed[nodeName(i)] {
                if case let .float(t) = value { keep(t, i) } else { values[i + 1] = value }
                i += 1
                continue
            }
            let inputs = graph.nodes[i].inputs.map { values[$0]! }
            if let typed = ops[i] as? any TypedOp {
                let out = try typed.forward(values: inputs, training: training)
                if case let .float(t) = out { keep(t, i) } else { values[i + 1] = out }
            } else {
                keep(try ops[i].forward(try inputs.map { try $0.float() }, training: training), i)
            }
            release(i)
            i += 1
        }
        return (try values[graph.output]!.float(), captured)
    }

    /// The fusion plan for `key`, matched once and kept.
    private func fusionPlan(_ key: PlanKey) -> [FusedRun?] {
        if let plan = plansLock.withLock({ plans[key] }) { return plan }
        let context = FusionContext(model: self, captured: key.captured, readers: readers, training: key.training)
        let plan = ops.indices.map { Fusion.match(at: $0, context) }
        plansLock.withLock { plans[key] = plan }
        return plan
    }

    /// Every value of a forward pass, node by node without fusion: [0] the (normalized) input, [i + 1]
    /// node i's output (what LRP and other per-node methods walk back over).
    /// - Throws: `TensorError` when `x` does not have the model's input shape, or the graph has
    ///   integer values (token ids, masks).
    public func values(_ x: Tensor, training: Bool = false) throws -> [Tensor] {
        guard graph.isFloat else { throw TensorError("model: the graph holds integer values; this walks float32 graphs only") }
        guard case let .float(input) = try input(.float(x)) else { throw TensorError("model: the input is not float32") }
        var values = [input]
        for (i, op) in ops.enumerated() {
            let out = try op.forward(graph.nodes[i].inputs.map { values[$0] }, training: training)
            out.name = activationName(i)
            values.append(out)
        }
        return values
    }

    /// The output only.
    public func callAsFunction(_ x: Tensor, training: Bool = false) throws -> Tensor {
        try forward(x, training: training).output
    }

    /// The same model on `engine` (another device, or another context of this one): the spec, the
    /// parameters and buffers, and each Dropout's call count, so that the copy computes what this
    /// model does.
    /// - Throws: `DataError` when the parameters do not fit on `engine`'s device.
    public func copy(to engine: Engine) throws -> Model {
        let copy = try Model(spec: spec, seed: 0, engine: engine)
        try copy.loadStateDict(try stateDict(), source: "model copy")
        for (a, b) in zip(ops, copy.ops) {
            if let a = a as? Dropout, let b = b as? Dropout { b.calls = a.calls }
        }
        return copy
    }

    // MARK: state dict

    /// The metadata key holding the spec's JSON in a model file.
    public static let specMetadataKey = "prism.model"

    /// The parameters and buffers as host tensors under PyTorch names.
    /// A pruned parameter (one with a mask, see `masks`) is saved as `torch.nn.utils.prune` keeps it:
    /// `NAME_orig` (the weights, zero where pruned) and `NAME_mask` (1 kept, 0 pruned), not `NAME`.
    public func stateDict() throws -> [String: HostTensor] {
        var dict: [String: HostTensor] = [:]
        for (name, tensor) in namedParameters + namedBuffers {
            let host = HostTensor(shape: tensor.shape, values: try tensor.toArray())
            if let mask = masks[name] {
                dict[name + Self.prunedOriginalSuffix] = host
                dict[name + Self.pruningMaskSuffix] = HostTensor(shape: mask.shape, values: try mask.toArray())
            } else {
                dict[name] = host
            }
        }
        return dict
    }

    /// Tensors a model file may hold that no layer reads, as PyTorch's `load_state_dict` skips them:
    /// BatchNorm's `num_batches_tracked` counters (name suffixes).
    public static let ignoredTensorSuffixes = [".num_batches_tracked"]

    /// Overwrites the parameters from `tensors`.
    /// - Parameters:
    ///   - strict: refuse tensors the model has no parameter for (as PyTorch's `load_state_dict`
    ///     does by default), except names ending in one of `ignoredTensorSuffixes`.
    /// - Throws: `DataError` naming a missing tensor, one whose shape differs, one with NaN or
    ///   infinite values (and how many), or (strict) the tensors the model does not expect.
    public func loadStateDict(_ given: [String: HostTensor], source: String = "state dict", strict: Bool = true) throws {
        let named = namedParameters + namedBuffers
        // Pruned parameters (NAME_orig and NAME_mask, or NAME and NAME_mask) become NAME = orig · mask, the mask kept.
        let (tensors, loadedMasks) = try Self.separatingMasks(given, parameters: Set(namedParameters.map(\.name)), source: source)
        let expected = Set(named.map(\.name))
        let unexpected = strict ? tensors.keys.filter { key in
            !expected.contains(key) && !Self.ignoredTensorSuffixes.contains { key.hasSuffix($0) }
        }.sorted() : []
        let unexpectedText = unexpected.isEmpty ? "" : "unexpected tensor\(unexpected.count == 1 ? "" : "s") "
            + unexpected.prefix(8).map(displayed).joined(separator: ", ") + (unexpected.count > 8 ? ", … (\(unexpected.count) in all)" : "")
        // Like PyTorch's strict load, a renamed tensor is reported both ways.
        if let (name, tensor) = named.first(where: { tensors[$0.name] == nil }) {
            throw DataError("\(source): missing tensor '\(name)' (shape \(tensor.shape))" + (unexpected.isEmpty ? "" : "; \(unexpectedText)"))
        }
        if !unexpected.isEmpty {
            throw DataError("\(source): \(unexpectedText) (the model has no such parameter)")
        }
        for (name, tensor) in named {
            guard let host = tensors[name] else { throw DataError("\(source): missing tensor '\(name)' (shape \(tensor.shape))") }
            guard host.shape == tensor.shape else {
                throw DataError("\(source): tensor '\(name)' has shape \(host.shape), the model expects \(tensor.shape)")
            }
            let nan = host.values.reduce(0) { $0 + ($1.isNaN ? 1 : 0) }
            let infinite = host.values.reduce(0) { $0 + ($1.isInfinite ? 1 : 0) }
            guard nan == 0, infinite == 0 else {
                throw DataError("\(source): tensor '\(name)' holds \(nan) NaN and \(infinite) infinite values of \(host.values.count)")
            }
            try tensor.storage.write(host.values)
        }
        masks = try loadedMasks.mapValues { try Tensor($0.values, shape: $0.shape, engine: engine) }
    }

    /// Writes the model as safetensors (PyTorch names, the spec in the metadata), atomically.
    /// - Parameters:
    ///   - metadata: extra metadata entries (e.g. standardization, class names).
    ///   - outputAffine: when given, the written model's outputs are y·scale[o] + shift[o] of this
    ///     model's: the map is folded into the last layer's weight and bias (a model trained on
    ///     standardized targets is written in the targets' units).
    /// - Throws: `TensorError` when `outputAffine` is given and the last layer is not a Linear with one
    ///   output per scale and shift.
    public func save(path: String, metadata: [String: String] = [:], outputAffine: (scale: [Float], shift: [Float])? = nil) throws {
        var meta = metadata
        meta[Self.specMetadataKey] = try spec.json()
        var tensors = try stateDict()
        if let (scale, shift) = outputAffine {
            let last = graph.output - 1, name = nodeName(last)
            // A pruned last layer keeps its weights under weight_orig (zeros stay zeros when scaled).
            let weightKey = masks["\(name).weight"] == nil ? "\(name).weight" : "\(name).weight" + Self.prunedOriginalSuffix
            guard let layer = ops[last] as? Linear, case let (inputs, outputs) = (layer.weight.shape[1], layer.weight.shape[0]),
                  scale.count == outputs, shift.count == outputs,
                  let weight = tensors[weightKey], let bias = tensors["\(name).bias"] else {
                throw TensorError("save: an output scale needs a last Linear layer with a bias and \(scale.count) outputs; the output node is \(graph.nodes[last].spec)")
            }
            var w = weight, b = bias
            for o in 0..<outputs {
                for i in 0..<inputs { w.values[o * inputs + i] *= scale[o] }
                b.values[o] = b.values[o] * scale[o] + shift[o]
            }
            tensors[weightKey] = w
            tensors["\(name).bias"] = b
        }
        try SafetensorsFile(tensors: tensors, metadata: meta).write(path: path)
    }

    /// Rebuilds a model from a file written by `save` (or by PyTorch, given `spec`): every tensor of
    /// the file must be a parameter of the model (see `loadStateDict`), except the optimizer's
    /// tensors of a training checkpoint. A `.onnx` file (without `spec`) is imported (`ONNXModel`):
    /// its graph is the architecture and its initializers the tensors; `file` then has no metadata.
    /// - Parameter spec: the architecture when the file carries none.
    /// - Throws: `DataError` naming the file and the missing, mismatched, non-finite or unexpected tensor.
    /// - Parameter input: an ONNX model of several inputs: the one that becomes the model's input (the
    ///   others are fed by name); nil takes the first. Refused for other files.
    public static func load(path: String, spec: ModelSpec? = nil, input: String? = nil, engine: Engine) throws -> (model: Model, file: SafetensorsFile) {
        let file: SafetensorsFile
        let resolved: ModelSpec
        if spec == nil, ONNXModel.isONNX(path: path) {
            // An ONNX export: its graph imported as the architecture, its initializers as the tensors.
            let (imported, tensors) = try ONNXModel.read(path: path, input: input)
            (resolved, file) = (imported, SafetensorsFile(tensors: tensors))
        } else {
            if let input { throw DataError("\(path): the input to explain ('\(input)') is chosen among an ONNX model's inputs; this file's model has its first input explained") }
            try ForeignModelFile.refusePyTorchPickle(path: path)
            var read = try SafetensorsFile.read(path: path)
            try dequantizeInt8Weights(&read, path: path)
            file = read
            resolved = try resolveSpec(spec, file: file, path: path)
        }
        // The file's tensors against the architecture before anything is built: a description
        // claiming 2^40 outputs over a [10, 128] weight is refused here, not after allocating.
        // (Missing and unexpected tensors are named together by loadStateDict, as PyTorch does.)
        _ = try resolved.checkedParameterCount(source: path)
        for (name, shape) in resolved.namedParameterShapes {
            guard let tensor = file.tensors[name] else { continue }
            guard tensor.shape == shape else {
                throw DataError("\(path): tensor '\(name)' has shape \(tensor.shape), the model expects \(shape)")
            }
        }
        try resolved.requireMemory(device: engine.device, source: path)
        let model: Model
        do {
            model = try Model(spec: resolved, seed: 0, engine: engine)
        } catch let error as TensorError {
            throw DataError("\(path): \(error.message)")
        }
        if let name = file.integerTensors.keys.sorted().first(where: { key in !ignoredTensorSuffixes.contains { key.hasSuffix($0) } }) {
            throw DataError("\(path): tensor '\(name)' holds \(file.integerTensors[name]!.dtype) integers; the model's parameters and buffers are floating point")
        }
        // A training checkpoint (it carries the training state) also holds the optimizer's tensors.
        let checkpoint = file.metadata[Trainer.stateMetadataKey] != nil
        try model.loadStateDict(checkpoint ? file.tensors.filter { !$0.key.hasPrefix(Trainer.optimizerTensorPrefix) } : file.tensors, source: path)
        return (model, file)
    }

    /// The suffix of the per-output-channel scales of an int8 weight (`conv1.weight_scale` beside the
    /// I8 tensor `conv1.weight`), as `prism compress quantize` writes them.
    public static let int8ScaleSuffix = "_scale"

    /// Replaces every I8 tensor that has per-channel scales (`NAME` and `NAME_scale`, one scale per
    /// entry of the first axis) by its float values, scale[c] · q.
    static func dequantizeInt8Weights(_ file: inout SafetensorsFile, path: String) throws {
        for (name, q) in file.integerTensors where q.dtype == "I8" {
            guard let scales = file.tensors[name + int8ScaleSuffix] else { continue }
            guard let channels = q.shape.first, channels > 0, scales.shape == [channels], q.values.count % channels == 0 else {
                throw DataError("\(path): int8 tensor '\(name)' of shape \(q.shape) has scales of shape \(scales.shape) (one per entry of its first axis expected)")
            }
            guard scales.values.allSatisfy({ $0.isFinite && $0 > 0 }) else { throw DataError("\(path): tensor '\(name + int8ScaleSuffix)' holds scales that are not positive and finite") }
            let per = q.values.count / channels
            file.tensors[name] = HostTensor(shape: q.shape, values: q.values.indices.map { Float(q.values[$0]) * scales.values[$0 / per] })
            file.tensors[name + int8ScaleSuffix] = nil
            file.integerTensors[name] = nil
        }
    }

    /// The architecture of a safetensors model file: `spec` when given, else its metadata's.
    private static func resolveSpec(_ spec: ModelSpec?, file: SafetensorsFile, path: String) throws -> ModelSpec {
        if let spec { return spec }
        guard let json = file.metadata[specMetadataKey] else {
            throw DataError("\(path): no '\(specMetadataKey)' metadata; pass the architecture")
        }
        return try ModelSpec.decode(json: json, source: path)
    }
}
