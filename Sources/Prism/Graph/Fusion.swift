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
    /// The last node covered (the run starts at the node it was matched at and reads its input).
    let last: Int
    let run: (Tensor) throws -> Tensor
}

/// A layer that can apply a following ReLU in its own kernel's epilogue (Linear, Conv2D).
public protocol ReLUFusable: Op {
    /// The layer, followed by a ReLU when `relu` is set, in one kernel.
    func forward(_ x: Tensor, relu: Bool) throws -> Tensor
}

/// The fusion patterns, tried in order at each node; each is owned by the ops it fuses.
enum Fusion {
    static func match(at i: Int, _ context: FusionContext) -> FusedRun? {
        pooledConvolution(at: i, context) ?? reluEpilogue(at: i, context)
    }

    /// Linear or Conv2D → ReLU: the ReLU in the layer's epilogue.
    static func reluEpilogue(at i: Int, _ context: FusionContext) -> FusedRun? {
        let ops = context.model.ops
        guard let layer = ops[i] as? any ReLUFusable, context.chained(i), ops[i + 1] is ReLU else { return nil }
        return FusedRun(last: i + 1) { x in try layer.forward(x, relu: true) }
    }

    /// Conv2D (→ ReLU) → MaxPool2D(2, stride 2) as one pooled convolution: outside the tape (inside
    /// `noGrad`), on a device with the pooled kernel, no intermediate captured, and a convolution
    /// output of at least 2×2.
    static func pooledConvolution(at i: Int, _ context: FusionContext) -> FusedRun? {
        let model = context.model, ops = model.ops
        guard !model.engine.isGradEnabled, let conv = ops[i] as? Conv2DLayer, Conv2DKernels.supportsPooling(model.engine),
              context.chained(i) else { return nil }
        let relu = ops[i + 1] is ReLU
        let last = relu ? i + 2 : i + 1
        guard !relu || context.chained(i + 1), last < ops.count, let pool = ops[last] as? MaxPool2DLayer,
              pool.config.kernel_size == SizePair(2), pool.stride == (2, 2), (pool.config.padding ?? SizePair(0)) == SizePair(0),
              !(pool.config.ceil_mode ?? false) else { return nil }
        let input = model.graph.shape(ofValue: model.graph.nodes[i].inputs[0], input: model.spec.inputShape)
        let output = model.graph.nodes[i].info.output
        guard input.count == 3, output.count == 3, output[1] >= 2, output[2] >= 2 else { return nil }
        return FusedRun(last: last) { x in try conv.forwardPooled(x, relu: relu) }
    }
}
