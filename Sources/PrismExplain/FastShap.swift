import Foundation
import Prism
import PrismCL

/// FastSHAP (Jethani, Sudarshan, Covert, Lee & Ranganath, "FastSHAP: Real-Time Shapley Value
/// Estimation", ICLR 2022): an explainer network φ_θ(x) ∈ ℝ^{d×C} trained so that, for coalitions S
/// drawn from the Shapley kernel distribution p(S) ∝ (d − 1) / (C(d, |S|)·|S|·(d − |S|)),
///
///     L(θ) = E_x E_{S∼p} Σ_c ( v_x(S)_c − v_x(∅)_c − 1_Sᵀ φ̃_θ(x)_c )²          (Eq. 4, 6)
///
/// with the additive efficiency normalization φ̃ = φ + (v_x(1) − v_x(∅) − 1ᵀφ) / d (Eq. 8), so the
/// values always add up to f(x) − E f(background). The game v_x is **Kernel SHAP's**: hidden features
/// take the background rows' values and the outputs are averaged over the rows (`DeviceGame`), so
/// the explainer's error against Kernel SHAP is its own, not a surrogate's. Coalitions are drawn
/// in complementary pairs (the paper's paired sampling); each training image's coalitions and
/// their values are computed once on the device and reused every epoch — or, with
/// `Settings.backgroundPerCoalition` K, drawn afresh for every batch of every epoch, each coalition's
/// value from K background rows drawn for it (an unbiased estimate of the same v_x(S): the stochastic
/// game of Covert & Lee, AISTATS 2021, §5), so one epoch costs K model rows per coalition instead of
/// the background's N, and the explainer sees new coalitions every epoch, as in the paper. A coalition
/// and its complement share their K rows, and each row's value carries control variates of mean zero
/// over the rows (`FastShapControl`: the row's endpoints, and a linear model of the network fitted
/// once before training) that remove most of the rows' spread without changing what the targets
/// estimate.
public enum FastShap {
    /// How the explainer is trained.
    public struct Settings: Sendable, Equatable {
        /// Coalitions per image (an even number: pairs S and its complement).
        public var coalitionsPerImage: Int
        public var epochs: Int
        public var batchSize: Int
        public var learningRate: Float
        public var seed: UInt64
        /// Images sharing one device game (their coalitions shared too).
        public var imagesPerGame: Int
        /// nil: every coalition's value averages the whole background, computed once before training.
        /// K: fresh coalitions for every batch, each valued by K background rows drawn uniformly for it.
        public var backgroundPerCoalition: Int?
        /// With `backgroundPerCoalition`: masked inputs the linear control variate is fitted to (0: the
        /// endpoints' control variate alone). Inputs of more than 2,048 elements go without it.
        public var linearControlRows: Int

        public init(coalitionsPerImage: Int = 32, epochs: Int = 20, batchSize: Int = 64, learningRate: Float = 1e-3, seed: UInt64 = 0,
                    imagesPerGame: Int = 8, backgroundPerCoalition: Int? = nil, linearControlRows: Int = 16_384) {
            (self.coalitionsPerImage, self.epochs, self.batchSize, self.learningRate, self.seed, self.imagesPerGame) =
                (coalitionsPerImage, epochs, batchSize, learningRate, seed, imagesPerGame)
            (self.backgroundPerCoalition, self.linearControlRows) = (backgroundPerCoalition, linearControlRows)
        }
    }

    /// Inputs of more elements than this train without the linear control variate (its normal
    /// equations are d × d).
    public static let largestLinearControlInput = 2048

    /// The game values of one image: v(∅), v(1) and those of its coalitions.
    struct Targets {
        /// [coalitions × features] 0/1.
        var masks: [UInt8]
        /// [coalitions × classes] v(S) − v(∅).
        var gains: [Float]
        /// [classes] v(1) − v(∅).
        var total: [Float]
    }

    /// What training measured.
    public struct Report: Sendable {
        /// The loss (mean over images, coalitions and classes) after each epoch.
        public var losses: [Double]
        /// Model rows evaluated to compute the game values.
        public var modelEvaluations: Int
        public var seconds: Double
        /// The linear control variate: masked inputs it was fitted to and its R² on them (nil: not used).
        public var linearControlRows: Int?
        public var linearControlRSquared: Double?
    }

