import Foundation
import PrismCL

/// Updates parameters in place from their accumulated `.grad`, like `torch.optim`.
public protocol Optimizer: AnyObject {
    /// The parameters being optimized.
    var parameters: [Tensor] { get }
    /// Applies one update to every parameter that has a gradient.
    func step() throws
    /// The optimizer's state (moment buffers, step count) as named host arrays, for checkpoints.
    func state() throws -> [String: [Float]]
    /// Restores a state written by `state()`.
    /// - Throws: `TensorError` naming a missing or mis-sized entry.
    func load(state: [String: [Float]]) throws
}

extension Optimizer {
    /// Forgets every parameter's gradient.
    public func zeroGrad() {
        for p in parameters { p.zeroGrad() }
    }
}

/// Clips gradients by their global norm, like `torch.nn.utils.clip_grad_norm_`: when the 2-norm of
/// all gradients together exceeds `maxNorm`, every gradient is scaled by maxNorm / (norm + 1e-6).
/// - Returns: the total norm before clipping.
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Float) throws -> Float {
    var total = 0.0
    for p in parameters {
        guard let g = p.grad else { continue }
        total += try sumOfSquares(g)
    }
    let norm = Float(total.squareRoot())
    let scale = maxNorm / (norm + 1e-6)
    if scale < 1 {
        for p in parameters {
            guard let g = p.grad else { continue }
            try g.engine.launch("optimizer.cl", "scale_inplace", global: [g.count], [g.storage, scale, Int32(g.count)])
        }
    }
    return norm
}

/// Σ x² over a tensor: per-block partial sums on the device, added on the host in Double.
func sumOfSquares(_ x: Tensor) throws -> Double {
    let block = 1024
    let blocks = max(1, (x.count + block - 1) / block)
    let partial = try x.engine.buffer(count: blocks)
    try x.engine.launch("optimizer.cl", "sumsq_partial", defines: ["SUMSQ_BLOCK": "\(block)"], global: [blocks],
                        [x.storage, partial, Int32(x.count)])
    return try partial.read().reduce(0.0) { $0 + Double($1) }
}

/// Checks that every parameter is distinct and writes back hyper-parameter errors.
func checkParameters(_ op: String, _ parameters: [Tensor], lr: Float) throws {
    guard lr >= 0, lr.isFinite else { throw TensorError("\(op): learning rate must be finite and ≥ 0, got \(lr)") }
    var seen = Set<ObjectIdentifier>()
    for p in parameters where !seen.insert(ObjectIdentifier(p)).inserted {
        throw TensorError("\(op): parameter \(p.shape) appears twice")
    }
}

/// SGD with momentum, dampening, Nesterov momentum and L2 weight decay (`torch.optim.SGD`).
public final class SGD: Optimizer {
    public let parameters: [Tensor]
    public var lr: Float
    public let momentum: Float, dampening: Float, weightDecay: Float, nesterov: Bool
    private var buffers: [Buffer<Float>?]
    private var started: [Bool]

    public init(_ parameters: [Tensor], lr: Float, momentum: Float = 0, dampening: Float = 0, weightDecay: Float = 0,
                nesterov: Bool = false) throws {
        try checkParameters("SGD", parameters, lr: lr)
        guard momentum >= 0, weightDecay >= 0 else { throw TensorError("SGD: momentum and weight decay must be ≥ 0") }
        guard !nesterov || (momentum > 0 && dampening == 0) else {
            throw TensorError("SGD: Nesterov momentum requires momentum > 0 and zero dampening")
        }
        self.parameters = parameters
        self.lr = lr
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        buffers = try parameters.map { momentum > 0 ? try $0.engine.buffer(count: $0.count) : nil }
        started = [Bool](repeating: false, count: parameters.count)
    }

