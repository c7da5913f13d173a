import Foundation
import Prism
import PrismCL
import PrismReference

/// Attention [B, H, T, d]: the fused kernels (forward; forward + backward) and, in the same run, the
/// same work as materialized attention built from Prism's own matmul and softmax (S = QKᵀ·scale,
/// P = softmax(S), O = PV, and their backward through the tape). FLOPs as FlashAttention counts them:
/// forward 4·B·H·T²·d, backward 2.5× the forward. Outputs are checked against the Double reference at
/// sampled rows before timing.
func benchAttention(_ bench: Bench, shapes: [(b: Int, h: Int, t: Int, d: Int)], backward: Bool = true) throws {
    let engine = bench.engine
    for (b, h, t, d) in shapes {
        let shape = [b, h, t, d], n = shape.reduce(1, *)
        let label = "B\(b) H\(h) T\(t) d\(d)"
        var rng = SplitMix64(seed: UInt64(t))
        let (qv, kv, vv, dov) = ((0..<n).map { _ in 2 * rng.nextFloat() - 1 }, (0..<n).map { _ in 2 * rng.nextFloat() - 1 },
                                 (0..<n).map { _ in 2 * rng.nextFloat() - 1 }, (0..<n).map { _ in 2 * rng.nextFloat() - 1 })
        let q = try Tensor(qv, shape: shape, engine: engine, requiresGrad: true)
        let k = try Tensor(kv, shape: shape, engine: engine, requiresGrad: true)
        let v = try Tensor(vv, shape: shape, engine: engine, requiresGrad: true)
        let dout = try Tensor(dov, shape: shape, engine: engine)
        let forwardFLOPs = 4.0 * Double(b * h) * Double(t) * Double(t) * Double(d)
        func materialized() throws -> Tensor {
            let s = try matmul(q.reshaped([b * h, t, d]), k.reshaped([b * h, t, d]), transposeB: true).scaled(by: 1 / Float(d).squareRoot())
            return try matmul(s.softmax(), v.reshaped([b * h, t, d])).reshaped(shape)
        }
        // Check both against the reference on the first head's rows.
        let fused = try scaledDotProductAttention(q: q, k: k, v: v)
        let plain = try materialized()
        let rows = t * d
        let reference = Reference.attention(q: qv[0..<rows].map(Double.init), k: kv[0..<rows].map(Double.init), v: vv[0..<rows].map(Double.init),
                                            heads: 1, t: t, d: d, scale: 1 / Double(Float(d).squareRoot()))
        for (name, values) in [("attention", try fused.toArray()), ("attention_materialized", try plain.toArray())] {
            for e in stride(from: 0, to: rows, by: max(1, rows / 97)) where !(abs(Double(values[e]) - reference[e]) <= 1e-4 + 1e-3 * abs(reference[e])) {
                throw BenchError("\(name) \(label): O[\(e)] = \(values[e]), expected \(reference[e])")
            }
        }
        try engine.noGrad {
            try bench.compute("attention_forward", shape: label, flops: forwardFLOPs) {
                EventLog.shared.start()
                _ = try scaledDotProductAttention(q: q, k: k, v: v)
                return EventLog.shared.stopEvents()
            }
            try bench.compute("attention_materialized_forward", shape: label, library: "prism-matmul-softmax", flops: forwardFLOPs) {
                EventLog.shared.start()
                _ = try materialized()
                return EventLog.shared.stopEvents()
            }
        }
        guard backward else { continue }
        try bench.compute("attention_forward_backward", shape: label, flops: 3.5 * forwardFLOPs) {
            EventLog.shared.start()
            try scaledDotProductAttention(q: q, k: k, v: v).backward(dout)
            return EventLog.shared.stopEvents()
        }
        try bench.compute("attention_materialized_forward_backward", shape: label, library: "prism-matmul-softmax", flops: 3.5 * forwardFLOPs) {
            EventLog.shared.start()
            try materialized().backward(dout)
            return EventLog.shared.stopEvents()
        }
    }
}
