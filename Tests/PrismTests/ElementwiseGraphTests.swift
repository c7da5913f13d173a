import Foundation
import Prism
import PrismGraph
import PrismReference
import PrismTestSupport
import Testing

/// PReLU against its reference, and the element-wise graph ops (binary with a second value or a
/// constant buffer, unary functions, hardsigmoid, hardtanh, prelu) built from a description and run
/// through `Model`: outputs against plain-Swift references, input gradients against finite differences.
@Suite struct ElementwiseGraphTests {
    struct PReLUCase: CustomStringConvertible, Sendable {
        var shape: [Int]
        var channels: Int
        var description: String { "x\(shape) w[\(channels)]" }
    }

    @Test(arguments: [PReLUCase(shape: [3, 5, 7, 2], channels: 5), PReLUCase(shape: [4, 1], channels: 1),
                      PReLUCase(shape: [2, 3, 33], channels: 3), PReLUCase(shape: [2, 7, 3, 7], channels: 1),
                      PReLUCase(shape: [31, 7], channels: 7)])
    func preluMatchesReference(_ cs: PReLUCase) throws {
        let engine = try testEngine()
        let x = seededFloats(cs.shape.reduce(1, *), seed: 31, low: -2, high: 2), w = seededFloats(cs.channels, seed: 32, low: -0.5, high: 0.8)
        let xt = try Tensor(x, shape: cs.shape, engine: engine, requiresGrad: true)
        let wt = try Tensor(w, shape: [cs.channels], engine: engine, requiresGrad: true)
        let y = try xt.prelu(weight: wt)
        expectClose(try y.toArray(), Reference.prelu(x: doubles(x), shape: cs.shape, weight: doubles(w)), atol: 1e-6, rtol: 1e-6, "prelu \(cs)")
        let dy = seededFloats(y.count, seed: 33)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        let fdx = finiteDifferences(at: doubles(x)) { dot(doubles(dy), Reference.prelu(x: $0, shape: cs.shape, weight: doubles(w))) }
        let fdw = finiteDifferences(at: doubles(w)) { dot(doubles(dy), Reference.prelu(x: doubles(x), shape: cs.shape, weight: $0)) }
        expectClose(try #require(xt.grad).toArray(), fdx, atol: 1e-5, rtol: 1e-4, "prelu dx \(cs)")
        expectClose(try #require(wt.grad).toArray(), fdw, atol: 1e-4, rtol: 1e-4, "prelu dw \(cs)")
    }

    /// One graph under test: its nodes (reading `input` [N, 3, 4, 5] and ending in a flatten), the
    /// tensors the file gives, the input range and the plain-Swift answer for one example.
    struct GraphCase: CustomStringConvertible, Sendable {
        var name: String
        var nodes: String
        var tensors: [String: HostTensor] = [:]
        var low = -2.0, high = 2.0
        var reference: @Sendable ([Double]) -> [Double]
        var description: String { name }
    }

    static let (c, h, w) = (3, 4, 5)
    /// The channel of element i of one example [C, H, W].
    static func channel(_ i: Int) -> Int { i / (h * w) }
    /// Each channel's mean over H and W, per element.
    static func channelMeans(_ x: [Double]) -> [Double] {
        let means = (0..<c).map { k in x[(k * h * w)..<((k + 1) * h * w)].reduce(0, +) / Double(h * w) }
        return x.indices.map { means[channel($0)] }
    }
    static let perChannel: [Float] = [0.7, -1.3, 2.1], perColumn: [Float] = [0.6, 1.5, 2.5, 0.9, 1.1], scalar: Float = 1.7

    static let cases: [GraphCase] = [
        GraphCase(name: "sub, constant first [C, 1, 1]", nodes: #"{"name": "s", "op": "sub", "other_shape": [3, 1, 1], "other_first": true}"#,
                  tensors: ["s.other": HostTensor(shape: [3, 1, 1], values: perChannel)],
                  reference: { x in x.indices.map { Double(perChannel[channel($0)]) - x[$0] } }),
        GraphCase(name: "add, constant [1, C, 1, 1]", nodes: #"{"name": "s", "op": "add", "other_shape": [1, 3, 1, 1]}"#,
                  tensors: ["s.other": HostTensor(shape: [1, 3, 1, 1], values: perChannel)],
                  reference: { x in x.indices.map { x[$0] + Double(perChannel[channel($0)]) } }),
        GraphCase(name: "div by a scalar", nodes: #"{"name": "s", "op": "div", "other_shape": []}"#,
                  tensors: ["s.other": HostTensor(shape: [], values: [scalar])], reference: { x in x.map { $0 / Double(scalar) } }),
        GraphCase(name: "div, constant first [W]", nodes: #"{"name": "s", "op": "div", "other_shape": [5], "other_first": true}"#,
                  tensors: ["s.other": HostTensor(shape: [5], values: perColumn)], low: 0.5, high: 2,
                  reference: { x in x.indices.map { Double(perColumn[$0 % w]) / x[$0] } }),
        GraphCase(name: "mul by a constant [H, 1]", nodes: #"{"name": "s", "op": "mul", "other_shape": [4, 1]}"#,
                  tensors: ["s.other": HostTensor(shape: [4, 1], values: [0.5, -2, 3, 1.25])],
                  reference: { x in x.indices.map { x[$0] * [0.5, -2, 3, 1.25][($0 / w) % h] } }),
        GraphCase(name: "pow by a scalar", nodes: #"{"name": "s", "op": "pow", "other_shape": [1]}"#,
                  tensors: ["s.other": HostTensor(shape: [1], values: [scalar])], low: 0.3, high: 2,
                  reference: { x in x.map { Foundation.pow($0, Double(scalar)) } }),
        GraphCase(name: "pow, constant first [W]", nodes: #"{"name": "s", "op": "pow", "other_shape": [5], "other_first": true}"#,
                  tensors: ["s.other": HostTensor(shape: [5], values: perColumn)],
                  reference: { x in x.indices.map { Foundation.pow(Double(perColumn[$0 % w]), x[$0]) } }),
        GraphCase(name: "mul of two values (squeeze-excitation)", nodes: #"""
            {"name": "p", "op": "adaptiveavgpool2d", "output_size": 1}, {"name": "g", "op": "hardsigmoid"},
            {"name": "s", "op": "mul", "inputs": ["input", "g"]}
            """#, reference: { x in zip(x, Reference.hardsigmoid(x: channelMeans(x))).map { $0 * $1 } }),
        GraphCase(name: "sub, div, pow of two values", nodes: #"""
            {"name": "p", "op": "adaptiveavgpool2d", "output_size": 1}, {"name": "d", "op": "sub", "inputs": ["input", "p"]},
            {"name": "e", "op": "exp", "inputs": ["p"]}, {"name": "q", "op": "div", "inputs": ["d", "e"]},
            {"name": "s", "op": "pow", "inputs": ["e", "e"]}, {"name": "t", "op": "add", "inputs": ["q", "s"]}
            """#, reference: { x in
                let m = channelMeans(x)
                return x.indices.map { i in (x[i] - m[i]) / Foundation.exp(m[i]) + Foundation.pow(Foundation.exp(m[i]), Foundation.exp(m[i])) }
            }),
        GraphCase(name: "neg", nodes: #"{"name": "s", "op": "neg"}"#, reference: { $0.map { -$0 } }),
        GraphCase(name: "sqrt", nodes: #"{"name": "s", "op": "sqrt"}"#, low: 0.1, high: 3, reference: { $0.map { $0.squareRoot() } }),
        GraphCase(name: "exp", nodes: #"{"name": "s", "op": "exp"}"#, reference: { $0.map { Foundation.exp($0) } }),
        GraphCase(name: "log", nodes: #"{"name": "s", "op": "log"}"#, low: 0.1, high: 3, reference: { $0.map { Foundation.log($0) } }),
        GraphCase(name: "erf", nodes: #"{"name": "s", "op": "erf"}"#, reference: { $0.map { Foundation.erf($0) } }),
        GraphCase(name: "reciprocal", nodes: #"{"name": "s", "op": "reciprocal"}"#, low: 0.3, high: 3, reference: { $0.map { 1 / $0 } }),
        GraphCase(name: "hardsigmoid", nodes: #"{"name": "s", "op": "hardsigmoid"}"#, low: -4, high: 4, reference: { Reference.hardsigmoid(x: $0) }),
        GraphCase(name: "hardsigmoid 0.2 0.5", nodes: #"{"name": "s", "op": "hardsigmoid", "alpha": 0.2, "beta": 0.5}"#, low: -4, high: 4,
                  reference: { Reference.hardsigmoid(x: $0, alpha: 0.2, beta: 0.5) }),
        GraphCase(name: "hardtanh", nodes: #"{"name": "s", "op": "hardtanh", "min_val": -0.5, "max_val": 0.75}"#,
                  reference: { Reference.hardtanh(x: $0, minValue: -0.5, maxValue: 0.75) }),
        GraphCase(name: "prelu", nodes: #"{"name": "s", "op": "prelu", "num_parameters": 3}"#,
                  tensors: ["s.weight": HostTensor(shape: [3], values: perChannel)],
                  reference: { Reference.prelu(x: $0, shape: [1, c, h, w], weight: doubles(perChannel)) }),
    ]

    @Test(arguments: cases)
    func graphOpMatchesReference(_ cs: GraphCase) throws {
        let engine = try testEngine()
        let n = Self.c * Self.h * Self.w, batch = 2
        let json = #"{"format": 2, "input_shape": [3, 4, 5], "outputs": 60, "nodes": ["# + cs.nodes + #", {"name": "flat", "op": "flatten"}]}"#
        let spec = try ModelSpec.decode(json: json)
        try spec.validate()
        let model = try Model(spec: spec, seed: 3, engine: engine)
        try model.loadStateDict(cs.tensors)
        let x = seededFloats(batch * n, seed: 34, low: cs.low, high: cs.high)
        let xt = try Tensor(x, shape: [batch, 3, 4, 5], engine: engine, requiresGrad: true)
        let y = try model(xt)
        let examples = (0..<batch).map { doubles(Array(x[($0 * n)..<(($0 + 1) * n)])) }
        expectClose(try y.toArray(), examples.flatMap(cs.reference), atol: 1e-5, rtol: 1e-5, "\(cs) forward")
        let dy = seededFloats(batch * n, seed: 35)
        try y.backward(try Tensor(dy, shape: [batch, n], engine: engine))
        let fd = (0..<batch).flatMap { e in
            finiteDifferences(at: examples[e]) { dot(doubles(Array(dy[(e * n)..<((e + 1) * n)])), cs.reference($0)) }
        }
        expectClose(try #require(xt.grad).toArray(), fd, atol: 1e-4, rtol: 1e-4, "\(cs) input gradient")
    }

    /// Before a file sets them, a constant operand is the op's identity (0 for add and sub, 1 for the
    /// others) and PReLU's weight is `init` (0.25 by default).
    @Test func unsetBuffersAndParametersStartAtTheirDefaults() throws {
        let json = #"""
            {"format": 2, "input_shape": [3, 4, 5], "outputs": 60, "nodes": [
              {"name": "a", "op": "sub", "other_shape": [3, 1, 1]}, {"name": "m", "op": "pow", "other_shape": [5], "other_first": true},
              {"name": "p", "op": "prelu", "num_parameters": 3, "init": 0.1}, {"name": "q", "op": "prelu"}, {"name": "flat", "op": "flatten"}]}
            """#
        let state = try Model(spec: try ModelSpec.decode(json: json), seed: 1, engine: try testEngine()).stateDict()
        #expect(state["a.other"] == HostTensor(shape: [3, 1, 1], values: [0, 0, 0]) && state["m.other"] == HostTensor(shape: [5], values: [1, 1, 1, 1, 1]))
        #expect(state["p.weight"] == HostTensor(shape: [3], values: [0.1, 0.1, 0.1]) && state["q.weight"] == HostTensor(shape: [1], values: [0.25]))
        #expect(state.count == 4)
    }

    @Test func descriptionsThatDoNotFitAreRefused() throws {
        func message(_ node: String) -> String {
            let json = #"{"format": 2, "input_shape": [3, 4, 5], "outputs": 60, "nodes": ["# + node + #", {"name": "flat", "op": "flatten"}]}"#
            do { try ModelSpec.decode(json: json, source: "m.json").validate(); return "no error" } catch { return "\(error)" }
        }
        #expect(message(#"{"name": "s", "op": "mul", "other_shape": [2, 3, 1, 1]}"#)
            == "model: node 0 's' (mul): other_shape [2, 3, 1, 1] does not broadcast over the input [3, 4, 5], input shape [3, 4, 5]")
        #expect(message(#"{"name": "s", "op": "sub", "other_shape": [4]}"#)
            == "model: node 0 's' (sub): other_shape [4] does not broadcast over the input [3, 4, 5], input shape [3, 4, 5]")
        #expect(message(#"{"name": "s", "op": "div", "inputs": ["input", "input"], "other_first": true}"#)
            .contains("other_shape and other_first are for a node with one input"))
        #expect(message(#"{"name": "s", "op": "prelu", "num_parameters": 4}"#).contains("num_parameters 4 must be 1 or the channel count"))
        #expect(message(#"{"name": "s", "op": "hardtanh", "min_val": 2}"#).contains("needs min_val ≤ max_val, got 2.0 and 1.0"))
    }
}
