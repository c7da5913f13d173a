import ArgumentParser
import Foundation
import Prism

extension ResizeFilter: ExpressibleByArgument {}

/// What an RGB image for a one-channel model becomes.
enum ChannelConversion: String, CaseIterable, ExpressibleByArgument {
    case luma, refuse
}

/// The user's own examples: `--input` files and how images are brought to the model's shape.
struct InputOptions: ParsableArguments {
    @Option(parsing: .upToNextOption, help: ArgumentHelp("Use these files instead of test rows: PNG or JPEG images (pixels scaled to [0, 1] as torchvision's ToTensor, resized to the model's size with --resize), .npy arrays (N×C×H×W or N×F; float32, float64 or uint8), CSV rows without a label column (columns matched to the model's features by name).", valueName: "file"))
    var input: [String] = []

    @Option(help: "Images: an RGB image for a one-channel model is reduced to luma as PIL's convert(\"L\") does, with a note (luma, the default), or refused (refuse).")
    var channelConversion: ChannelConversion = .luma

    @Option(help: "Images of another size than the model's: bilinear (antialiased, as PIL and torchvision's Resize) or none (refuse).")
    var resize: ResizeFilter = .bilinear

    /// The examples of `--input` files for `loaded`: images brought to its input shape, .npy arrays,
    /// CSV rows matched to its features by name; a tabular model's raw feature values standardized
    /// with its stored standardization (said in a note).
    /// - Throws: `DataError` naming the file; a tabular model without a stored standardization.
    func read(_ paths: [String], loaded: LoadedModel, featureNames: [String]?, label: String?) throws -> InputBatch {
        let spec = loaded.model.spec
        var batch = try InputFiles.load(paths: paths, inputShape: spec.inputShape, featureNames: featureNames,
                                        ignoring: label.map { [$0] } ?? [], channels: channelConversion == .luma ? .convert : .strict,
                                        resize: resize, integers: spec.inputType?.isInteger == true)
        if spec.inputShape.count == 1, spec.inputType?.isInteger != true {
            let what = paths.count == 1 ? (paths[0] as NSString).lastPathComponent : "\(paths.count) files"
            guard let s = loaded.standardization else {
                // Trained on .npy arrays, which are not standardized: inputs are taken as they are, as in training.
                batch.notes.append("\(what): feature values used as they are (the model stores no standardization; it was trained on unstandardized values)")
                return batch
            }
            let f = spec.inputShape[0]
            guard s.mean.count == f, s.std.count == f else {
                throw DataError("\(loaded.path): its standardization has \(s.mean.count) columns, the model \(f) inputs")
            }
            for i in batch.values.indices { batch.values[i] = (batch.values[i] - s.mean[i % f]) / s.std[i % f] }
            batch.notes.append("\(what): feature values standardized with the model's stored training-set mean and standard deviation")
        }
        return batch
    }
}
