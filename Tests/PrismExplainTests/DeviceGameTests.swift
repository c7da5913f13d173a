import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

/// A linear model on [C, H, W] images evaluated as a convolution whose kernel covers the whole
/// image: f(z) = W·z + b, O outputs. Its coalition values have a closed form.
struct LinearImageModel {
    let c, h, w, outputs: Int
    let weight: [Float]  // [O, C·H·W]
    let bias: [Float]

    func forward(_ engine: Engine) -> (Tensor) throws -> Tensor {
        { x in
            let wt = try Tensor(weight, shape: [outputs, c, h, w], engine: engine)
            let bt = try Tensor(bias, shape: [outputs], engine: engine)
            return try conv2d(x, weight: wt, bias: bt).reshaped([x.shape[0], outputs])
        }
    }

    /// v(S) on the host in Double: mean over the background of f(x_S ∪ b_S̄).
    func value(mask: [UInt8], groups: FeatureGroups, x: [Float], background: [Float], weights: [Double]) -> [Double] {
        let d = c * h * w, n = background.count / d
        var v = [Double](repeating: 0, count: outputs)
        let total = weights.reduce(0, +)
        for r in 0..<n {
            for o in 0..<outputs {
                var sum = Double(bias[o])
                for e in 0..<d {
                    let g = Int(groups.elementFeature[e])
                    let z = g < 0 || mask[g] != 0 ? x[e] : background[r * d + e]
                    sum += Double(weight[o * d + e]) * Double(z)
                }
                v[o] += weights[r] / total * sum
            }
        }
        return v
    }
}

@Suite struct DeviceGameTests {
    @Test(arguments: [1, 7, 10_000])
    func coalitionValuesMatchTheHostAtAnyChunkSize(rowsPerChunk: Int) throws {
        let engine = try testEngine()
        let model = LinearImageModel(c: 1, h: 5, w: 6, outputs: 3, weight: seededFloats(3 * 30, seed: 1), bias: [0.5, -1, 2])
        let groups = try FeatureGroups.grid(channels: 1, height: 5, width: 6, cell: 2)  // 3 × 3 = 9 features
        #expect(groups.featureCount == 9)
        let x = seededFloats(30, seed: 2)
        let background = seededFloats(4 * 30, seed: 3)
        let weights: [Float] = [1, 2, 0.5, 3]
        let game = try DeviceGame(engine: engine, instance: x, inputShape: [1, 5, 6], background: background,
                                  backgroundWeights: weights, groups: groups, outputCount: 3, rowsPerChunk: rowsPerChunk,
                                  model: model.forward(engine))
        var rng = SeededRandom(seed: 4)
        let count = 13
        var masks: [UInt8] = [UInt8](repeating: 0, count: 9) + [UInt8](repeating: 1, count: 9)
        for _ in 2..<count { masks += (0..<9).map { _ in rng.next() % 2 == 0 ? 1 : 0 } }
        let values = try game.values(coalitions: masks, count: count)
        #expect(game.modelEvaluations == count * 4)
        for s in 0..<count {
            let expected = model.value(mask: Array(masks[(s * 9)..<((s + 1) * 9)]), groups: groups, x: x, background: background,
                                       weights: weights.map(Double.init))
            let got = values[(s * 3)..<((s + 1) * 3)].map { Float($0) }
            let check = closeness(got, expected, atol: 1e-5, rtol: 1e-5, label: "coalition \(s)")
            #expect(check.passed, Comment(rawValue: check.message))
        }
    }

