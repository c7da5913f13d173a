import PrismCL

/// What a fusion pattern may look at when the model runs.
struct FusionContext {
    let model: Model
    /// Nodes whose outputs are captured (they must stay separate values).
    let captured: Set<Int>
    /// How many nodes read each value (the output counts once more).
    let readers: [Int]
    let training: Bool

    /// Whether node `i`'s output feeds only node `i + 1` (and is neither captured nor the output),
    /// so the two can run as one kernel.
    func chained(_ i: Int) -> Bool {
        let nodes = model.graph.nodes
        return i + 1 < nodes.count && readers[i + 1] == 1 && nodes[i + 1].inputs == [i + 1] && !captured.contains(i)
    }
}

/// A run of consecutive nodes executed as one kernel.
struct FusedRun {
    /// The last node covered (the run starts at the node it was matched at and reads its inputs).
    let last: Int
    /// The run's output from the first node's inputs.
    let run: ([Tensor]) throws -> Tensor
}

/// An element-wise op of two values (or a value and a constant) that can apply a following ReLU in
/// its kernel (`BinaryLayer`: a residual Add then ReLU, as every ResNet block ends).
public protocol ReLUFusableBinary: Op {
    func forward(_ inputs: [Tensor], relu: Bool) throws -> Tensor
}

/// A layer with a weight and a bias that can apply a following ReLU in its kernel's epilogue and run
/// with weights folded from a following BatchNorm (Linear, Conv2D).
public protocol ReLUFusable: Op {
    var weight: Tensor { get }
    var bias: Tensor? { get }
    /// The layer with `weight` and `bias` in place of its own, followed by a ReLU when `relu` is set,
    /// in one kernel.
    func forward(_ x: Tensor, weight: Tensor, bias: Tensor?, relu: Bool) throws -> Tensor
}

/// The fusion pattern, tried at each node: a Linear or Conv2D, then (each optional, in this order)
/// a BatchNorm in evaluation folded into its weights, a ReLU in its epilogue, and — for a
/// convolution outside the tape (inside `noGrad`) on a device with the pooled kernel, one group and
/// an output of at least 2×2 — MaxPool2D(2, stride 2) in the same kernel; or an element-wise op of two
/// values (a residual Add) then a ReLU. Nodes join only while the value between them has no other
/// reader and is not captured.
enum Fusion {
    static func match(at i: Int, _ context: FusionContext) -> FusedRun? {
        let model = context.model, ops = model.ops, taped = model.engine.isGradEnabled
        if let binary = ops[i] as? any ReLUFusableBinary {
            guard context.chained(i), ops[i + 1] is ReLU else { return nil }
            return FusedRun(last: i + 1) { inputs in try binary.forward(inputs, relu: true) }
        }
        guard let layer = ops[i] as? any ReLUFusable else { return nil }
        var last = i
        var norm: BatchNormLayer?
        if !context.training, context.chained(last), let bn = ops[last + 1] as? BatchNormLayer {
            norm = bn
            last += 1
        }
        var relu = false
        if context.chained(last), ops[last + 1] is ReLU {
            relu = true
            last += 1
        }
        var pooled = false
        if let conv = layer as? Conv2DLayer, conv.groups == 1, !taped, Conv2DKernels.supportsPooling(model.engine),
           context.chained(last), let pool = ops[last + 1] as? MaxPool2DLayer, pool.config.kernel_size == SizePair(2), pool.stride == (2, 2),
           (pool.config.padding ?? SizePair(0)) == SizePair(0), !(pool.config.ceil_mode ?? false) {
            let output = model.graph.nodes[i].info.output
            if output.count == 3, output[1] >= 2, output[2] >= 2 {
                pooled = true
                last += 1
            }
        }
        guard last > i else { return nil }
        return FusedRun(last: last) { [pooled, relu] inputs in
            let x = inputs[0]
            let (weight, bias) = try norm.map { try $0.fold(weight: layer.weight, bias: layer.bias) } ?? (layer.weight, layer.bias)
            if pooled, let conv = layer as? Conv2DLayer {
                return try conv.forwardPooled(x, weight: weight, bias: bias, relu: relu)
            }
            return try layer.forward(x, weight: weight, bias: bias, relu: relu)
        }
    }
}
