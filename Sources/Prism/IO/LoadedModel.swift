import Foundation

/// The metadata keys of a Prism model file (safetensors `__metadata__`), besides the architecture
/// (`Model.specMetadataKey`) and the training state (`Trainer.stateMetadataKey`).
public enum ModelFileKey {
    /// A CSV model's feature standardization (JSON `{"mean": […], "std": […]}`).
    public static let standardization = "prism.standardization"
    /// Class names of files written before the task was stored in the architecture (JSON array).
    public static let classes = "prism.classes"
    /// Where the training data came from (text).
    public static let data = "prism.data"
    /// A tabular model's feature (column) names in input order (JSON array), so CSV inputs are matched by name.
    public static let features = "prism.features"
}

/// A model file with what a caller needs next to the weights: the standardization its CSV inputs
/// take, its class or output names.
public struct LoadedModel {
    public var model: Model
    /// The file it was read from.
    public var path: String
    public var standardization: TabularDataset.Standardization?
    public var classNames: [String]?
    /// A tabular model's feature names in input order, when the file stores them.
    public var featureNames: [String]?
    /// What the outputs mean (a file without a stored task holds a classifier).
    public var task: ModelTask { model.spec.resolvedTask }

    /// Reads a model file for the commands, which feed it float32 data (images, tables, arrays; token
    /// ids of an integer input as whole numbers).
    /// - Parameter input: an ONNX model's input to explain, by name (see `Model.load`).
    /// - Throws: `DataError` naming the file: missing, unreadable, or metadata that does not fit the model.
    public init(path: String, engine: Engine, input: String? = nil) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError("\(path): no such file") }
        let (model, file) = try Model.load(path: path, input: input, engine: engine)
        self.model = model
        self.path = path
        if let json = file.metadata[ModelFileKey.standardization] {
            standardization = try? JSONDecoder().decode(TabularDataset.Standardization.self, from: Data(json.utf8))
            if standardization == nil { throw DataError("\(path): metadata '\(ModelFileKey.standardization)' is not a standardization") }
        }
        if let json = file.metadata[ModelFileKey.features] {
            featureNames = try? JSONDecoder().decode([String].self, from: Data(json.utf8))
            guard let names = featureNames, [names.count] == model.spec.inputShape else {
                throw DataError("\(path): metadata '\(ModelFileKey.features)' does not name the model's \(model.spec.inputShape) inputs")
            }
        }
        switch model.spec.resolvedTask {
        case let .classification(classes):
            // Files written before the task was stored keep their class names in 'prism.classes'.
            classNames = classes ?? file.metadata[ModelFileKey.classes].flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }
        case let .regression(outputs):
            guard outputs.count == model.spec.classCount else {
                throw DataError("\(path): the regression task names \(outputs.count) outputs, the model has \(model.spec.classCount)")
            }
        }
    }

    public func className(_ i: Int) -> String {
        if let classNames, classNames.indices.contains(i) { return classNames[i] }
        return "class \(i)"
    }

    /// The names of the outputs: class names (or `class i`) of a classifier, output names of a regression model.
    public var outputNames: [String] {
        (0..<model.spec.classCount).map { task.kind == .regression ? outputName($0) : className($0) }
    }

    /// The name of output `i` whatever the task: a class name or a regression output's name.
    public func name(ofOutput i: Int) -> String { task.kind == .regression ? outputName(i) : className(i) }

    /// The name of regression output `i`.
    public func outputName(_ i: Int) -> String {
        if case let .regression(outputs) = task, outputs.indices.contains(i) { return outputs[i] }
        return "output \(i)"
    }
}

/// What a model file that is not safetensors was written by, recognized from its first bytes.
public enum ForeignModelFile {
    /// Refuses a PyTorch pickle given where a safetensors file is expected, saying how to convert it:
    /// `torch.save`'s zip archive (`PK\x03\x04`) or a legacy pickle (protocol 2-5: `0x80 0x02`…`0x80 0x05`).
    /// - Throws: `DataError` naming the file; nothing for any other file (or one that cannot be read,
    ///   which the safetensors reader reports).
    public static func refusePyTorchPickle(path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { return }
        defer { try? handle.close() }
        let head = [UInt8]((try? handle.read(upToCount: 9)) ?? Data())
        // A safetensors file opens with its header's length (8 bytes, little-endian) and then the
        // header's "{"; a length of 0x0380 starts with the bytes of a pickle's protocol-3 mark.
        if head.count == 9, head[8] == UInt8(ascii: "{") { return }
        let kind: String
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
            kind = "a PyTorch checkpoint (torch.save's zip archive of pickles)"
        } else if head.count >= 2, head[0] == 0x80, (2...5).contains(head[1]) {
            kind = "a Python pickle (protocol \(head[1]), as torch.save wrote before PyTorch 1.6)"
        } else {
            return
        }
        throw DataError("\(path): \(kind), not a safetensors file; convert it in Python: safetensors.torch.save_file(model.state_dict(), \"m.safetensors\")")
    }
}
