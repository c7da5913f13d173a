import PrismFormats

// The schemas of Prism's standard op kinds: each op's attributes (PyTorch's constructor arguments
// and defaults), output shape and parameter shapes. Prism's `Op` types (Sources/Prism/Model) run them.

/// Every standard schema, registered in `OpSchemaRegistry` from the start.
let standardSchemas: [OpDefinition] = [
    OpDefinition(LinearSchema.self), OpDefinition(Conv2DSchema.self), OpDefinition(MaxPool2DSchema.self), OpDefinition(AvgPool2DSchema.self),
    OpDefinition(AdaptiveAvgPool2DSchema.self), OpDefinition(BatchNorm1DSchema.self), OpDefinition(BatchNorm2DSchema.self),
    OpDefinition(ReLUSchema.self), OpDefinition(GELUSchema.self), OpDefinition(SigmoidSchema.self), OpDefinition(TanhSchema.self),
    OpDefinition(LeakyReLUSchema.self), OpDefinition(ELUSchema.self), OpDefinition(SiLUSchema.self), OpDefinition(HardswishSchema.self),
    OpDefinition(FlattenSchema.self), OpDefinition(SoftmaxSchema.self), OpDefinition(DropoutSchema.self), OpDefinition(AddSchema.self),
    OpDefinition(SubSchema.self), OpDefinition(MulSchema.self), OpDefinition(DivSchema.self), OpDefinition(PowSchema.self),
    OpDefinition(NegSchema.self), OpDefinition(SqrtSchema.self), OpDefinition(ExpSchema.self), OpDefinition(LogSchema.self),
    OpDefinition(ErfSchema.self), OpDefinition(ReciprocalSchema.self), OpDefinition(HardsigmoidSchema.self), OpDefinition(HardtanhSchema.self),
    OpDefinition(PReLUSchema.self),
    OpDefinition(CatSchema.self), OpDefinition(LayerNormSchema.self), OpDefinition(GroupNormSchema.self), OpDefinition(ExpandSchema.self), OpDefinition(FakeQuantizeSchema.self), OpDefinition(PatchEmbeddingSchema.self),
    OpDefinition(TransformerBlockSchema.self), OpDefinition(ClassTokenSchema.self), OpDefinition(EmbeddingSchema.self),
    OpDefinition(IndexSelectSchema.self), OpDefinition(ComparisonSchema<EqualKind>.self), OpDefinition(ComparisonSchema<LessKind>.self),
    OpDefinition(ComparisonSchema<GreaterKind>.self), OpDefinition(WhereSchema.self), OpDefinition(CastSchema.self), OpDefinition(InputSchema.self), OpDefinition(BroadcastToSchema.self),
    OpDefinition(ReshapeSchema.self), OpDefinition(PermuteSchema.self), OpDefinition(NarrowSchema.self), OpDefinition(MatmulSchema.self),
    OpDefinition(LogSoftmaxSchema.self), OpDefinition(ReductionSchema<MeanKind>.self), OpDefinition(ReductionSchema<SumKind>.self),
    OpDefinition(ReductionSchema<AmaxKind>.self), OpDefinition(ConvTranspose2DSchema.self), OpDefinition(UpsampleSchema.self),
    OpDefinition(PadSchema.self),
]

/// `nn.Linear`: y = x·Wᵀ + b over the last axis.
public enum LinearSchema: OpSchema {
    public struct Config: OpConfig {
        public var in_features: Int
        public var out_features: Int
        public var bias: Bool?
        public static let attributes = ["in_features", "out_features", "bias"]
        public init(in_features: Int, out_features: Int, bias: Bool? = nil) {
            (self.in_features, self.out_features, self.bias) = (in_features, out_features, bias)
        }
    }
    public static let kind = "linear"

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard config.in_features > 0, config.out_features > 0 else { throw TensorError("needs positive sizes") }
        guard let x = inputs.first, x.last == config.in_features else { throw TensorError("expects \(config.in_features) features on the last axis") }
        return Array(x.dropLast()) + [config.out_features]
    }

    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] {
        [("weight", [config.out_features, config.in_features])] + (config.bias ?? true ? [("bias", [config.out_features])] : [])
    }

    public static func flops(_ config: Config, inputs: Shapes, output: [Int]) -> Double {
        2 * Double(config.in_features) * Double(config.out_features) * Double(output.dropLast().reduce(1, *))
    }
}

