import ArgumentParser
import Foundation
import PrismMPI

/// The mpirun job this process is one rank of. `prism` loads Open MPI only when mpirun started it
/// with more than one process (OMPI_COMM_WORLD_SIZE), so a plain run needs no MPI at all.
///
/// Under mpirun, `explain` shares a whole-data-set run's shards among the ranks and `train` splits
/// every batch among them; other commands are refused. Only rank 0 writes files and prints; an
/// error on any rank is printed with its rank and host, and ends the whole job (MPI_Abort), so no
/// rank waits for one that has stopped.
enum MPIJob {
    /// This process's MPI world, once started (nil: not under mpirun, or a job of one process).
    nonisolated(unsafe) static var world: MPIWorld?

    /// The subcommands that run across the ranks of a job.
    static let commands = ["explain", "train"]

    /// Starts MPI when mpirun started this process with several others.
    /// - Throws: `ValidationError` for a subcommand that does not run across ranks; `MPIError` when
    ///   Open MPI cannot be loaded or initialized.
    static func start(subcommand: String?) throws {
        guard let size = MPIWorld.launchedSize, size > 1 else { return }
        guard let subcommand, commands.contains(subcommand) else {
            throw ValidationError("prism\(subcommand.map { " " + $0 } ?? ""): under mpirun only \(commands.joined(separator: " and ")) run across processes (\(size) were started); run it without mpirun")
        }
        world = try MPIWorld()
    }

    /// Whether this process prints and writes: rank 0 of a job, or a process alone.
    static var isLeader: Bool { (world?.rank ?? 0) == 0 }

    /// Prints `line` (an error) with this rank's label and ends the job, when under mpirun.
    static func failJob(_ line: String) {
        guard let world else { return }
        printError("\(world.label): \(line)")
        world.abort(1)
    }

    /// A test-only fault (PRISM_MPI_FAULT=RANK:K, or RANK:K:stall): once it has finished K examples,
    /// rank RANK leaves the job as a lost process would (exit status 3 without MPI_Finalize), or stops
    /// answering as a stuck one would (sleeps). Called by the ranks between shards.
    static func faultCheck(examplesDone done: Int) {
        guard let world, let text = ProcessInfo.processInfo.environment["PRISM_MPI_FAULT"] else { return }
        let parts = text.split(separator: ":")
        guard parts.count >= 2, Int(parts[0]) == world.rank, let after = Int(parts[1]), done >= after else { return }
        if parts.count > 2, parts[2] == "stall" {
            printError("\(world.label): stalling after \(done) examples (PRISM_MPI_FAULT)")
            while true { sleep(60) }
        }
        printError("\(world.label): leaving the job after \(done) examples (PRISM_MPI_FAULT)")
        _exit(3)
    }

    /// The device selection of this rank: the local rank's entry (round robin) of `--device all` or a
    /// list, or — with no `--device` and no PRISM_DEVICE — of the devices of the type the default
    /// would take (the GPUs, else the accelerators, else the CPUs). nil: `selection` as given.
    static func rankDevice(_ selection: String?) throws -> String? {
        guard let world else { return selection }
        var entries: [String]
        if selection == "all" || (selection == nil && ProcessInfo.processInfo.environment["PRISM_DEVICE"] == nil) {
            entries = try GlobalOptions.defaultTypeDevices()
        } else if let selection, selection.contains(",") {
            entries = selection.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        } else {
            return selection
        }
        guard !entries.isEmpty else { return selection }
        return entries[world.localRank % entries.count]
    }
}
