import Foundation
import PrismFormats

/// A network architecture as data: a graph of named nodes (see `NodeSpec`, `OpSchemaRegistry`), stored
/// as JSON in a model file's safetensors metadata (`prism.model`), so that the file alone rebuilds
/// the model. The README's "Model files" section documents the format with a complete example.
///
/// Format 2 (written since graphs): `{"format": 2, "architecture", "input_shape", "outputs",
/// "nodes", "output"?, "input_normalization"?, "task"?}`. Format 1 (earlier files:
/// `{"architecture", "inputShape", "classCount", "layers", …}`) still reads: its layers become a
/// chain whose nodes are named "0", "1", … (parameters `0.weight`, as `nn.Sequential` names them).
public struct ModelSpec: Codable, Equatable, Sendable {
    /// The shape of one input example without the batch, e.g. [1, 28, 28] or [30].
    public var inputShape: [Int]
    /// Number of outputs: classes of a classifier, predicted values of a regression model.
    public var classCount: Int
    /// The nodes in topological order; parameter names are `<node>.<name>` (`conv1.weight`).
    public var nodes: [NodeSpec]
    /// The node whose output is the model's (nil: the last node).
    public var output: String?
    /// Architecture name (`cnn`, `mlp`, `vit`, or `custom`).
    public var architecture: String
    /// Applied to the input before the first layer, when present: x ↦ (x − mean[c]) / std[c] per
    /// channel c of the input's first axis (torchvision's `Normalize`). The model takes raw inputs
    /// (pixels in [0, 1]); explanations and their baselines stay in that space.
    public var inputNormalization: InputNormalization?
    /// What the outputs mean; nil (a file written before tasks were stored) is a classifier.
    public var task: ModelTask?
    /// The input's element type (`input_dtype`): nil is float32; an integer type for token ids
    /// or indices (read by an `embedding` node).
    public var inputType: ElementType?
    /// What the input is called where it came from (`input_name`; an ONNX graph's input such as
    /// `input_ids`), for messages and reports; nodes still read it as `input`.
    public var inputName: String?

    /// The description format this version writes.
    public static let format = 2

    /// `task`, with a classifier of unnamed classes when none is stored.
    public var resolvedTask: ModelTask { task ?? .classification(classes: nil) }
    /// Whether the outputs are predicted values rather than class logits.
    public var isRegression: Bool { resolvedTask.kind == .regression }

    /// A chain of layers (`Sequential`): nodes named "0", "1", ….
    public init(architecture: String, inputShape: [Int], classCount: Int, layers: [LayerSpec]) {
        self.init(architecture: architecture, inputShape: inputShape, classCount: classCount, nodes: Sequential.nodes(layers))
    }

    /// A graph.
    public init(architecture: String, inputShape: [Int], classCount: Int, nodes: [NodeSpec], output: String? = nil) {
        self.architecture = architecture
        self.inputShape = inputShape
        self.classCount = classCount
        self.nodes = nodes
        self.output = output
    }

    private enum Format1Keys: String, CodingKey {
        case inputShape, classCount, layers, architecture, inputNormalization, task
    }

    private enum Keys: String, CodingKey {
        case format, architecture, nodes, output, task
        case inputShape = "input_shape", classCount = "outputs", inputNormalization = "input_normalization", inputType = "input_dtype", inputName = "input_name"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        guard let format = try container.decodeIfPresent(Int.self, forKey: .format) else {
            let old = try decoder.container(keyedBy: Format1Keys.self)
            self.init(architecture: try old.decode(String.self, forKey: .architecture), inputShape: try old.decode([Int].self, forKey: .inputShape),
                      classCount: try old.decode(Int.self, forKey: .classCount), layers: try old.decode([LayerSpec].self, forKey: .layers))
            inputNormalization = try old.decodeIfPresent(InputNormalization.self, forKey: .inputNormalization)
            task = try old.decodeIfPresent(ModelTask.self, forKey: .task)
            return
        }
        guard format == Self.format else {
            throw DecodingError.dataCorruptedError(forKey: .format, in: container,
                                                   debugDescription: "format \(format) is not one this Prism reads (1 and \(Self.format))")
        }
        self.init(architecture: try container.decodeIfPresent(String.self, forKey: .architecture) ?? "custom",
                  inputShape: try container.decode([Int].self, forKey: .inputShape),
                  classCount: try container.decode(Int.self, forKey: .classCount),
                  nodes: try container.decode([NodeSpec].self, forKey: .nodes),
                  output: try container.decodeIfPresent(String.self, forKey: .output))
        inputNormalization = try container.decodeIfPresent(InputNormalization.self, forKey: .inputNormalization)
        task = try container.decodeIfPresent(ModelTask.self, forKey: .task)
        inputType = try container.decodeIfPresent(ElementType.self, forKey: .inputType)
        inputName = try container.decodeIfPresent(String.self, forKey: .inputName)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(Self.format, forKey: .format)
        try container.encode(architecture, forKey: .architecture)
        try container.encode(inputShape, forKey: .inputShape)
        try container.encode(classCount, forKey: .classCount)
        try container.encode(nodes, forKey: .nodes)
        try container.encodeIfPresent(output, forKey: .output)
        try container.encodeIfPresent(inputNormalization, forKey: .inputNormalization)
        try container.encodeIfPresent(task, forKey: .task)
        try container.encodeIfPresent(inputType, forKey: .inputType)
        try container.encodeIfPresent(inputName, forKey: .inputName)
    }

