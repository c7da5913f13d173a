import ArgumentParser
import Foundation
import Prism
import PrismFiles
import PrismONNX

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Writes a model as an ONNX file that onnxruntime runs with the outputs prism predict reports (input normalization included).")

    @OptionGroup var global: GlobalOptions

    @Option(help: "The model file: safetensors written by prism train (or described by hand), or an ONNX export (.onnx).")
    var model: String

    @Option(help: "The ONNX file to write (opset 17; input 'input' [batch, …], output 'logits' [batch, outputs]).")
    var onnx: String

    func run() throws {
        try runReportingErrors {
            // The output is checked before any work: a folder that is missing or not writable fails first.
            let output = try OutputFile(path: onnx)
            let engine = Engine(context: try global.context())
            let loaded = try LoadedModel(path: model, engine: engine)
            let spec = loaded.model.spec
            // A tabular model's stored standardization is what predict applies to raw feature values.
            let standardization = spec.inputShape.count == 1
                ? loaded.standardization.map { ModelSpec.InputNormalization(mean: $0.mean, std: $0.std) } : nil
            // An int8-quantized model's weights stay int8 in the file (QDQ form).
            var int8: [String: ONNXExport.Int8Weight] = [:]
            if !ONNXModel.isONNX(path: model) {
                let file = try SafetensorsFile.read(path: model)
                for (name, q) in file.integerTensors where q.dtype == "I8" {
                    guard let scales = file.tensors[name + Model.int8ScaleSuffix] else { continue }
                    int8[name] = ONNXExport.Int8Weight(shape: q.shape, values: q.values.map { Int8(truncatingIfNeeded: $0) }, scales: scales.values)
                }
            }
            let bytes = try ONNXExport.serialized(spec: spec, tensors: try loaded.model.stateDict(), standardization: standardization,
                                                  int8Weights: int8, source: model)
            try output.write(bytes)
            var extras = [spec.inputNormalization.map { _ in "input normalization" }, standardization.map { _ in "feature standardization" }]
                .compactMap { $0 }
            if !int8.isEmpty { extras.append("\(int8.count) int8 weights through DequantizeLinear") }
            printLine("wrote \(onnx): ONNX opset \(ONNXExport.opset), input [batch, \(spec.inputShape.map(String.init).joined(separator: ", "))]"
                      + (extras.isEmpty ? "" : " (\(extras.joined(separator: " and ")) included)") + ", output 'logits' [batch, \(spec.classCount)]")
        }
    }
}
