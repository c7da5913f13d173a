import ArgumentParser
import Foundation
import PrismCL
import PrismFiles

@main
struct PrismCommand: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "prism",
        abstract: "Train and explain neural networks on any OpenCL device.",
        version: version,
        subcommands: [DemoCommand.self, DevicesCommand.self, TrainCommand.self, EvalCommand.self, PredictCommand.self, ExplainCommand.self, ExplainTrainCommand.self, InspectCommand.self, ExportCommand.self]
    )

    /// Parses and runs the command. A usage error (a missing or invalid option value, a failed
    /// validation) is one line on standard error and exit status 1, like every other error; help
    /// and version requests print as usual.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            if error is ExitCode || error is CleanExit || exitCode(for: error) == .success { exit(withError: error) }
            let message = self.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            let names = configuration.subcommands.map { $0._commandName }
            let subcommand = arguments.first.flatMap { names.contains($0) ? " \($0)" : nil } ?? ""
            printError("\(message) (see 'prism\(subcommand) --help')")
            Foundation.exit(1)
        }
    }
}

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Device: index (1), type (gpu, cpu, accelerator) or name substring. Default: PRISM_DEVICE, else GPU > accelerator > CPU.")
    var device: String?

    @Flag(name: .long, help: "Print the chosen device and driver.")
    var verbose = false

    /// The settings of this run: the environment's, with `--device` taking precedence.
    var settings: Settings {
        var settings = Settings.current
        if let device { settings.device = device }
        return settings
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
        printError(text)
        throw ExitCode.failure
    }
}