/// `nn.Conv2d`: rectangular kernels, per-axis stride, padding and dilation, groups, optional bias.
public enum Conv2DSchema: OpSchema {
    public struct Config: OpConfig {
        public var in_channels: Int
        public var out_channels: Int
        public var kernel_size: SizePair
        public var stride: SizePair?
        public var padding: SizePair?
        public var dilation: SizePair?
        public var groups: Int?
        public var bias: Bool?
        public static let attributes = ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"]
        public init(in_channels: Int, out_channels: Int, kernel_size: SizePair, stride: SizePair? = nil, padding: SizePair? = nil,
                    dilation: SizePair? = nil, groups: Int? = nil, bias: Bool? = nil) {
            (self.in_channels, self.out_channels, self.kernel_size) = (in_channels, out_channels, kernel_size)
            (self.stride, self.padding, self.dilation, self.groups, self.bias) = (stride, padding, dilation, groups, bias)
        }
    }
    public static let kind = "conv2d"

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let groups = config.groups ?? 1
        guard config.in_channels > 0, config.out_channels > 0, groups > 0 else { throw TensorError("needs positive channel counts and groups") }
        guard config.in_channels % groups == 0, config.out_channels % groups == 0 else {
            throw TensorError("\(config.in_channels) input and \(config.out_channels) output channels do not split into \(groups) groups")
        }
        let (_, h, w) = try requireImage(inputs, channels: config.in_channels)
        let stride = config.stride ?? SizePair(1), padding = config.padding ?? SizePair(0), dilation = config.dilation ?? SizePair(1)
        return [config.out_channels,
                try slidingLength(h, kernel: config.kernel_size.h, stride: stride.h, padding: padding.h, dilation: dilation.h),
                try slidingLength(w, kernel: config.kernel_size.w, stride: stride.w, padding: padding.w, dilation: dilation.w)]
    }

    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] {
        let groups = max(config.groups ?? 1, 1)
        return [("weight", [config.out_channels, config.in_channels / groups, config.kernel_size.h, config.kernel_size.w])]
            + (config.bias ?? true ? [("bias", [config.out_channels])] : [])
    }

    public static func flops(_ config: Config, inputs: Shapes, output: [Int]) -> Double {
        let groups = Double(max(config.groups ?? 1, 1))
        return 2 * Double(config.out_channels) * Double(config.in_channels) / groups * Double(config.kernel_size.h * config.kernel_size.w)
            * Double(output.dropFirst().reduce(1, *))
    }
}

/// The attributes of `nn.MaxPool2d` and `nn.AvgPool2d`.
public struct Pool2DConfig: OpConfig {
    public var kernel_size: SizePair
    public var stride: SizePair?
    public var padding: SizePair?
    public var ceil_mode: Bool?
    public var count_include_pad: Bool?
    public static let attributes = ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"]

    public init(kernel_size: SizePair, stride: SizePair? = nil, padding: SizePair? = nil, ceil_mode: Bool? = nil, count_include_pad: Bool? = nil) {
        (self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad) = (kernel_size, stride, padding, ceil_mode, count_include_pad)
    }

    /// (height, width) steps: the kernel's when no stride is given.
    public var strides: (Int, Int) { (stride ?? kernel_size).pair }
    /// (height, width) padding.
    public var paddings: (Int, Int) { (padding ?? SizePair(0)).pair }

