import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

@Suite struct SaliencyTests {
    @Test(arguments: [1, 2, 64])
    func linearModelGivesTheWeights(rowsPerChunk: Int) throws {
        let engine = try testEngine()
        let linear = AttributionLinearModel(inputShape: [1, 3, 4], classes: 4, seed: 21)
        let model = try linear.model(engine)
        let x = seededFloats(3 * 12, seed: 22)
        let targets = [3, 0]
        let signed = try Saliency(model: model, absolute: false, rowsPerChunk: rowsPerChunk).explain(instances: x, targets: .classes(targets))
        let absolute = try Saliency(model: model, rowsPerChunk: rowsPerChunk).explain(instances: x, targets: .classes(targets))
        #expect(signed.instanceCount == 3 && signed.featureCount == 12 && signed.outputCount == 2)
        #expect(signed.modelEvaluations == 3 * (1 + 2))
        for i in 0..<3 {
            for (t, c) in targets.enumerated() {
                let w = (0..<12).map { linear.w(c, $0) }
                let s = closeness(attributionFloats(signed, instance: i, output: t), w, atol: 1e-6, rtol: 1e-5, label: "signed \(i) \(c)")
                #expect(s.passed, Comment(rawValue: s.message))
                let a = closeness(attributionFloats(absolute, instance: i, output: t), w.map(abs), atol: 1e-6, rtol: 1e-5, label: "abs")
                #expect(a.passed, Comment(rawValue: a.message))
                let f = closeness([Float(signed.outputs![i * 2 + t])], [linear.output(Array(x[(i * 12)..<((i + 1) * 12)]), c)],
                                  atol: 1e-5, rtol: 1e-5, label: "f(x)")
                #expect(f.passed, Comment(rawValue: f.message))
            }
        }
    }

    @Test func gradientTimesInputOnLinearModel() throws {
        let engine = try testEngine()
        let linear = AttributionLinearModel(inputShape: [12], classes: 3, seed: 23)
        let model = try linear.model(engine)
        let x = seededFloats(2 * 12, seed: 24)
        let e = try GradientTimesInput(model: model, rowsPerChunk: 1).explain(instances: x, targets: .perInstance([2, 1]))
        #expect(e.outputCount == 1)
        for (i, c) in [2, 1].enumerated() {
            let expected = (0..<12).map { linear.w(c, $0) * Double(x[i * 12 + $0]) }
            let check = closeness(attributionFloats(e, instance: i, output: 0), expected, atol: 1e-6, rtol: 1e-5)
            #expect(check.passed, Comment(rawValue: check.message))
        }
    }

    /// The device gradient of a ReLU MLP and of the reference CNN against central differences of the
    /// same network computed on the host in Double.
    @Test(arguments: ["mlp", "cnn"])
    func gradientsMatchFiniteDifferences(network: String) throws {
        let engine = try testEngine()
        let net = network == "mlp" ? try AttributionNetworks.reluMLP(engine) : try AttributionNetworks.cnn(engine)
        let reference = try ReferenceNetwork(net)
        let d = net.spec.inputShape.reduce(1, *)
        let x = seededFloats(2 * d, seed: 25)
        let e = try Saliency(model: DifferentiableModel(net), absolute: false).explain(instances: x, targets: .classes([0, 2]))
        for i in 0..<2 {
            for (t, c) in [0, 2].enumerated() {
                let fd = reference.finiteDifferenceGradient(Array(x[(i * d)..<((i + 1) * d)]), class: c)
                let check = closeness(attributionFloats(e, instance: i, output: t), fd, atol: 2e-4, rtol: 1e-3, label: "\(network) \(i) \(c)")
                #expect(check.passed, Comment(rawValue: check.message))
            }
        }
        // Parameters are left as they were: still trainable, no gradient accumulated.
        #expect(net.parameters.allSatisfy { $0.requiresGrad && $0.grad == nil })
    }

    @Test func targetsAreChecked() throws {
        let engine = try testEngine()
        let model = try AttributionLinearModel(inputShape: [4], classes: 2, seed: 1).model(engine)
        #expect(throws: ExplainError.self) { try Saliency(model: model).explain(instances: [1, 2, 3, 4], targets: .classes([2])) }
        #expect(throws: ExplainError.self) { try Saliency(model: model).explain(instances: [1, 2, 3], targets: .classes([0])) }
        #expect(throws: ExplainError.self) { try Saliency(model: model).explain(instances: [1, 2, 3, 4], targets: .perInstance([0, 1])) }
    }
}
