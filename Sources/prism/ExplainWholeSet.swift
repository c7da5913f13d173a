import ArgumentParser
import Foundation
import Prism
import PrismFiles
import PrismExplain

/// A whole-data-set run (`--index all` or ranges): the examples go through the methods in shards of
/// `shardSize` consecutive examples; each finished shard is written to `OUT/shards/` at once, so an
/// interrupted run resumes with the shards still missing. A shard's examples are always the same
/// ones, and every method's result for an example depends only on the example, its shard's
/// examples (shared batches) and the seed, so a resumed run writes what an uninterrupted one writes.
/// When every shard is there, they are merged into the JSON document and arrays of all examples,
/// and the report shows the global views over all of them and the first examples one by one.
struct WholeSetRun {
    /// The plan over every example of the run.
    let plan: ExplainPlan
    let shardSize: Int
    /// Stop after taking this many shards, as an interrupted run would (nil: run to the end); on several
    /// devices the shards already taken are finished and written.
    var stopAfterShards: Int? = nil
    /// How many examples the report shows one by one.
    var examplesShown = 8
    /// The plan on each device of `--device all` (or a list), with each device's label; the shards go
    /// to whichever device is free next. Empty: `plan` alone, on its device.
    var devices: [(label: String, plan: ExplainPlan)] = []

    init(plan: ExplainPlan, shardSize: Int, devices: [(label: String, plan: ExplainPlan)] = []) {
        self.plan = plan
        self.shardSize = shardSize
        self.devices = devices
    }

    var shardCount: Int { (plan.instances.count + shardSize - 1) / shardSize }

    /// The positions of shard `k`'s examples in the run.
    func positions(ofShard k: Int) -> Range<Int> {
        (k * shardSize)..<min((k + 1) * shardSize, plan.instances.count)
    }

    /// Runs the missing shards, then (unless stopped) merges them and writes every output.
    /// - Parameters:
    ///   - top: how many features the closing lines name per method.
    ///   - say: prints a line for a person (progress goes to standard error on a terminal).
    /// - Returns: whether the run finished (false when stopped by `stopAfterShards`).
    /// - Throws: `ValidationError` when the shard folder is of a run with other settings; the run's errors.
    @discardableResult
    func run(top: Int, say: (String) -> Void) throws -> Bool {
        if let world = MPIJob.world { return try runOnRanks(world, top: top, say: say) }
        let shards = try openShards()
        let (missing, doneExamples) = scan(shards)
        announce(missing: missing, done: doneExamples, shards: shards, say: say)
        let toDo = missing.reduce(0) { $0 + positions(ofShard: $1).count }
        var progress = RunProgress(total: toDo)
        if devices.count > 1 {
            if try !runOnDevices(missing, shards: shards, progress: &progress) { return false }
        } else {
            var written = 0
            for k in missing {
                if let stop = stopAfterShards, written >= stop { progress.clear(); return false }
                let range = positions(ofShard: k)
                let sub = plan.restricted(to: range)
                let methodCount = Double(plan.methods.count)
                do {
                    let results = try sub.run { method, done, total in
                        let m = Double(plan.methods.firstIndex(where: { $0.name == method.name }) ?? 0)
                        let within = (m + Double(done) / Double(max(total, 1))) / methodCount
                        progress.show(done: Double(progress.finished) + within * Double(range.count))
                    }
                    try shards.write(Shard(number: k, first: range.lowerBound, indices: sub.instances.indices ?? [], results: results,
                                           device: devices.first?.label))
                } catch {
                    // The error's one line on a line of its own, not after the progress line.
                    progress.clear()
                    throw error
                }
                progress.finish(range.count)
                written += 1
            }
        }
        try finish(toDo: toDo, progress: &progress, shards: shards, top: top, say: say)
        return true
    }

    /// The shard folder `OUT/shards`, claimed for this run (a folder of another run's settings is
    /// refused), without the temporary files an interrupted write left.
    func openShards() throws -> ShardFolder {
        guard let out = plan.outputs.out else { throw ValidationError("a whole-data-set run needs --out DIR") }
        let shards = try ShardFolder(path: (out as NSString).appendingPathComponent("shards"))
        try shards.claim(try ShardManifest(plan: plan, shardSize: shardSize))
        shards.removeLeftovers()
        return shards
    }