    func outputShape(_ inputs: Shapes, op: String) throws -> [Int] {
        let (c, h, w) = try requireImage(inputs)
        if op == MaxPool2DSchema.kind, count_include_pad != nil { throw TensorError("count_include_pad applies to avgpool2d only") }
        let ceil = ceil_mode ?? false
        let (ph, pw) = paddings
        guard ph <= kernel_size.h / 2, pw <= kernel_size.w / 2 else {
            throw TensorError("padding \(padding ?? SizePair(0)) is more than half the kernel \(kernel_size)")
        }
        return [c, try slidingLength(h, kernel: kernel_size.h, stride: strides.0, padding: ph, ceil: ceil),
                try slidingLength(w, kernel: kernel_size.w, stride: strides.1, padding: pw, ceil: ceil)]
    }
}

/// `nn.MaxPool2d`.
public enum MaxPool2DSchema: OpSchema {
    public typealias Config = Pool2DConfig
    public static let kind = "maxpool2d"
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] { try config.outputShape(inputs, op: kind) }
}

/// `nn.AvgPool2d`.
public enum AvgPool2DSchema: OpSchema {
    public typealias Config = Pool2DConfig
    public static let kind = "avgpool2d"
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] { try config.outputShape(inputs, op: kind) }
}

/// `nn.AdaptiveAvgPool2d(output_size)`.
public enum AdaptiveAvgPool2DSchema: OpSchema {
    public struct Config: OpConfig {
        public var output_size: SizePair
        public static let attributes = ["output_size"]
    }
    public static let kind = "adaptiveavgpool2d"
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let (c, _, _) = try requireImage(inputs)
        guard config.output_size.h > 0, config.output_size.w > 0 else { throw TensorError("output_size \(config.output_size) must be positive") }
        return [c, config.output_size.h, config.output_size.w]
    }
}

/// The attributes of `nn.BatchNorm1d` and `nn.BatchNorm2d`.
public struct BatchNormConfig: OpConfig {
    public var num_features: Int
    public var eps: Double?
    public var momentum: Double?
    public var affine: Bool?
    public var track_running_stats: Bool?
    public static let attributes = ["num_features", "eps", "momentum", "affine", "track_running_stats"]

    /// Checks the config and that `input`'s first axis has `num_features` channels.
    func check(input: [Int], ranks: Set<Int>, op: String) throws -> [Int] {
        guard num_features > 0 else { throw TensorError("num_features must be positive") }
        guard (eps ?? 1e-5) >= 0, let m = momentum ?? 0.1 as Double?, m >= 0, m <= 1 else {
            throw TensorError("needs eps ≥ 0 and momentum in [0, 1]")
        }
        guard track_running_stats ?? true else {
            throw TensorError("track_running_stats false (batch statistics at inference) is not supported")
        }
        guard ranks.contains(input.count), input.first == num_features else {
            let shapes = ranks.sorted().map { $0 == 1 ? "[\(num_features)]" : $0 == 2 ? "[\(num_features), L]" : "[\(num_features), H, W]" }
            throw TensorError("\(op) expects \(shapes.joined(separator: " or "))")
        }
        return input
    }

    var shapes: [(name: String, shape: [Int])] {
        let c = [num_features]
        return (affine ?? true ? [("weight", c), ("bias", c)] : []) + [("running_mean", c), ("running_var", c)]
    }
}

/// `nn.BatchNorm2d`: [C, H, W] per example.
public enum BatchNorm2DSchema: OpSchema {
    public typealias Config = BatchNormConfig
    public static let kind = "batchnorm2d"
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] { try config.check(input: inputs[0], ranks: [3], op: kind) }
    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] { config.shapes }
}

/// `nn.BatchNorm1d`: [C] or [C, L] per example.
public enum BatchNorm1DSchema: OpSchema {
    public typealias Config = BatchNormConfig
    public static let kind = "batchnorm1d"
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] { try config.check(input: inputs[0], ranks: [1, 2], op: kind) }
    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] { config.shapes }
}