    /// Coalitions from the Shapley kernel distribution, in complementary pairs: [count × m] 0/1.
    static func sampleCoalitions(features m: Int, count: Int, rng: inout SplitMix64) -> [UInt8] {
        // p(k) ∝ (m − 1) / (k (m − k)) for 0 < k < m, then a uniform subset of size k.
        let sizes = Array(1..<m)
        let weights = sizes.map { 1.0 / Double($0 * (m - $0)) }
        let total = weights.reduce(0, +)
        var masks: [UInt8] = []
        masks.reserveCapacity(count * m)
        var made = 0
        while made < count {
            var u = Double(rng.next() >> 11) * 0x1p-53 * total, k = sizes.last!
            for (s, w) in zip(sizes, weights) {
                if u < w { k = s; break }
                u -= w
            }
            var order = Array(0..<m)
            for i in 0..<k { order.swapAt(i, i + Int(rng.next() % UInt64(m - i))) }
            var mask = [UInt8](repeating: 0, count: m)
            for i in order[0..<k] { mask[i] = 1 }
            masks += mask
            made += 1
            if made < count {
                masks += mask.map { 1 - $0 }
                made += 1
            }
        }
        return masks
    }

    /// The game values of `images` (count × the model's input) for freshly sampled coalitions.
    static func targets(model: Model, images: [Float], background: [Float], groups: FeatureGroups, settings: Settings,
                        rng: inout SplitMix64, rowsPerChunk: Int?, evaluations: inout Int,
                        progress: (Int, Int) -> Void = { _, _ in }) throws -> [Targets] {
        let d = model.spec.inputShape.reduce(1, *), count = images.count / d, m = groups.featureCount, c = model.spec.classCount
        let k = settings.coalitionsPerImage
        var result: [Targets] = []
        var first = 0
        while first < count {
            let n = min(settings.imagesPerGame, count - first)
            let game = try DeviceGame(model: model, instances: Array(images[(first * d)..<((first + n) * d)]), background: background,
                                      groups: groups, rowsPerChunk: rowsPerChunk)
            let masks = sampleCoalitions(features: m, count: k, rng: &rng)
            let all = [UInt8](repeating: 0, count: m) + [UInt8](repeating: 1, count: m) + masks
            let v = try game.values(coalitions: all, count: k + 2)   // [coalition][instance][class]
            evaluations += game.modelEvaluations
            for i in 0..<n {
                func value(_ s: Int, _ o: Int) -> Double { v[(s * n + i) * c + o] }
                let empty = (0..<c).map { value(0, $0) }
                let gains = (0..<k).flatMap { s in (0..<c).map { Float(value(s + 2, $0) - empty[$0]) } }
                result.append(Targets(masks: masks, gains: gains, total: (0..<c).map { Float(value(1, $0) - empty[$0]) }))
            }
            first += n
            progress(first, count)
        }
        return result
    }

    /// The exact endpoints of every image's game: v(∅) = Σ_b f(b) / N (the same for all), the rows'
    /// outputs f(b) [rows × classes] and the totals v(1) − v(∅) = f(x) − v(∅) [images × classes], the
    /// model run in chunks of `chunk` rows.
    static func endpoints(model: Model, images: [Float], background: [Float], chunk: Int) throws -> (base: [Double], rows: [Float], totals: [Float]) {
        let d = model.spec.inputShape.reduce(1, *), c = model.spec.classCount
        let fb = try outputs(model: model, rows: background, chunk: chunk), n = background.count / d
        let base = (0..<c).map { o in (0..<n).reduce(0.0) { $0 + Double(fb[$1 * c + o]) } / Double(n) }
        let fx = try outputs(model: model, rows: images, chunk: chunk)
        return (base, fb, fx.indices.map { Float(Double(fx[$0]) - base[$0 % c]) })
    }

    /// The model's outputs of `rows` (whole inputs), run in chunks of `chunk` rows: [rows × classes].
    static func outputs(model: Model, rows x: [Float], chunk: Int) throws -> [Float] {
        let engine = model.engine, shape = model.spec.inputShape, d = shape.reduce(1, *)
        var out: [Float] = []
        let rows = x.count / d
        for first in stride(from: 0, to: rows, by: chunk) {
            let n = min(chunk, rows - first)
            out += try model(try Tensor(Array(x[(first * d)..<((first + n) * d)]), shape: [n] + shape, engine: engine)).toArray()
        }
        return out
    }

