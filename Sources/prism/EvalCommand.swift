import ArgumentParser
import Foundation
import Prism

/// A model file with what the CLI needs next to the weights.
struct LoadedModel {
    var model: Sequential
    /// The file it was read from.
    var path: String
    var standardization: TabularDataset.Standardization?
    var classNames: [String]?
    /// What the outputs mean (a file without a stored task holds a classifier).
    var task: ModelTask { model.spec.resolvedTask }

    init(path: String, engine: Engine) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError("\(path): no such file") }
        let (model, file) = try Sequential.load(path: path, engine: engine)
        self.model = model
        self.path = path
        if let json = file.metadata[standardizationKey] {
            standardization = try? JSONDecoder().decode(TabularDataset.Standardization.self, from: Data(json.utf8))
            if standardization == nil { throw DataError("\(path): metadata '\(standardizationKey)' is not a standardization") }
        }
        switch model.spec.resolvedTask {
        case let .classification(classes):
            // Files written before the task was stored keep their class names in 'prism.classes'.
            classNames = classes ?? file.metadata["prism.classes"].flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }
        case let .regression(outputs):
            guard outputs.count == model.spec.classCount else {
                throw DataError("\(path): the regression task names \(outputs.count) outputs, the model has \(model.spec.classCount)")
            }
        }
    }

    func className(_ i: Int) -> String {
        if let classNames, classNames.indices.contains(i) { return classNames[i] }
        return "class \(i)"
    }

    /// The name of regression output `i`.
    func outputName(_ i: Int) -> String {
        if case let .regression(outputs) = task, outputs.indices.contains(i) { return outputs[i] }
        return "output \(i)"
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "A classifier's accuracy, loss and confusion matrix, or a regression model's RMSE, MAE and R², on the test set.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var dataOptions: DataOptions

    @Option(help: "The model file (safetensors written by prism train).")
    var model: String

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        try runReportingErrors {
            let engine = Engine(context: try global.context())
            let loaded = try LoadedModel(path: model, engine: engine)
            let test = try dataOptions.load(for: loaded).test
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            if loaded.task.kind == .regression {
                let result = try evaluateRegression(loaded.model, on: test)
                if json {
                    printLine(String(decoding: try encoder.encode(result), as: UTF8.self))
                    return
                }
                let names = (0..<loaded.model.spec.classCount).map { "'\(loaded.outputName($0))'" }.joined(separator: ", ")
                printLine(String(format: "%@ on %@ (regression, %@): RMSE %.4f, MAE %.4f, R² %.4f over %d examples", model, dataOptions.sourceName,
                                 names, result.rmse, result.mae, result.r2, result.count))
                return
            }
            let result = try evaluate(loaded.model, on: test)
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

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "The top classes, with probabilities, or a regression model's output values, for one test example.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var dataOptions: DataOptions

    @Option(help: "The model file (safetensors written by prism train).")
    var model: String

    @Option(help: "Index of the example in the test set.")
    var index: Int = 0

    @Option(help: "How many classes to print.")
    var top: Int = 3

    func run() throws {
        try runReportingErrors {
            let engine = Engine(context: try global.context())
            let loaded = try LoadedModel(path: model, engine: engine)
            let test = try dataOptions.load(for: loaded).test
            guard (0..<test.count).contains(index) else {
                throw ValidationError("--index \(index) outside 0..<\(test.count) (the test set of \(dataOptions.sourceName))")
            }
            let example = try test.example(index)
            guard test.exampleShape == loaded.model.spec.inputShape else {
                throw DataError("data: examples have shape \(test.exampleShape), the model expects \(loaded.model.spec.inputShape)")
            }
            let x = try Tensor(example.features, shape: [1] + test.exampleShape, engine: engine)
            if loaded.task.kind == .regression {
                let values = try engine.noGrad { try loaded.model(x).toArray() }
                let truth = try test.target(index)
                printLine("example \(index): " + truth.indices.map { String(format: "true '%@' %.4g", loaded.outputName($0), truth[$0]) }.joined(separator: ", "))
                for (i, v) in values.enumerated() { printLine(String(format: "  output '%@': %.4g", loaded.outputName(i), v)) }
                return
            }
            let probabilities = try predictProbabilities(loaded.model, x)[0]
            printLine("example \(index): true class \(example.label) (\(loaded.className(Int(example.label))))")
            for (rank, i) in probabilities.indices.sorted(by: { probabilities[$0] > probabilities[$1] }).prefix(max(1, top)).enumerated() {
                printLine(String(format: "  %d. %@ (%d)  %.4f", rank + 1, loaded.className(i), i, probabilities[i]))
            }
        }
    }
}