/// `nn.ReLU`.
public enum ReLUSchema: ElementwiseSchema {
    public typealias Config = NoConfig
    public static let kind = "relu"
}

/// `nn.Sigmoid`.
public enum SigmoidSchema: ElementwiseSchema {
    public typealias Config = NoConfig
    public static let kind = "sigmoid"
}

/// `nn.Tanh`.
public enum TanhSchema: ElementwiseSchema {
    public typealias Config = NoConfig
    public static let kind = "tanh"
}

/// `nn.SiLU`: x·σ(x).
public enum SiLUSchema: ElementwiseSchema {
    public typealias Config = NoConfig
    public static let kind = "silu"
}

/// `nn.Hardswish`: x·ReLU6(x + 3)/6.
public enum HardswishSchema: ElementwiseSchema {
    public typealias Config = NoConfig
    public static let kind = "hardswish"
}

/// `nn.GELU(approximate=…)`: "none" (erf) or "tanh".
public enum GELUSchema: OpSchema {
    public struct Config: OpConfig {
        public var approximate: String?
        public static let attributes = ["approximate"]
        public init(approximate: String? = nil) { self.approximate = approximate }
    }
    public static let kind = "gelu"
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard ["none", "tanh"].contains(config.approximate ?? "none") else { throw TensorError("approximate must be \"none\" or \"tanh\"") }
        return inputs[0]
    }
}

/// `nn.LeakyReLU(negative_slope)`.
public enum LeakyReLUSchema: ElementwiseSchema {
    public struct Config: OpConfig {
        public var negative_slope: Double?
        public static let attributes = ["negative_slope"]
    }
    public static let kind = "leakyrelu"
}

/// `nn.ELU(alpha)`.
public enum ELUSchema: ElementwiseSchema {
    public struct Config: OpConfig {
        public var alpha: Double?
        public static let attributes = ["alpha"]
    }
    public static let kind = "elu"
}

/// `nn.Flatten(start_dim, end_dim)`: the axes start_dim…end_dim (counted with the batch) merged.
public enum FlattenSchema: OpSchema {
    public struct Config: OpConfig {
        public var start_dim: Int?
        public var end_dim: Int?
        public static let attributes = ["start_dim", "end_dim"]
        public init(start_dim: Int? = nil, end_dim: Int? = nil) { (self.start_dim, self.end_dim) = (start_dim, end_dim) }
    }
    public static let kind = "flatten"

    /// The merged axes of a per-example shape (batch excluded).
    static func span(_ config: Config, rank: Int) throws -> ClosedRange<Int> {
        let full = rank + 1
        let start = config.start_dim ?? 1, end = config.end_dim ?? -1
        let s = start < 0 ? start + full : start, e = end < 0 ? end + full : end
        guard s >= 1, e < full, s <= e else { throw TensorError("start_dim \(start) and end_dim \(end) must name axes after the batch axis, start ≤ end") }
        return (s - 1)...(e - 1)
    }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let x = inputs[0]
        let span = try span(config, rank: x.count)
        guard let merged = HostMemory.product(Array(x[span])) else { throw TensorError("has more elements than an Int can count") }
        return Array(x[..<span.lowerBound]) + [merged] + Array(x[(span.upperBound + 1)...])
    }
}

/// `nn.Softmax(dim)`: over one axis after the batch (default the last).
public enum SoftmaxSchema: OpSchema {
    public struct Config: OpConfig {
        public var dim: Int?
        public static let attributes = ["dim"]
        public init(dim: Int? = nil) { self.dim = dim }
    }
    public static let kind = "softmax"

    /// The per-example axis the softmax runs over.
    public static func axis(_ config: Config, rank: Int) throws -> Int { try exampleAxis(config.dim ?? -1, rank: rank) }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard inputs[0].count <= 5 else { throw TensorError("runs over tensors of rank 6 at most") }
        let axis = try axis(config, rank: inputs[0].count)
        guard inputs[0][axis] > 0 else { throw TensorError("axis \(axis + 1) is empty") }
        return inputs[0]
    }
}