    /// One draw per row (`sampledValues`): row r is f(instance r's x on S, background row b_r on S̄),
    /// the host's value with all weight on that one row, for two instances at chunk sizes that split rows.
    @Test(arguments: [1, 5, 4096])
    func sampledValuesAreOneBackgroundRowEach(rowsPerChunk: Int) throws {
        let engine = try testEngine()
        let model = LinearImageModel(c: 1, h: 5, w: 6, outputs: 3, weight: seededFloats(3 * 30, seed: 11), bias: [0.25, -1, 2])
        let groups = try FeatureGroups.grid(channels: 1, height: 5, width: 6, cell: 2)
        let xs = seededFloats(2 * 30, seed: 12), background = seededFloats(4 * 30, seed: 13)
        let game = try DeviceGame(engine: engine, instances: xs, inputShape: [1, 5, 6], background: background, groups: groups,
                                  outputCount: 3, rowsPerChunk: rowsPerChunk, model: model.forward(engine))
        var rng = SeededRandom(seed: 14)
        let rows = 11
        let masks = (0..<(rows * 9)).map { _ in UInt8(rng.next() % 2) }
        let which = (0..<rows).map { Int32($0 % 2) }, from = (0..<rows).map { Int32(($0 * 3) % 4) }
        let values = try game.sampledValues(coalitions: masks, instances: which, backgroundRows: from)
        #expect(values.count == rows * 3 && game.modelEvaluations == rows)
        for r in 0..<rows {
            let i = Int(which[r]), b = Int(from[r])
            let expected = model.value(mask: Array(masks[(r * 9)..<((r + 1) * 9)]), groups: groups, x: Array(xs[(i * 30)..<((i + 1) * 30)]),
                                       background: background, weights: (0..<4).map { $0 == b ? 1 : 0 })
            let check = closeness(values[(r * 3)..<((r + 1) * 3)].map { Float($0) }, expected, atol: 1e-5, rtol: 1e-5, label: "row \(r)")
            #expect(check.passed, Comment(rawValue: check.message))
        }
        #expect(throws: ExplainError.self) { try game.sampledValues(coalitions: masks, instances: which, backgroundRows: from.map { $0 + 4 }) }
        #expect(throws: ExplainError.self) { try game.sampledValues(coalitions: masks, instances: which.map { $0 + 2 }, backgroundRows: from) }
        #expect(throws: ExplainError.self) { try game.sampledValues(coalitions: Array(masks.dropLast()), instances: which, backgroundRows: from) }
    }

    @Test func gridAndSegmentGroups() throws {
        let grid = try FeatureGroups.grid(channels: 2, height: 28, width: 28, cell: 4)
        #expect(grid.featureCount == 49)
        #expect(grid.elementFeature[0] == 0)
        #expect(grid.elementFeature[27] == 6)         // row 0, last column → cell 6
        #expect(grid.elementFeature[28 * 4] == 7)     // row 4, column 0 → cell 7
        #expect(grid.elementFeature[784] == 0)        // second channel, same map
        let uneven = try FeatureGroups.grid(channels: 1, height: 5, width: 5, cell: 2)
        #expect(uneven.featureCount == 9)
        let seg = try FeatureGroups.segments([7, 7, 3, 9], channels: 1, height: 2, width: 2)
        #expect(seg.elementFeature == [0, 0, 1, 2])
        #expect(seg.featureCount == 3)
        #expect(throws: ExplainError.self) { try FeatureGroups.segments([1, 2, 3], channels: 1, height: 2, width: 2) }
        #expect(throws: ExplainError.self) { try FeatureGroups(elementFeature: [0, 2], featureCount: 3) }
    }

