import Foundation

/// A network architecture as data: stored as JSON in a model file's safetensors metadata
/// (`prism.model`), so that the file alone rebuilds the model.
public struct ModelSpec: Codable, Equatable, Sendable {
    /// The shape of one input example without the batch, e.g. [1, 28, 28] or [30].
    public var inputShape: [Int]
    /// Number of outputs: classes of a classifier, predicted values of a regression model.
    public var classCount: Int
    /// The layers in order; parameter names follow PyTorch's `nn.Sequential` (`"3.weight"`).
    public var layers: [LayerSpec]
    /// Architecture name (`cnn`, `mlp`, or `custom`).
    public var architecture: String
    /// Applied to the input before the first layer, when present: x ↦ (x − mean[c]) / std[c] per
    /// channel c of the input's first axis (torchvision's `Normalize`). The model takes raw inputs
    /// (pixels in [0, 1]); explanations and their baselines stay in that space.
    public var inputNormalization: InputNormalization?
    /// What the outputs mean; nil (a file written before tasks were stored) is a classifier.
    public var task: ModelTask?

    /// `task`, with a classifier of unnamed classes when none is stored.
    public var resolvedTask: ModelTask { task ?? .classification(classes: nil) }
    /// Whether the outputs are predicted values rather than class logits.
    public var isRegression: Bool { resolvedTask.kind == .regression }