/// `nn.Dropout(p)`.
public enum DropoutSchema: OpSchema {
    public struct Config: OpConfig {
        public var p: Double?
        public static let attributes = ["p"]
        public init(p: Double? = nil) { self.p = p }
    }
    public static let kind = "dropout"
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let p = config.p ?? 0.5
        guard p >= 0, p < 1 else { throw TensorError("p \(p) is outside [0, 1)") }
        return inputs[0]
    }
}

/// `torch.cat(…, dim)` (dim counts the batch axis; default 1, the channels).
public enum CatSchema: OpSchema {
    public struct Config: OpConfig {
        public var dim: Int?
        public static let attributes = ["dim"]
    }
    public static let kind = "cat"
    public static let arity = 2...Int.max

    /// The concatenated axis of a batch of rank `rank` + 1.
    public static func axis(_ config: Config, rank: Int) throws -> Int {
        let dim = config.dim ?? 1
        let axis = dim < 0 ? dim + rank + 1 : dim
        guard axis >= 1, axis <= rank else { throw TensorError("dim \(dim) must name an axis after the batch axis") }
        return axis
    }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let first = inputs[0]
        let axis = try axis(config, rank: first.count) - 1
        var total = 0
        for shape in inputs {
            guard shape.count == first.count, shape.indices.allSatisfy({ $0 == axis || shape[$0] == first[$0] }) else {
                throw TensorError("inputs must agree on every axis but \(axis + 1)")
            }
            guard case let (sum, false) = total.addingReportingOverflow(shape[axis]) else { throw TensorError("the concatenated axis overflows") }
            total = sum
        }
        var out = first
        out[axis] = total
        return out
    }
}

/// `nn.LayerNorm(normalized_shape)` over the last axis.
public enum LayerNormSchema: OpSchema {
    public struct Config: OpConfig {
        public var normalized_shape: Int
        public var eps: Double?
        public static let attributes = ["normalized_shape", "eps"]
        public init(normalized_shape: Int, eps: Double? = nil) { (self.normalized_shape, self.eps) = (normalized_shape, eps) }
    }
    public static let kind = "layernorm"
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard config.normalized_shape > 0, inputs[0].last == config.normalized_shape else {
            throw TensorError("expects a last axis of \(config.normalized_shape)")
        }
        guard (config.eps ?? 1e-5) > 0 else { throw TensorError("eps must be positive") }
        return inputs[0]
    }
    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] {
        [("weight", [config.normalized_shape]), ("bias", [config.normalized_shape])]
    }
}

/// A vision transformer's patch embedding: [C, H, W] → [1 + T, D] (patches, class token, positions).
public enum PatchEmbeddingSchema: OpSchema {
    public struct Config: OpConfig {
        public var channels: Int, height: Int, width: Int, patch: Int, dim: Int
        public static let attributes = ["channels", "height", "width", "patch", "dim"]
        public init(channels: Int, height: Int, width: Int, patch: Int, dim: Int) {
            (self.channels, self.height, self.width, self.patch, self.dim) = (channels, height, width, patch, dim)
        }
    }
    public static let kind = "patch_embed"

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let (c, h, w, p, d) = (config.channels, config.height, config.width, config.patch, config.dim)
        guard inputs[0] == [c, h, w] else { throw TensorError("expects [\(c), \(h), \(w)]") }
        guard p > 0, d > 0, h >= p, w >= p, h % p == 0, w % p == 0 else {
            throw TensorError("needs a positive patch that splits the image and a positive width")
        }
        guard let tokens = HostMemory.product([h / p, w / p]), tokens < Int.max else { throw TensorError("has more patches than an Int can count") }
        return [tokens + 1, d]
    }

    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] {
        let (c, h, w, p, d) = (config.channels, config.height, config.width, config.patch, config.dim)
        // Called after outputShape accepted the sizes: the patch count and one more fit an Int.
        let tokens = HostMemory.product([h / max(p, 1), w / max(p, 1)]) ?? 0
        return [("proj.weight", [d, c, p, p]), ("proj.bias", [d]), ("cls_token", [1, 1, d]), ("pos_embed", [1, tokens &+ 1, d])]
    }

    public static func flops(_ config: Config, inputs: Shapes, output: [Int]) -> Double {
        2 * Double(config.dim) * Double(config.channels) * Double(config.patch) * Double(config.patch) * Double(output[0] - 1)
    }
}

