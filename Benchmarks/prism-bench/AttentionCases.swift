import Foundation
import Prism
import PrismCL
import PrismReference

/// Attention [B, H, T, d]: the fused kernels (forward; forward + backward) and, in the same run, the
/// same work as materialized attention built from Prism's own matmul and softmax (S = QKᵀ·scale,
/// P = softmax(S), O = PV, and their backward through the tape). FLOPs as FlashAttention counts them:
/// forward 4·B·H·T²·d, backward 2.5× the forward. Outputs are checked against the Double reference at
/// sampled rows before timing. Where the scores would not fit in one device allocation the
/// materialized cases are left out, and the run says so.
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
        // The materialized path holds the B·H·T² scores in one buffer: past the device's largest
        // allocation it cannot run (the fused kernels never hold them), and only the fused cases run.
        // Check both against the reference on the first head's rows.
        let fused = try scaledDotProductAttention(q: q, k: k, v: v)
        let rows = t * d
        let reference = Reference.attention(q: qv[0..<rows].map(Double.init), k: kv[0..<rows].map(Double.init), v: vv[0..<rows].map(Double.init),
                                            heads: 1, t: t, d: d, scale: 1 / Double(Float(d).squareRoot()))
        var checked = [("attention", try fused.toArray())]
        var canMaterialize = true
        do {
            checked.append(("attention_materialized", try materialized().toArray()))
        } catch let CLError.allocationFailed(bytes, reason) {
            canMaterialize = false
            say("    \(label): matmul + softmax not run: a buffer of its scores (\(bytes) bytes) is \(reason)")
        }
        for (name, values) in checked {
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
            guard canMaterialize else { return }
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
        guard canMaterialize else { continue }
        do {
            try bench.compute("attention_materialized_forward_backward", shape: label, library: "prism-matmul-softmax", flops: 3.5 * forwardFLOPs) {
                EventLog.shared.start()
                try materialized().backward(dout)
                return EventLog.shared.stopEvents()
            }
        } catch let CLError.allocationFailed(bytes, reason) {
            say("    \(label): matmul + softmax backward not run: a buffer of \(bytes) bytes is \(reason)")
        }
    }
}
