import Foundation
import Prism
import PrismCL

/// One training step of a built-in architecture on random data: wall-clock time per step, images/s,
/// and the device time per kernel (from profiling events the queue records), so the share of host
/// overhead shows.
func benchTrainStep(_ bench: Bench, architecture: String, batch: Int, steps: Int) throws {
    guard bench.wants("train_step_\(architecture)") else { return }
    let engine = bench.engine
    let spec = architecture == "mlp" ? try ModelSpec.mlp(inputShape: [1, 28, 28], hidden: [128], classes: 10)
        : architecture == "vit" ? try ModelSpec.vit() : try ModelSpec.cnn()
    let model = try Model(spec: spec, seed: 1, engine: engine)
    let adam = try Adam(model.parameters, lr: 1e-3)
    var rng = SplitMix64(seed: 7)
    let images = (0..<(batch * 784)).map { _ in rng.nextFloat() }
    let labels = (0..<batch).map { _ in Int32(rng.next() % 10) }
    func step() throws {
        let x = try Tensor(images, shape: [batch, 1, 28, 28], engine: engine)
        let loss = try crossEntropy(try model(x, training: true), labels: labels)
        adam.zeroGrad()
        try loss.backward()
        try adam.step()
        _ = try loss.item()
    }
    for _ in 0..<bench.warmup { try step() }
    EventLog.shared.start()
    var times: [Double] = []
    for _ in 0..<steps {
        let start = DispatchTime.now().uptimeNanoseconds
        try step()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-6)
    }
    let kernels = try EventLog.shared.stop()
    let median = medianAndMinimum(times).median
    let deviceMs = kernels.values.reduce(0, +) / Double(steps)
    bench.add(BenchResult(name: "train_step_\(architecture)", shape: "batch \(batch)", library: "prism", medianMs: median,
                          minMs: medianAndMinimum(times).min, runs: steps, gflops: nil, gbps: nil, peakFraction: nil))
    say(String(format: "    %.0f images/s; device time %.2f ms per step (%.0f%% of the step)", Double(batch) / (median * 1e-3),
               deviceMs, 100 * deviceMs / median))
    if bench.breakdown {
        for (label, total) in kernels.sorted(by: { $0.value > $1.value }).prefix(16) {
            say("    " + label.padding(toLength: 34, withPad: " ", startingAt: 0) + String(format: " %8.3f ms per step", total / Double(steps)))
        }
    }
}
