import Foundation
import Prism
import PrismTestSupport
import Testing

/// Regression models: metrics against hand computation, MSE training against the normal equations,
/// the label-column rule, targets in CSV files and the output scale folded into a saved model.
@Suite(.serialized) struct RegressionTests {
    /// scikit-learn's `r2_score` example, computed by hand: errors −0.5, 0.5, 0, 1 → Σe² = 1.5,
    /// Σ|e| = 2; ȳ = 2.875, Σ(y − ȳ)² = 29.1875.
    @Test func metricsMatchAHandComputation() throws {
        let r = try RegressionResult(predictions: [2.5, 0, 2, 8], targets: [3, -0.5, 2, 7], width: 1)
        #expect(r.count == 4)
        #expect(abs(r.mse - 0.375) <= 1e-12)
        #expect(abs(r.rmse - 0.375.squareRoot()) <= 1e-12)
        #expect(abs(r.mae - 0.5) <= 1e-12)
        #expect(abs(r.r2 - (1 - 1.5 / 29.1875)) <= 1e-12)
        // Two outputs: each output's own mean in Σ(y − ȳ)². Output 0: y 1, 3 (ȳ 2), ŷ 1, 1; output 1: y 10, 10, 40 → ȳ 20 …
        let two = try RegressionResult(predictions: [1, 10, 1, 20], targets: [1, 10, 3, 30], width: 2)
        // errors 0, 0, −2, −10: Σe² = 104, Σ|e| = 12 over 4 values; Σ(y − ȳ)² = (1 + 1) + (100 + 100) = 202.
        #expect(two.count == 2)
        #expect(abs(two.mse - 26) <= 1e-12 && abs(two.mae - 3) <= 1e-12)
        #expect(abs(two.r2 - (1 - 104.0 / 202)) <= 1e-12)
        // A constant target leaves R² undefined: NaN, written as null.
        let flat = try RegressionResult(predictions: [1, 2], targets: [5, 5], width: 1)
        #expect(flat.r2.isNaN)
        let json = String(decoding: try JSONEncoder().encode(flat), as: UTF8.self)
        #expect(json.contains("\"r2\":null"), "\(json)")
        #expect(throws: DataError.self) { try RegressionResult(predictions: [1, 2, 3], targets: [1, 2], width: 1) }
    }

    /// A Linear(3 → 1) model trained with MSE by full-batch gradient descent reaches the
    /// least-squares solution of the normal equations (AᵀA)θ = Aᵀy, solved here in Double.
    @Test func mseTrainingReachesTheLeastSquaresSolution() throws {
        let engine = try testEngine()
        let n = 40, d = 3
        let x = seededFloats(n * d, seed: 21)
        let noise = seededFloats(n, seed: 22, low: -0.3, high: 0.3)
        let y: [Float] = (0..<n).map { i in 0.8 * x[i * d] - 1.5 * x[i * d + 1] + 0.3 * x[i * d + 2] + 0.5 + noise[i] }
        // Normal equations over A = [x, 1].
        var ata = [[Double]](repeating: [Double](repeating: 0, count: d + 1), count: d + 1), aty = [Double](repeating: 0, count: d + 1)
        for i in 0..<n {
            let row = (0..<d).map { Double(x[i * d + $0]) } + [1]
            for r in 0...d {
                aty[r] += row[r] * Double(y[i])
                for c in 0...d { ata[r][c] += row[r] * row[c] }
            }
        }
        let theta = try solve(ata, aty)

        var spec = try ModelSpec.mlp(inputShape: [d], hidden: [], classes: 1)
        spec.task = .regression(outputs: ["y"])
        let model = try Model(spec: spec, seed: 5, engine: engine)
        let data = try LabeledData(features: x, targets: y, targetWidth: 1, exampleShape: [d])
        let trainer = try Trainer(model: model, config: TrainingConfig(epochs: 400, batchSize: n, learningRate: 0.1, optimizer: .sgd,
                                                                      seed: 5, momentum: 0.5))
        var last: EpochReport?
        try trainer.fit(train: data, test: data, epochEnd: { last = $0 })
        let state = try model.stateDict()
        let learned = try #require(state["1.weight"]).values + (try #require(state["1.bias"]).values)
        expectClose(learned, theta, atol: 1e-4, rtol: 1e-3, "weights and bias vs normal equations")
        let report = try #require(last)
        #expect(report.trainAccuracy == nil && report.testAccuracy == nil)
        // The least-squares residual is the smallest mean squared error; the model's is within rounding of it.
        let residual = (0..<n).reduce(0.0) { s, i in
            let e = (0..<d).reduce(theta[d]) { $0 + theta[$1] * Double(x[i * d + $1]) } - Double(y[i])
            return s + e * e
        } / Double(n)
        let result = try evaluateRegression(model, on: data)
        #expect(abs(result.mse - residual) <= 1e-5, "mse \(result.mse) vs least squares \(residual)")
        #expect(abs((report.testLoss ?? .nan) - result.mse) <= 1e-5)
        #expect(abs((report.testR2 ?? .nan) - result.r2) <= 1e-9)
    }

