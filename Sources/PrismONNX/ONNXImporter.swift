import Foundation
import PrismFormats
import PrismGraph

/// Turns one ONNX ModelProto into a Prism model description, node by node in the file's
/// (topological) order: constants are folded, graph ops become Prism nodes (see `translate`).
///
/// Refusals are `DataError`s of one line: `<file>: node '<name>' (<Op>, opset <n>): <what>; <what is
/// supported>`, or `<file>: <what>` for the model as a whole (opset, input, initializers).
struct ONNXImporter {
    let source: String
    let opset: Int
    let graph: Onnx_GraphProto
    /// The ONNX values seen so far, by name.
    var values: [String: ONNXValue] = [:]
    /// The per-example shape of each Prism value (node outputs and the model's input).
    var shapes: [String: [Int]] = [:]
    /// The element type of each Prism value that is not float32 (integer inputs, masks).
    var types: [String: ElementType] = [:]
    /// The ONNX name of the model's input and its element type.
    var inputName = "", inputType = ElementType.float32
    /// The other graph inputs, emitted as `input` nodes when read.
    var extraInputs: [String: (shape: [Int], type: ElementType)] = [:]
    var nodes: [NodeSpec] = []
    var tensors: [String: HostTensor] = [:]
    /// How many times each ONNX value is read (by nodes and as a graph output).
    var uses: [String: Int] = [:]
    /// ONNX values made by QuantizeLinear from graph values: name → the fake_quantize node and its
    /// scale and zero point (only a DequantizeLinear with the same ones may read them).
    var quantized: [String: (node: String, scale: Float, zeroPoint: Int)] = [:]
    /// Linear nodes made from a MatMul, without a bias yet: node name → index in `nodes`.
    var biasless: [String: Int] = [:]
    /// The input's batch size when the file fixes it (a reshape to [that size, …] keeps the batch).
    var fixedBatch: Int?
    let inputShape: [Int]
    /// The per-channel `(x − mean) / std` the graph starts with (see `leadingNormalization`).
    var normalization: ModelSpec.InputNormalization?
    /// The nodes that `normalization` stands for, by index: not imported as nodes.
    var skipped: Set<Int> = []

    /// Reads the model-level parts: the opset, the initializers (external data from `folder`) and
    /// the inputs: `input` (by name; nil: the first) becomes the model's, the others `input` nodes.
    /// - Throws: `DataError` naming the file and what does not import.
    init(model: Onnx_ModelProto, source: String, folder: String? = nil, input: String? = nil) throws {
        self.source = source
        guard model.hasGraph else { throw DataError("\(source): not an ONNX model: no graph") }
        graph = model.graph
        let defaults = model.opsetImport.filter { $0.domain.isEmpty || $0.domain == "ai.onnx" }
        guard let version = defaults.first?.version else {
            throw DataError("\(source): the model imports no opset of the default ONNX domain")
        }
        guard ONNXModel.opsets.contains(Int(clamping: version)) else {
            throw DataError("\(source): opset \(version); Prism imports opsets \(ONNXModel.opsets.lowerBound)–\(ONNXModel.opsets.upperBound) (export with opset_version=17)")
        }
        opset = Int(version)
        try Self.checkWiring(graph, opset: opset, source: source)
        var constants: [String: ONNXValue] = [:]
        for initializer in graph.initializer {
            do {
                constants[initializer.name] = try (initializer.isExternal ? initializer.readingExternalData(folder: folder) : initializer).constant()
            } catch let error as DataError {
                throw DataError("\(source): \(error.message)")
            }
        }
        let inputs = graph.input.filter { constants[$0.name] == nil }
        guard !inputs.isEmpty else { throw DataError("\(source): the graph has no input") }
        let chosen: Onnx_ValueInfoProto
        if let wanted = input {
            guard let found = inputs.first(where: { $0.name == wanted }) else {
                throw DataError("\(source): no graph input named '\(wanted)'; its inputs are \(inputs.map { "'\($0.name)'" }.joined(separator: ", "))")
            }
            chosen = found
        } else {
            chosen = inputs[0]
        }
        var fixedBatch: Int?
        var described: [String: (shape: [Int], type: ElementType)] = [:]
        for info in inputs {
            let (shape, type, batch) = try Self.describe(input: info, source: source)
            if let batch {
                guard fixedBatch == nil || fixedBatch == batch else {
                    throw DataError("\(source): input '\(info.name)' has batch size \(batch), another input \(fixedBatch!)")
                }
                fixedBatch = batch
            }
            described[info.name] = (shape, type)
        }
        self.fixedBatch = fixedBatch
        let shape = described[chosen.name]!.shape
        inputShape = shape
        (inputName, inputType) = (chosen.name, described[chosen.name]!.type)
        values = constants
        values[chosen.name] = .node(GraphAnalysis.inputName)
        shapes[GraphAnalysis.inputName] = shape
        if inputType != .float32 { types[GraphAnalysis.inputName] = inputType }
        for info in inputs where info.name != chosen.name {
            guard info.name != GraphAnalysis.inputName else {
                throw DataError("\(source): an input other than the one explained is named '\(GraphAnalysis.inputName)', the name Prism gives the explained input; explain '\(GraphAnalysis.inputName)' or rename it in the export")
            }
            guard let d = described[info.name] else { continue }
            extraInputs[info.name] = d
            values[info.name] = .node(info.name)
            shapes[info.name] = d.shape
            if d.type != .float32 { types[info.name] = d.type }
        }
        for node in graph.node {
            for name in node.input where !name.isEmpty { uses[name, default: 0] += 1 }
        }
        for output in graph.output { uses[output.name, default: 0] += 1 }
        if inputType == .float32, let (normalization, replaced, output) = leadingNormalization(input: chosen.name) {
            (self.normalization, skipped) = (normalization, replaced)
            values[output] = .node(GraphAnalysis.inputName)
        }
    }