    /// The shards still to compute (those missing, unreadable or of other examples), and the examples done.
    func scan(_ shards: ShardFolder) -> (missing: [Int], done: Int) {
        var missing: [Int] = []
        var doneExamples = 0
        for k in 0..<shardCount {
            do {
                if let shard = try shards.read(k) {
                    if isComplete(shard, number: k) {
                        doneExamples += shard.outputs.count
                        continue
                    }
                    printError("note: \(shards.folder.path(shards.shardName(k))) holds other examples or methods than this run's shard \(k); computing it again")
                }
            } catch {
                printError("note: \(error); computing that shard again")
            }
            missing.append(k)
        }
        return (missing, doneExamples)
    }

    /// Says whether the run starts or resumes.
    func announce(missing: [Int], done: Int, shards: ShardFolder, say: (String) -> Void) {
        let n = plan.instances.count
        if done > 0 {
            say("resuming: \(done) of \(n) examples done (\(shardCount - missing.count) of \(shardCount) shards in \(shards.path))")
        } else {
            say("whole-data-set run: \(n) examples in \(shardCount) shard\(shardCount == 1 ? "" : "s") of up to \(shardSize), written to \(shards.path)")
        }
    }

    /// Once every shard is written: the rate, the merged results, the global lines and every output.
    func finish(toDo: Int, progress: inout RunProgress, shards: ShardFolder, top: Int, say: (String) -> Void,
                ranks: [ExplainResults.RankWork]? = nil) throws {
        progress.clear()
        if toDo > 0 {
            say(String(format: "explained %d examples in %@ (%.3g examples/s)", toDo, formatDuration(progress.elapsed),
                       Double(toDo) / max(progress.elapsed, 1e-9)))
        }
        var merged = try merge(shards)
        merged.ranks = ranks
        for line in globalLines(merged, top: top) { say(line) }
        for line in try write(merged, shardFolder: shards.path) { say(line) }
    }

    /// The missing shards on every device at once: one worker per device takes the next shard when it
    /// is free (each device runs the shard exactly as one device alone would: same examples, same
    /// seeds, same chunking on devices alike). The first error stops the other workers after their
    /// current shard and is thrown; shards written before it stay for a resumed run.
    /// - Returns: false when stopped by `stopAfterShards`.
    func runOnDevices(_ missing: [Int], shards: ShardFolder, progress: inout RunProgress) throws -> Bool {
        let workers = DeviceWorkers(run: self, missing: missing, shards: shards, progress: progress)
        // A thread per device (a pool of as many threads as cores would leave further devices idle).
        let group = DispatchGroup()
        for w in devices.indices {
            group.enter()
            Thread { workers.work(device: w); group.leave() }.start()
        }
        group.wait()
        progress = workers.progress
        if let failure = workers.failure { progress.clear(); throw failure }
        if workers.stopped { progress.clear() }
        return !workers.stopped
    }

    /// Whether `shard` holds the results of shard `number` of this plan: its examples and every method.
    func isComplete(_ shard: Shard, number k: Int) -> Bool {
        let range = positions(ofShard: k)
        let rows = plan.instances.indices.map { Array($0[range]) } ?? []
        return shard.number == k && shard.first == range.lowerBound && shard.indices == rows
            && shard.runs.map(\.method) == plan.methods.map(\.name)
            && shard.outputs.count == range.count && shard.runs.allSatisfy { $0.explanation.instanceCount == range.count }
    }

    /// Every shard read back, in order, as the results of one run over all examples.
    /// - Throws: `DataError` naming a shard that is missing, unreadable or of other examples.
    func merge(_ shards: ShardFolder) throws -> ExplainResults {
        var outputs: [[Float]] = [], predicted: [Int] = [], targets: [Int] = []
        var parts = [[Shard.Run]](repeating: [], count: plan.methods.count)
        var work: [ExplainResults.DeviceWork] = []
        for k in 0..<shardCount {
            guard let shard = try shards.read(k), isComplete(shard, number: k) else {
                throw DataError("\(shards.folder.path(shards.shardName(k))): missing or not of this run's examples")
            }
            if let device = shard.device {
                if let i = work.firstIndex(where: { $0.device == device }) {
                    work[i].examples += shard.outputs.count
                    work[i].shards += 1
                } else {
                    work.append(.init(device: device, examples: shard.outputs.count, shards: 1))
                }
            }
            outputs += shard.outputs
            predicted += shard.predicted
            targets += shard.targets
            for (m, run) in shard.runs.enumerated() { parts[m].append(run) }
        }
        let runs = try plan.methods.enumerated().map { m, method in
            let p = parts[m]
            var run = MethodRun(method: method, explanation: try Explanation(stacking: p.map(\.explanation)),
                                outputSlot: p.flatMap(\.outputSlot), evaluations: p.flatMap(\.evaluations), seconds: p.flatMap(\.seconds))
            if p.allSatisfy({ $0.curves != nil }) { run.curves = p.flatMap { $0.curves ?? [] } }
            if p.allSatisfy({ $0.faithfulness != nil }) { run.faithfulness = p.flatMap { $0.faithfulness ?? [] } }
            if p.allSatisfy({ $0.sensitivity != nil }) { run.sensitivity = p.flatMap { $0.sensitivity ?? [] } }
            run.featureGroups = try method.featureGroups?(plan.model, plan.options)
            return run
        }
        return ExplainResults(outputs: outputs, predicted: predicted, targets: targets, runs: runs, devices: work.isEmpty ? nil : work)
    }