    @Test func mismatchedSizesAreNamed() throws {
        let engine = try testEngine()
        let groups = FeatureGroups.elements(4)
        do {
            _ = try DeviceGame(engine: engine, instance: [1, 2, 3, 4], inputShape: [4], background: [1, 2, 3, 4, 5],
                               groups: groups, outputCount: 1) { $0 }
            Issue.record("should fail")
        } catch let e as ExplainError {
            #expect(e.description == "explain: background of 5 values is not a whole number of rows of width 4 (model input [4])")
        }
        #expect(throws: ExplainError.self) {
            try DeviceGame(engine: engine, instance: [1, 2, 3], inputShape: [4], background: [1, 2, 3, 4], groups: groups, outputCount: 1) { $0 }
        }
        // More instances × background rows per coalition than the memory-sized chunk holds (at most
        // 65,536 rows): refused up front with the sizes, not left to fail an allocation.
        let model = try Model(spec: try ModelSpec.mlp(inputShape: [4], hidden: [], classes: 2), seed: 1, engine: engine)
        let limit = DeviceGame.defaultRowsPerChunk(device: engine.device, elementCount: 4, outputCount: 2,
                                                   activationElements: model.spec.peakActivationElements)
        let instances = limit / 300 + 1
        do {
            _ = try DeviceGame(model: model, instances: [Float](repeating: 0.5, count: 4 * instances),
                               background: [Float](repeating: 0, count: 4 * 300))
            Issue.record("should fail")
        } catch let e as ExplainError {
            #expect(e.description.hasPrefix("explain: a coalition needs \(instances) instances × 300 background rows"), "\(e)")
        }
        // With the chunk size given, the caller has chosen: it runs.
        _ = try DeviceGame(model: model, instances: [Float](repeating: 0.5, count: 4 * instances),
                           background: [Float](repeating: 0, count: 4 * 300), rowsPerChunk: 1000)
    }
}