    /// Fresh game values for the images `batch` (indices into `images`): `settings.coalitionsPerImage`
    /// coalitions each, drawn per image, each pair (S and its complement) valued by the same
    /// `perCoalition` background rows drawn uniformly, each row's value corrected by `control`.
    static func sampledTargets(model: Model, images: [Float], batch: [Int], background: [Float], groups: FeatureGroups,
                               control: FastShapControl, totals: [Float], perCoalition: Int, settings: Settings,
                               rowsPerChunk: Int?, rng: inout SplitMix64, evaluations: inout Int) throws -> [Targets] {
        let d = model.spec.inputShape.reduce(1, *), m = groups.featureCount, c = model.spec.classCount
        let k = settings.coalitionsPerImage, n = background.count / d
        let game = try DeviceGame(model: model, instances: batch.flatMap { images[($0 * d)..<(($0 + 1) * d)] }, background: background,
                                  groups: groups, rowsPerChunk: rowsPerChunk ?? 4096)
        var perImage: [[UInt8]] = [], masks: [UInt8] = [], which: [Int32] = [], rows: [Int32] = []
        for r in batch.indices {
            let drawn = sampleCoalitions(features: m, count: k, rng: &rng)
            perImage.append(drawn)
            var pairRows: [Int32] = []
            for s in 0..<k {
                // A pair's second coalition reuses the first's rows.
                if s % 2 == 0 { pairRows = (0..<perCoalition).map { _ in Int32(rng.next() % UInt64(n)) } }
                for j in 0..<perCoalition {
                    masks += drawn[(s * m)..<((s + 1) * m)]
                    which.append(Int32(r))
                    rows.append(pairRows[j])
                }
            }
        }
        let v = try game.sampledValues(coalitions: masks, instances: which, backgroundRows: rows)
        evaluations += game.modelEvaluations
        return batch.enumerated().map { r, index in
            var gains = [Float](repeating: 0, count: k * c)
            for s in 0..<k {
                let mask = perImage[r][(s * m)..<((s + 1) * m)], size = mask.reduce(0) { $0 + Int($1) }
                for o in 0..<c {
                    var sum = 0.0
                    for j in 0..<perCoalition {
                        let at = (r * k + s) * perCoalition + j, row = Int(rows[at])
                        sum += v[at * c + o] - control.base[o] + control.correction(row: row, mask: mask, inCoalition: size, output: o)
                    }
                    gains[s * c + o] = Float(sum / Double(perCoalition))
                }
            }
            return Targets(masks: perImage[r], gains: gains, total: Array(totals[(index * c)..<((index + 1) * c)]))
        }
    }

    /// φ̃ from the explainer's raw output φ [rows × m × C] and the totals v(1) − v(∅) [rows × C]: the
    /// additive efficiency normalization, on the host.
    static func normalized(_ phi: [Float], totals: [Float], rows: Int, features m: Int, classes c: Int) -> [Float] {
        var out = phi
        for r in 0..<rows {
            for o in 0..<c {
                var sum: Float = 0
                for j in 0..<m { sum += phi[(r * m + j) * c + o] }
                let shift = (totals[r * c + o] - sum) / Float(m)
                for j in 0..<m { out[(r * m + j) * c + o] += shift }
            }
        }
        return out
    }

