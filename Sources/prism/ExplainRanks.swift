import ArgumentParser
import Foundation
import PrismMPI

/// The messages between the ranks of a whole-data-set run, by MPI tag.
private enum RankTag {
    /// A worker's host name, first thing.
    static let hello = 3
    /// A finished shard (the shard file's JSON).
    static let shard = 1
    /// A worker has sent every shard it took (its work, as JSON).
    static let done = 2
}

/// What rank 0 tells every rank before the work: its settings and the shards still missing.
private struct RankPlan: Codable {
    var manifest: ShardManifest
    var missing: [Int]
}

extension WholeSetRun {
    /// A whole-data-set run over the ranks of an mpirun job. Rank 0 opens the shard folder, finds the
    /// missing shards and sends their list, with its settings, to every rank (a rank whose model, data
    /// or options differ stops the job); the missing shards are dealt out round robin (rank r takes
    /// the r-th, (r + size)-th, … of them); every rank explains its shards exactly as one process
    /// would (same examples, same seeds), the workers send each finished shard to rank 0 as they go,
    /// and rank 0 writes each one as it arrives (atomic files), shows the progress of the whole job,
    /// and merges and writes every output once all have come — so the outputs equal a one-process
    /// run's, and a job that is killed resumes from the shards written, on any number of ranks.
    /// Rank 0 waits for the workers at most `world.timeout` seconds without a word from any of them.
    /// - Returns: true (a job is not stopped part way but by an error).
    func runOnRanks(_ world: MPIWorld, top: Int, say: (String) -> Void) throws -> Bool {
        let manifest = try ShardManifest(plan: plan, shardSize: shardSize)
        var shards: ShardFolder?
        var message: [UInt8] = []
        if world.rank == 0 {
            let folder = try openShards()
            let (missing, done) = scan(folder)
            announce(missing: missing, done: done, shards: folder, say: say)
            say("sharing the shards among the \(world.size) ranks of the mpirun job")
            message = Array(try JSONEncoder().encode(RankPlan(manifest: manifest, missing: missing)))
            shards = folder
        }
        let shared = try JSONDecoder().decode(RankPlan.self, from: Data(try world.broadcast(message, from: 0, what: "rank 0's list of missing shards")))
        if world.rank != 0, let difference = manifest.firstDifference(from: shared.manifest) {
            throw ValidationError("this rank's run differs from rank 0's (\(difference)); every rank must read the same model, data and options")
        }
        let mine = shared.missing.enumerated().filter { $0.offset % world.size == world.rank }.map(\.element)
        let device = "#\(plan.engine.device.index) \(plan.engine.device.name)"
        // This rank's work, for the JSON: its time from here, in MPI, and the bytes it moved.
        var work = ExplainResults.RankWork(rank: world.rank, host: world.host, device: device, examples: 0, shards: mine.count, seconds: 0,
                                           communicationSeconds: world.communicationSeconds, bytesSent: world.bytesSent,
                                           bytesReceived: world.bytesReceived)
        work.examples = mine.reduce(0) { $0 + positions(ofShard: $1).count }
        let start = Date()
        let finished = { () -> ExplainResults.RankWork in
            var w = work
            w.seconds = Date().timeIntervalSince(start)
            w.communicationSeconds = world.communicationSeconds - work.communicationSeconds
            w.bytesSent = world.bytesSent - work.bytesSent
            w.bytesReceived = world.bytesReceived - work.bytesReceived
            return w
        }
        if let shards {
            try lead(world, missing: shared.missing, mine: mine, label: "\(world.label) \(device)", shards: shards, top: top, say: say, work: finished)
        } else {
            try follow(world, mine: mine, label: "\(world.label) \(device)", work: finished)
        }
        return true
    }

    /// A worker: explains its shards, sending each to rank 0, then says it is done.
    private func follow(_ world: MPIWorld, mine: [Int], label: String, work: () -> ExplainResults.RankWork) throws {
        var sends = [try world.send(Array(world.host.utf8), to: 0, tag: RankTag.hello, what: "the hello to rank 0")]
        var examples = 0
        for k in mine {
            MPIJob.faultCheck(examplesDone: examples)
            let range = positions(ofShard: k)
            let sub = plan.restricted(to: range)
            // MPI moves the messages already sent along while this rank computes.
            let results = try sub.run { _, _, _ in sends.removeAll { (try? world.isDone($0)) ?? false } }
            let shard = Shard(number: k, first: range.lowerBound, indices: sub.instances.indices ?? [], results: results, device: label)
            sends.append(try world.send(Array(try Shard.encoder().encode(shard)), to: 0, tag: RankTag.shard, what: "shard \(k) to rank 0"))
            sends = try sends.filter { try !world.isDone($0) }
            examples += range.count
        }
        for message in sends { try world.complete(message) }
        let last = try world.send(Array(try JSONEncoder().encode(work())), to: 0, tag: RankTag.done, what: "the last word to rank 0")
        try world.complete(last)
    }

