import Foundation
import Prism
import PrismCL

/// Activation maximization (Erhan et al. 2009; the regularizers of Yosinski et al. 2015 and Olah
/// et al. 2017): gradient ascent on the input for a class's logit or a channel's mean activation,
/// every target one row of a device batch. Each step moves every row along its normalized gradient
/// (step length `stepSize` × √elements, so the step does not depend on the gradient's scale), with:
/// - `l2`: decay, the objective J = target − (l2 / 2)·‖x‖²;
/// - `jitter`: the image is shifted by up to this many pixels (a random roll per step and row)
///   before the forward pass, and the gradient shifted back;
/// - `blurSigma` / `blurEvery`: a Gaussian blur of the image every few steps;
/// - `range`: the image clipped to the data's range after every step.
/// Without jitter and blur the ascent is a monotone one: a step that lowers J is retried at half the
/// length (up to 20 times, else the row keeps its image), so J never decreases.
public struct ActivationMaximization {
    /// What a row maximizes.
    public enum Target: Equatable, Sendable, CustomStringConvertible {
        /// The model's output (logit) `k`.
        case output(Int)
        /// The mean over positions of channel `channel` of node `layer`'s output ([C, …] per example).
        case channel(layer: String, channel: Int)

        public var description: String {
            switch self {
            case let .output(k): "output \(k)"
            case let .channel(layer, c): "\(layer) channel \(c)"
            }
        }
    }

    public let model: Model
    public var steps = 100
    /// Step length per step as a fraction of √elements (RMS change per element).
    public var stepSize = 0.05
    public var l2 = 0.0
    public var jitter = 0
    public var blurSigma = 0.0
    public var blurEvery = 4
    public var range: ClosedRange<Float>?
    public var seed: UInt64 = 0

    public init(model: Model) { self.model = model }

    /// The result: the images and the target's value (without regularizers) after each step.
    public struct Result: Sendable {
        /// [targets] + input shape, row-major.
        public var images: [Float]
        /// Per target, its value at the start and after each step (steps + 1 values).
        public var history: [[Double]]
    }

    /// Runs the ascent for every target from the same seeded start (uniform noise of amplitude 0.01
    /// around the middle of `range`, or around 0).
    /// - Throws: `ExplainError` for an output or channel outside the model's, a layer that is not
    ///   [C, …] per example, or settings out of range.
    public func run(_ targets: [Target]) throws -> Result {
        guard !targets.isEmpty else { throw ExplainError("activation maximization: no targets") }
        guard steps >= 1, stepSize > 0, l2 >= 0, jitter >= 0, blurSigma >= 0, blurEvery >= 1 else {
            throw ExplainError("activation maximization: needs steps ≥ 1, a positive step size, l2 ≥ 0, jitter ≥ 0, blur σ ≥ 0 and blur every ≥ 1 step")
        }
        let shape = model.spec.inputShape, d = shape.reduce(1, *), rows = targets.count, engine = model.engine
        for target in targets {
            if case let .output(k) = target, !(0..<model.spec.classCount).contains(k) {
                throw ExplainError("activation maximization: output \(k) is outside the model's 0..<\(model.spec.classCount)")
            }
        }
        var rng = SplitMix64(seed: seed)
        let middle = range.map { ($0.lowerBound + $0.upperBound) / 2 } ?? 0
        var x = (0..<(rows * d)).map { _ in middle + 0.01 * (2 * rng.nextFloat() - 1) }
        if let range { x = x.map { Swift.min(Swift.max($0, range.lowerBound), range.upperBound) } }
        let monotone = jitter == 0 && blurSigma == 0
        let parameters = model.parameters
        let saved = parameters.map(\.requiresGrad)
        for p in parameters { p.requiresGrad = false }
        defer { for (p, r) in zip(parameters, saved) { p.requiresGrad = r } }

        // Target values [rows] and, when asked, their gradients [rows·d] at the images `z`.
        func evaluate(_ z: [Float], gradients: Bool) throws -> (values: [Double], gradient: [Float]) {
            let leaf = try Tensor(z, shape: [rows] + shape, engine: engine, requiresGrad: gradients)
            let layers = Set(targets.compactMap { if case let .channel(layer, _) = $0 { layer } else { nil } })
            guard layers.count <= 1 else { throw ExplainError("activation maximization: channels of one layer per run, got \(layers.sorted())") }
            let run = { try model.forward(leaf, capture: layers) }
            let (output, activations) = gradients ? try run() : try engine.noGrad { try run() }
            let source: Tensor, seedValues: [Float]
            if let layer = layers.first {
                guard let a = activations[layer], a.rank >= 2 else { throw ExplainError("activation maximization: the model has no layer '\(layer)' of channels") }
                let channels = a.shape[1], plane = a.count / (rows * channels)
                var s = [Float](repeating: 0, count: a.count)
                for (r, target) in targets.enumerated() {
                    guard case let .channel(_, c) = target, (0..<channels).contains(c) else {
                        throw ExplainError("activation maximization: '\(target)' is not a channel of '\(layer)' (0..<\(channels)); one run maximizes channels or outputs, not both")
                    }
                    for p in 0..<plane { s[(r * channels + c) * plane + p] = 1 / Float(plane) }
                }
                (source, seedValues) = (a, s)
            } else {
                let c = model.spec.classCount
                var s = [Float](repeating: 0, count: rows * c)
                for (r, target) in targets.enumerated() { if case let .output(k) = target { s[r * c + k] = 1 } }
                (source, seedValues) = (output, s)
            }
            let all = try source.toArray(), width = all.count / rows
            let values = (0..<rows).map { r in (0..<width).reduce(0.0) { $0 + Double(seedValues[r * width + $1]) * Double(all[r * width + $1]) } }
            guard gradients else { return (values, []) }
            try source.backward(try Tensor(seedValues, shape: source.shape, engine: engine))
            guard let g = leaf.grad else { throw ExplainError("activation maximization: the target does not depend on the input") }
            return (values, try g.toArray())
        }
        func objective(_ values: [Double], _ z: [Float], row r: Int) -> Double {
            values[r] - l2 / 2 * z[(r * d)..<((r + 1) * d)].reduce(0.0) { $0 + Double($1) * Double($1) }
        }

        var history = [[Double]](repeating: [], count: rows)
        var current = try evaluate(x, gradients: false).values
        for r in 0..<rows { history[r].append(current[r]) }
        let length = Float(stepSize * Double(d).squareRoot())
        for step in 0..<steps {
            // The gradient, at a jittered image when asked (shifted back to the image's frame).
            let shifts = (0..<rows).map { _ in jitter == 0 ? (0, 0) : (Int(rng.next() % UInt64(2 * jitter + 1)) - jitter, Int(rng.next() % UInt64(2 * jitter + 1)) - jitter) }
            let shifted = jitter == 0 ? x : roll(x, shape: shape, rows: rows, by: shifts)
            let g0 = try evaluate(shifted, gradients: true).gradient
            let g = jitter == 0 ? g0 : roll(g0, shape: shape, rows: rows, by: shifts.map { (-$0.0, -$0.1) })
            var direction = [Float](repeating: 0, count: rows * d)
            for r in 0..<rows {
                var norm = 0.0
                for e in 0..<d {
                    let v = g[r * d + e] - Float(l2) * x[r * d + e]
                    direction[r * d + e] = v
                    norm += Double(v) * Double(v)
                }
                let scale = norm > 0 ? length / Float(norm.squareRoot()) : 0
                for e in 0..<d { direction[r * d + e] *= scale }
            }
            var factor = [Float](repeating: 1, count: rows)
            var next = x
            for attempt in 0..<(monotone ? 21 : 1) {
                for r in 0..<rows {
                    for e in 0..<d {
                        var v = x[r * d + e] + factor[r] * direction[r * d + e]
                        if let range { v = Swift.min(Swift.max(v, range.lowerBound), range.upperBound) }
                        next[r * d + e] = v
                    }
                }
                if !monotone { break }
                let values = try evaluate(next, gradients: false).values
                var retry = false
                for r in 0..<rows where objective(values, next, row: r) < objective(current, x, row: r) {
                    if attempt == 20 {
                        next.replaceSubrange((r * d)..<((r + 1) * d), with: x[(r * d)..<((r + 1) * d)])  // keep the image
                    } else {
                        factor[r] /= 2
                        retry = true
                    }
                }
                if !retry { break }
            }
            x = next
            if blurSigma > 0, (step + 1) % blurEvery == 0 {
                x = blur(x, shape: shape, rows: rows, sigma: blurSigma)
                if let range { x = x.map { Swift.min(Swift.max($0, range.lowerBound), range.upperBound) } }
            }
            current = try evaluate(x, gradients: false).values
            for r in 0..<rows { history[r].append(current[r]) }
        }
        return Result(images: x, history: history)
    }

