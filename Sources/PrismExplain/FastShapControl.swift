import Foundation
import Prism
import PrismCL

/// The control variates of FastSHAP's single-row targets (`FastShap.Settings.backgroundPerCoalition`).
///
/// A coalition S of image x valued by one background row b gives v_b(S), an unbiased draw of the game
/// v(S) = Σ_b w_b v_b(S) whose spread over the rows is the noise the explainer must average away.
/// Two terms with mean zero over the rows are subtracted (Glasserman, "Monte Carlo Methods in
/// Financial Engineering", §4.1: a control variate keeps the estimator unbiased whenever its mean is
/// known exactly — here it is zero by construction):
///
/// 1. The row's endpoints. Row b's game runs from f(b) at ∅ to f(x) at the full coalition; with
///    α = |S|/m the term (1 − α)(f(b) − v(∅)) removes the row's own start along the straight line
///    between them. Its mean is zero because v(∅) = E_b f(b) exactly.
/// 2. A linear model of the network, fitted once before training by least squares on `rows` masked
///    inputs z (training images, coalitions and rows drawn as in training): f(z) ≈ Aᵀz + a₀. For a
///    linear function the row's effect on v_b(S) is exactly Σ_{k∉S} δ_b,k with
///    δ_b,k = Σ_{p ∈ feature k} A_p (b_p − b̄_p), b̄ the rows' mean, which does not depend on
///    the image; after term 1 what remains of it is α·Δ_b − Σ_{k∈S} δ_b,k with Δ_b = Σ_k δ_b,k.
///    Its mean over the rows is zero because Σ_b δ_b,k = 0, whatever A is: the fit only decides
///    how much noise is removed, never what the targets estimate.
///
/// The target of a coalition valued by row b is then
///
///     y_b(S) = v_b(S) − v(∅) − (1 − α)(f(b) − v(∅)) − α·Δ_b + Σ_{k∈S} δ_b,k,
///
/// with E_b y_b(S) = v(S) − v(∅), y_b(∅) = 0 and y_b(1) = f(x) − v(∅) for every row, and y_b(S) equal
/// to v(S) − v(∅) for every row when the network is linear. On the reference cnn's image game
/// (49 superpixels, 50 rows; the linear model's R² 0.89–0.94 on masked inputs) an explainer fitted to
/// 20 images with 64,000 single-row values each reaches 6.9% error with term 1 alone and 5.1% with
/// both (RESULTS.md, 2026-12-05, late night).
struct FastShapControl {
    /// v(∅) [classes].
    let base: [Double]
    /// f(b) [rows × classes].
    let rowOutputs: [Float]
    /// δ [rows × features × classes] and Δ [rows × classes]; nil without the linear term.
    let delta: [Double]?
    let deltaTotal: [Double]?
    let features: Int
    let classes: Int

    /// y_b(S) − (v_b(S) − v(∅)) for the coalition `mask` (m entries 0/1) valued by `row`: the
    /// correction added to class `o`'s value gain.
    func correction(row: Int, mask: ArraySlice<UInt8>, inCoalition: Int, output o: Int) -> Double {
        let m = features, c = classes
        let alpha = Double(inCoalition) / Double(m)
        var result = -(1 - alpha) * (Double(rowOutputs[row * c + o]) - base[o])
        if let delta, let deltaTotal {
            result -= alpha * deltaTotal[row * c + o]
            var inside = 0.0
            var j = 0
            for bit in mask {
                if bit != 0 { inside += delta[(row * m + j) * c + o] }
                j += 1
            }
            result += inside
        }
        return result
    }

    /// What the linear term's fit measured.
    struct LinearFit {
        /// δ [rows × features × classes] and Δ [rows × classes].
        var delta: [Double]
        var deltaTotal: [Double]
        /// R² of the linear model on the masked inputs it was fitted to (pooled over the classes).
        var rSquared: Double
    }


