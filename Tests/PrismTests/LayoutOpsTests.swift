import Foundation
@testable import Prism
import PrismGraph
import PrismReference
import PrismTestSupport
import Testing

/// The graph ops `reshape`, `permute`, `narrow`, `matmul`, `softmax` (any axis), `log_softmax`,
/// `mean`, `sum` and `amax`, built by kind from their attributes: forward against plain-Swift
/// references, backward against finite differences of the references, at awkward sizes.
/// Node attributes from JSON text.
private func attrs(_ json: String) -> [String: JSONValue] {
    guard case let .object(o)? = try? JSONDecoder().decode(JSONValue.self, from: Data(json.utf8)) else { return ["unreadable": .string(json)] }
    return o
}

@Suite struct LayoutOpsTests {
    /// One op under test: its kind and attributes, the input shapes (with the batch) and the reference.
    struct Case: CustomStringConvertible, Sendable {
        let kind: String
        let attributes: [String: JSONValue]
        let shapes: [[Int]]
        let output: [Int]
        let reference: @Sendable ([[Double]]) -> [Double]
        var description: String { "\(kind) \(attributes) \(shapes)" }
    }

    /// softmax or log-softmax of x along `axis`, through the last-axis reference.
    static func softmax(_ x: [Double], _ shape: [Int], axis: Int, log: Bool) -> [Double] {
        var axes = Array(shape.indices)
        axes.swapAt(axis, shape.count - 1)
        let moved = Reference.permute(x: x, shape: shape, axes: axes)
        let c = shape[axis]
        let y = log ? Reference.logSoftmax(x: moved, classes: c) : Reference.softmax(x: moved, classes: c)
        return Reference.permute(x: y, shape: axes.map { shape[$0] }, axes: axes)
    }

    /// x reduced along `axes` (in descending order, so earlier axes keep their place).
    static func reduce(_ kind: Reference.Reduction, _ x: [Double], _ shape: [Int], axes: [Int]) -> [Double] {
        var (y, s) = (x, shape)
        for a in axes.sorted(by: >) {
            y = Reference.reduce(kind, x: y, shape: s, axis: a).y
            s.remove(at: a)
        }
        return y
    }

    /// [n, lead…, m, k] × [n, lead… or 1s, k, c] with the leading axes broadcast.
    static func matmul(_ a: [Double], _ b: [Double], n: Int, lead: Int, leadB: Int, m: Int, k: Int, c: Int) -> [Double] {
        var out: [Double] = []
        for e in 0..<n {
            for l in 0..<lead {
                let pa = Array(a[((e * lead + l) * m * k)..<((e * lead + l + 1) * m * k)])
                let lb = leadB == 1 ? 0 : l
                let pb = Array(b[((e * leadB + lb) * k * c)..<((e * leadB + lb + 1) * k * c)])
                out += Reference.matmul(a: pa, b: pb, m: m, n: c, k: k)
            }
        }
        return out
    }