    /// Trains `explainer` (inputs of the model's shape, `groups.featureCount × classCount` outputs,
    /// read as [feature][class]) on `images` with Adam.
    /// - Parameters:
    ///   - valuesProgress: called as the game values are computed (images done, images).
    ///   - progress: called after each epoch (epoch, loss).
    /// - Throws: `ExplainError` when the explainer's shapes do not fit; device errors.
    public static func train(model: Model, explainer: Model, images: [Float], background: [Float], groups: FeatureGroups,
                             settings: Settings, rowsPerChunk: Int? = nil, valuesProgress: (Int, Int) -> Void = { _, _ in },
                             progress: (Int, Double) -> Void = { _, _ in }) throws -> Report {
        let start = DispatchTime.now()
        let d = model.spec.inputShape.reduce(1, *), m = groups.featureCount, c = model.spec.classCount
        guard explainer.spec.inputShape == model.spec.inputShape, explainer.spec.classCount == m * c else {
            throw ExplainError("fastshap: the explainer maps \(explainer.spec.inputShape) to \(explainer.spec.classCount) values; it needs the model's input \(model.spec.inputShape) to \(m) features × \(c) classes = \(m * c)")
        }
        guard d > 0, !images.isEmpty, images.count % d == 0 else { throw ExplainError("fastshap: \(images.count) values are not whole images of \(model.spec.inputShape)") }
        guard settings.coalitionsPerImage >= 2, settings.epochs >= 1, settings.batchSize >= 1 else {
            throw ExplainError("fastshap: coalitions per image (≥ 2), epochs and batch size (≥ 1) must be positive")
        }
        if let k = settings.backgroundPerCoalition, k < 1 { throw ExplainError("fastshap: background rows per coalition must be at least 1, got \(k)") }
        if settings.backgroundPerCoalition != nil, groups.elementFeature.contains(-1) {
            throw ExplainError("fastshap: fresh coalitions take a row's empty coalition to be the row itself, so every input element must belong to a feature; these groups leave \(groups.elementFeature.filter { $0 < 0 }.count) elements to the instance")
        }
        guard settings.linearControlRows >= 0 else { throw ExplainError("fastshap: the linear control variate's rows must be 0 (none) or more, got \(settings.linearControlRows)") }
        let count = images.count / d
        var rng = SplitMix64(seed: settings.seed ^ 0xFA57_5BA9)
        var evaluations = 0
        var cached: [Targets] = [], totals: [Float] = [], control: FastShapControl?, linear: FastShapControl.LinearFit?
        if settings.backgroundPerCoalition == nil {
            cached = try model.engine.noGrad {
                try Self.targets(model: model, images: images, background: background, groups: groups, settings: settings, rng: &rng,
                                 rowsPerChunk: rowsPerChunk, evaluations: &evaluations, progress: valuesProgress)
            }
        } else {
            let (base, rowOutputs, exact) = try model.engine.noGrad { try endpoints(model: model, images: images, background: background, chunk: 1024) }
            totals = exact
            evaluations += count + background.count / d
            if settings.linearControlRows > 0, d <= largestLinearControlInput {
                var fitRng = SplitMix64(seed: settings.seed ^ 0x11EA_C0DE)
                linear = try model.engine.noGrad {
                    try FastShapControl.fitLinear(model: model, images: images, background: background, groups: groups,
                                                  rows: settings.linearControlRows, rng: &fitRng)
                }
                evaluations += settings.linearControlRows
            }
            control = FastShapControl(base: base, rowOutputs: rowOutputs, delta: linear?.delta, deltaTotal: linear?.deltaTotal,
                                      features: m, classes: c)
        }
        let engine = explainer.engine, k = settings.coalitionsPerImage
        let optimizer = try Adam(explainer.parameters, lr: settings.learningRate)
        var losses: [Double] = []
        var order = Array(0..<count)
        let stepsPerEpoch = (count + settings.batchSize - 1) / settings.batchSize, steps = settings.epochs * stepsPerEpoch
        for epoch in 0..<settings.epochs {
            for i in stride(from: count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            var total = 0.0
            for first in stride(from: 0, to: count, by: settings.batchSize) {
                let batch = Array(order[first..<min(first + settings.batchSize, count)]), rows = batch.count
                let targets: [Targets]
                if let perCoalition = settings.backgroundPerCoalition, let control {
                    // Noisy targets: the learning rate decays along a cosine to 0 over all steps, so the
                    // last steps average the single rows' noise out instead of following it.
                    let step = epoch * stepsPerEpoch + first / settings.batchSize
                    optimizer.lr = settings.learningRate * Float(0.5 * (1 + cos(Double.pi * Double(step) / Double(steps))))
                    targets = try model.engine.noGrad {
                        try sampledTargets(model: model, images: images, batch: batch, background: background, groups: groups,
                                           control: control, totals: totals, perCoalition: perCoalition, settings: settings,
                                           rowsPerChunk: rowsPerChunk, rng: &rng, evaluations: &evaluations)
                    }
                } else {
                    targets = batch.map { cached[$0] }
                }
                let x = try Tensor(batch.flatMap { images[($0 * d)..<(($0 + 1) * d)] }, shape: [rows] + model.spec.inputShape, engine: engine)
                optimizer.zeroGrad()
                let phi = try explainer(x, training: true)
                let raw = try phi.toArray()
                let tilde = normalized(raw, totals: targets.flatMap(\.total), rows: rows, features: m, classes: c)
                // Residuals e = v(S) − v(∅) − 1_Sᵀφ̃; ∂L/∂φ̃ = −2/(K·rows·C) Σ_S e·1_S, then through the
                // normalization (φ̃ = φ + (t − 1ᵀφ)/m): ∂L/∂φ_j = g_j − mean_j g.
                var grad = [Float](repeating: 0, count: raw.count)
                let scale = 2 / Float(k * rows * c)
                for r in batch.indices {
                    let t = targets[r]
                    for s in 0..<k {
                        for o in 0..<c {
                            var predicted: Float = 0
                            for j in 0..<m where t.masks[s * m + j] != 0 { predicted += tilde[(r * m + j) * c + o] }
                            let e = t.gains[s * c + o] - predicted
                            total += Double(e * e)
                            for j in 0..<m where t.masks[s * m + j] != 0 { grad[(r * m + j) * c + o] -= scale * e }
                        }
                    }
                    for o in 0..<c {
                        var mean: Float = 0
                        for j in 0..<m { mean += grad[(r * m + j) * c + o] }
                        mean /= Float(m)
                        for j in 0..<m { grad[(r * m + j) * c + o] -= mean }
                    }
                }
                try phi.backward(try Tensor(grad, shape: phi.shape, engine: engine))
                try optimizer.step()
            }
            let loss = total / Double(count * k * c)
            losses.append(loss)
            progress(epoch + 1, loss)
        }
        return Report(losses: losses, modelEvaluations: evaluations, seconds: AttributionSetup.seconds(since: start),
                      linearControlRows: linear == nil ? nil : settings.linearControlRows, linearControlRSquared: linear?.rSquared)
    }

    /// Explains `instances` with a trained explainer in one forward pass: φ̃ [instances][features][classes]
    /// (every class), base values E f(background) and outputs f(x), so Σφ = f(x) − E f(background).
    public static func explain(model: Model, explainer: Model, instances: [Float], background: [Float], features m: Int) throws -> Explanation {
        let start = DispatchTime.now()
        let engine = model.engine, shape = model.spec.inputShape, d = shape.reduce(1, *), c = model.spec.classCount
        guard explainer.spec.classCount == m * c, explainer.spec.inputShape == shape else {
            throw ExplainError("fastshap: the explainer gives \(explainer.spec.classCount) values; the model's \(m) features × \(c) classes need \(m * c)")
        }
        guard d > 0, !instances.isEmpty, instances.count % d == 0, !background.isEmpty, background.count % d == 0 else {
            throw ExplainError("fastshap: instances or background are not whole inputs of \(shape)")
        }
        let n = instances.count / d, b = background.count / d
        let (phi, fx, fb) = try engine.noGrad {
            let x = try Tensor(instances, shape: [n] + shape, engine: engine)
            return (try explainer(x).toArray(), try model(x).toArray(), try model(try Tensor(background, shape: [b] + shape, engine: engine)).toArray())
        }
        let base = (0..<c).map { o in (0..<b).reduce(0.0) { $0 + Double(fb[$1 * c + o]) } / Double(b) }
        let totals = (0..<n).flatMap { i in (0..<c).map { o in Float(Double(fx[i * c + o]) - base[o]) } }
        let values = normalized(phi, totals: totals, rows: n, features: m, classes: c).map(Double.init)
        return try Explanation(method: "fastshap", instanceCount: n, featureCount: m, outputCount: c, values: values,
                               baseValues: (0..<n).flatMap { _ in base }, outputs: fx.map(Double.init), modelEvaluations: n * 2 + b,
                               seconds: AttributionSetup.seconds(since: start), settings: ["background_rows": .int(b)])
    }
}

extension FastShap {
    /// An explainer made of the explained model itself: its graph with the output Linear widened from
    /// the model's outputs C to features × C, every other parameter started from the model's trained
    /// weights (the output layer's from `seed`), so the explainer begins with the features the model
    /// computes and has its global view of the input (the paper starts its image explainers from a
    /// pretrained network the same way).
    /// - Throws: `ExplainError` when the model's output node is not a Linear layer of C outputs.
    public static func explainer(from model: Model, features m: Int, seed: UInt64) throws -> Model {
        var spec = model.spec
        let c = spec.classCount
        let outputName = spec.output ?? spec.nodes.last?.name
        guard let index = spec.nodes.firstIndex(where: { $0.name == outputName }), spec.nodes[index].op == "linear",
              spec.nodes[index].attributes["out_features"] == .int(c) else {
            throw ExplainError("fastshap: an explainer from the model needs its output to be a Linear layer of its \(c) outputs; '\(outputName ?? "none")' is \(spec.nodes.first { $0.name == outputName }.map { "a '\($0.op)' node" } ?? "missing") (use the perceptron explainer)")
        }
        spec.nodes[index].attributes["out_features"] = .int(m * c)
        spec.classCount = m * c
        spec.task = nil
        let explainer = try Model(spec: spec, seed: seed, engine: model.engine)
        let prefix = spec.nodes[index].name + "."
        var start = try explainer.stateDict()
        for (name, tensor) in try model.stateDict() where !name.hasPrefix(prefix) { start[name] = tensor }
        try explainer.loadStateDict(start, source: "the explained model")
        return explainer
    }
}

/// FastSHAP's coalition sampler, for tests and tools.
public enum FastShapSampling {
    /// `count` coalitions of `features` players in complementary pairs (see `FastShap`), [count × features] 0/1.
    public static func coalitions(features: Int, count: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        return FastShap.sampleCoalitions(features: features, count: count, rng: &rng)
    }
}