    public func step() throws {
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            let buf = buffers[i] ?? p.storage  // unused when momentum is 0
            try p.engine.launch("optimizer.cl", "sgd_step", global: [p.count],
                                [p.storage, g.storage, buf, lr, momentum, dampening, weightDecay, Int32(nesterov ? 1 : 0),
                                 Int32(started[i] ? 0 : 1), Int32(p.count)])
            started[i] = true
        }
    }

    public func state() throws -> [String: [Float]] {
        var s: [String: [Float]] = [:]
        for (i, b) in buffers.enumerated() where started[i] {
            if let b { s["momentum.\(i)"] = try b.read(0..<parameters[i].count) }
        }
        return s
    }

    public func load(state: [String: [Float]]) throws {
        for i in parameters.indices {
            guard let values = state["momentum.\(i)"] else { started[i] = false; continue }
            guard let b = buffers[i], values.count == parameters[i].count else {
                throw TensorError("SGD state: momentum.\(i) has \(values.count) values for parameter \(parameters[i].shape)")
            }
            try b.write(values)
            started[i] = true
        }
    }
}

/// Adam (`torch.optim.Adam`, L2 weight decay added to the gradient) or, with `decoupled`, AdamW
/// (`torch.optim.AdamW`, weight decay applied to the parameter before the step).
public final class Adam: Optimizer {
    public let parameters: [Tensor]
    public var lr: Float
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    public let decoupledWeightDecay: Bool
    /// Steps taken.
    public private(set) var stepCount = 0
    private let m: [Buffer<Float>], v: [Buffer<Float>]

    public init(_ parameters: [Tensor], lr: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8,
                weightDecay: Float = 0, decoupledWeightDecay: Bool = false) throws {
        let name = decoupledWeightDecay ? "AdamW" : "Adam"
        try checkParameters(name, parameters, lr: lr)
        guard (0..<1).contains(betas.0), (0..<1).contains(betas.1) else { throw TensorError("\(name): betas must lie in [0, 1), got \(betas)") }
        guard eps >= 0, weightDecay >= 0 else { throw TensorError("\(name): eps and weight decay must be ≥ 0") }
        self.parameters = parameters
        self.lr = lr
        (beta1, beta2) = betas
        self.eps = eps
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        m = try parameters.map { try Tensor.zeros([$0.count], engine: $0.engine).storage }
        v = try parameters.map { try Tensor.zeros([$0.count], engine: $0.engine).storage }
    }

    /// AdamW with PyTorch's default weight decay of 0.01.
    public static func adamW(_ parameters: [Tensor], lr: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8,
                             weightDecay: Float = 0.01) throws -> Adam {
        try Adam(parameters, lr: lr, betas: betas, eps: eps, weightDecay: weightDecay, decoupledWeightDecay: true)
    }

    public func step() throws {
        stepCount += 1
        let c1 = Float(1 - Foundation.pow(Double(beta1), Double(stepCount)))
        let c2 = Float(1 - Foundation.pow(Double(beta2), Double(stepCount)))
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            try p.engine.launch("optimizer.cl", "adam_step", global: [p.count],
                                [p.storage, g.storage, m[i], v[i], lr, beta1, beta2, eps, weightDecay,
                                 Int32(decoupledWeightDecay ? 1 : 0), c1, c2, Int32(p.count)])
        }
    }

    public func state() throws -> [String: [Float]] {
        var s: [String: [Float]] = ["step": [Float(stepCount)]]
        for i in parameters.indices {
            s["m.\(i)"] = try m[i].read(0..<parameters[i].count)
            s["v.\(i)"] = try v[i].read(0..<parameters[i].count)
        }
        return s
    }

    public func load(state: [String: [Float]]) throws {
        guard let step = state["step"]?.first, step >= 0 else { throw TensorError("Adam state: missing 'step'") }
        for i in parameters.indices {
            for (key, buffer) in [("m.\(i)", m[i]), ("v.\(i)", v[i])] {
                guard let values = state[key], values.count == parameters[i].count else {
                    throw TensorError("Adam state: '\(key)' missing or not of \(parameters[i].count) values")
                }
                try buffer.write(values)
            }
        }
        stepCount = Int(step)
    }
}