    /// Writes the JSON document and arrays of every example, with the global views, and the report:
    /// the global views and the first examples.
    /// - Returns: lines saying what was written.
    func write(_ results: ExplainResults, shardFolder: String) throws -> [String] {
        let out = plan.outputs.out!
        let views = try GlobalViews(plan: plan, results: results)
        var lines: [String] = []
        var dataFiles: [(String, String)] = []
        if let json = plan.outputs.json {
            var document = ExplainDocument(plan: plan, results: results)
            document.globalViews = views.methods
            try OutputFile(path: json, allowStandardOutput: true).write(try document.encodedDirectly() + Array("\n".utf8))
            if !plan.outputs.jsonToStandardOutput {
                lines.append("wrote \(json)")
                dataFiles.append((plan.relative(json, to: out), "every example's values, base values, f(x), settings, the global views, the inputs, features and background (JSON)"))
            }
        }
        if let npy = plan.outputs.npy {
            dataFiles += try plan.writeNumPy(results, folder: npy)
            lines.append("wrote the arrays of \(plan.instances.count) examples into \(npy)")
        }
        dataFiles.removeAll { ($0.0 as NSString).isAbsolutePath }
        let shown = min(examplesShown, plan.instances.count)
        var sub = plan.restricted(to: 0..<shown)
        sub.outputs.json = nil
        sub.outputs.npy = nil
        let first = try results.restricted(to: 0..<shown)
        var extras = ReportExtras()
        extras.summary = ["Whole-data-set run: \(plan.instances.count) examples in \(shardCount) shards of up to \(shardSize) (\(plan.relative(shardFolder, to: out))). The figures below are over all of them; the first \(shown) follow one by one, every example is in the data files."]
        extras.figures = try views.figures(folder: out)
        extras.files = dataFiles
        extras.perRunSummaryPlots = false
        lines += try sub.writeAll(first, extras: extras)
        return lines
    }

    /// Per method: its cost over the run and the features with the largest mean |φ|.
    func globalLines(_ results: ExplainResults, top: Int) -> [String] {
        results.runs.map { run in
            let e = run.explanation
            let meanAbs = GlobalViews.meanAbs(run, instances: 0..<e.instanceCount)
            let largest = meanAbs.indices.sorted { meanAbs[$0] > meanAbs[$1] }.prefix(max(0, top))
                .map { String(format: "%@ %.5f", plan.featureName($0, of: e), meanAbs[$0]) }.joined(separator: ", ")
            return String(format: "%@: %d examples, %d model evaluations, %.1f s; largest mean |φ|: %@",
                          run.method.name, e.instanceCount, e.modelEvaluations, e.seconds, largest)
        }
    }
}

extension ExplainPlan {
    /// This plan over the examples at `positions` only.
    func restricted(to positions: Range<Int>) -> ExplainPlan {
        var copy = self
        copy.firstInstance = firstInstance + positions.lowerBound
        let d = elementCount, i = instances
        copy.instances = ExplainInstances(
            values: Array(i.values[(positions.lowerBound * d)..<(positions.upperBound * d)]), count: positions.count,
            names: Array(i.names[positions]), indices: i.indices.map { Array($0[positions]) }, labels: i.labels.map { Array($0[positions]) },
            trueValues: i.trueValues.map { Array($0[positions]) }, source: i.source)
        copy.extraInputs = extraInputs.mapValues { input in
            var cut = input
            cut.values = Array(input.values[(positions.lowerBound * input.perExample)..<(positions.upperBound * input.perExample)])
            return cut
        }
        return copy
    }
}

