import ArgumentParser
import Foundation
import Prism

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "The top classes, with probabilities, or a regression model's output values, for test examples or the user's files.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var inputOptions: InputOptions
    @OptionGroup var modelInputs: ModelInputOptions

    @Option(help: "The model file: safetensors written by prism train, or an ONNX export (.onnx).")
    var model: String

    @Option(parsing: .unconditional, help: "Index of the example in the test set (without --input).")
    var index: Int?

    @Option(parsing: .unconditional, help: "How many classes to print.")
    var top: Int = 3

    func validate() throws {
        if index != nil && !inputOptions.input.isEmpty { throw ValidationError("give --input or --index, not both") }
        if let index, index < 0 { throw ValidationError("--index must be at least 0") }
        if modelInputs.baselineToken != nil { throw ValidationError("--baseline-token is for prism explain (what hides a token)") }
    }

    func run() throws {
        try runReportingErrors {
            let devices = try global.contexts()
            let engine = Engine(context: try devices?.first?.context ?? global.context())
            let loaded = try LoadedModel(path: model, engine: engine, input: modelInputs.explainInput)
            let shape = loaded.model.spec.inputShape
            // The examples: files, or one test row with its true class or value.
            var names: [String], values: [Float], truths: [String?]
            if inputOptions.input.isEmpty {
                let index = self.index ?? 0
                let test = try dataOptions.load(for: loaded).test
                guard (0..<test.count).contains(index) else {
                    throw ValidationError("--index \(index) outside 0..<\(test.count) (the test set of \(dataOptions.sourceName))")
                }
                guard test.exampleShape == shape else {
                    throw DataError("data: examples have shape \(test.exampleShape), the model expects \(shape)")
                }
                let example = try test.example(index)
                (names, values) = (["example \(index)"], example.features)
                if loaded.task.kind == .regression {
                    let truth = try test.target(index)
                    truths = [truth.indices.map { String(format: "true '%@' %.4g", loaded.outputName($0), truth[$0]) }.joined(separator: ", ")]
                } else {
                    truths = ["true class \(example.label) (\(loaded.className(Int(example.label))))"]
                }
            } else {
                let batch = try inputOptions.read(inputOptions.input, loaded: loaded, featureNames: try dataOptions.featureNames(of: loaded),
                                                  label: dataOptions.label)
                for note in batch.notes { printError("note: " + note) }
                (names, values, truths) = (batch.sources, batch.values, [String?](repeating: nil, count: batch.count))
            }
            let outputs = loaded.model.spec.classCount
            let d = shape.reduce(1, *)
            // A model of several inputs runs each example with its own extra inputs (an attention mask).
            let extra = try modelInputs.extraInputs(of: loaded.model, count: names.count)
            // With several devices, each holds a copy of the model and takes a contiguous part of the examples.
            var models = [loaded.model]
            if let devices {
                guard extra.isEmpty else {
                    throw ValidationError("--device \(global.device ?? ""): a model of several inputs predicts on one device; name one")
                }
                for device in devices.dropFirst() { models.append(try LoadedModel(path: model, engine: Engine(context: device.context)).model) }
                printError("predicting on devices " + devices.map(\.label).joined(separator: ", ") + " (the examples shared among them)")
            }
            func perExample<T>(_ body: (Model, Tensor) throws -> [T]) throws -> [T] {
                if extra.isEmpty {
                    let k = models.count, n = names.count
                    let bounds = (0...k).map { $0 * n / k }
                    return try onEveryDevice(k) { j -> [T] in
                        guard bounds[j + 1] > bounds[j] else { return [] }
                        let copy = models[j]
                        return try body(copy, try Tensor(Array(values[(bounds[j] * d)..<(bounds[j + 1] * d)]), shape: [bounds[j + 1] - bounds[j]] + shape,
                                                         engine: copy.engine))
                    }.flatMap { $0 }
                }
                return try (0..<names.count).flatMap { i in
                    try loaded.model.withInputs(of: i, extra) {
                        try body(loaded.model, try Tensor(Array(values[(i * d)..<((i + 1) * d)]), shape: [1] + shape, engine: engine))
                    }
                }
            }
            if loaded.task.kind == .regression {
                let predicted = try perExample { copy, x in try copy.engine.noGrad { try copy(x).toArray() } }
                for (n, name) in names.enumerated() {
                    printLine(name + (truths[n].map { ": " + $0 } ?? ""))
                    for i in 0..<outputs { printLine(String(format: "  output '%@': %.4g", loaded.outputName(i), predicted[n * outputs + i])) }
                }
                return
            }
            let probabilities = try perExample { try predictProbabilities($0, $1) }
            for (n, name) in names.enumerated() {
                printLine(name + (truths[n].map { ": " + $0 } ?? ""))
                let p = probabilities[n]
                for (rank, i) in p.indices.sorted(by: { p[$0] > p[$1] }).prefix(max(1, top)).enumerated() {
                    printLine(String(format: "  %d. %@ (%d)  %.4f", rank + 1, loaded.className(i), i, p[i]))
                }
            }
        }
    }
}
