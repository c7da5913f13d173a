import Foundation
import PrismCL

/// One stage of a `Sequential` model.
///
/// Layers with parameters keep them as leaf tensors that require gradients, under PyTorch's names
/// (`weight`, `bias`), so a model's state dict matches `nn.Sequential`'s.
public protocol Layer: AnyObject {
    /// A short name for messages and activation names (`conv2d`, `relu`, …).
    var kind: String { get }
    /// The layer's trainable tensors, by PyTorch name.
    var parameters: [(name: String, tensor: Tensor)] { get }
    /// Applies the layer.
    /// - Parameters:
    ///   - x: a batch, first dimension the batch size.
    ///   - training: whether the model is training (dropout is active only then).
    func forward(_ x: Tensor, training: Bool) throws -> Tensor
}

extension Layer {
    public var parameters: [(name: String, tensor: Tensor)] { [] }
}

/// A layer that can apply a following ReLU in its own kernel's epilogue (Linear, Conv2D).
public protocol ReLUFusable: Layer {
    /// Set by `Sequential` when a ReLU follows.
    var fusedReLU: Bool { get set }
    /// The layer alone, without the fused ReLU (when its own output is asked for).
    func forwardUnfused(_ x: Tensor) throws -> Tensor
}

/// Uniform in ±1/√fanIn: PyTorch's default initialisation of Linear and Conv2d weights and biases
/// (kaiming_uniform with a = √5 gives exactly this bound for the weights).
func defaultInitialization(_ shape: [Int], fanIn: Int, seed: UInt64, engine: Engine) throws -> Tensor {
    let bound = 1 / Float(max(fanIn, 1)).squareRoot()
    return try Tensor.uniform(shape, low: -bound, high: bound, seed: seed, engine: engine, requiresGrad: true)
}

/// y = x·Wᵀ + b, with W [out, in] (PyTorch's layout); optionally followed by a fused ReLU.
public final class Linear: ReLUFusable {
    public let weight: Tensor
    public let bias: Tensor?
    /// Set by `Sequential` when a ReLU follows: the matmul epilogue applies it.
    public var fusedReLU = false
    public var kind: String { "linear" }

    public init(weight: Tensor, bias: Tensor?) throws {
        guard weight.rank == 2 else { throw TensorError("linear: weight must be [out, in], got \(weight.shape)") }
        if let bias, bias.shape != [weight.shape[0]] {
            throw TensorError.shape("linear", "bias must have shape [\(weight.shape[0])]", bias.shape, weight.shape)
        }
        self.weight = weight
        self.bias = bias
    }

    /// Initialized like `nn.Linear(inFeatures, outFeatures)`.
    public convenience init(inFeatures: Int, outFeatures: Int, bias: Bool = true, seed: UInt64, engine: Engine) throws {
        guard inFeatures > 0, outFeatures > 0 else { throw TensorError("linear: sizes must be positive: \(inFeatures) → \(outFeatures)") }
        try self.init(weight: try defaultInitialization([outFeatures, inFeatures], fanIn: inFeatures, seed: seed, engine: engine),
                      bias: bias ? try defaultInitialization([outFeatures], fanIn: inFeatures, seed: seed &+ 1, engine: engine) : nil)
    }

    public var parameters: [(name: String, tensor: Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func forward(_ x: Tensor, training: Bool) throws -> Tensor {
        try linear(x, weight: weight, bias: bias, relu: fusedReLU)
    }

    /// The layer alone, without a fused ReLU (when its own output is asked for).
    public func forwardUnfused(_ x: Tensor) throws -> Tensor {
        try linear(x, weight: weight, bias: bias, relu: false)
    }
}

/// 2-D convolution with a bias, like `nn.Conv2d`.
public final class Conv2DLayer: ReLUFusable {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: (Int, Int)
    public let padding: (Int, Int)
    /// Set by `Sequential` when a ReLU follows: the convolution's epilogue applies it.
    public var fusedReLU = false
    public var kind: String { "conv2d" }

    public init(weight: Tensor, bias: Tensor?, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0)) throws {
        guard weight.rank == 4 else { throw TensorError("conv2d: weight must be [K, C, R, S], got \(weight.shape)") }
        self.weight = weight
        self.bias = bias
        self.stride = stride
        self.padding = padding
    }

    /// Initialized like `nn.Conv2d(inChannels, outChannels, kernel, stride, padding)`.
    public convenience init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                            seed: UInt64, engine: Engine) throws {
        guard inChannels > 0, outChannels > 0, kernel > 0 else {
            throw TensorError("conv2d: sizes must be positive: \(inChannels) → \(outChannels), kernel \(kernel)")
        }
        let fanIn = inChannels * kernel * kernel
        try self.init(weight: try defaultInitialization([outChannels, inChannels, kernel, kernel], fanIn: fanIn, seed: seed, engine: engine),
                      bias: try defaultInitialization([outChannels], fanIn: fanIn, seed: seed &+ 1, engine: engine),
                      stride: (stride, stride), padding: (padding, padding))
    }

