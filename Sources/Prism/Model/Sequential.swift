import Foundation

/// Layers applied in order, like PyTorch's `nn.Sequential`: parameters are named `<index>.<name>`
/// (`0.weight`, `3.bias`), so a state dict moves between Prism and PyTorch unchanged.
public final class Sequential {
    public let engine: Engine
    public let spec: ModelSpec
    public let layers: [Layer]
    /// `spec.inputNormalization` on the device: the mean and 1/std shaped [1, C, 1, …] to broadcast
    /// over a batch (nil without one, or with a single channel, which runs as one affine map).
    private let normalization: (mean: Tensor, inverseStd: Tensor)?

    /// Builds `spec`'s layers with PyTorch's default initialization, seeded.
    /// - Throws: `TensorError` when a layer's sizes are invalid or the last layer's outputs are not
    ///   `spec.classCount` (see `ModelSpec.validate`); `DataError` when the parameters would not fit
    ///   in the device's or the host's memory (checked before anything is allocated).
    public init(spec: ModelSpec, seed: UInt64, engine: Engine) throws {
        try spec.validate()
        try spec.requireMemory(device: engine.device)
        var layers: [Layer] = []
        for (i, layer) in spec.layers.enumerated() {
            let layerSeed = seed &+ UInt64(i) &* 0x1000_0000_01B3
            switch layer {
            case let .linear(i, o): layers.append(try Linear(inFeatures: i, outFeatures: o, seed: layerSeed, engine: engine))
            case let .conv2d(c, k, r, s, p):
                layers.append(try Conv2DLayer(inChannels: c, outChannels: k, kernel: r, stride: s, padding: p, seed: layerSeed, engine: engine))
            case let .maxPool2d(k, s): layers.append(MaxPool2DLayer(kernel: k, stride: s))
            case let .avgPool2d(k, s): layers.append(AvgPool2DLayer(kernel: k, stride: s))
            case .relu: layers.append(ReLU())
            case .gelu: layers.append(GELU())
            case .flatten: layers.append(Flatten())
            case let .dropout(p): layers.append(try Dropout(probability: p, seed: layerSeed))
            case .softmax: layers.append(Softmax())
            case let .patchEmbedding(c, h, w, p, d):
                layers.append(try PatchEmbedding(channels: c, height: h, width: w, patch: p, dim: d, seed: layerSeed, engine: engine))
            case let .transformerBlock(d, heads, m):
                layers.append(try TransformerBlock(dim: d, heads: heads, mlpDim: m, seed: layerSeed, engine: engine))
            case let .layerNorm(d): layers.append(try LayerNormLayer(dim: d, engine: engine))
            case .classToken: layers.append(ClassTokenLayer())
            }
        }
        // A ReLU right after a Linear or a Conv2D runs in that layer's epilogue.
        for i in layers.indices.dropLast() where layers[i + 1] is ReLU {
            (layers[i] as? ReLUFusable)?.fusedReLU = true
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
        self.engine = engine
        self.spec = spec
        self.layers = layers
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

    /// Every trainable tensor under its PyTorch state-dict name, in layer order.
    public var namedParameters: [(name: String, tensor: Tensor)] {
        layers.enumerated().flatMap { i, layer in layer.parameters.map { ("\(i).\($0.name)", $0.tensor) } }
    }

    public var parameters: [Tensor] { namedParameters.map(\.tensor) }

    /// The number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// The name of layer `i`'s output activation: `"<i>.<kind>"` (e.g. `"1.relu"`). A Linear or
    /// Conv2D followed by ReLU runs as one fused op unless its own output is captured.
    public func activationName(_ i: Int) -> String { "\(i).\(layers[i].kind)" }

    /// Runs the model.
    /// - Parameters:
    ///   - x: [batch] + `spec.inputShape`.
    ///   - training: dropout active.
    ///   - capture: activation names (see `activationName`) to return; each captured activation keeps
    ///     its gradient after `backward()` (`retainGrad`), which attribution methods read.
    /// - Throws: `TensorError` when `x` does not have the model's input shape.
    /// - Returns: the output and the captured activations by name.
    public func forward(_ x: Tensor, training: Bool = false, capture: Set<String> = []) throws -> (output: Tensor, activations: [String: Tensor]) {
        guard x.rank == spec.inputShape.count + 1, Array(x.shape.dropFirst()) == spec.inputShape else {
            throw TensorError("model: input has shape \(x.shape), the model expects [batch] + \(spec.inputShape)")
        }
        var h = try normalizedInput(x)
        var captured: [String: Tensor] = [:]
        var i = 0
        while i < layers.count {
            var names = [activationName(i)]
            let fusable = (layers[i] as? ReLUFusable).flatMap { $0.fusedReLU ? $0 : nil }
            let fused = fusable != nil
            if let pool = pooledConvolution(at: i, input: h, capture: capture) {
                // Inference: Conv2D (→ ReLU) → MaxPool2D(2) in one kernel.
                h = try pool.conv.forwardPooled(h)
                i = pool.last
                h.name = activationName(i)
                i += 1
                continue
            }
            if let fusable, capture.contains(activationName(i)) {
                // The layer's own (pre-ReLU) output is asked for: run the pair unfused.
                let pre = try fusable.forwardUnfused(h)
                pre.name = names[0]
                pre.retainGrad()
                captured[names[0]] = pre
                h = pre
                i += 1
                names = [activationName(i)]
                h = try layers[i].forward(h, training: training)
            } else {
                h = try layers[i].forward(h, training: training)
                if fused {
                    i += 1
                    names.append(activationName(i))
                }
            }
            h.name = names.last
            for name in names where capture.contains(name) {
                h.retainGrad()
                captured[name] = h
            }
            i += 1
        }
        if let missing = capture.subtracting(captured.keys).sorted().first {
            throw TensorError("model: no activation named '\(missing)'; names are \(layers.indices.map(activationName).joined(separator: ", "))")
        }
        return (h, captured)
    }

    /// When layer `i` starts Conv2D (→ fused ReLU) → MaxPool2D(2, stride 2) and the three can run as one
    /// pooled convolution: outside the tape (inside `noGrad`), on a CPU device, no activation of theirs
    /// captured, and a convolution output of at least 2×2. Returns the convolution and the pool's index.
    private func pooledConvolution(at i: Int, input: Tensor, capture: Set<String>) -> (conv: Conv2DLayer, last: Int)? {
        guard !engine.isGradEnabled, let conv = layers[i] as? Conv2DLayer, input.rank == 4, Conv2DKernels.supportsPooling(engine) else { return nil }
        let last = conv.fusedReLU ? i + 2 : i + 1
        guard last < layers.count, let pool = layers[last] as? MaxPool2DLayer, pool.kernel == 2, pool.stride == 2,
              (i...last).allSatisfy({ !capture.contains(activationName($0)) }),
              let g = try? Conv2DGeometry(input: input.shape, weight: conv.weight.shape, bias: conv.bias?.shape,
                                          stride: conv.stride, padding: conv.padding, dilation: (1, 1)),
              g.p >= 2, g.q >= 2 else { return nil }
        return (conv, last)
    }

    /// The output only.
    public func callAsFunction(_ x: Tensor, training: Bool = false) throws -> Tensor {
        try forward(x, training: training).output
    }

    // MARK: state dict

    /// The metadata key holding the spec's JSON in a model file.
    public static let specMetadataKey = "prism.model"

    /// The parameters as host tensors under PyTorch names.
    public func stateDict() throws -> [String: HostTensor] {
        var dict: [String: HostTensor] = [:]
        for (name, tensor) in namedParameters {
            dict[name] = HostTensor(shape: tensor.shape, values: try tensor.toArray())
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
    public func loadStateDict(_ tensors: [String: HostTensor], source: String = "state dict", strict: Bool = true) throws {
        let named = namedParameters
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
            let last = spec.layers.count - 1
            guard last >= 0, case let .linear(inputs, outputs) = spec.layers[last], scale.count == outputs, shift.count == outputs,
                  let weight = tensors["\(last).weight"], let bias = tensors["\(last).bias"] else {
                throw TensorError("save: an output scale needs a last Linear layer with \(scale.count) outputs; the last layer is \(spec.layers.last.map { "\($0)" } ?? "none")")
            }
            var w = weight, b = bias
            for o in 0..<outputs {
                for i in 0..<inputs { w.values[o * inputs + i] *= scale[o] }
                b.values[o] = b.values[o] * scale[o] + shift[o]
            }
            tensors["\(last).weight"] = w
            tensors["\(last).bias"] = b
        }
        try SafetensorsFile(tensors: tensors, metadata: meta).write(path: path)
    }

    /// Rebuilds a model from a file written by `save` (or by PyTorch, given `spec`): every tensor of
    /// the file must be a parameter of the model (see `loadStateDict`), except the optimizer's
    /// tensors of a training checkpoint.
    /// - Parameter spec: the architecture when the file carries none.
    /// - Throws: `DataError` naming the file and the missing, mismatched, non-finite or unexpected tensor.
    public static func load(path: String, spec: ModelSpec? = nil, engine: Engine) throws -> (model: Sequential, file: SafetensorsFile) {
        try ForeignModelFile.refusePyTorchPickle(path: path)
        let file = try SafetensorsFile.read(path: path)
        let resolved: ModelSpec
        if let spec {
            resolved = spec
        } else if let json = file.metadata[specMetadataKey] {
            resolved = try ModelSpec.decode(json: json, source: path)
        } else {
            throw DataError("\(path): no '\(specMetadataKey)' metadata; pass the architecture")
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
        let model: Sequential
        do {
            model = try Sequential(spec: resolved, seed: 0, engine: engine)
        } catch let error as TensorError {
            throw DataError("\(path): \(error.message)")
        }
        // A training checkpoint (it carries the training state) also holds the optimizer's tensors.
        let checkpoint = file.metadata[Trainer.stateMetadataKey] != nil
        try model.loadStateDict(checkpoint ? file.tensors.filter { !$0.key.hasPrefix(Trainer.optimizerTensorPrefix) } : file.tensors, source: path)
        return (model, file)
    }
}