    /// Rank 0: explains its shards and writes them, writes the workers' shards as they come, waits
    /// for every worker's last word, then merges and writes every output.
    private func lead(_ world: MPIWorld, missing: [Int], mine: [Int], label: String, shards: ShardFolder, top: Int,
                      say: (String) -> Void, work: () -> ExplainResults.RankWork) throws {
        let toDo = missing.reduce(0) { $0 + positions(ofShard: $1).count }
        let expected = Set(missing).subtracting(mine)
        var progress = RunProgress(total: toDo)
        var received = Set<Int>(), finished = [Int: ExplainResults.RankWork]()
        var hosts = [Int: String]()
        var lastWord = Date()
        var failure: Error?

        /// Receives and writes whatever the workers have sent.
        func drain() throws {
            while let (source, tag, bytes) = try world.poll() {
                lastWord = Date()
                switch tag {
                case RankTag.hello:
                    hosts[source] = String(decoding: bytes, as: UTF8.self)
                case RankTag.shard:
                    let shard: Shard
                    do {
                        shard = try Shard.decoder().decode(Shard.self, from: Data(bytes))
                    } catch {
                        throw MPIError("rank \(source): sent a shard rank 0 cannot read (\(error))")
                    }
                    guard expected.contains(shard.number), isComplete(shard, number: shard.number) else {
                        throw MPIError("rank \(source): sent shard \(shard.number), which is not one it was given or not of this run's examples")
                    }
                    try shards.write(shard)
                    received.insert(shard.number)
                    progress.finish(shard.outputs.count)
                case RankTag.done:
                    guard let report = try? JSONDecoder().decode(ExplainResults.RankWork.self, from: Data(bytes)) else {
                        throw MPIError("rank \(source): sent a last word rank 0 cannot read")
                    }
                    finished[source] = report
                default:
                    throw MPIError("rank \(source): sent a message with tag \(tag), which no rank of Prism sends")
                }
            }
        }

        do {
            for k in mine {
                let range = positions(ofShard: k)
                let sub = plan.restricted(to: range)
                let methodCount = Double(plan.methods.count)
                let results = try sub.run { method, done, total in
                    if failure == nil {
                        do { try drain() } catch { failure = error }
                    }
                    let m = Double(plan.methods.firstIndex(where: { $0.name == method.name }) ?? 0)
                    let within = (m + Double(done) / Double(max(total, 1))) / methodCount
                    progress.show(done: Double(progress.finished) + within * Double(range.count))
                }
                if let failure { throw failure }
                try shards.write(Shard(number: k, first: range.lowerBound, indices: sub.instances.indices ?? [], results: results, device: label))
                progress.finish(range.count)
                try drain()
            }
            // The workers' remaining shards; the deadline counts from here and from each message.
            lastWord = Date()
            while finished.count < world.size - 1 {
                try drain()
                if Date().timeIntervalSince(lastWord) > world.timeout {
                    let silent = (1..<world.size).filter { finished[$0] == nil }
                        .map { "rank \($0)\(hosts[$0].map { " on " + $0 } ?? "")" }.joined(separator: ", ")
                    throw MPIError("no word from \(silent) for \(Int(world.timeout)) s: lost or stuck (PRISM_MPI_TIMEOUT sets the limit); the \(received.count + mine.count) shards written in \(shards.path) stay, and the same command resumes the rest")
                }
                usleep(2000)
            }
            let lost = expected.subtracting(received)
            guard lost.isEmpty else {
                throw MPIError("the workers finished without sending shards \(lost.sorted().map(String.init).joined(separator: ", ")); the same command computes them")
            }
        } catch {
            progress.clear()
            throw error
        }
        let ranks = [work()] + (1..<world.size).compactMap { finished[$0] }
        try finish(toDo: toDo, progress: &progress, shards: shards, top: top, say: say, ranks: ranks)
        let busiest = ranks.map(\.seconds).max() ?? 0
        say(String(format: "ranks: %@; in MPI %.1f%% of rank 0's time",
                   ranks.map { "\($0.rank) \($0.examples) examples" }.joined(separator: ", "),
                   100 * ranks[0].communicationSeconds / max(busiest, 1e-9)))
    }
}