    /// Per-channel input normalization (see `inputNormalization`).
    public struct InputNormalization: Codable, Equatable, Sendable {
        public var mean: [Float]
        public var std: [Float]

        public init(mean: [Float], std: [Float]) {
            self.mean = mean
            self.std = std
        }

        /// Checks the constants against an input shape.
        /// - Throws: `TensorError` when the counts do not match the input's first axis or a value is
        ///   not finite or a standard deviation is not positive.
        public func validate(inputShape: [Int]) throws {
            guard let channels = inputShape.first, mean.count == channels, std.count == channels else {
                throw TensorError("model: input normalization has \(mean.count) means and \(std.count) standard deviations for an input of shape \(inputShape) (one per channel of the first axis)")
            }
            guard mean.allSatisfy(\.isFinite), std.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                throw TensorError("model: input normalization needs finite means and positive standard deviations, got mean \(mean), std \(std)")
            }
        }
    }

    /// The reference CNN: Conv(1→32, 3×3)+ReLU, MaxPool 2, Conv(32→64, 3×3)+ReLU, MaxPool 2,
    /// Flatten, Linear(1600→128)+ReLU, Linear(128→10) — for 28×28 single-channel images
    /// (other sizes change the flattened width).
    public static func cnn(height: Int = 28, width: Int = 28, channels: Int = 1, classes: Int = 10) throws -> ModelSpec {
        let h1 = (height - 2) / 2, w1 = (width - 2) / 2
        let h2 = (h1 - 2) / 2, w2 = (w1 - 2) / 2
        guard h2 >= 1, w2 >= 1 else {
            throw TensorError("cnn: input \(height)×\(width) is too small (needs at least 10×10)")
        }
        return ModelSpec(architecture: "cnn", inputShape: [channels, height, width], classCount: classes, layers: [
            .conv2d(inChannels: channels, outChannels: 32, kernel: 3, stride: 1, padding: 0), .relu,
            .maxPool2d(kernel: 2, stride: 2),
            .conv2d(inChannels: 32, outChannels: 64, kernel: 3, stride: 1, padding: 0), .relu,
            .maxPool2d(kernel: 2, stride: 2),
            .flatten,
            .linear(inFeatures: 64 * h2 * w2, outFeatures: 128), .relu,
            .linear(inFeatures: 128, outFeatures: classes),
        ])
    }

    /// A small vision transformer (pre-norm, class token, learned positions): PatchEmbedding of
    /// `patch`×`patch` patches to width `dim`, `depth` TransformerBlocks with `heads` heads and an MLP
    /// of width `mlpDim`, LayerNorm, the class token, Linear to the classes.
    public static func vit(height: Int = 28, width: Int = 28, channels: Int = 1, classes: Int = 10, patch: Int = 7, dim: Int = 64,
                           depth: Int = 4, heads: Int = 4, mlpDim: Int = 128) throws -> ModelSpec {
        guard patch > 0, height % patch == 0, width % patch == 0 else {
            throw TensorError("vit: a \(height)×\(width) image does not split into \(patch)×\(patch) patches")
        }
        guard dim > 0, heads > 0, dim % heads == 0, depth > 0, mlpDim > 0, classes > 0 else {
            throw TensorError("vit: invalid sizes (width \(dim), heads \(heads), depth \(depth), MLP \(mlpDim), classes \(classes))")
        }
        let layers: [LayerSpec] = [.patchEmbedding(channels: channels, height: height, width: width, patch: patch, dim: dim)]
            + [LayerSpec](repeating: .transformerBlock(dim: dim, heads: heads, mlpDim: mlpDim), count: depth)
            + [.layerNorm(dim: dim), .classToken, .linear(inFeatures: dim, outFeatures: classes)]
        return ModelSpec(architecture: "vit", inputShape: [channels, height, width], classCount: classes, layers: layers)
    }

    /// A multilayer perceptron: Flatten, then Linear+ReLU for each hidden size, then Linear to the classes.
    public static func mlp(inputShape: [Int], hidden: [Int] = [128], classes: Int) throws -> ModelSpec {
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 > 0 }) else {
            throw TensorError("mlp: invalid input shape \(inputShape)")
        }
        guard hidden.allSatisfy({ $0 > 0 }), classes > 0 else {
            throw TensorError("mlp: layer sizes must be positive: hidden \(hidden), classes \(classes)")
        }
        var layers: [LayerSpec] = [.flatten]
        var width = inputShape.reduce(1, *)
        for h in hidden {
            layers += [.linear(inFeatures: width, outFeatures: h), .relu]
            width = h
        }
        layers.append(.linear(inFeatures: width, outFeatures: classes))
        return ModelSpec(architecture: "mlp", inputShape: inputShape, classCount: classes, layers: layers)
    }

    /// The description checked as a graph (ops, attributes, inputs, shapes).
    /// - Throws: `TensorError` naming the node that does not fit (see `GraphAnalysis.init`).
    public func analysis() throws -> GraphAnalysis {
        try GraphAnalysis(nodes: nodes, output: output, inputShape: inputShape, inputType: inputType ?? .float32)
    }

    /// The output shape of each node for one example (without the batch), in order.
    /// - Throws: `TensorError` naming the node when a shape does not fit it or a size is not positive.
    public func layerOutputShapes() throws -> [[Int]] {
        try analysis().nodes.map(\.info.output)
    }

    /// Checks that the nodes fit the input shape and the output has `classCount` outputs per example
    /// (the width every consumer of the outputs reads: losses, accuracy, explanations).
    /// - Throws: `TensorError` naming the node that does not fit, or the output count that differs.
    @discardableResult
    public func validate() throws -> GraphAnalysis {
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 > 0 }), HostMemory.product(inputShape) != nil else {
            throw TensorError("model: input shape \(inputShape) needs positive sizes")
        }
        guard classCount > 0 else { throw TensorError("model: classCount \(classCount) is not a positive number of outputs") }
        let graph = try analysis()
        let output = graph.shape(ofValue: graph.output, input: inputShape)
        guard output == [classCount] else {
            throw TensorError("model: the output node '\(graph.nodes[graph.output - 1].spec.name)' gives \(output) per example, but the model says \(classCount) outputs")
        }
        guard graph.type(ofValue: graph.output) == .float32 else {
            throw TensorError("model: the output node '\(graph.nodes[graph.output - 1].spec.name)' gives \(graph.type(ofValue: graph.output).rawValue) values; the outputs must be float32")
        }
        if inputNormalization != nil, inputType?.isInteger == true {
            throw TensorError("model: input_normalization applies to float32 inputs, not \(inputType!.rawValue)")
        }
        return graph
    }

    /// The most floats per example alive at once in a forward pass: the values still to be read
    /// plus one node's output and workspace. What sizes batches for inference on the device
    /// (explanations run many rows). Saturating: a description past 2^59 elements gives 2^59.
    public var peakActivationElements: Int {
        func size(_ factors: [Int]) -> Int { HostMemory.product(factors) ?? .max }
        func add(_ a: Int, _ b: Int) -> Int {
            let (s, overflow) = a.addingReportingOverflow(b)
            return overflow ? .max : s
        }
        guard let graph = try? analysis() else { return min(size(inputShape), 1 << 59) }
        // The last node reading each value (the output is read after the last node).
        var lastUse = [Int](repeating: 0, count: graph.nodes.count + 1)
        for (i, node) in graph.nodes.enumerated() {
            for v in node.inputs { lastUse[v] = max(lastUse[v], i) }
        }
        lastUse[graph.output] = graph.nodes.count
        var live = size(inputShape), peak = live
        for (i, node) in graph.nodes.enumerated() {
            let output = size(node.info.output)
            peak = max(peak, add(add(live, output), node.info.workspace))
            live = add(live, output)
            for v in Set(node.inputs + [i + 1]) where lastUse[v] <= i { live -= size(graph.shape(ofValue: v, input: inputShape)) }
        }
        return min(peak, 1 << 59)
    }

    /// The spec as compact JSON (sorted keys).
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// Decodes a spec from JSON.
    /// - Throws: `DataError` naming `source` when the JSON is not a model spec.
    public static func decode(json: String, source: String = "model spec") throws -> ModelSpec {
        do {
            return try JSONDecoder().decode(ModelSpec.self, from: Data(json.utf8))
        } catch {
            throw DataError("\(source): not a Prism model description (\(error))")
        }
    }
}

