import Foundation

extension Reference {
    /// One SGD step (torch.optim.SGD). p, g, buf: [n]; `first` marks the first step (buf = g').
    /// Returns the new (p, buf).
    public static func sgdStep(p: [Double], g: [Double], buf: [Double], lr: Double, momentum: Double, dampening: Double,
                               weightDecay: Double, nesterov: Bool, first: Bool) -> (p: [Double], buf: [Double]) {
        var p = p, buf = buf
        for i in p.indices {
            let grad = g[i] + weightDecay * p[i]
            var direction = grad
            if momentum != 0 {
                buf[i] = first ? grad : momentum * buf[i] + (1 - dampening) * grad
                direction = nesterov ? grad + momentum * buf[i] : buf[i]
            }
            p[i] -= lr * direction
        }
        return (p, buf)
    }

    /// One Adam/AdamW step (torch.optim.Adam / AdamW) at step number `t` (1-based).
    /// p, g, m, v: [n]. Returns the new (p, m, v).
    public static func adamStep(p: [Double], g: [Double], m: [Double], v: [Double], t: Int, lr: Double, beta1: Double,
                                beta2: Double, eps: Double, weightDecay: Double, decoupled: Bool)
        -> (p: [Double], m: [Double], v: [Double]) {
        var p = p, m = m, v = v
        let c1 = 1 - pow(beta1, Double(t)), c2 = 1 - pow(beta2, Double(t))
        for i in p.indices {
            var grad = g[i]
            if decoupled { p[i] -= lr * weightDecay * p[i] } else { grad += weightDecay * p[i] }
            m[i] = beta1 * m[i] + (1 - beta1) * grad
            v[i] = beta2 * v[i] + (1 - beta2) * grad * grad
            p[i] -= lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + eps)
        }
        return (p, m, v)
    }
}
