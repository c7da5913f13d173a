import Foundation
import PrismTestSupport
import Testing

/// `prism demo` end to end on the image fixture: it trains and caches a model, explains with six
/// methods, writes a report whose links resolve, and reuses the cache on the next run.
@Suite(.serialized) struct DemoCLITests {
    @Test func trainsCachesExplainsAndReports() throws {
        let dir = try scratchDirectory("demo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let args = ["demo", "--device", "cpu", "--data", TrainCLITests.images, "--cache", dir + "/cache", "--examples", "2",
                    "--background", "3", "--out", dir + "/report"]
        let first = try runPrism(args)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("training cnn") && first.stdout.contains("open \(dir)/report/index.html"), "\(first.stdout)")
        let cached = try FileManager.default.contentsOfDirectory(atPath: dir + "/cache").filter { $0.hasSuffix(".safetensors") }
        #expect(cached == ["cnn-fashion-mnist-subset-1ep-seed0-normalized.safetensors"])
        // The demo's model normalizes its input as prism train's image models do.
        let header = try Data(contentsOf: URL(fileURLWithPath: dir + "/cache/" + cached[0]))
        #expect(String(decoding: header.prefix(4096), as: UTF8.self).contains("input_normalization"))

        // Shapley values and DeepSHAP add up to f(x) − E[f]; Integrated Gradients' to f(x) − f(x′) up to the quadrature error.
        // Layer Integrated Gradients, summed per position of the last convolution's output, likewise.
        for (method, tolerance) in [("kernel-shap", 1e-4), ("deepshap", 1e-4), ("ig", 5e-2), ("layer-ig", 5e-2)] {
            let doc = try ExplainDocumentReader(path: dir + "/report/explanation.json")
            let values = doc.values(method)
            let base = try #require(doc.array("base_values", of: method)?.values), outputs = try #require(doc.array("outputs", of: method)?.values)
            let shape = doc.shape(method)
            #expect(shape.count == 3 && shape[0] == 2)
            let (m, o) = (shape[1], shape[2])
            for i in 0..<2 {
                for k in 0..<o {
                    let sum = (0..<m).reduce(0.0) { $0 + values[(i * m + $1) * o + k] }
                    let scale = max(1, abs(outputs[i * o + k]))
                    #expect(abs(sum + base[i * o + k] - outputs[i * o + k]) <= tolerance * scale, "\(method) example \(i) output \(k)")
                }
            }
        }
        let html = try String(contentsOfFile: dir + "/report/index.html", encoding: .utf8)
        let links = html.components(separatedBy: "src=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
            + html.components(separatedBy: "href=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
        #expect(links.count >= 2 * 7 + 3)
        for link in links { #expect(FileManager.default.fileExists(atPath: dir + "/report/" + link), "\(link)") }
        #expect(html.contains("Kernel SHAP") && html.contains("Integrated Gradients") && html.contains("Grad-CAM") && html.contains("DeepSHAP")
                && html.contains("GradientSHAP") && html.contains("Layer Integrated Gradients") && html.contains("deletion AUC"))
        // Inside the model: the embedding of the test set, activation maximization and feature maps (linked files checked above).
        #expect(html.contains("Inside the model") && html.contains("pca.svg") && html.contains("maximize.png")
                && html.contains("feature_maps.png") && html.contains("top_examples.png"))

        let second = try runPrism(args)
        #expect(second.status == 0 && second.stdout.contains("using the cached model") && !second.stdout.contains("training cnn"), "\(second.stdout)")

        let unwritable = try runPrism(["demo", "--device", "cpu", "--data", TrainCLITests.images, "--cache", dir + "/cache2", "--out", "/proc/prism-demo"])
        #expect(unwritable.status == 1 && unwritable.stderr.hasPrefix("/proc/prism-demo: ") && unwritable.stderr.split(separator: "\n").count == 1, "\(unwritable.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/cache2"))
    }
}