/// One layer of a chain (`Sequential`), and the layer list of format-1 model files: each case is
/// one node of an op kind in `OpSchemaRegistry` (see `node(name:)`).
public enum LayerSpec: Codable, Equatable, Sendable {
    case linear(inFeatures: Int, outFeatures: Int)
    case conv2d(inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int)
    case maxPool2d(kernel: Int, stride: Int)
    case avgPool2d(kernel: Int, stride: Int)
    case relu
    case gelu
    case flatten
    case dropout(probability: Float)
    case softmax
    /// [C, H, W] → [1 + T, D]: patches, class token, positions (`PatchEmbedding`).
    case patchEmbedding(channels: Int, height: Int, width: Int, patch: Int, dim: Int)
    /// [T, D] → [T, D] (`TransformerBlock`).
    case transformerBlock(dim: Int, heads: Int, mlpDim: Int)
    /// LayerNorm over the last axis of width `dim`.
    case layerNorm(dim: Int)
    /// [T, D] → [D]: the class token.
    case classToken

    /// The layer as a graph node reading the previous node's output.
    public func node(name: String) -> NodeSpec {
        func node(_ op: String, _ attributes: [String: Int] = [:]) -> NodeSpec {
            NodeSpec(name: name, op: op, attributes: attributes.mapValues { .int($0) })
        }
        switch self {
        case let .linear(i, o): return node(LinearSchema.kind, ["in_features": i, "out_features": o])
        case let .conv2d(c, k, r, s, p):
            return node(Conv2DSchema.kind, ["in_channels": c, "out_channels": k, "kernel_size": r, "stride": s, "padding": p])
        case let .maxPool2d(k, s): return node(MaxPool2DSchema.kind, ["kernel_size": k, "stride": s])
        case let .avgPool2d(k, s): return node(AvgPool2DSchema.kind, ["kernel_size": k, "stride": s])
        case .relu: return node(ReLUSchema.kind)
        case .gelu: return node(GELUSchema.kind)
        case .flatten: return node(FlattenSchema.kind)
        case let .dropout(p):
            return NodeSpec(name: name, op: DropoutSchema.kind, attributes: ["p": .double(Double(String(describing: p)) ?? Double(p))])
        case .softmax: return node(SoftmaxSchema.kind)
        case let .patchEmbedding(c, h, w, p, d):
            return node(PatchEmbeddingSchema.kind, ["channels": c, "height": h, "width": w, "patch": p, "dim": d])
        case let .transformerBlock(d, heads, m): return node(TransformerBlockSchema.kind, ["dim": d, "heads": heads, "mlp_dim": m])
        case let .layerNorm(d): return node(LayerNormSchema.kind, ["normalized_shape": d])
        case .classToken: return node(ClassTokenSchema.kind)
        }
    }
}

/// The builder of chain graphs, like PyTorch's `nn.Sequential`: layer i becomes node "i", reading
/// node i − 1, so parameters are named `0.weight`, `3.bias`, … and a state dict moves between Prism
/// and `nn.Sequential` unchanged.
public enum Sequential {
    /// The layers as chained nodes.
    public static func nodes(_ layers: [LayerSpec]) -> [NodeSpec] {
        layers.enumerated().map { i, layer in layer.node(name: "\(i)") }
    }
}
