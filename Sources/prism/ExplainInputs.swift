import ArgumentParser
import Foundation
import Prism
import PrismFormats

/// Models of several inputs (token ids and an attention mask) and of integer inputs on the command
/// line: which input is explained, the values of the others, and the token that hides a token.
struct ModelInputOptions: ParsableArguments {
    @Option(help: "ONNX models of several inputs: the input to explain, by its name in the graph (default: the first, e.g. input_ids).")
    var explainInput: String?

    @Option(help: ArgumentHelp("The model's other inputs: NAME=FILE.npy, repeated (an attention mask beside token ids): one row per example of --input, or one row for all.", valueName: "name=file"))
    var extraInput: [String] = []

    @Option(parsing: .unconditional, help: "Integer inputs (token ids): the id that hides a token for the SHAP methods (the padding or mask token), when no --background-data is given.")
    var baselineToken: Int?

    /// `--extra-input` as name → path.
    /// - Throws: `ValidationError` for an entry without `=` or a name given twice.
    func extraInputPaths() throws -> [String: String] {
        var paths: [String: String] = [:]
        for entry in extraInput {
            guard let eq = entry.firstIndex(of: "="), eq != entry.startIndex, entry.index(after: eq) != entry.endIndex else {
                throw ValidationError("--extra-input '\(entry)' is not NAME=FILE")
            }
            let name = String(entry[..<eq])
            guard paths[name] == nil else { throw ValidationError("--extra-input \(name) is given twice") }
            paths[name] = String(entry[entry.index(after: eq)...])
        }
        return paths
    }

    /// The values of the model's extra inputs for `count` examples, from `--extra-input` files:
    /// per input, `count` rows of its shape (or one row, repeated).
    /// - Throws: `ValidationError` naming an input that the model lacks or that is not given;
    ///   `DataError` naming the file whose shape or values do not fit.
    func extraInputs(of model: Model, count: Int) throws -> [String: ExtraInputValues] {
        let paths = try extraInputPaths(), wanted = model.extraInputs
        for name in paths.keys.sorted() where !wanted.contains(where: { $0.name == name }) {
            let has = wanted.isEmpty ? "the model has one input" : "its other inputs are \(wanted.map(\.name).joined(separator: ", "))"
            throw ValidationError("--extra-input \(name): the model has no input of that name; \(has)")
        }
        var values: [String: ExtraInputValues] = [:]
        for input in wanted {
            guard let path = paths[input.name] else {
                throw ValidationError("the model also takes '\(input.name)' ([batch] + \(input.shape), \(input.type.rawValue)): give --extra-input \(input.name)=FILE.npy")
            }
            let array = try NumPyArray.read(path: path)
            let per = input.shape.reduce(1, *)
            let rows: Int
            if array.shape == input.shape || array.shape == [1] + input.shape {
                rows = 1
            } else if array.shape == [count] + input.shape {
                rows = count
            } else {
                throw DataError("\(path): shape \(array.shape); input '\(input.name)' takes \(input.shape) per example, so [\(count)] + \(input.shape) or one example")
            }
            var flat = (0..<(rows * per)).map { array.double(at: $0) }
            if input.type.isInteger {
                if let bad = flat.firstIndex(where: { $0.rounded() != $0 || abs($0) > 2_147_483_647 }) {
                    throw DataError("\(path): value \(flat[bad]) at \(bad) is not a 32-bit integer; input '\(input.name)' holds \(input.type.rawValue) values")
                }
            }
            if rows == 1 { flat = Array([[Double]](repeating: flat, count: count).joined()) }
            values[input.name] = ExtraInputValues(type: input.type, perExample: per, values: flat)
        }
        return values
    }
}

/// One extra input's values for every example of a run.
struct ExtraInputValues {
    var type: ElementType
    var perExample: Int
    /// [examples] × perExample.
    var values: [Double]

    /// Example `i`'s values.
    func example(_ i: Int) -> Model.BoundInput {
        Model.BoundInput(values: Array(values[(i * perExample)..<((i + 1) * perExample)]), type: type)
    }
}

extension Model {
    /// Runs `body` with example `i`'s extra inputs bound (see `bind(_:)`); nothing is bound for a
    /// model of one input.
    func withInputs<T>(of i: Int, _ extra: [String: ExtraInputValues], _ body: () throws -> T) throws -> T {
        if extra.isEmpty { return try body() }
        try bind(extra.mapValues { $0.example(i) })
        defer { try? bind(nil) }
        return try body()
    }
}