    /// Imports every node, then checks the whole description.
    mutating func run() throws -> (spec: ModelSpec, tensors: [String: HostTensor]) {
        for (index, node) in graph.node.enumerated() where !skipped.contains(index) {
            let site = Site(node: node, opset: opset, source: source)
            guard node.domain.isEmpty || node.domain == "ai.onnx" else {
                throw site.fail("the domain '\(node.domain)' is not supported; Prism imports ops of the default ONNX domain")
            }
            var inputs: [ONNXValue?] = []
            for name in node.input {
                if name.isEmpty { inputs.append(nil); continue }
                guard let value = values[name] else {
                    throw site.fail("reads '\(name)' before the node that computes it; ONNX lists a graph's nodes in topological order")
                }
                inputs.append(value)
            }
            if node.opType == "Split" {
                for (name, value) in zip(node.output, try split(node, inputs, site)) where !name.isEmpty { values[name] = value }
                continue
            }
            for (i, name) in node.output.enumerated().dropFirst() where !name.isEmpty && uses[name, default: 0] > 0 {
                throw site.fail("output \(i) ('\(name)') is read; Prism imports the first output of \(node.opType) only")
            }
            let output = try translate(node, inputs, site)
            if let name = node.output.first, !name.isEmpty { values[name] = output }
        }
        guard graph.output.count == 1, let last = graph.output.first else {
            throw DataError("\(source): the graph has \(graph.output.count) outputs; Prism imports models of one output")
        }
        if case let .view(v)? = values[last.name] {
            let site = Site(node: Onnx_NodeProto.with { $0.name = last.name; $0.opType = "output" }, opset: opset, source: source)
            values[last.name] = .node(try materialize(v, site: site, for: site.node))
        }
        guard case let .node(name)? = values[last.name], name != GraphAnalysis.inputName, let shape = shapes[name] else {
            throw DataError("\(source): output '\(last.name)' is not computed from the input by the graph's nodes")
        }
        guard shape.count == 1 else {
            throw DataError("\(source): output '\(last.name)' has shape [batch] + \(shape); Prism imports models with one vector of outputs per example")
        }
        try checkDeclared(output: last, computed: shape)
        var kept = prune(output: name)
        // The extra inputs the output reads, as `input` nodes first.
        let read = Set(kept.flatMap { $0.inputs ?? [] })
        let fed = try graph.input.map(\.name).filter { extraInputs[$0] != nil && read.contains($0) }.map { name in
            let d = extraInputs[name]!
            return try NodeSpec(name, InputSchema.self, InputSchema.Config(shape: d.shape, dtype: d.type), inputs: [])
        }
        kept = fed + kept
        var spec = ModelSpec(architecture: "onnx", inputShape: inputShape, classCount: shape[0], nodes: kept,
                             output: kept.last?.name == name ? nil : name)
        spec.inputNormalization = normalization
        if inputType != .float32 { spec.inputType = inputType }
        if inputName != GraphAnalysis.inputName { spec.inputName = inputName }
        do {
            try spec.validate()
        } catch let error as TensorError {
            throw DataError("\(source): the imported graph does not check: \(error.message)")
        }
        // Parameter names of the imported ops have no dot: the node is the key up to its last dot.
        let names = Set(kept.map(\.name))
        return (spec, tensors.filter { key, _ in key.lastIndex(of: ".").map { names.contains(String(key[..<$0])) } ?? false })
    }