/// A pre-norm transformer block: [T, D] → [T, D].
public enum TransformerBlockSchema: OpSchema {
    public struct Config: OpConfig {
        public var dim: Int, heads: Int, mlp_dim: Int
        public static let attributes = ["dim", "heads", "mlp_dim"]
        public init(dim: Int, heads: Int, mlp_dim: Int) { (self.dim, self.heads, self.mlp_dim) = (dim, heads, mlp_dim) }
    }
    public static let kind = "block"

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let (d, heads, m) = (config.dim, config.heads, config.mlp_dim)
        guard d > 0, heads > 0, m > 0, d % heads == 0 else { throw TensorError("needs positive sizes and a width that splits into the heads") }
        guard HostMemory.product([7, d]).flatMap({ $0.addingReportingOverflow(m).overflow ? nil : $0 }) != nil else {
            throw TensorError("width \(d) and MLP width \(m) are too large")
        }
        guard inputs[0].count == 2, inputs[0][1] == d else { throw TensorError("expects [T, \(d)]") }
        return inputs[0]
    }

    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] {
        let (d, m) = (config.dim, config.mlp_dim)
        return [("norm1.weight", [d]), ("norm1.bias", [d]), ("attn.qkv.weight", [3 * d, d]), ("attn.qkv.bias", [3 * d]),
                ("attn.proj.weight", [d, d]), ("attn.proj.bias", [d]), ("norm2.weight", [d]), ("norm2.bias", [d]),
                ("mlp.fc1.weight", [m, d]), ("mlp.fc1.bias", [m]), ("mlp.fc2.weight", [d, m]), ("mlp.fc2.bias", [d])]
    }

    /// Q, K, V packed and permuted, the heads' outputs, the MLP's hidden layer and, when attention
    /// maps are kept, the probabilities.
    public static func workspaceElements(_ config: Config, inputs: Shapes, output: [Int]) -> Int {
        let t = output[0]
        // outputShape checked that 7·dim + mlp_dim fits an Int.
        guard let a = HostMemory.product([t, 7 * config.dim + config.mlp_dim]), let b = HostMemory.product([config.heads, t, t]),
              case let (sum, false) = a.addingReportingOverflow(b) else { return .max }
        return sum
    }

    public static func flops(_ config: Config, inputs: Shapes, output: [Int]) -> Double {
        let t = Double(output[0]), d = Double(config.dim), m = Double(config.mlp_dim)
        return 2 * t * (4 * d * d + 2 * d * m) + 4 * t * t * d
    }
}

/// [T, D] → [D]: the class token's features.
public enum ClassTokenSchema: OpSchema {
    public typealias Config = NoConfig
    public static let kind = "cls_token"
    public static func outputShape(_ config: NoConfig, inputs: Shapes) throws -> [Int] {
        guard inputs[0].count == 2 else { throw TensorError("expects [T, D]") }
        return [inputs[0][1]]
    }
}