    public var parameters: [(name: String, tensor: Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func forward(_ x: Tensor, training: Bool) throws -> Tensor {
        try conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, relu: fusedReLU)
    }

    /// The layer alone, without a fused ReLU (when its own output is asked for).
    public func forwardUnfused(_ x: Tensor) throws -> Tensor {
        try conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }

    /// The layer (with its fused ReLU) followed by 2×2 max pooling with stride 2, in one kernel;
    /// inference only (see `conv2dMaxPool2x2`).
    public func forwardPooled(_ x: Tensor) throws -> Tensor {
        try conv2dMaxPool2x2(x, weight: weight, bias: bias, stride: stride, padding: padding, relu: fusedReLU)
    }
}

/// Max pooling with a square window.
public final class MaxPool2DLayer: Layer {
    public let kernel: Int, stride: Int
    public var kind: String { "maxpool2d" }
    public init(kernel: Int, stride: Int) { (self.kernel, self.stride) = (kernel, stride) }
    public func forward(_ x: Tensor, training: Bool) throws -> Tensor {
        try maxPool2d(x, kernel: (kernel, kernel), stride: (stride, stride))
    }
}

/// Average pooling with a square window.
public final class AvgPool2DLayer: Layer {
    public let kernel: Int, stride: Int
    public var kind: String { "avgpool2d" }
    public init(kernel: Int, stride: Int) { (self.kernel, self.stride) = (kernel, stride) }
    public func forward(_ x: Tensor, training: Bool) throws -> Tensor {
        try avgPool2d(x, kernel: (kernel, kernel), stride: (stride, stride))
    }
}

public final class ReLU: Layer {
    public var kind: String { "relu" }
    public init() {}
    public func forward(_ x: Tensor, training: Bool) throws -> Tensor { try x.relu() }
}

public final class GELU: Layer {
    public var kind: String { "gelu" }
    public init() {}
    public func forward(_ x: Tensor, training: Bool) throws -> Tensor { try x.gelu() }
}

/// [N, …] → [N, rest].
public final class Flatten: Layer {
    public var kind: String { "flatten" }
    public init() {}
    public func forward(_ x: Tensor, training: Bool) throws -> Tensor { try x.flattened() }
}

/// Softmax over the last axis.
public final class Softmax: Layer {
    public var kind: String { "softmax" }
    public init() {}
    public func forward(_ x: Tensor, training: Bool) throws -> Tensor { try x.softmax() }
}

/// Inverted dropout: in training each element is zeroed with probability `probability` and the
/// rest scaled by 1 / (1 − probability); identity in evaluation. Each training call draws a new mask
/// from (seed, call number), so a run is reproducible and a resumed run continues the sequence.
public final class Dropout: Layer {
    public let probability: Float
    public let seed: UInt64
    /// Training calls so far (saved with checkpoints).
    public var calls: UInt64 = 0
    public var kind: String { "dropout" }

    public init(probability: Float, seed: UInt64) throws {
        guard probability >= 0, probability < 1 else { throw TensorError("dropout: probability \(probability) outside [0, 1)") }
        (self.probability, self.seed) = (probability, seed)
    }

    public func forward(_ x: Tensor, training: Bool) throws -> Tensor {
        guard training, probability > 0 else { return x }
        var mixer = SplitMix64(seed: seed ^ (calls &* 0x9E37_79B9_7F4A_7C15))
        calls += 1
        return try dropout(x, p: probability, seed: mixer.next(), training: true)
    }
}
