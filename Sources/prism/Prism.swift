import ArgumentParser
import Foundation
import PrismCL
import PrismFiles
import PrismMPI

@main
struct PrismCommand: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "prism",
        abstract: "Train and explain neural networks on any OpenCL device.",
        version: version,
        subcommands: [DemoCommand.self, DevicesCommand.self, TrainCommand.self, EvalCommand.self, PredictCommand.self, ExplainCommand.self, ExplainTrainCommand.self, InspectCommand.self, ExportCommand.self, CompressCommand.self]
    )

    /// Parses and runs the command. A usage error (a missing or invalid option value, a failed
    /// validation) is one line on standard error and exit status 1, like every other error; help
    /// and version requests print as usual.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try parseAsRoot(arguments)
            try MPIJob.start(subcommand: arguments.first)
            try command.run()
            MPIJob.world?.finalize()
        } catch {
            if error is ExitCode || error is CleanExit || exitCode(for: error) == .success {
                // runReportingErrors has printed a failure (and ended an mpirun job).
                MPIJob.world?.finalize()
                exit(withError: error)
            }
            let message = self.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            let names = configuration.subcommands.map { $0._commandName }
            let subcommand = arguments.first.flatMap { names.contains($0) ? " \($0)" : nil } ?? ""
            let line = "\(message) (see 'prism\(subcommand) --help')"
            MPIJob.failJob(line)
            // Started by mpirun but failed before MPI: every rank has the same error; rank 0 says it.
            if MPIWorld.launchedSize ?? 1 > 1, ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"] != "0" { Foundation.exit(1) }
            printError(line)
            Foundation.exit(1)
        }
    }
}

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Device: index (1), type (gpu, cpu, accelerator) or name substring. Default: PRISM_DEVICE, else GPU > accelerator > CPU. explain, train, eval and predict also take all or a list (0,2) and share the work among those devices. Under mpirun each rank takes one device: its local rank's entry of all or the list (default: of the default type's devices).")
    var device: String?

    @Flag(name: .long, help: "Print the chosen device and driver.")
    var verbose = false

    /// The settings of this run: the environment's, with `--device` taking precedence (under mpirun,
    /// this rank's device: `MPIJob.rankDevice`).
    var settings: Settings {
        var settings = Settings.current
        if let device { settings.device = device }
        if MPIJob.world != nil, let chosen = try? MPIJob.rankDevice(device) { settings.device = chosen }
        return settings
    }

    /// The devices of `--device all` (every device of the type the default would take: the GPUs, else
    /// the accelerators, else the CPUs — alike devices give alike results) or of a comma-separated
    /// list, as selections (`0`, `gpu`); nil for one device.
    /// - Throws: `ValidationError` for an empty entry or a device named twice.
    func deviceSelections() throws -> [String]? {
        // Under mpirun every rank takes one device (`settings`).
        guard let device, MPIJob.world == nil else { return nil }
        if device == "all" {
            let chosen = try Self.defaultTypeDevices()
            return chosen.count > 1 ? chosen : nil
        }
        let parts = device.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count > 1 else { return nil }
        if parts.contains("") { throw ValidationError("--device \(device): an empty entry in the list") }
        if let twice = parts.first(where: { p in parts.filter { $0 == p }.count > 1 }) {
            throw ValidationError("--device \(device): '\(twice)' is named twice")
        }
        return parts
    }

    /// The indices (as selections) of every device of the type the default would take: the GPUs,
    /// else the accelerators, else the CPUs.
    static func defaultTypeDevices() throws -> [String] {
        let all = try Device.all()
        guard let type = [DeviceType.gpu, .accelerator, .cpu].first(where: { t in all.contains { $0.info.type == t } }) else { return [] }
        return all.indices.filter { all[$0].info.type == type }.map { "\($0)" }
    }

    /// A context on each device of `--device all` or a list (nil for one device), each printed with
    /// `--verbose`; labelled `#0 name`.
    /// - Throws: `ValidationError` when two entries open the same device.
    func contexts() throws -> [(label: String, context: Context)]? {
        guard let selections = try deviceSelections() else { return nil }
        var opened: [(label: String, context: Context)] = []
        for selection in selections {
            var settings = self.settings
            settings.device = selection
            let context = try Context(settings: settings)
            if let earlier = opened.first(where: { $0.context.device.id == context.device.id }) {
                throw ValidationError("--device \(device ?? ""): '\(selection)' opens the same device as \(earlier.label)")
            }
            if verbose { printError("device \(selection): \(context.device.info.summary)") }
            opened.append(("#\(context.device.info.index) \(context.device.info.name)", context))
        }
        return opened
    }

    /// Opens a context on the chosen device, printing it with `--verbose`.
    func context() throws -> Context {
        let context = try Context(settings: settings)
        if verbose {
            printError("device: \(context.device.info.summary)")
        }
        return context
    }
}

/// Writes one line to standard output at once (unbuffered, so lines show through a pipe as they come).
/// A failed write (a closed pipe, a full disk) ends the program with one line on standard error and
/// exit status 1.
func printLine(_ line: String) {
    do {
        try OutputFile(path: "-", allowStandardOutput: true).write(line + "\n")
    } catch {
        printError(String(describing: error))
        exit(1)
    }
}

/// Writes one line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Runs `body`, turning any thrown error into one line on standard error and exit status 1.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch {
        let text = String(describing: error)
        MPIJob.failJob(text)
        printError(text)
        throw ExitCode.failure
    }
}