/// `nn.Embedding(num_embeddings, embedding_dim)`: integer ids [*] → rows of `weight` [*, D].
public enum EmbeddingSchema: OpSchema {
    public struct Config: OpConfig {
        public var num_embeddings: Int
        public var embedding_dim: Int
        public var padding_idx: Int?
        public static let attributes = ["num_embeddings", "embedding_dim", "padding_idx"]
        public init(num_embeddings: Int, embedding_dim: Int, padding_idx: Int? = nil) {
            (self.num_embeddings, self.embedding_dim, self.padding_idx) = (num_embeddings, embedding_dim, padding_idx)
        }
    }
    public static let kind = "embedding"

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard config.num_embeddings > 0, config.embedding_dim > 0 else { throw TensorError("needs positive sizes") }
        if let p = config.padding_idx, !(-config.num_embeddings..<config.num_embeddings).contains(p) {
            throw TensorError("padding_idx \(p) is outside the \(config.num_embeddings) embeddings")
        }
        return inputs[0] + [config.embedding_dim]
    }

    public static func parameterShapes(_ config: Config, inputs: Shapes) -> [(name: String, shape: [Int])] {
        [("weight", [config.num_embeddings, config.embedding_dim])]
    }

    public static func outputType(_ config: Config, inputs: [ElementType]) throws -> ElementType {
        guard inputs[0] == .int64 || inputs[0] == .int32 else { throw TensorError("takes int64 or int32 ids, got \(inputs[0].rawValue)") }
        return .float32
    }
}

/// `torch.index_select(x, dim, index)`: x float, index int64 or int32 [K] → x with axis `dim` of length K;
/// or with constant positions `index` (then x is the one input: a strided or reversed slice).
public enum IndexSelectSchema: OpSchema {
    public struct Config: OpConfig {
        public var dim: Int
        /// Constant positions along `dim` (negative ones count from the end), instead of an input.
        public var index: [Int]?
        public static let attributes = ["dim", "index"]
        public init(dim: Int, index: [Int]? = nil) { (self.dim, self.index) = (dim, index) }
    }
    public static let kind = "index_select"
    public static let arity = 1...2

    /// The selected axis of a batch of rank `rank` + 1.
    public static func axis(_ config: Config, rank: Int) throws -> Int {
        let axis = config.dim < 0 ? config.dim + rank + 1 : config.dim
        guard axis >= 1, axis <= rank else { throw TensorError("dim \(config.dim) must name an axis after the batch axis") }
        return axis
    }

    /// The constant positions, each within the axis of `size` (negative ones from its end).
    public static func positions(_ config: Config, size: Int) throws -> [Int]? {
        guard let index = config.index else { return nil }
        guard !index.isEmpty else { throw TensorError("index holds no positions") }
        return try index.map { p in
            guard (-size..<size).contains(p) else { throw TensorError("position \(p) is outside an axis of \(size)") }
            return p < 0 ? p + size : p
        }
    }

    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let axis = try axis(config, rank: inputs[0].count) - 1
        var out = inputs[0]
        if let positions = try positions(config, size: inputs[0][axis]) {
            guard inputs.count == 1 else { throw TensorError("takes 'index' or an index input, not both") }
            out[axis] = positions.count
            return out
        }
        guard inputs.count == 2 else { throw TensorError("needs the positions: an index input or 'index'") }
        guard inputs[1].count == 1 else { throw TensorError("index must be one list of positions per example, got shape \(inputs[1])") }
        out[axis] = inputs[1][0]
        return out
    }

    public static func outputType(_ config: Config, inputs: [ElementType]) throws -> ElementType {
        guard inputs[0] == .float32 else { throw TensorError("selects from float32 values, got \(inputs[0].rawValue)") }
        guard inputs.count == 1 || inputs[1] == .int64 || inputs[1] == .int32 else { throw TensorError("takes int64 or int32 positions, got \(inputs[1].rawValue)") }
        return .float32
    }
}

