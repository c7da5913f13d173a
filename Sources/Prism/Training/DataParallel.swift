import Foundation

/// Data-parallel training over several devices of one machine: every device holds a copy of the
/// model and its optimizer, each step's batch is cut into contiguous slices (sizes differing by at
/// most one), each device runs the forward and backward of its slice at the same time as the others
/// with its loss's gradient scaled by slice / batch, the gradients are summed on the host in device
/// order and written to every copy, and every copy takes the same optimizer step — so the copies
/// stay equal, and equal to one-device training at the same batch up to the order of summation.
/// The processes of an MPI job split the batch the same way (`join(_:)`), one device each, their
/// gradients summed in one all-reduce per step.
///
/// Dropout layers draw the whole batch's masks: each copy's layers are told where its slice starts
/// in the batch (`Dropout.exampleOffset`), and the mask of an element depends only on its position
/// in the whole batch. BatchNorm in training would normalize each slice by its own statistics (they
/// are not synchronized across devices or processes): models with BatchNorm are refused.
extension Trainer {
    /// Adds a copy of the model (its weights, optimizer state and dropout calls) on each of `engines`.
    /// - Throws: `TrainingError` for a model with BatchNorm layers; device errors.
    public func replicate(on engines: [Engine]) throws {
        try checkSplittable(across: "devices", alone: "on one device")
        guard processGroup == nil else { throw TrainingError("training: a process of several uses one device; start one process per device") }
        let state = try model.stateDict(), optimizerState = try optimizer.state()
        let dropoutCalls = model.ops.compactMap { ($0 as? Dropout)?.calls }
        for engine in engines {
            let copy = try Model(spec: model.spec, seed: config.seed, engine: engine)
            try copy.loadStateDict(state, source: "the model on the first device")
            let copyOptimizer = try Trainer(model: copy, config: config).optimizer
            try copyOptimizer.load(state: optimizerState)
            for (layer, calls) in zip(copy.ops.compactMap { $0 as? Dropout }, dropoutCalls) { layer.calls = calls }
            replicas.append((copy, copyOptimizer))
            examplesPerDevice.append(0)
        }
    }

    /// Trains with the processes of `group` (the ranks of an MPI job): every step, this process takes
    /// slice `group.rank` of the batch (contiguous slices whose sizes differ by at most one), and the
    /// gradients are summed over every process in one call before the optimizer step. Every process
    /// must start from the same weights and take the same batches (same seed and data).
    /// - Throws: `TrainingError` for a model with BatchNorm layers, or a trainer with replicas.
    public func join(_ group: ProcessGroup) throws {
        try checkSplittable(across: "processes", alone: "in one process")
        guard replicas.isEmpty else { throw TrainingError("training: a process of several uses one device; start one process per device") }
        processGroup = group
        examplesPerRank = Array(repeating: 0, count: group.size)
    }

    /// Refuses the layers a batch cut into slices would compute differently (see the type's note).
    private func checkSplittable(across what: String, alone: String) throws {
        if let norm = model.ops.first(where: { $0 is BatchNormLayer }) {
            throw TrainingError("training: data-parallel training on several \(what) does not synchronize BatchNorm statistics across them, and \(type(of: norm)) would normalize each slice of the batch alone; train this model \(alone)")
        }
    }

    /// The forward and backward of `slice` of a batch of `n` examples (starting `offset` examples into
    /// it) on one copy, its loss's gradient scaled by slice / batch: (summed loss over the slice,
    /// correct predictions). The copy's Dropout layers draw the batch's masks of the slice's examples.
    private func sliceForwardBackward(_ copy: Model, _ copyOptimizer: Optimizer, _ slice: ArraySlice<Int>, offset: Int, batch n: Int,
                                      train: LabeledData) throws -> (loss: Double, correct: Int) {
        copyOptimizer.zeroGrad()
        let dropouts = copy.ops.compactMap { $0 as? Dropout }
        // An empty slice still counts the layers' calls, as the other copies' forward passes do.
        guard !slice.isEmpty else {
            for layer in dropouts where layer.probability > 0 { layer.calls += 1 }
            return (0, 0)
        }
        for layer in dropouts { layer.exampleOffset = offset }
        defer { for layer in dropouts { layer.exampleOffset = 0 } }
        let engine = copy.engine
        var features: [Float] = [], labels: [Int32] = [], targets: [Float] = []
        train.gather(slice, into: &features, labels: &labels)
        let x = try Tensor(features, shape: [slice.count] + train.exampleShape, engine: engine)
        let logits = try copy(x, training: true)
        let loss: Tensor
        let regression = copy.spec.isRegression
        if regression {
            train.gatherTargets(slice, into: &targets)
            loss = try mseLoss(logits, try Tensor(targets, shape: [slice.count, train.targetWidth], engine: engine))
        } else {
            loss = try crossEntropy(logits, labels: labels)
        }
        // The slice's mean loss weighs slice / batch of the batch's mean.
        try loss.backward(try Tensor.full(loss.shape, Float(slice.count) / Float(n), engine: engine))
        return (Double(try loss.item()) * Double(slice.count), regression ? 0 : try countCorrect(logits, labels))
    }

