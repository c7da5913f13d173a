import Foundation
import Prism
import PrismCL

/// Principal components of a layer's activations over a data set (the embedding view): the
/// activations are centered on the device, their covariance Aᵀ·A / (N − 1) is one GEMM there, its
/// eigenvectors come from a cyclic Jacobi eigensolver on the host (in Double), and the projections
/// of every example onto the leading components are another GEMM. Components are unit rows, signed
/// so that each one's largest-magnitude entry is positive (an SVD's signs are arbitrary).
public struct ActivationPCA: Sendable {
    /// The activations' mean [D].
    public var mean: [Float]
    /// The leading components, [k][D] row-major, by decreasing variance.
    public var components: [Float]
    /// Their variances (eigenvalues of the covariance).
    public var explainedVariance: [Double]
    /// Their share of the total variance (every component's, not only the leading k).
    public var explainedVarianceRatio: [Double]
    /// Every example projected onto the leading components, [N][k].
    public var projections: [Float]
    public var featureCount: Int
    public var componentCount: Int { explainedVariance.count }

    /// The most features (the layer's width) the eigensolver takes: its work grows as D³.
    public static let maxFeatures = 1024

    /// PCA of `activations` [N, D] with N ≥ 2, keeping `components` of them.
    /// - Throws: `ExplainError` for fewer than two rows, more than `maxFeatures` features or a
    ///   component count outside 1…D; `TensorError`/`CLError` from the device.
    public static func fit(_ activations: Tensor, components k: Int) throws -> ActivationPCA {
        guard activations.rank == 2 else { throw ExplainError("pca: activations must be [examples, features], got \(activations.shape)") }
        let (n, d) = (activations.shape[0], activations.shape[1])
        guard n >= 2 else { throw ExplainError("pca: needs at least 2 examples, got \(n)") }
        guard d <= maxFeatures else {
            throw ExplainError("pca: the layer has \(d) features per example, more than the \(maxFeatures) the eigensolver takes (its covariance has D² entries); choose a narrower layer")
        }
        guard (1...d).contains(k) else { throw ExplainError("pca: \(k) components of \(d) features (choose 1…\(d))") }
        let engine = activations.engine
        let (mean, covariance, centered): ([Float], [Float], Tensor) = try engine.noGrad {
            let mean = try activations.sum(axis: 0).scaled(by: 1 / Float(n))
            let centered = try activations - mean
            let covariance = try matmul(centered, centered, transposeA: true).scaled(by: 1 / Float(n - 1))
            return (try mean.toArray(), try covariance.toArray(), centered)
        }
        let (values, vectors) = try symmetricEigen(covariance.map(Double.init), size: d)
        // Eigenvalues descending; each vector signed by its largest-magnitude entry.
        let order = (0..<d).sorted { values[$0] > values[$1] }
        var components = [Float]()
        components.reserveCapacity(k * d)
        for j in order.prefix(k) {
            var column = (0..<d).map { vectors[$0 * d + j] }
            if let peak = column.indices.max(by: { abs(column[$0]) < abs(column[$1]) }), column[peak] < 0 { column = column.map { -$0 } }
            components += column.map { Float($0) }
        }
        let total = values.reduce(0) { $0 + Swift.max(0, $1) }
        let variances = order.prefix(k).map { Swift.max(0, values[$0]) }
        let projections = try engine.noGrad {
            try matmul(centered, try Tensor(components, shape: [k, d], engine: engine), transposeB: true).toArray()
        }
        return ActivationPCA(mean: mean, components: components, explainedVariance: variances,
                             explainedVarianceRatio: variances.map { total > 0 ? $0 / total : 0 }, projections: projections, featureCount: d)
    }