    /// Fits the linear model on `rows` masked inputs — each a training image from `images`, a
    /// coalition from the Shapley kernel and a uniformly drawn background row — and returns the rows'
    /// δ. The model is evaluated `rows` times.
    static func fitLinear(model: Model, images: [Float], background: [Float], groups: FeatureGroups, rows n: Int,
                          rng: inout SplitMix64, chunk: Int = 1024) throws -> LinearFit {
        let engine = model.engine, shape = model.spec.inputShape, d = shape.reduce(1, *), c = model.spec.classCount
        let m = groups.featureCount, count = images.count / d, backgroundCount = background.count / d
        let map = groups.elementFeature
        // Masked inputs z, built on the host the way the device builds them.
        let masks = FastShap.sampleCoalitions(features: m, count: n, rng: &rng)
        var z = [Float](repeating: 0, count: n * d)
        for r in 0..<n {
            let image = Int(rng.next() % UInt64(count)), row = Int(rng.next() % UInt64(backgroundCount))
            for p in 0..<d {
                let k = Int(map[p])
                z[r * d + p] = k < 0 || masks[r * m + k] != 0 ? images[image * d + p] : background[row * d + p]
            }
        }
        let y = try FastShap.outputs(model: model, rows: z, chunk: chunk)
        // Centered least squares (the intercept drops out): (ZᵀZ + λI) A = ZᵀY, the products on the device.
        var meanZ = [Double](repeating: 0, count: d), meanY = [Double](repeating: 0, count: c)
        for r in 0..<n {
            for p in 0..<d { meanZ[p] += Double(z[r * d + p]) }
            for o in 0..<c { meanY[o] += Double(y[r * c + o]) }
        }
        for p in 0..<d { meanZ[p] /= Double(n) }
        for o in 0..<c { meanY[o] /= Double(n) }
        var centeredY = [Float](repeating: 0, count: n * c), total = 0.0
        for r in 0..<n {
            for p in 0..<d { z[r * d + p] = Float(Double(z[r * d + p]) - meanZ[p]) }
            for o in 0..<c {
                let e = Double(y[r * c + o]) - meanY[o]
                centeredY[r * c + o] = Float(e)
                total += e * e
            }
        }
        let zt = try Tensor(z, shape: [n, d], engine: engine)
        let (gram, cross) = try engine.noGrad {
            (try matmul(zt, zt, transposeA: true).toArray(), try matmul(zt, try Tensor(centeredY, shape: [n, c], engine: engine), transposeA: true).toArray())
        }
        var a = gram.map(Double.init)
        var trace = 0.0
        for p in 0..<d { trace += a[p * d + p] }
        let ridge = 1e-6 * max(trace / Double(d), 1e-12)
        for p in 0..<d { a[p * d + p] += ridge }
        let coefficients = solveNormalEquations(a, n: d, cross.map(Double.init), rhs: c).x   // [d × classes]
        // R²: 1 − ‖Y − ZA‖² / ‖Y‖² on the centered data.
        let fitted = try engine.noGrad {
            try matmul(zt, try Tensor(coefficients.map(Float.init), shape: [d, c], engine: engine)).toArray()
        }
        var residual = 0.0
        for i in 0..<(n * c) { residual += (Double(centeredY[i]) - Double(fitted[i])) * (Double(centeredY[i]) - Double(fitted[i])) }
        // δ_b,k = Σ_{p ∈ k} A_p (b_p − b̄_p).
        var meanRow = [Double](repeating: 0, count: d)
        for b in 0..<backgroundCount { for p in 0..<d { meanRow[p] += Double(background[b * d + p]) } }
        for p in 0..<d { meanRow[p] /= Double(backgroundCount) }
        var delta = [Double](repeating: 0, count: backgroundCount * m * c), deltaTotal = [Double](repeating: 0, count: backgroundCount * c)
        for b in 0..<backgroundCount {
            for p in 0..<d {
                let k = Int(map[p])
                guard k >= 0 else { continue }
                let shift = Double(background[b * d + p]) - meanRow[p]
                for o in 0..<c {
                    let e = coefficients[p * c + o] * shift
                    delta[(b * m + k) * c + o] += e
                    deltaTotal[b * c + o] += e
                }
            }
        }
        return LinearFit(delta: delta, deltaTotal: deltaTotal, rSquared: total > 0 ? 1 - residual / total : 0)
    }
}
