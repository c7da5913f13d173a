import ArgumentParser
import Foundation
import Prism

/// A model file with what the CLI needs next to the weights.
struct LoadedModel {
    var model: Sequential
    var standardization: TabularDataset.Standardization?
    var classNames: [String]?

    init(path: String, engine: Engine) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError("\(path): no such file") }
        let (model, file) = try Sequential.load(path: path, engine: engine)
        self.model = model
        if let json = file.metadata[standardizationKey] {
            standardization = try? JSONDecoder().decode(TabularDataset.Standardization.self, from: Data(json.utf8))
            if standardization == nil { throw DataError("\(path): metadata '\(standardizationKey)' is not a standardization") }
        }
        classNames = file.metadata["prism.classes"].flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }
    }

    func className(_ i: Int) -> String {
        if let classNames, i < classNames.count { return classNames[i] }
        return "class \(i)"
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Accuracy, loss and the confusion matrix of a model on the test set.")

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
            let test = try dataOptions.load(standardization: loaded.standardization, needTrain: false).test
            let result = try evaluate(loaded.model, on: test)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
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
        abstract: "The top classes, with probabilities, for one test example.")

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
            let test = try dataOptions.load(standardization: loaded.standardization, needTrain: false).test
            guard (0..<test.count).contains(index) else {
                throw ValidationError("--index \(index) outside 0..<\(test.count) (the test set of \(dataOptions.sourceName))")
            }
            let example = try test.example(index)
            guard test.exampleShape == loaded.model.spec.inputShape else {
                throw DataError("data: examples have shape \(test.exampleShape), the model expects \(loaded.model.spec.inputShape)")
            }
            let x = try Tensor(example.features, shape: [1] + test.exampleShape, engine: engine)
            let probabilities = try predictProbabilities(loaded.model, x)[0]
            printLine("example \(index): true class \(example.label) (\(loaded.className(Int(example.label))))")
            for (rank, i) in probabilities.indices.sorted(by: { probabilities[$0] > probabilities[$1] }).prefix(max(1, top)).enumerated() {
                printLine(String(format: "  %d. %@ (%d)  %.4f", rank + 1, loaded.className(i), i, probabilities[i]))
            }
        }
    }
}