extension DeviceGameTests {
    /// Three instances sharing each device batch: every estimator gives each instance the values,
    /// base values, outputs and standard errors of a game of its own with the same seed, at any chunk size.
    @Test(arguments: TestSizes.pick([ShapleyMethod.exact, .kernel, .leverage, .permutation, .sampling], small: [.kernel]))
    func instancesSharingABatchGetTheirOwnValues(method: ShapleyMethod) throws {
        let engine = try testEngine()
        let mlp = try SmallMLP(engine: engine)
        let instances = [mlp.instance] + (1...2).map { seededFloats(SmallMLP.features, seed: 30 + UInt64($0), low: -2, high: 2) }
        let estimator = method.estimator(budget: method == .exact ? nil : TestSizes.small ? 24 : 120, seed: 5)
        let separate = try Explanation(stacking: try instances.map {
            try estimator.explain(try DeviceGame(model: mlp.model, instance: $0, background: mlp.background))
        })
        for rows in TestSizes.pick([7, 1_000], small: [50]) {
            let joint = try DeviceGame(model: mlp.model, instances: instances.flatMap { $0 }, background: mlp.background, rowsPerChunk: rows)
            #expect(joint.instanceCount == 3 && joint.outputCount == 3 * SmallMLP.classes && joint.rowsPerCoalition == 3 * SmallMLP.backgroundRows)
            let together = try estimator.explain(joint, instances: 3)
            #expect(together.instanceCount == 3 && together.outputCount == SmallMLP.classes)
            expectClose(together.values, separate.values, atol: 1e-6, rtol: 1e-5, "\(method) values, \(rows) rows per chunk")
            expectClose(try #require(together.baseValues), try #require(separate.baseValues), atol: 1e-6, rtol: 1e-5, "base values")
            expectClose(try #require(together.outputs), try #require(separate.outputs), atol: 1e-6, rtol: 1e-5, "outputs")
            if let se = separate.standardErrors {
                expectClose(try #require(together.standardErrors), se, atol: 1e-6, rtol: 1e-4, "\(method) standard errors")
            }
            #expect(together.modelEvaluations == separate.modelEvaluations)
            // Additivity per instance (Sampling SHAP estimates each feature alone and is not additive).
            for i in 0..<3 where method != .sampling {
                for o in 0..<SmallMLP.classes { #expect(abs(try #require(together.additivityGap(instance: i, output: o))) < 1e-4) }
            }
        }
        #expect(throws: ExplainError.self) {
            try estimator.explain(try DeviceGame(model: mlp.model, instances: instances.flatMap { $0 }, background: mlp.background), instances: 2)
        }
    }
}

extension DeviceGameTests {
    /// Segmentation maps from .npy files (int64, uint8, float64; as numpy.save writes them) and JSON
    /// (nested), each equal to the in-memory map; bad files name the file and the problem.
    @Test func segmentationMapFiles() throws {
        let dir = NSTemporaryDirectory() + "prism-segments-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let labels = [5, 5, 2, 2, 5, 9, 9, 2, 0, 0, 9, 2]  // a 3×4 image
        let expected = try FeatureGroups.segments(labels, channels: 2, height: 3, width: 4)
        func npy(_ descr: String, _ size: Int, shape: String, _ encode: (Int) -> [UInt8]) throws -> String {
            var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
            header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
            var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
            bytes += Array(header.utf8)
            for l in labels { bytes += encode(l) }
            let path = dir + "/\(descr.dropFirst())-\(size).npy"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }
        let files = [
            try npy("<i8", 8, shape: "(3, 4)") { l in withUnsafeBytes(of: Int64(l).littleEndian) { Array($0) } },
            try npy("|u1", 1, shape: "(12,)") { [UInt8($0)] },
            try npy("<i4", 4, shape: "(3, 4)") { l in withUnsafeBytes(of: Int32(l).littleEndian) { Array($0) } },
        ]
        for file in files { #expect(try FeatureGroups.segments(file: file, channels: 2, height: 3, width: 4) == expected, "\(file)") }
        try writeNpy(labels.map(Double.init), shape: [3, 4], path: dir + "/f8.npy")
        #expect(try FeatureGroups.segments(file: dir + "/f8.npy", channels: 2, height: 3, width: 4) == expected)
        try "[[5, 5, 2, 2], [5, 9, 9, 2], [0, 0, 9, 2]]".write(toFile: dir + "/s.json", atomically: true, encoding: .utf8)
        #expect(try FeatureGroups.segments(file: dir + "/s.json", channels: 2, height: 3, width: 4) == expected)

        func message(_ path: String, height: Int = 3) -> String? {
            do { _ = try FeatureGroups.segments(file: path, channels: 1, height: height, width: 4); return nil } catch { return "\(error)" }
        }
        #expect(message(files[0], height: 4)?.contains("has shape [3, 4], the image needs [4, 4]") == true)
        let transposed = try npy("<i2", 2, shape: "(4, 3)") { l in withUnsafeBytes(of: Int16(l).littleEndian) { Array($0) } }
        #expect(message(transposed)?.contains("has shape [4, 3], the image needs [3, 4]") == true)
        try "[1, 2, 3]".write(toFile: dir + "/short.json", atomically: true, encoding: .utf8)
        #expect(message(dir + "/short.json")?.contains("has 3 labels, the 3×4 image needs 12") == true)
        try "[[1, true]]".write(toFile: dir + "/bool.json", atomically: true, encoding: .utf8)
        #expect(message(dir + "/bool.json")?.contains("not a JSON array of integer labels") == true)
        try "not numpy".write(toFile: dir + "/bad.npy", atomically: true, encoding: .utf8)
        #expect(message(dir + "/bad.npy")?.contains("bad.npy: not a .npy file") == true)
        #expect(message(dir + "/missing.json")?.contains("cannot read") == true)
    }

    /// Groups of tabular columns: one feature per group, the other columns features of their own after them.
    @Test func columnGroups() throws {
        let (groups, names) = try FeatureGroups.columns([("size", [3, 0]), ("colour", [2])], columnNames: ["a", "b", "c", "d", "e"])
        #expect(groups.elementFeature == [0, 2, 1, 0, 3])
        #expect(names == ["size", "colour", "b", "e"])
        #expect(throws: ExplainError.self) { try FeatureGroups.columns([("x", [0]), ("y", [0])], columnNames: ["a", "b"]) }
        #expect(throws: ExplainError.self) { try FeatureGroups.columns([("x", [2])], columnNames: ["a", "b"]) }
        #expect(throws: ExplainError.self) { try FeatureGroups.columns([("x", [])], columnNames: ["a", "b"]) }
    }
}
