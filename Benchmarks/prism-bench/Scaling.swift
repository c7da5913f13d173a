import ArgumentParser
import Foundation
import Prism
import PrismCL
import PrismReport

struct ScalingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaling",
        abstract: "How speed scales: SGEMM GFLOP/s over sizes, attention over sequence lengths, the SHAP evaluator over chunk sizes; JSON and SVG plots.")
    @OptionGroup var options: CommonOptions

    @Option(help: "SGEMM sizes n (n³), comma-separated.")
    var sizes: String = "64,128,256,512,1024,2048,4096"

    @Option(help: "Attention sequence lengths (B 8, H 8, d 64; forward), comma-separated.")
    var lengths: String = "128,256,512,1024,2048"

    @Option(help: "SHAP evaluator chunk sizes (model rows per forward pass), comma-separated.")
    var chunks: String = "256,1024,4096,16384"

    @Option(help: "Write the plots (scaling-sgemm.svg, scaling-attention.svg, scaling-shap.svg) into this folder.")
    var svg: String?

    func run() throws {
        try runReportingErrors {
            func list(_ text: String, _ name: String) throws -> [Int] {
                let values = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard !values.isEmpty, values.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--\(name): positive integers, comma-separated") }
                return values
            }
            let (n, t, c) = (try list(sizes, "sizes"), try list(lengths, "lengths"), try list(chunks, "chunks"))
            let bench = try options.makeBench()
            bench.peak = try measurePeak(bench)
            try benchSGEMM(bench, sizes: n, peer: false)
            try benchAttention(bench, shapes: t.map { (8, 8, $0, 64) }, backward: false)
            try benchShap(bench, chunkSizes: c, exact20: false, only: "shap_chunk")
            try options.finish(bench)
            guard let svg else { return }
            try FileManager.default.createDirectory(atPath: svg, withIntermediateDirectories: true)
            // The device's name, cut to fit a plot title ("pthread-skylake-avx512-Intel(R) Xeon(R) Processor").
            let device = bench.engine.device.name
            let shortName = device.count > 24 ? String(device.prefix(22)) + "…" : device
            func series(_ name: String, label: String, _ x: (BenchResult) -> Double?) -> LinePlot.Series? {
                let rows = bench.results.filter { $0.name == name }
                let points = rows.compactMap { r in x(r).flatMap { xv in r.gflops.map { (xv, $0) } } }
                return points.isEmpty ? nil : LinePlot.Series(name: label, x: points.map(\.0), y: points.map(\.1))
            }
            func number(in shape: String, after prefix: String) -> Double? {
                shape.split(separator: " ").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }
            }
            let plots: [(String, [LinePlot.Series?], String, String)] = [
                ("scaling-sgemm.svg", [series("sgemm", label: "Prism SGEMM") { Double($0.shape.split(separator: "x").first ?? "").map { log2($0) } }],
                 "SGEMM (\(shortName))", "log2 n (n × n × n)"),
                ("scaling-attention.svg", [series("attention_forward", label: "fused") { number(in: $0.shape, after: "T").map { log2($0) } },
                                           series("attention_materialized_forward", label: "matmul + softmax") { number(in: $0.shape, after: "T").map { log2($0) } }],
                 "Attention forward, B 8 H 8 d 64 (\(shortName))", "log2 T"),
                ("scaling-shap.svg", [series("shap_chunk", label: "cnn evaluations") { Double($0.shape.split(separator: " ").first ?? "").map { log2($0) } }],
                 "SHAP evaluator, cnn (\(shortName))", "log2 rows per chunk"),
            ]
            for (file, candidates, title, xLabel) in plots {
                let present = candidates.compactMap { $0 }
                guard !present.isEmpty else { continue }
                try LinePlot(series: present, title: title, xLabel: xLabel, yLabel: "GFLOP/s")
                    .write(to: URL(fileURLWithPath: (svg as NSString).appendingPathComponent(file)))
                say("wrote \((svg as NSString).appendingPathComponent(file))")
            }
        }
    }
}
