import ArgumentParser
import Foundation
import Prism

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "A classifier's accuracy, loss and confusion matrix, or a regression model's RMSE, MAE and R², on the test set.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var dataOptions: DataOptions

    @Option(help: "The model file: safetensors written by prism train, or an ONNX export (.onnx).")
    var model: String

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        try runReportingErrors {
            let devices = try global.contexts()
            let engine = Engine(context: try devices?.first?.context ?? global.context())
            let loaded = try LoadedModel(path: model, engine: engine)
            let test = try dataOptions.load(for: loaded).test
            // With several devices, each holds a copy of the model and takes a contiguous run of the batches.
            var models = [loaded.model]
            for device in devices?.dropFirst() ?? [] { models.append(try LoadedModel(path: model, engine: Engine(context: device.context)).model) }
            if let devices { printError("evaluating on devices " + devices.map(\.label).joined(separator: ", ") + " (the batches shared among them)") }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            if loaded.task.kind == .regression {
                let result = try evaluateRegression(models, on: test)
                if json {
                    printLine(String(decoding: try encoder.encode(result), as: UTF8.self))
                    return
                }
                let names = (0..<loaded.model.spec.classCount).map { "'\(loaded.outputName($0))'" }.joined(separator: ", ")
                printLine(String(format: "%@ on %@ (regression, %@): RMSE %.4f, MAE %.4f, R² %.4f over %d examples", model, dataOptions.sourceName,
                                 names, result.rmse, result.mae, result.r2, result.count))
                return
            }
            let result = try evaluate(models, on: test)
            if json {
                printLine(String(decoding: try encoder.encode(result), as: UTF8.self))
                return
            }
            printLine(String(format: "%@ on %@: accuracy %.4f, loss %.4f over %d examples", model, dataOptions.sourceName,
                             result.accuracy, result.loss, result.count))
            printLine("confusion matrix (rows: true class, columns: predicted):")
            let classes = result.confusion.count
            let width = max(5, String(result.confusion.flatMap { $0 }.max() ?? 0).count + 1)
            printLine(String(repeating: " ", count: 14) + (0..<classes).map { String(repeating: " ", count: max(0, width - String($0).count)) + String($0) }.joined())
            for (i, row) in result.confusion.enumerated() {
                let name = loaded.className(i).prefix(12)
                let label = name + String(repeating: " ", count: 14 - name.count)
                printLine(label + row.map { String(repeating: " ", count: max(0, width - String($0).count)) + String($0) }.joined())
            }
        }
    }
}
