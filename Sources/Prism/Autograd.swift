import PrismCL

/// One recorded operation: the tensors it read and how to turn the gradient of its result into
/// gradients of those inputs (nil where an input needs none).
final class GradNode {
    let op: String
    let inputs: [Tensor]
    let backward: (Tensor) throws -> [Tensor?]

    init(op: String, inputs: [Tensor], backward: @escaping (Tensor) throws -> [Tensor?]) {
        self.op = op
        self.inputs = inputs
        self.backward = backward
    }
}

extension Tensor {
    /// Records how to back-propagate through the op that produced `self`, when the engine is
    /// recording and some input requires gradients. The closure runs with recording off.
    /// - Parameters:
    ///   - inputs: the op's tensor inputs, in the order the closure returns their gradients.
    ///   - backward: maps the gradient of `self` to one gradient per input (same shapes as the inputs).
    public func record(inputs: [Tensor], op: String = #function, backward: @escaping (Tensor) throws -> [Tensor?]) {
        guard engine.isGradEnabled, inputs.contains(where: \.requiresGrad) else { return }
        requiresGrad = true
        node = GradNode(op: op, inputs: inputs, backward: backward)
    }

    /// Keeps this (non-leaf) tensor's gradient in `grad` after `backward()`, like PyTorch's
    /// `retain_grad()`: how attribution methods read gradients of intermediate activations.
    public func retainGrad() { retainsGrad = true }

    /// Forgets the accumulated gradient.
    public func zeroGrad() { grad = nil }

    /// Back-propagates from this tensor.
    /// - Parameters:
    ///   - gradient: the gradient of the final objective with respect to `self`; nil means 1, which
    ///     requires `self` to have one element (a scalar loss).
    ///   - retainGraph: keep the recorded graph so `backward` can run again over it.
    /// - Throws: `TensorError` when `self` does not require gradients or the gradient's shape differs.
    public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false) throws {
        guard requiresGrad else { throw TensorError("backward: tensor \(shape) does not require gradients") }
        let seed: Tensor
        if let gradient {
            guard gradient.shape == shape else {
                throw TensorError.shape("backward", "gradient shape differs from tensor shape", gradient.shape, shape)
            }
            seed = gradient
        } else {
            guard count == 1 else {
                throw TensorError("backward: gradient can be implicit only for a one-element tensor, not \(shape)")
            }
            seed = try Tensor.ones(shape, engine: engine)
        }

        // Topological order of every tensor reachable through recorded nodes.
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (tensor, expanded) = stack.popLast() {
            if expanded { order.append(tensor); continue }
            guard visited.insert(ObjectIdentifier(tensor)).inserted else { continue }
            stack.append((tensor, true))
            for input in tensor.node?.inputs ?? [] where input.requiresGrad && !visited.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }

        try engine.noGrad {
            var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
            for tensor in order.reversed() {
                let id = ObjectIdentifier(tensor)
                guard let g = grads.removeValue(forKey: id) else { continue }
                if tensor.node == nil || tensor.retainsGrad {
                    tensor.grad = try tensor.grad.map { try Tensor.sum($0, g) } ?? g.detached()
                }
                guard let node = tensor.node else { continue }
                let inputGrads = try node.backward(g)
                guard inputGrads.count == node.inputs.count else {
                    throw TensorError("backward: \(node.op) returned \(inputGrads.count) gradients for \(node.inputs.count) inputs")
                }
                for (input, inputGrad) in zip(node.inputs, inputGrads) where input.requiresGrad {
                    guard let inputGrad else { continue }
                    guard inputGrad.shape == input.shape else {
                        throw TensorError.shape("backward (\(node.op))", "gradient shape differs from input shape", inputGrad.shape, input.shape)
                    }
                    let key = ObjectIdentifier(input)
                    grads[key] = try grads[key].map { try Tensor.sum($0, inputGrad) } ?? inputGrad
                }
                if !retainGraph { tensor.node = nil }
            }
        }
    }

    /// `a + b` for tensors of equal shape, without recording (used to accumulate gradients).
    static func sum(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        guard a.shape == b.shape else { throw TensorError.shape("accumulate", "shapes differ", a.shape, b.shape) }
        let out = try Tensor.empty(a.shape, engine: a.engine)
        let n = a.count
        try out.storage.copy(from: a.storage, count: n)
        try a.engine.launch("elementwise.cl", "axpy_f32", global: [ElementwiseFamily.vectorItems(a.engine, n)], [Float(1), b.storage, out.storage, Int32(n)])
        return out
    }
}
