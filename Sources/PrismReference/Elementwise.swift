import Foundation

extension Reference {
    /// The element-wise functions, by the kernel's op codes: 0 relu, 1 gelu (erf), 2 gelu (tanh),
    /// 3 tanh, 4 sigmoid, 5 exp, 6 log, 7 sqrt, 8 erf, 9 reciprocal.
    ///
    /// x: [n] → y: [n]
    public static func unary(_ op: Int, x: [Double]) -> [Double] {
        x.map { v in
            switch op {
            case 0: return Swift.max(v, 0)
            case 1: return 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
            case 2: return 0.5 * v * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))
            case 3: return Foundation.tanh(v)
            case 4: return 1 / (1 + Foundation.exp(-v))
            case 5: return Foundation.exp(v)
            case 6: return Foundation.log(v)
            case 7: return v.squareRoot()
            case 8: return Foundation.erf(v)
            default: return 1 / v
            }
        }
    }

    /// Backward of `unary`: dx = dy · f′(x) (relu′(0) = 0).
    ///
    /// x, dy: [n] → dx: [n]
    public static func unaryBackward(_ op: Int, x: [Double], dy: [Double]) -> [Double] {
        zip(x, dy).map { v, g in
            let d: Double
            switch op {
            case 0: d = v > 0 ? 1 : 0
            case 1: d = 0.5 * (1 + erf(v / 2.0.squareRoot())) + v * Foundation.exp(-0.5 * v * v) / (2 * Double.pi).squareRoot()
            case 2:
                let k = (2 / Double.pi).squareRoot()
                let t = Foundation.tanh(k * (v + 0.044715 * v * v * v))
                d = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * k * (1 + 3 * 0.044715 * v * v)
            case 3: let t = Foundation.tanh(v); d = 1 - t * t
            case 4: let s = 1 / (1 + Foundation.exp(-v)); d = s * (1 - s)
            case 5: d = Foundation.exp(v)
            case 6: d = 1 / v
            case 7: d = 0.5 / v.squareRoot()
            case 8: d = 2 / Double.pi.squareRoot() * Foundation.exp(-v * v)
            default: d = -1 / (v * v)
            }
            return g * d
        }
    }

    /// The index into b (shape `bShape`) of each element of a (shape `aShape`) under NumPy
    /// broadcasting: b's axes align with a's trailing axes, and a size-1 axis of b repeats.
    ///
    /// aShape: [a0, …], bShape: [b0, …] with bShape.count ≤ aShape.count → [a0·…] indices into b.
    public static func broadcastIndices(aShape: [Int], bShape: [Int]) -> [Int] {
        let rank = aShape.count
        let b = [Int](repeating: 1, count: rank - bShape.count) + bShape
        var bStrides = [Int](repeating: 0, count: rank)
        var s = 1
        for k in stride(from: rank - 1, through: 0, by: -1) {
            bStrides[k] = b[k] == 1 ? 0 : s
            s *= b[k]
        }
        let n = aShape.reduce(1, *)
        return (0..<n).map { i in
            var rest = i, j = 0
            for k in stride(from: rank - 1, through: 0, by: -1) {
                j += (rest % aShape[k]) * bStrides[k]
                rest /= aShape[k]
            }
            return j
        }
    }

    /// a op b with b broadcast over a (NumPy rules, see `broadcastIndices`); op 0 add, 1 sub, 2 mul,
    /// 3 div, 4 pow (a^b), and reflected 5 rsub (b − a), 6 rdiv (b / a), 7 rpow (b^a).
    ///
    /// a: aShape, b: bShape → y: aShape
    public static func binary(_ op: Int, a: [Double], aShape: [Int], b: [Double], bShape: [Int]) -> [Double] {
        let index = broadcastIndices(aShape: aShape, bShape: bShape)
        return a.indices.map { i in
            let (x, y) = (a[i], b[index[i]])
            switch op {
            case 0: return x + y
            case 1: return x - y
            case 2: return x * y
            case 3: return x / y
            case 4: return Foundation.pow(x, y)
            case 5: return y - x
            case 6: return y / x
            default: return Foundation.pow(y, x)
            }
        }
    }

    /// Backward of `binary`: da (aShape) and db (bShape, summed over the broadcast axes).
    ///
    /// a, dy: aShape; b: bShape → (da: aShape, db: bShape)
    public static func binaryBackward(_ op: Int, a: [Double], aShape: [Int], b: [Double], bShape: [Int],
                                      dy: [Double]) -> (da: [Double], db: [Double]) {
        let index = broadcastIndices(aShape: aShape, bShape: bShape)
        var da = [Double](repeating: 0, count: a.count)
        var db = [Double](repeating: 0, count: b.count)
        for i in a.indices {
            let j = index[i], g = dy[i]
            switch op {
            case 0: da[i] = g; db[j] += g
            case 1: da[i] = g; db[j] -= g
            case 2: da[i] = g * b[j]; db[j] += g * a[i]
            case 3: da[i] = g / b[j]; db[j] -= g * a[i] / (b[j] * b[j])
            case 4: da[i] = g * b[j] * Foundation.pow(a[i], b[j] - 1); db[j] += g * Foundation.pow(a[i], b[j]) * Foundation.log(a[i])
            case 5: da[i] = -g; db[j] += g
            case 6: da[i] = -g * b[j] / (a[i] * a[i]); db[j] += g / a[i]
            default: da[i] = g * Foundation.pow(b[j], a[i]) * Foundation.log(b[j]); db[j] += g * a[i] * Foundation.pow(b[j], a[i] - 1)
            }
        }
        return (da, db)
    }

    /// scale·x + shift.
    ///
    /// x: [n] → y: [n]
    public static func affine(x: [Double], scale: Double, shift: Double) -> [Double] {
        x.map { scale * $0 + shift }
    }
}