    static let cases: [Case] = [
        Case(kind: "reshape", attributes: attrs(#"{"shape": [7, -1]}"#), shapes: [[3, 5, 7]], output: [3, 7, 5]) { $0[0] },
        Case(kind: "reshape", attributes: attrs(#"{"shape": [2, 1, 3]}"#), shapes: [[2, 6]], output: [2, 2, 1, 3]) { $0[0] },
        Case(kind: "permute", attributes: attrs(#"{"dims": [0, 3, 1, 2]}"#), shapes: [[2, 3, 5, 7]], output: [2, 7, 3, 5]) {
            Reference.permute(x: $0[0], shape: [2, 3, 5, 7], axes: [0, 3, 1, 2])
        },
        Case(kind: "permute", attributes: attrs(#"{"dims": [0, -1, -2]}"#), shapes: [[3, 4, 9]], output: [3, 9, 4]) {
            Reference.permute(x: $0[0], shape: [3, 4, 9], axes: [0, 2, 1])
        },
        Case(kind: "narrow", attributes: attrs(#"{"dim": 1, "start": 2, "length": 4}"#), shapes: [[3, 7, 5]], output: [3, 4, 5]) {
            Reference.slice(x: $0[0], shape: [3, 7, 5], axis: 1, range: 2..<6)
        },
        Case(kind: "narrow", attributes: attrs(#"{"dim": -1, "start": -3, "length": 2}"#), shapes: [[2, 3, 7]], output: [2, 3, 2]) {
            Reference.slice(x: $0[0], shape: [2, 3, 7], axis: 2, range: 4..<6)
        },
        Case(kind: "matmul", attributes: attrs("{}"), shapes: [[2, 3, 5, 7], [2, 3, 7, 4]], output: [2, 3, 5, 4]) {
            matmul($0[0], $0[1], n: 2, lead: 3, leadB: 3, m: 5, k: 7, c: 4)
        },
        Case(kind: "matmul", attributes: attrs("{}"), shapes: [[2, 3, 5, 7], [2, 1, 7, 4]], output: [2, 3, 5, 4]) {
            matmul($0[0], $0[1], n: 2, lead: 3, leadB: 1, m: 5, k: 7, c: 4)
        },
        Case(kind: "matmul", attributes: attrs("{}"), shapes: [[3, 1, 6], [3, 6, 5]], output: [3, 1, 5]) {
            matmul($0[0], $0[1], n: 3, lead: 1, leadB: 1, m: 1, k: 6, c: 5)
        },
        Case(kind: "softmax", attributes: attrs(#"{"dim": 1}"#), shapes: [[3, 5, 4]], output: [3, 5, 4]) { softmax($0[0], [3, 5, 4], axis: 1, log: false) },
        Case(kind: "softmax", attributes: attrs("{}"), shapes: [[2, 3, 7]], output: [2, 3, 7]) { softmax($0[0], [2, 3, 7], axis: 2, log: false) },
        Case(kind: "log_softmax", attributes: attrs(#"{"dim": 2}"#), shapes: [[2, 3, 5, 4]], output: [2, 3, 5, 4]) {
            softmax($0[0], [2, 3, 5, 4], axis: 2, log: true)
        },
        Case(kind: "mean", attributes: attrs(#"{"dim": [1, 3], "keepdim": true}"#), shapes: [[2, 3, 4, 5]], output: [2, 1, 4, 1]) {
            reduce(.mean, $0[0], [2, 3, 4, 5], axes: [1, 3])
        },
        Case(kind: "sum", attributes: attrs(#"{"dim": 2}"#), shapes: [[3, 5, 7]], output: [3, 5]) { reduce(.sum, $0[0], [3, 5, 7], axes: [2]) },
        Case(kind: "amax", attributes: attrs(#"{"dim": [-1, 1]}"#), shapes: [[2, 3, 5]], output: [2]) { reduce(.max, $0[0], [2, 3, 5], axes: [1, 2]) },
    ]

    @Test(arguments: cases)
    func opMatchesReference(_ c: Case) throws {
        let engine = try testEngine()
        let perExample = c.shapes.map { Array($0.dropFirst()) }
        let analysis = try #require(OpSchemaRegistry.definition(c.kind)).check(attributes: c.attributes, shapes: perExample,
                                                                               types: perExample.map { _ in .float32 })
        #expect(analysis.output == Array(c.output.dropFirst()), "\(c)")
        let op = try OpRegistry.make(c.kind, c.attributes, perExample, seed: 0, engine: engine)
        let xs = c.shapes.enumerated().map { seededFloats($0.element.reduce(1, *), seed: 31 + UInt64($0.offset)) }
        let ts = try zip(xs, c.shapes).map { try Tensor($0, shape: $1, engine: engine, requiresGrad: true) }
        let y = try op.forward(ts, training: false)
        #expect(y.shape == c.output, "\(c)")
        expectClose(try y.toArray(), c.reference(xs.map(doubles)), atol: 1e-6, rtol: 1e-5, "\(c) forward")
        let dy = seededFloats(y.count, seed: 41)
        try y.backward(try Tensor(dy, shape: y.shape, engine: engine))
        for (i, t) in ts.enumerated() {
            let fd = finiteDifferences(at: doubles(xs[i])) { point in
                var inputs = xs.map(doubles)
                inputs[i] = point
                return dot(doubles(dy), c.reference(inputs))
            }
            expectClose(try #require(t.grad).toArray(), fd, atol: 1e-5, rtol: 1e-4, "\(c) backward of input \(i)")
        }
    }

    @Test func badAttributesAreRefusedByName() throws {
        func message(_ kind: String, _ attributes: [String: JSONValue], _ shapes: [[Int]]) -> String {
            do {
                _ = try OpSchemaRegistry.definition(kind)!.check(attributes: attributes, shapes: shapes, types: shapes.map { _ in .float32 })
                return "accepted"
            } catch { return "\(error)" }
        }
        #expect(message("reshape", attrs(#"{"shape": [4, -1]}"#), [[3, 5]]) == "cannot reshape [3, 5] to [4, -1]")
        #expect(message("reshape", attrs(#"{"shape": [-1, -1]}"#), [[3, 5]]) == "shape [-1, -1] needs positive sizes and at most one -1")
        #expect(message("permute", attrs(#"{"dims": [1, 0, 2]}"#), [[3, 5]]) == "dims [1, 0, 2] move the batch axis; it must stay first")
        #expect(message("permute", attrs(#"{"dims": [0, 1, 1]}"#), [[3, 5]]) == "dims [0, 1, 1] are not a permutation of the 3 axes")
        #expect(message("narrow", attrs(#"{"dim": 1, "start": 2, "length": 4}"#), [[5]]) == "start 2 and length 4 do not fit an axis of 5")
        #expect(message("narrow", attrs(#"{"dim": 0, "start": 0, "length": 1}"#), [[5]]) == "dim 0 must name an axis after the batch axis (rank 2)")
        #expect(message("matmul", attrs(#"{}"#), [[2, 3, 4], [3, 4, 5]]) == "leading axes [2] and [3] must be equal, or all 1 on one side")
        #expect(message("matmul", attrs(#"{}"#), [[3, 4], [5, 2]]) == "inner sizes differ: [3, 4] × [5, 2]")
        #expect(message("softmax", attrs(#"{"dim": 0}"#), [[3]]) == "dim 0 must name an axis after the batch axis (rank 2)")
        #expect(message("mean", attrs(#"{"dim": [1, 1]}"#), [[3, 4]]) == "dim [1, 1] must name distinct axes")
        #expect(message("sum", attrs(#"{"dim": 3}"#), [[3, 4]]) == "dim 3 must name an axis after the batch axis (rank 3)")
    }

    /// A description using the new ops reads, round-trips through JSON and runs end to end.
    @Test func graphOfLayoutOpsRuns() throws {
        let engine = try testEngine()
        let json = #"""
        {"format": 2, "input_shape": [4, 6], "outputs": 4, "nodes": [
          {"name": "r", "op": "reshape", "shape": [4, 2, 3]},
          {"name": "p", "op": "permute", "dims": [0, 2, 1, 3]},
          {"name": "q", "op": "narrow", "inputs": ["p"], "dim": 3, "start": 1, "length": 2},
          {"name": "kk", "op": "narrow", "inputs": ["p"], "dim": 3, "start": 0, "length": 2},
          {"name": "k", "op": "permute", "dims": [0, 1, 3, 2]},
          {"name": "s", "op": "matmul", "inputs": ["q", "k"]},
          {"name": "a", "op": "log_softmax", "dim": -1},
          {"name": "m", "op": "mean", "dim": [1, 2]}]}
        """#
        let spec = try ModelSpec.decode(json: json)
        #expect(try ModelSpec.decode(json: try spec.json()) == spec)
        let model = try Model(spec: spec, seed: 0, engine: engine)
        let x = seededFloats(2 * 24, seed: 5)
        let out = try model(try Tensor(x, shape: [2, 4, 6], engine: engine)).toArray()
        // The same on the host: p[h][t][d] = x[t][h·3 + d]; s = p[:, :, 1..<3]·pᵀ; mean over h and the rows.
        var expected: [Double] = []
        for e in 0..<2 {
            var total = [Double](repeating: 0, count: 4)
            for h in 0..<2 {
                for t in 0..<4 {
                    func p(_ t: Int, _ d: Int) -> Double { Double(x[e * 24 + t * 6 + h * 3 + d]) }
                    let row = (0..<4).map { u in (0..<2).reduce(0.0) { $0 + p(t, 1 + $1) * p(u, $1) } }
                    let lse = Foundation.log(row.map { Foundation.exp($0) }.reduce(0, +))
                    for u in 0..<4 { total[u] += (row[u] - lse) / 8 }
                }
            }
            expected += total
        }
        expectClose(out, expected, atol: 1e-5, rtol: 1e-4, "graph")
    }
}