    public init(architecture: String, inputShape: [Int], classCount: Int, layers: [LayerSpec]) {
        self.architecture = architecture
        self.inputShape = inputShape
        self.classCount = classCount
        self.layers = layers
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

    /// The output shape of each layer for one example (without the batch), in order.
    /// - Throws: `TensorError` naming the layer when a shape does not fit it, a size is not positive
    ///   (a stride of 0 would divide by zero) or a size overflows.
    public func layerOutputShapes() throws -> [[Int]] {
        var shape = inputShape
        var shapes: [[Int]] = []
        for (i, layer) in layers.enumerated() {
            func fail(_ what: String) -> TensorError { TensorError("model: layer \(i) (\(layer)): \(what), input shape \(shape)") }
            /// The output length of a window sliding over `length` (checked: sizes from a file).
            func slide(_ length: Int, kernel: Int, stride: Int, padding: Int) throws -> Int {
                guard kernel > 0, stride > 0, padding >= 0 else { throw fail("needs a positive kernel and stride and a non-negative padding") }
                let (twice, o1) = padding.multipliedReportingOverflow(by: 2)
                let (padded, o2) = length.addingReportingOverflow(twice)
                guard !o1, !o2 else { throw fail("padding \(padding) is too large") }
                guard padded >= kernel else { throw fail("output is empty") }
                return (padded - kernel) / stride + 1
            }
            switch layer {
            case let .linear(inFeatures, outFeatures):
                guard shape.last == inFeatures else { throw fail("expects \(inFeatures) features") }
                guard outFeatures > 0 else { throw fail("needs a positive number of outputs") }
                shape = Array(shape.dropLast()) + [outFeatures]
            case let .conv2d(c, k, r, stride, padding):
                guard shape.count == 3, shape[0] == c else { throw fail("expects [\(c), H, W]") }
                guard k > 0 else { throw fail("needs a positive number of output channels") }
                shape = [k, try slide(shape[1], kernel: r, stride: stride, padding: padding),
                         try slide(shape[2], kernel: r, stride: stride, padding: padding)]
            case let .maxPool2d(kernel, stride), let .avgPool2d(kernel, stride):
                guard shape.count == 3 else { throw fail("expects [C, H, W]") }
                shape = [shape[0], try slide(shape[1], kernel: kernel, stride: stride, padding: 0),
                         try slide(shape[2], kernel: kernel, stride: stride, padding: 0)]
            case .flatten:
                var n = 1
                for d in shape {
                    let (m, overflow) = n.multipliedReportingOverflow(by: d)
                    guard !overflow else { throw fail("has more elements than an Int can count") }
                    n = m
                }
                shape = [n]
            case .relu, .gelu, .dropout, .softmax:
                break
            case let .patchEmbedding(c, h, w, p, d):
                guard shape == [c, h, w] else { throw fail("expects [\(c), \(h), \(w)]") }
                guard p > 0, d > 0, h >= p, w >= p else { throw fail("needs a positive patch no larger than the image and a positive width") }
                let (tokens, overflow) = (h / p).multipliedReportingOverflow(by: w / p)
                guard !overflow else { throw fail("has more patches than an Int can count") }
                shape = [tokens + 1, d]
            case let .transformerBlock(d, _, _):
                guard shape.count == 2, shape[1] == d else { throw fail("expects [T, \(d)]") }
            case let .layerNorm(d):
                guard shape.last == d else { throw fail("expects a last axis of \(d)") }
            case .classToken:
                guard shape.count == 2 else { throw fail("expects [T, D]") }
                shape = [shape[1]]
            }
            shapes.append(shape)
        }
        return shapes
    }

    /// Checks that the layers fit the input shape and end in `classCount` outputs per example
    /// (the width every consumer of the outputs reads: losses, accuracy, explanations).
    /// - Throws: `TensorError` naming the layer that does not fit, or the output count that differs.
    public func validate() throws {
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 > 0 }) else {
            throw TensorError("model: input shape \(inputShape) needs positive sizes")
        }
        guard classCount > 0 else { throw TensorError("model: classCount \(classCount) is not a positive number of outputs") }
        let output = try layerOutputShapes().last ?? inputShape
        guard output == [classCount] else {
            throw TensorError("model: the layers output \(output) per example, but classCount says \(classCount) outputs")
        }
    }

    /// The most floats per example alive at once in a forward pass: the largest input + output of
    /// one layer. What sizes batches for inference on the device (explanations run many rows).
    /// Computed with saturating arithmetic: a description past 2^59 elements gives 2^59 (room left
    /// for callers that add and scale it).
    public var peakActivationElements: Int {
        func size(_ factors: [Int]) -> Int { HostMemory.product(factors) ?? .max }
        func sum(_ terms: Int...) -> Int {
            terms.reduce(0) { total, term in
                let (s, overflow) = total.addingReportingOverflow(term)
                return overflow ? .max : s
            }
        }
        guard let shapes = try? layerOutputShapes() else { return size(inputShape) }
        var previous = size(inputShape), peak = previous
        for (layer, shape) in zip(layers, shapes) {
            let current = size(shape)
            peak = max(peak, sum(previous, current))
            if case let .transformerBlock(d, heads, m) = layer {
                // Inside a block: Q, K, V packed and permuted, the heads' outputs, the MLP's hidden
                // layer and, when attention maps are kept, the probabilities.
                let t = shape[0]
                peak = max(peak, sum(previous, size([t, sum(size([7, d]), m)]), size([heads, t, t])))
            }
            previous = current
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

/// One layer of a `ModelSpec`.
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

    /// The parameter shapes of the layer under PyTorch's names (`weight`, `bias`).
    public var parameterShapes: [(name: String, shape: [Int])] {
        switch self {
        case let .linear(i, o): return [("weight", [o, i]), ("bias", [o])]
        case let .conv2d(c, k, r, _, _): return [("weight", [k, c, r, r]), ("bias", [k])]
        case let .patchEmbedding(c, h, w, p, d):
            return [("proj.weight", [d, c, p, p]), ("proj.bias", [d]), ("cls_token", [1, 1, d]), ("pos_embed", [1, (h / p) * (w / p) + 1, d])]
        case let .transformerBlock(d, _, m):
            return [("norm1.weight", [d]), ("norm1.bias", [d]), ("attn.qkv.weight", [3 * d, d]), ("attn.qkv.bias", [3 * d]),
                    ("attn.proj.weight", [d, d]), ("attn.proj.bias", [d]), ("norm2.weight", [d]), ("norm2.bias", [d]),
                    ("mlp.fc1.weight", [m, d]), ("mlp.fc1.bias", [m]), ("mlp.fc2.weight", [d, m]), ("mlp.fc2.bias", [d])]
        case let .layerNorm(d): return [("weight", [d]), ("bias", [d])]
        default: return []
        }
    }
}