/// Element-wise comparisons (`torch.eq`, `torch.lt`, `torch.gt`): two float32 or two integer inputs,
/// the second broadcast over the first, or one input and a number `other` (`x == 0`), giving bool.
public struct ComparisonSchema<Kind: ComparisonKind>: OpSchema {
    public typealias Config = ComparisonConfig
    public static var kind: String { Kind.name }
    public static var arity: ClosedRange<Int> { 1...2 }
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        guard (inputs.count == 1) == (config.other != nil) else {
            throw TensorError(inputs.count == 1 ? "one input needs the number 'other' to compare with" : "takes 'other' or a second input, not both")
        }
        return inputs.count == 1 ? inputs[0] : try broadcastOutputShape(inputs)
    }
    public static func outputType(_ config: Config, inputs: [ElementType]) throws -> ElementType {
        if inputs.count == 1 {
            if inputs[0].isInteger, let v = config.other?.value, !(v.rounded() == v && abs(v) < 2_147_483_648) {
                throw TensorError("compares integers with \(config.other!), which is not a 32-bit integer")
            }
            return .bool
        }
        guard inputs[0].isInteger == inputs[1].isInteger else {
            throw TensorError("compares two float32 or two integer inputs, got \(inputs[0].rawValue) and \(inputs[1].rawValue) (cast one first)")
        }
        return .bool
    }
}

/// The attributes of a comparison (`ComparisonSchema`).
public struct ComparisonConfig: OpConfig {
    /// The number compared with, for a node of one input.
    public var other: Scalar?
    public static let attributes = ["other"]
    public init(other: Scalar? = nil) { self.other = other }
}

/// Which comparison a `ComparisonSchema` is.
public protocol ComparisonKind { static var name: String { get } }
public enum EqualKind: ComparisonKind { public static let name = "eq" }
public enum LessKind: ComparisonKind { public static let name = "lt" }
public enum GreaterKind: ComparisonKind { public static let name = "gt" }

/// `torch.where(condition, a, b)`: bool condition, float32 a and b of its shape — each an input, or
/// a number (`x`, `y`) as `torch.where(mask, float("-inf"), 0.0)` takes them.
public enum WhereSchema: OpSchema {
    public struct Config: OpConfig {
        /// The value where the condition holds, when it is a number rather than an input.
        public var x: Scalar?
        /// The value elsewhere, when it is a number rather than an input.
        public var y: Scalar?
        public static let attributes = ["x", "y"]
        public init(x: Scalar? = nil, y: Scalar? = nil) { (self.x, self.y) = (x, y) }
    }
    public static let kind = "where"
    public static let arity = 1...3
    public static func outputShape(_ config: Config, inputs: Shapes) throws -> [Int] {
        let wanted = 1 + (config.x == nil ? 1 : 0) + (config.y == nil ? 1 : 0)
        guard inputs.count == wanted else {
            throw TensorError("takes the condition and \(wanted - 1) value input\(wanted == 2 ? "" : "s") (the others given as 'x'/'y'), got \(inputs.count) inputs")
        }
        guard inputs.allSatisfy({ $0 == inputs[0] }) else { throw TensorError("needs inputs of one shape, got \(inputs)") }
        return inputs[0]
    }
    public static func outputType(_ config: Config, inputs: [ElementType]) throws -> ElementType {
        guard inputs[0] == .bool else { throw TensorError("needs a bool condition, got \(inputs[0].rawValue)") }
        guard inputs.dropFirst().allSatisfy({ $0 == .float32 }) else { throw TensorError("chooses between float32 values") }
        return .float32
    }
}

/// `Tensor.to(dtype)`: float32 ↔ integer types (float to integer truncates toward zero, as PyTorch).
public enum CastSchema: ElementwiseSchema {
    public struct Config: OpConfig {
        public var dtype: ElementType
        public static let attributes = ["dtype"]
    }
    public static let kind = "cast"
    public static func outputType(_ config: Config, inputs: [ElementType]) throws -> ElementType {
        guard inputs[0] == .float32 || config.dtype == .float32 || inputs[0] == config.dtype else {
            throw TensorError("casts between float32 and an integer type, not \(inputs[0].rawValue) to \(config.dtype.rawValue)")
        }
        return config.dtype
    }
}