    /// Gaussian elimination with partial pivoting (small, well-conditioned systems).
    func solve(_ a: [[Double]], _ b: [Double]) throws -> [Double] {
        var m = a, v = b
        let n = v.count
        for k in 0..<n {
            let p = try #require((k..<n).max { abs(m[$0][k]) < abs(m[$1][k]) })
            m.swapAt(k, p)
            v.swapAt(k, p)
            for i in (k + 1)..<n {
                let f = m[i][k] / m[k][k]
                for j in k..<n { m[i][j] -= f * m[k][j] }
                v[i] -= f * v[k]
            }
        }
        var out = [Double](repeating: 0, count: n)
        for k in stride(from: n - 1, through: 0, by: -1) {
            out[k] = (v[k] - ((k + 1)..<n).reduce(0.0) { $0 + m[k][$1] * out[$1] }) / m[k][k]
        }
        return out
    }

    @Test func labelColumnRule() throws {
        func message(_ values: [Float], _ requested: ModelTask.Kind?, max: Int = 100) -> String {
            do {
                let d = try LabelColumnDecision.decide(column: "y", source: "f.csv", values: values, requested: requested, maxClasses: max)
                return "\(d.kind.rawValue) \(d.classCount.map(String.init) ?? "-")"
            } catch {
                return "\(error)"
            }
        }
        // Integers: classes 0…max, always with a note.
        let d = try LabelColumnDecision.decide(column: "y", values: [0, 2, 2, 5], requested: nil)
        #expect(d.kind == .classification && d.classCount == 6)
        #expect(d.note == "column 'y': 3 distinct integer values taken as classes 0…5 (6 classes); pass --task regression to predict it as a number instead")
        #expect(try LabelColumnDecision.decide(column: "y", values: [1, 0], requested: .classification).note
                == "column 'y': 2 distinct integer values taken as classes 0…1 (2 classes)")
        // Above the limit: refused with the count.
        #expect(message((0..<347).map { Float($0) }, nil, max: 346)
                == "f.csv: column 'y': 347 distinct integer values up to 346 would make 347 classes, more than the limit of 346 (--max-classes); for a numeric target use --task regression")
        #expect(message([0, 346], nil, max: 347) == "classification 347")
        // Non-integers (and negative values) are never classes.
        #expect(message([1, 2.5], nil).hasPrefix("f.csv: column 'y' holds values that are not class indices (2.5 at data row 2): pass --task regression"))
        #expect(message([1, -1], .classification).hasPrefix("f.csv: column 'y': value -1.0 (data row 2) is not a class index"))
        #expect(message([1, 2.5], .regression) == "regression -")
        #expect(message([3, 4], .regression) == "regression -")
    }

    @Test func csvTargetsAndClasses() throws {
        let path = NSTemporaryDirectory() + "prism-csv-\(UUID().uuidString).csv"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "a,t\n1,151\n2,75.5\n3,-2\n".write(toFile: path, atomically: true, encoding: .utf8)
        let table = try TabularDataset.loadRegressionCSV(path: path, target: "t")
        #expect(table.targets == [151, 75.5, -2] && table.labels.isEmpty && table.count == 3)
        #expect(throws: DataError.self) { try table.classified(source: "f.csv") }
        let t = try #require(table.targetStandardization())
        let mean = (151 + 75.5 - 2) / 3.0
        let std = (([151, 75.5, -2] as [Double]).reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 3).squareRoot()
        expectClose(t.mean + t.std, [mean, std], atol: 1e-4, rtol: 1e-6)
        let z = try table.targetsStandardized(with: t)
        expectClose(z.targets ?? [], [151, 75.5, -2].map { ($0 - mean) / std }, atol: 1e-5)
        let data = try LabeledData(table)
        #expect(data.isRegression && data.count == 3 && data.targetWidth == 1)
        #expect(try data.target(1) == [75.5] && data.example(1).label == -1)
        let ints = try TabularDataset.loadRegressionCSV(path: path, target: "a").classified(source: "f.csv")
        #expect(ints.labels == [1, 2, 3] && ints.classCount == 4 && ints.targets == nil)
    }

    /// A spec written before tasks were stored decodes as a classifier; a regression task round-trips.
    @Test func specsWithoutATaskAreClassifiers() throws {
        let old = try ModelSpec.mlp(inputShape: [4], hidden: [8], classes: 3)
        let json = try old.json()
        #expect(!json.contains("task"))
        let decoded = try ModelSpec.decode(json: json)
        #expect(decoded.task == nil && decoded.resolvedTask == .classification(classes: nil) && !decoded.isRegression)
        var spec = old
        spec.task = .regression(outputs: ["target"])
        #expect(try ModelSpec.decode(json: try spec.json()) == spec)
        #expect(try ModelSpec.decode(json: try spec.json()).isRegression)
    }

    /// `save(outputAffine:)` writes a model whose outputs are scale · y + shift of the original's.
    @Test func outputScaleIsFoldedIntoTheSavedModel() throws {
        let engine = try testEngine()
        var spec = try ModelSpec.mlp(inputShape: [5], hidden: [7], classes: 2)
        spec.task = .regression(outputs: ["u", "v"])
        let model = try Model(spec: spec, seed: 11, engine: engine)
        let x = try Tensor(seededFloats(3 * 5, seed: 12), shape: [3, 5], engine: engine)
        let before = try engine.noGrad { try model(x).toArray() }
        let path = temporaryPath("affine.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try model.save(path: path, outputAffine: (scale: [76.5, 0.5], shift: [152, -3]))
        let (reloaded, _) = try Model.load(path: path, engine: engine)
        let after = try engine.noGrad { try reloaded(x).toArray() }
        let expected = before.enumerated().map { i, y in Double(y) * (i % 2 == 0 ? 76.5 : 0.5) + (i % 2 == 0 ? 152 : -3) }
        expectClose(after, expected, atol: 1e-4, rtol: 1e-5, "folded outputs")
        #expect(throws: TensorError.self) { try model.save(path: path, outputAffine: (scale: [1], shift: [0])) }
    }

    /// A classifier refuses numeric targets and a regression model class labels.
    @Test func trainerRefusesTheOtherKindOfTarget() throws {
        let engine = try testEngine()
        var spec = try ModelSpec.mlp(inputShape: [2], hidden: [], classes: 1)
        spec.task = .regression(outputs: ["y"])
        let regression = try Trainer(model: try Model(spec: spec, seed: 1, engine: engine), config: TrainingConfig(epochs: 1))
        let labels = try LabeledData(features: [0, 1, 2, 3], labels: [0, 0], exampleShape: [2], classCount: 1)
        #expect(throws: DataError.self) { try regression.fit(train: labels) }
        let classifier = try Trainer(model: try Model(spec: try ModelSpec.mlp(inputShape: [2], hidden: [], classes: 1), seed: 1, engine: engine),
                                     config: TrainingConfig(epochs: 1))
        let values = try LabeledData(features: [0, 1, 2, 3], targets: [0.5, 1.5], targetWidth: 1, exampleShape: [2])
        #expect(throws: DataError.self) { try classifier.fit(train: values) }
        #expect(throws: DataError.self) { try evaluate(classifier.model, on: values) }
    }
}