    /// The eigenvalues and eigenvectors (columns of a row-major [size, size] matrix) of the symmetric
    /// matrix `a`, by cyclic Jacobi rotations until the off-diagonal norm is below 10⁻¹⁴ of the whole
    /// (Golub & Van Loan, Algorithm 8.5.3; Rutishauser's rotation formulas).
    /// - Throws: `ExplainError` when 100 sweeps do not converge (a matrix with NaN or infinities).
    static func symmetricEigen(_ matrix: [Double], size d: Int) throws -> (values: [Double], vectors: [Double]) {
        var a = matrix
        var v = [Double](repeating: 0, count: d * d)
        for i in 0..<d { v[i * d + i] = 1 }
        let norm = a.reduce(0) { $0 + $1 * $1 }
        guard norm.isFinite else { throw ExplainError("pca: the covariance has non-finite entries (the activations hold NaN or infinities)") }
        for _ in 0..<100 {
            var off = 0.0
            for p in 0..<d { for q in (p + 1)..<d { off += 2 * a[p * d + q] * a[p * d + q] } }
            if off <= 1e-28 * norm || off == 0 { return ((0..<d).map { a[$0 * d + $0] }, v) }
            for p in 0..<(d - 1) {
                for q in (p + 1)..<d {
                    let apq = a[p * d + q]
                    if abs(apq) < 1e-300 { continue }
                    let theta = (a[q * d + q] - a[p * d + p]) / (2 * apq)
                    let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    // A ← Jᵀ A J over rows and columns p, q; V ← V J.
                    for k in 0..<d {
                        let akp = a[k * d + p], akq = a[k * d + q]
                        a[k * d + p] = c * akp - s * akq
                        a[k * d + q] = s * akp + c * akq
                    }
                    for k in 0..<d {
                        let apk = a[p * d + k], aqk = a[q * d + k]
                        a[p * d + k] = c * apk - s * aqk
                        a[q * d + k] = s * apk + c * aqk
                    }
                    for k in 0..<d {
                        let vkp = v[k * d + p], vkq = v[k * d + q]
                        v[k * d + p] = c * vkp - s * vkq
                        v[k * d + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        throw ExplainError("pca: the eigensolver did not converge in 100 sweeps")
    }

    /// The node whose output the embedding view takes by default: the input of the model's last
    /// Linear node (the penultimate representation), as a name for `Model.forward(_:capture:)`.
    /// - Throws: `ExplainError` when the model has no Linear node or its input is the model's input.
    public static func defaultLayer(of model: Model) throws -> String {
        guard let last = model.ops.lastIndex(where: { $0 is Linear }) else {
            throw ExplainError("pca: the model has no Linear node; name a layer with --layer")
        }
        let input = model.graph.nodes[last].inputs[0]
        guard input > 0 else { throw ExplainError("pca: the model's last Linear node reads the input itself; name a layer with --layer") }
        return model.activationName(input - 1)
    }

    /// The activations [N, D] of node `layer` (flattened per example) for `inputs` ([N] + the model's
    /// input shape), in chunks of `rowsPerChunk` examples, without recording; the chunks stay on the
    /// device and are joined there.
    public static func activations(of model: Model, layer: String, inputs: [Float], rowsPerChunk: Int = 512) throws -> Tensor {
        let chunks = try capturedChunks(of: model, layer: layer, inputs: inputs, rowsPerChunk: rowsPerChunk, for: "pca") { a, count in
            try a.reshaped([count, a.count / count])
        }
        return try model.engine.noGrad { chunks.count == 1 ? chunks[0] : try concat(chunks, axis: 0) }
    }
}

/// Node `layer`'s output for `inputs` ([N] + the model's input shape) in chunks of `rowsPerChunk`
/// examples, without recording, each chunk's output ([count] + the node's shape) handed to `reduce`.
/// - Throws: `ExplainError` (naming `what`) for inputs that are not whole examples or a layer the
///   model does not have.
func capturedChunks<T>(of model: Model, layer: String, inputs: [Float], rowsPerChunk: Int, for what: String,
                       _ reduce: (Tensor, _ count: Int) throws -> T) throws -> [T] {
    let engine = model.engine, d = model.spec.inputShape.reduce(1, *)
    guard d > 0, !inputs.isEmpty, inputs.count % d == 0 else {
        throw ExplainError("\(what): \(inputs.count) values are not a whole number of inputs of shape \(model.spec.inputShape)")
    }
    let n = inputs.count / d
    var results: [T] = []
    var first = 0
    while first < n {
        let count = Swift.min(rowsPerChunk, n - first)
        let x = try Tensor(Array(inputs[(first * d)..<((first + count) * d)]), shape: [count] + model.spec.inputShape, engine: engine)
        results.append(try engine.noGrad {
            guard let a = try model.forward(x, capture: [layer]).activations[layer] else { throw ExplainError("\(what): the model has no layer '\(layer)'") }
            return try reduce(a, count)
        })
        first += count
    }
    return results
}