    /// The nodes the output depends on, in order.
    func prune(output: String) -> [NodeSpec] {
        var needed: Set<String> = [output]
        for node in nodes.reversed() where needed.contains(node.name) {
            needed.formUnion(node.inputs ?? [])
        }
        return nodes.filter { needed.contains($0.name) }
    }

    // MARK: emitting Prism nodes

    /// A Prism node name from an ONNX node: the prefix of its `.weight` initializer when it has one
    /// (PyTorch's module path), else the ONNX node name (`/block/conv1/Conv` → `block.conv1.Conv`),
    /// else its output's name; made unique with `_2`, `_3`, ….
    func name(for node: Onnx_NodeProto, weight: String? = nil) -> String {
        var base: String
        if let weight, weight.hasSuffix(".weight"), weight.count > ".weight".count {
            base = String(weight.dropLast(".weight".count))
        } else if !node.name.isEmpty {
            base = Self.modulePath(node.name, opType: node.opType)
        } else {
            base = node.output.first ?? ""
        }
        if base.isEmpty { base = node.opType }
        var candidate = base, n = 1
        while candidate == GraphAnalysis.inputName || shapes[candidate] != nil || extraInputs[candidate] != nil || nodes.contains(where: { $0.name == candidate }) {
            n += 1
            candidate = "\(base)_\(n)"
        }
        return candidate
    }

    /// PyTorch's module path in an exporter's node name: `/layer4/layer4.1/conv2/Conv` →
    /// `layer4.1.conv2` (a scope that repeats its parent's path replaces it; the op type at the end
    /// is dropped when a scope is left, so the name is the module's, as Grad-CAM's `--layer` takes it).
    static func modulePath(_ name: String, opType: String) -> String {
        var scopes: [String] = []
        for part in name.split(separator: "/").map(String.init) {
            if let last = scopes.last, part.hasPrefix(last + ".") { scopes.removeLast() }
            scopes.append(part)
        }
        if scopes.count > 1, let last = scopes.last, last == opType || last.hasPrefix(opType + "_") { scopes.removeLast() }
        return scopes.joined(separator: ".")
    }

    /// Adds a Prism node of kind `op` reading `inputs` (Prism value names), checked through its
    /// schema, with its parameters.
    /// - Returns: the node's value.
    @discardableResult
    mutating func emit(_ op: String, _ attributes: [String: JSONValue] = [:], inputs: [String], parameters: [String: HostTensor] = [:],
                       name: String, site: Site) throws -> ONNXValue {
        guard let definition = OpSchemaRegistry.definition(op) else { throw site.fail("Prism has no '\(op)' op") }
        let info: NodeAnalysis
        do {
            info = try definition.check(attributes: attributes, shapes: inputs.map { shapes[$0] ?? [] }, types: inputs.map { types[$0] ?? .float32 })
        } catch let error as TensorError {
            throw site.fail("as a Prism \(op): \(error.message) (input shape\(inputs.count == 1 ? "" : "s") \(inputs.map { "[batch] + \(shapes[$0] ?? [])" }.joined(separator: ", ")))")
        } catch {
            throw site.fail("as a Prism \(op): the attributes do not decode (\(error))")
        }
        for (parameter, shape) in info.parameters {
            guard let tensor = parameters[parameter] else { throw site.fail("the Prism \(op) needs a '\(parameter)' tensor of shape \(shape)") }
            guard tensor.shape == shape else {
                throw site.fail("its \(parameter) has shape \(tensor.shape); the Prism \(op) expects \(shape)")
            }
        }
        nodes.append(NodeSpec(name: name, op: op, inputs: inputs, attributes: attributes))
        shapes[name] = info.output
        if info.type != .float32 { types[name] = info.type }
        for (parameter, tensor) in parameters { tensors["\(name).\(parameter)"] = tensor }
        return .node(name)
    }
}

/// Where a refusal happened: one ONNX node.
struct Site {
    let node: Onnx_NodeProto
    let opset: Int
    let source: String

    /// The node as errors name it.
    var label: String {
        let name = node.name.isEmpty ? (node.output.first.map { "producing '\($0)'" } ?? "") : "'\(node.name)'"
        return "node \(name) (\(node.opType), opset \(opset))"
    }

    func fail(_ what: String) -> DataError { DataError("\(source): \(label): \(what)") }
}
