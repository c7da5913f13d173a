/// Plain-Swift implementations of every op, forward and backward, accumulating in Double.
///
/// They are slow and obvious on purpose: the oracle that device kernels are compared with, and
/// that finite differences check. Arrays are row-major; each function states its shapes.
/// Backward functions take the gradient of the output (`dy`) and return gradients of the inputs.
public enum Reference {}

extension Reference {
    /// y = alpha·x + y.   x, y: [n]
    public static func axpy(alpha: Double, x: [Double], y: [Double]) -> [Double] {
        zip(x, y).map { alpha * $0 + $1 }
    }
}