extension ExplainResults {
    /// These results for the examples at `positions` only.
    /// - Throws: `ExplainError` when an explanation cannot be cut (never for results of a run).
    func restricted(to positions: Range<Int>) throws -> ExplainResults {
        let runs = try self.runs.map { run -> MethodRun in
            var copy = run
            copy.explanation = try run.explanation.restricted(to: positions)
            copy.outputSlot = Array(run.outputSlot[positions])
            copy.evaluations = Array(run.evaluations[positions])
            copy.seconds = Array(run.seconds[positions])
            copy.curves = run.curves.map { Array($0[positions]) }
            copy.faithfulness = run.faithfulness.map { Array($0[positions]) }
            copy.sensitivity = run.sensitivity.map { Array($0[positions]) }
            return copy
        }
        return ExplainResults(outputs: Array(outputs[positions]), predicted: Array(predicted[positions]),
                              targets: Array(targets[positions]), runs: runs)
    }
}

extension Explanation {
    /// This explanation for the instances at `positions` only (evaluations and seconds stay the totals).
    func restricted(to positions: Range<Int>) throws -> Explanation {
        let m = featureCount, o = outputCount
        func cut(_ a: [Double], _ width: Int) -> [Double] { Array(a[(positions.lowerBound * width)..<(positions.upperBound * width)]) }
        return try Explanation(method: method, instanceCount: positions.count, featureCount: m, outputCount: o, values: cut(values, m * o),
                               baseValues: baseValues.map { cut($0, o) }, outputs: outputs.map { cut($0, o) },
                               standardErrors: standardErrors.map { cut($0, m * o) }, featureNames: featureNames,
                               modelEvaluations: modelEvaluations, seconds: seconds, settings: settings)
    }
}

/// The progress line of a whole-data-set run: examples done, rate and time left (standard error,
/// on a terminal only).
struct RunProgress {
    let total: Int
    private(set) var finished = 0
    private var line = ProgressLine()
    private let start = Date()

    init(total: Int) { self.total = total }

    var elapsed: Double { Date().timeIntervalSince(start) }

    /// Shows `done` examples (fractions count: part of a shard) of `total`.
    mutating func show(done: Double) {
        guard total > 0 else { return }
        let t = elapsed, rate = done / max(t, 1e-9)
        let eta = done > 0 ? (Double(total) - done) / rate : .infinity
        line.show(String(format: "explain: %.0f/%d examples (%.0f%%), %.2f examples/s, ETA %@", done, total, 100 * done / Double(total),
                         rate, formatDuration(eta)))
    }

    /// Counts `count` more finished examples.
    mutating func finish(_ count: Int) {
        finished += count
        show(done: Double(finished))
    }

    mutating func clear() { line.clear() }
}

/// The shared state of the device workers of a whole-data-set run: the next shard to take, the
/// progress, the first error.
/// `@unchecked Sendable`: every mutable field is read and written under `lock`; each worker runs its
/// own device's plan (its engine, its copy of the model), and shards are written to distinct files.
final class DeviceWorkers: @unchecked Sendable {
    let lock = NSLock()
    let run: WholeSetRun
    let missing: [Int]
    let shards: ShardFolder
    var next = 0, stopped = false
    var failure: Error?
    var progress: RunProgress

    init(run: WholeSetRun, missing: [Int], shards: ShardFolder, progress: RunProgress) {
        self.run = run
        self.missing = missing
        self.shards = shards
        self.progress = progress
    }

    /// Device `w`'s worker: takes shards until none is left, one fails or the run is stopped.
    func work(device w: Int) {
        let (label, plan) = run.devices[w]
        while true {
            lock.lock()
            // Stop once as many shards as allowed have been taken (each worker finishes the one it holds).
            if let stop = run.stopAfterShards, next >= stop, next < missing.count { stopped = true }
            guard failure == nil, !stopped, next < missing.count else { lock.unlock(); return }
            let k = missing[next]
            next += 1
            lock.unlock()
            let range = run.positions(ofShard: k)
            do {
                let sub = plan.restricted(to: range)
                let results = try sub.run()
                try shards.write(Shard(number: k, first: range.lowerBound, indices: sub.instances.indices ?? [], results: results, device: label))
                lock.lock()
                progress.finish(range.count)
                progress.show(done: Double(progress.finished))
                lock.unlock()
            } catch {
                lock.lock()
                if failure == nil { failure = error }
                lock.unlock()
                return
            }
        }
    }
}