    /// One step of this process's slice of `indices`, the gradients (with the slice's loss sum and
    /// correct count) summed over the process group in one call: (mean loss, rows, correct predictions).
    private func processGroupStep(_ indices: ArraySlice<Int>, train: LabeledData, group: ProcessGroup) throws -> (loss: Double, rows: Int, correct: Int) {
        let k = group.size, n = indices.count, first = indices.startIndex
        let bounds = (0...k).map { first + $0 * n / k }
        let local = try sliceForwardBackward(model, optimizer, indices[bounds[group.rank]..<bounds[group.rank + 1]], offset: bounds[group.rank] - first,
                                             batch: n, train: train)
        // One buffer: every parameter's gradient (zeros where it has none), then per parameter whether
        // this process has one, then the slice's loss sum and correct count.
        let parameters = model.parameters
        let sizes = parameters.map { $0.shape.reduce(1, *) }
        let total = sizes.reduce(0, +)
        var buffer: [Float] = []
        buffer.reserveCapacity(total + parameters.count + 2)
        for (p, size) in zip(parameters, sizes) {
            if let g = p.grad { buffer += try g.toArray() } else { buffer += [Float](repeating: 0, count: size) }
        }
        buffer += parameters.map { $0.grad == nil ? 0 : 1 }
        buffer += [Float(local.loss), Float(local.correct)]
        let start = DispatchTime.now().uptimeNanoseconds
        try group.sumAll(&buffer)
        allreduceSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        allreduceBytes += 4 * buffer.count
        var offset = 0
        for (i, (p, size)) in zip(parameters, sizes).enumerated() {
            if buffer[total + i] > 0 {
                p.grad = try Tensor(Array(buffer[offset..<(offset + size)]), shape: p.shape, engine: p.engine)
            }
            offset += size
        }
        if let maxGradNorm = config.maxGradNorm { try clipGradNorm(parameters, maxNorm: maxGradNorm) }
        try optimizer.step()
        try model.applyMasks()
        for j in 0..<k { examplesPerRank[j] += bounds[j + 1] - bounds[j] }
        return (Double(buffer[total + parameters.count]) / Double(n), n, Int(buffer[total + parameters.count + 1].rounded()))
    }

    /// One step over the examples `indices` on every device: (mean loss, rows, correct predictions).
    func dataParallelStep(_ indices: ArraySlice<Int>, train: LabeledData) throws -> (loss: Double, rows: Int, correct: Int) {
        if let group = processGroup { return try processGroupStep(indices, train: train, group: group) }
        let members = [(model, optimizer)] + replicas.map { ($0.model, $0.optimizer) }
        let k = members.count, n = indices.count, first = indices.startIndex
        let bounds = (0...k).map { first + $0 * n / k }
        let sums = try onEveryDevice(k) { j -> (loss: Double, correct: Int) in
            try sliceForwardBackward(members[j].0, members[j].1, indices[bounds[j]..<bounds[j + 1]], offset: bounds[j] - first, batch: n, train: train)
        }
        // Sum every parameter's gradient over the devices, in device order, and give it to every copy.
        let parameters = members.map { $0.0.parameters }
        for p in parameters[0].indices {
            var total: [Float]?
            for j in 0..<k {
                guard let g = parameters[j][p].grad else { continue }
                let values = try g.toArray()
                if var sum = total {
                    for i in sum.indices { sum[i] += values[i] }
                    total = sum
                } else {
                    total = values
                }
            }
            guard let total else { continue }
            for j in 0..<k {
                let parameter = parameters[j][p]
                parameter.grad = try Tensor(total, shape: parameter.shape, engine: parameter.engine)
            }
        }
        _ = try onEveryDevice(k) { j in
            if let maxGradNorm = config.maxGradNorm { try clipGradNorm(members[j].0.parameters, maxNorm: maxGradNorm) }
            try members[j].1.step()
            try members[j].0.applyMasks()
        }
        for j in 0..<k { examplesPerDevice[j] += bounds[j + 1] - bounds[j] }
        return (sums.reduce(0) { $0 + $1.loss } / Double(n), n, sums.reduce(0) { $0 + $1.correct })
    }
}

/// Runs `body(0)…body(count − 1)` at the same time, one thread each (each on its own device), and
/// returns their results in order, or rethrows the first device's error. Each call must touch only
/// its own device's objects.
public func onEveryDevice<T>(_ count: Int, _ body: (Int) throws -> T) throws -> [T] {
    let results = withoutActuallyEscaping(body) { escaping -> [Result<T, Error>?] in
        let shared = PerDeviceResults(escaping, count: count)
        DispatchQueue.concurrentPerform(iterations: count) { j in
            let result = Result { try shared.body(j) }
            shared.lock.lock()
            shared.results[j] = result
            shared.lock.unlock()
        }
        return shared.results
    }
    return try results.map { try $0!.get() }
}

/// The closure and result slots `onEveryDevice` shares with its threads (results under the lock).
private final class PerDeviceResults<T>: @unchecked Sendable {
    let body: (Int) throws -> T
    let lock = NSLock()
    var results: [Result<T, Error>?]
    init(_ body: @escaping (Int) throws -> T, count: Int) { (self.body, self.results) = (body, Array(repeating: nil, count: count)) }
}
