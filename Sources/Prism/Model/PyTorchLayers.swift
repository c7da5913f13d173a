import Foundation

// Layers a PyTorch state dict holds beyond the reference CNN's: BatchNorm, adaptive average
// pooling and the element-wise activations of torch.nn. Each is one op kind of `OpRegistry`, named
// as PyTorch's module class in lower case, with PyTorch's constructor arguments as attributes.

/// Batch normalization over axis 1 (`nn.BatchNorm1d`, `nn.BatchNorm2d`): in evaluation the running
/// statistics, y = (x − running_mean) / √(running_var + eps) · weight + bias; in training the
/// batch's statistics, folded into the running ones with `momentum` as PyTorch does (unbiased
/// variance). At inference a BatchNorm right after a Conv2D or Linear runs folded into that layer's
/// weights (see `Fusion`).
public class BatchNormLayer {
    public typealias Config = BatchNormConfig

    public let config: Config
    public let weight: Tensor?
    public let bias: Tensor?
    public let runningMean: Tensor
    public let runningVar: Tensor
    public var eps: Float { Float(config.eps ?? 1e-5) }
    public var momentum: Float { Float(config.momentum ?? 0.1) }

    /// γ = 1, β = 0, running mean 0 and variance 1 (PyTorch's initialization).
    public init(config: Config, engine: Engine) throws {
        let c = config.num_features
        self.config = config
        weight = config.affine ?? true ? try Tensor.ones([c], engine: engine, requiresGrad: true) : nil
        bias = config.affine ?? true ? try Tensor.zeros([c], engine: engine, requiresGrad: true) : nil
        runningMean = try Tensor.zeros([c], engine: engine)
        runningVar = try Tensor.ones([c], engine: engine)
    }

    public var parameters: [(name: String, tensor: Tensor)] {
        (weight.map { [("weight", $0)] } ?? []) + (bias.map { [("bias", $0)] } ?? [])
    }

    public var buffers: [(name: String, tensor: Tensor)] { [("running_mean", runningMean), ("running_var", runningVar)] }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        guard training else {
            return try batchNorm(x, runningMean: runningMean, runningVar: runningVar, weight: weight, bias: bias, eps: eps)
        }
        let (y, mean, variance) = try batchNormTraining(x, weight: weight, bias: bias, eps: eps)
        // running ← (1 − m)·running + m·batch, on the device (the running statistics are not read back).
        let m = momentum, engine = x.engine
        try engine.noGrad {
            for (running, batch) in [(runningMean, mean), (runningVar, variance)] {
                let moved = try running.scaled(by: 1 - m).add(try batch.scaled(by: m))
                _ = try running.storage.copy(from: moved.storage, count: running.count)
            }
        }
        return y
    }

    /// The weight and bias of a Conv2D ([K, C, R, S]) or Linear ([K, C]) layer followed by this
    /// norm in evaluation, as one layer: W·s and (b − mean)·s + β with s = γ / √(var + eps) per output
    /// channel. Computed on the device (recording, so gradients reach every parameter).
    public func fold(weight w: Tensor, bias b: Tensor?) throws -> (weight: Tensor, bias: Tensor) {
        let k = runningVar.count
        var scale = try runningVar.shifted(by: eps).log().scaled(by: -0.5).exp()
        if let weight { scale = try scale.mul(weight) }
        let shape = [k] + [Int](repeating: 1, count: w.rank - 1)
        let folded = try w.mul(try scale.reshaped(shape))
        let centered = try b.map { try $0.sub(runningMean) } ?? runningMean.scaled(by: -1)
        var shift = try centered.mul(scale)
        if let bias { shift = try shift.add(bias) }
        return (folded, shift)
    }
}

/// `nn.BatchNorm2d`: [C, H, W] per example.
public final class BatchNorm2D: BatchNormLayer, Op {
    public typealias Schema = BatchNorm2DSchema
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { try super.init(config: config, engine: engine) }
}

/// `nn.BatchNorm1d`: [C] or [C, L] per example.
public final class BatchNorm1D: BatchNormLayer, Op {
    public typealias Schema = BatchNorm1DSchema
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { try super.init(config: config, engine: engine) }
}

/// `nn.AdaptiveAvgPool2d(output_size)`: PyTorch's windows ⌊i·H/out⌋ ..< ⌈(i+1)·H/out⌉.
public final class AdaptiveAvgPool2DLayer: Op {
    public typealias Schema = AdaptiveAvgPool2DSchema
    public typealias Config = AdaptiveAvgPool2DSchema.Config
    public let config: Config
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.config = config }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try adaptiveAvgPool2d(inputs[0], outputSize: config.output_size.pair)
    }
}

/// `nn.LeakyReLU(negative_slope)`.
public final class LeakyReLU: Op {
    public typealias Schema = LeakyReLUSchema
    public typealias Config = LeakyReLUSchema.Config
    public let config: Config
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.config = config }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try inputs[0].leakyRelu(negativeSlope: Float(config.negative_slope ?? 0.01))
    }
}

/// `nn.ELU(alpha)`.
public final class ELU: Op {
    public typealias Schema = ELUSchema
    public typealias Config = ELUSchema.Config
    public let config: Config
    public init(config: Config, inputs: Shapes, seed: UInt64, engine: Engine) throws { self.config = config }
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].elu(alpha: Float(config.alpha ?? 1)) }
}

/// `nn.SiLU`: x·σ(x).
public final class SiLU: Op {
    public typealias Schema = SiLUSchema
    public let config = NoConfig()
    public init(config: NoConfig, inputs: Shapes, seed: UInt64, engine: Engine) throws {}
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].silu() }
}

/// `nn.Hardswish`: x·ReLU6(x + 3)/6.
public final class Hardswish: Op {
    public typealias Schema = HardswishSchema
    public let config = NoConfig()
    public init(config: NoConfig, inputs: Shapes, seed: UInt64, engine: Engine) throws {}
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try inputs[0].hardswish() }
}
