import Foundation
import Testing
@testable import Prism
import PrismTestSupport

/// Graphs with integer values: token ids through an embedding, comparisons, where and casts; each
/// against the same computation on the host, with the types checked when the description is read.
@Suite struct GraphTypedTests {
    static let tokens = #"""
    {"format": 2, "input_shape": [6], "input_dtype": "int64", "outputs": 3, "nodes": [
      {"name": "emb", "op": "embedding", "num_embeddings": 11, "embedding_dim": 4},
      {"name": "flat", "op": "flatten"},
      {"name": "fc", "op": "linear", "in_features": 24, "out_features": 3}]}
    """#

    /// logits = W·flatten(E[ids]) + b, and ∂ Σ logit[target] / ∂E[v] = Σ over the positions p holding
    /// v of W[target, p·D ..< (p+1)·D] — a repeated id collects every position's share.
    @Test func tokenIdsThroughAnEmbedding() throws {
        let engine = try testEngine()
        let spec = try ModelSpec.decode(json: Self.tokens)
        let again = try ModelSpec.decode(json: try spec.json())
        #expect(spec.inputType == .int64 && again == spec)
        let model = try Model(spec: spec, seed: 7, engine: engine)
        let ids: [Int64] = [3, 0, 10, 3, 3, 7, 1, 1, 2, 9, 10, 0]
        let output = try model.forward(try IntTensor(ids, shape: [2, 6], engine: engine)).output
        let logits = try output.toArray()
        let table = try (model.ops[0] as! Embedding).weight.toArray()
        let fc = model.ops[2] as! Linear
        let w = try fc.weight.toArray(), b = try fc.bias!.toArray()
        for n in 0..<2 {
            for c in 0..<3 {
                var z = Double(b[c])
                for p in 0..<6 { for j in 0..<4 { z += Double(w[c * 24 + p * 4 + j]) * Double(table[Int(ids[n * 6 + p]) * 4 + j]) } }
                expectClose([logits[n * 3 + c]], [z], "logit \(n), \(c)")
            }
        }
        let targets = [2, 0]
        var seed = [Float](repeating: 0, count: 6)
        for (n, t) in targets.enumerated() { seed[n * 3 + t] = 1 }
        try output.backward(try Tensor(seed, shape: [2, 3], engine: engine))
        let grad = try #require((model.ops[0] as! Embedding).weight.grad).toArray()
        var expected = [Double](repeating: 0, count: 44)
        for n in 0..<2 {
            for p in 0..<6 { for j in 0..<4 { expected[Int(ids[n * 6 + p]) * 4 + j] += Double(w[targets[n] * 24 + p * 4 + j]) } }
        }
        expectClose(grad, expected, "embedding gradient")
        // Ids as float32 whole numbers (as explainers' perturbations pass them) give the same output;
        // a float that is not a whole number is refused by position.
        let asFloats = try engine.noGrad { try model.forward(try Tensor(ids.map { Float($0) }, shape: [2, 6], engine: engine)).output.toArray() }
        let asInts = try engine.noGrad { try model.forward(try IntTensor(ids, shape: [2, 6], engine: engine)).output.toArray() }
        #expect(asFloats == asInts)
        #expect(throws: TensorError("model: the input takes int64 values; element 3 is 1.5, not a whole number")) {
            try model.forward(try Tensor([0, 1, 2, 1.5, 0, 0], shape: [1, 6], engine: engine))
        }
        #expect(throws: TensorError.self) { try model.forward(try IntTensor([Int64](repeating: 11, count: 6), shape: [1, 6], engine: engine)) }
    }

    /// max(a, b) as where(gt(a, b), a, b), and trunc(x) as a cast to int64 and back.
    @Test func comparisonsWhereAndCasts() throws {
        let engine = try testEngine()
        let json = #"""
        {"format": 2, "input_shape": [5], "outputs": 4, "nodes": [
          {"name": "a", "op": "linear", "inputs": ["input"], "in_features": 5, "out_features": 4},
          {"name": "t", "op": "cast", "inputs": ["input"], "dtype": "int64"},
          {"name": "tf", "op": "cast", "dtype": "float32"},
          {"name": "b", "op": "linear", "in_features": 5, "out_features": 4},
          {"name": "m", "op": "gt", "inputs": ["a", "b"]},
          {"name": "max", "op": "where", "inputs": ["m", "a", "b"]}]}
        """#
        let model = try Model(spec: try ModelSpec.decode(json: json), seed: 2, engine: engine)
        let x: [Float] = [0.4, -2.7, 3.9, -0.2, 1.5, 2.2, -1.1, 0.05, -3.6, 0.9]
        let out = try model(try Tensor(x, shape: [2, 5], engine: engine)).toArray()
        let a = model.ops[0] as! Linear, b = model.ops[3] as! Linear
        let wa = try a.weight.toArray(), ba = try a.bias!.toArray(), wb = try b.weight.toArray(), bb = try b.bias!.toArray()
        for n in 0..<2 {
            let truncated = x[(n * 5)..<(n * 5 + 5)].map { Double($0.rounded(.towardZero)) }
            for o in 0..<4 {
                let za = (0..<5).reduce(Double(ba[o])) { $0 + Double(wa[o * 5 + $1]) * Double(x[n * 5 + $1]) }
                let zb = (0..<5).reduce(Double(bb[o])) { $0 + Double(wb[o * 5 + $1]) * truncated[$1] }
                expectClose([out[n * 4 + o]], [max(za, zb)], "max \(n), \(o)")
            }
        }
        #expect(throws: TensorError.self) { try model.forward(try Tensor.zeros([1, 5], engine: engine), capture: ["m"]) }
        #expect(throws: TensorError.self) { try model.values(try Tensor.zeros([1, 5], engine: engine)) }
    }

    @Test func typesAreCheckedWhenTheDescriptionIsRead() throws {
        func message(_ json: String) -> String {
            do { try ModelSpec.decode(json: json).validate(); return "no error" } catch { return "\(error)" }
        }
        #expect(message(#"{"format": 2, "input_shape": [6], "outputs": 3, "nodes": [{"name": "emb", "op": "embedding", "num_embeddings": 4, "embedding_dim": 2}]}"#)
            == "model: node 0 'emb' (embedding): takes int64 or int32 ids, got float32, input shape [6]")
        #expect(message(#"{"format": 2, "input_shape": [3], "input_dtype": "int64", "outputs": 3, "nodes": [{"name": "r", "op": "relu"}]}"#)
            == "model: node 0 'r' (relu): takes float32 inputs, got int64 (cast it first), input shape [3]")
        #expect(message(#"{"format": 2, "input_shape": [3], "outputs": 3, "nodes": [{"name": "c", "op": "cast", "dtype": "int32"}]}"#)
            == "model: the output node 'c' gives int32 values; the outputs must be float32")
        #expect(message(#"{"format": 2, "input_shape": [3], "outputs": 3, "nodes": [{"name": "c", "op": "cast", "dtype": "int128"}]}"#)
            .hasPrefix("model: node 0 'c' (cast): attribute 'dtype'"))
        #expect(message(#"{"format": 2, "input_shape": [3], "input_dtype": "int64", "outputs": 3, "input_normalization": {"mean": [0], "std": [1]}, "nodes": [{"name": "c", "op": "cast", "dtype": "float32"}]}"#)
            == "model: input_normalization applies to float32 inputs, not int64")
    }
}