    /// Each row's image [C, H, W] (or any [..., H, W]) rolled by (dy, dx) pixels, cyclically.
    func roll(_ x: [Float], shape: [Int], rows: Int, by shifts: [(Int, Int)]) -> [Float] {
        guard shape.count >= 2 else { return x }
        let h = shape[shape.count - 2], w = shape[shape.count - 1], plane = h * w, planes = shape.reduce(1, *) / plane
        var out = x
        for r in 0..<rows {
            let (dy, dx) = shifts[r]
            for p in 0..<planes {
                let base = (r * planes + p) * plane
                for i in 0..<h {
                    for j in 0..<w { out[base + ((i + dy) % h + h) % h * w + ((j + dx) % w + w) % w] = x[base + i * w + j] }
                }
            }
        }
        return out
    }

    /// Each plane blurred by a Gaussian of σ pixels (kernel radius ⌈3σ⌉, edges clamped), separably.
    func blur(_ x: [Float], shape: [Int], rows: Int, sigma: Double) -> [Float] {
        guard shape.count >= 2 else { return x }
        let h = shape[shape.count - 2], w = shape[shape.count - 1], plane = h * w, planes = rows * shape.reduce(1, *) / plane
        let radius = Int((3 * sigma).rounded(.up))
        var kernel = (-radius...radius).map { Float(exp(-Double($0 * $0) / (2 * sigma * sigma))) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        var tmp = x, out = x
        for p in 0..<planes {
            let base = p * plane
            for i in 0..<h {
                for j in 0..<w {
                    var s: Float = 0
                    for k in -radius...radius { s += kernel[k + radius] * x[base + i * w + Swift.min(Swift.max(j + k, 0), w - 1)] }
                    tmp[base + i * w + j] = s
                }
            }
            for i in 0..<h {
                for j in 0..<w {
                    var s: Float = 0
                    for k in -radius...radius { s += kernel[k + radius] * tmp[base + Swift.min(Swift.max(i + k, 0), h - 1) * w + j] }
                    out[base + i * w + j] = s
                }
            }
        }
        return out
    }
}
