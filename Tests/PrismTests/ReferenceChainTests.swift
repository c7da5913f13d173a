import Foundation
import Prism
import PrismReference
import PrismTestSupport
import Testing

/// The whole small CNN (conv–relu–pool–conv–relu–pool–linear–cross-entropy) on the device against the
/// same chain through `PrismReference`, on seeded weights and inputs: loss and every parameter gradient.
@Suite struct ReferenceChainTests {
    @Test(arguments: TestSizes.pick([1, 5], small: [2]))
    func smallCNNMatchesTheReferenceChain(batch: Int) throws {
        let engine = try testEngine()
        let model = try Model(spec: goldenSpec, seed: 11, engine: engine)
        let xs = seededFloats(batch * 196, seed: 12, low: 0, high: 1)
        let labels = (0..<batch).map { Int32(($0 * 7 + 3) % 10) }
        let x = try Tensor(xs, shape: [batch, 1, 14, 14], engine: engine, requiresGrad: true)
        let loss = try crossEntropy(try model(x), labels: labels)
        try loss.backward()

        let p = try Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.name, doubles(try $0.tensor.toArray())) })
        // Forward through the reference.
        let x0 = doubles(xs), s0 = [batch, 1, 14, 14]
        let c1 = Reference.conv2d(x: x0, xShape: s0, w: p["0.weight"]!, wShape: [4, 1, 3, 3], bias: p["0.bias"]!)
        let r1 = Reference.unary(0, x: c1.y)
        let m1 = Reference.maxPool2d(x: r1, shape: c1.shape, kernel: (2, 2), stride: (2, 2))
        let c2 = Reference.conv2d(x: m1.y, xShape: m1.shape, w: p["3.weight"]!, wShape: [8, 4, 3, 3], bias: p["3.bias"]!)
        let r2 = Reference.unary(0, x: c2.y)
        let m2 = Reference.maxPool2d(x: r2, shape: c2.shape, kernel: (2, 2), stride: (2, 2))
        let logits = Reference.linear(x: m2.y, weight: p["7.weight"]!, bias: p["7.bias"]!, rows: batch, inFeatures: 32, outFeatures: 10)
        let refLoss = Reference.crossEntropy(x: logits, labels: labels.map(Int.init), classes: 10)
        expectClose(try loss.toArray(), [refLoss], atol: 1e-6, rtol: 1e-5, "loss")

        // Backward through the reference.
        let dLogits = Reference.crossEntropyBackward(x: logits, labels: labels.map(Int.init), classes: 10)
        let fc = Reference.linearBackward(dy: dLogits, x: m2.y, weight: p["7.weight"]!, bias: p["7.bias"]!, rows: batch,
                                          inFeatures: 32, outFeatures: 10)
        let dr2 = Reference.maxPool2dBackward(dy: fc.dx, argmax: m2.argmax, inputShape: c2.shape)
        let dc2 = Reference.unaryBackward(0, x: c2.y, dy: dr2)
        let g2 = Reference.conv2dBackward(dy: dc2, x: m1.y, xShape: m1.shape, w: p["3.weight"]!, wShape: [8, 4, 3, 3])
        let dr1 = Reference.maxPool2dBackward(dy: g2.dx, argmax: m1.argmax, inputShape: c1.shape)
        let dc1 = Reference.unaryBackward(0, x: c1.y, dy: dr1)
        let g1 = Reference.conv2dBackward(dy: dc1, x: x0, xShape: s0, w: p["0.weight"]!, wShape: [4, 1, 3, 3])

        let expected: [String: [Double]] = [
            "0.weight": g1.dw, "0.bias": g1.db, "3.weight": g2.dw, "3.bias": g2.db, "7.weight": fc.dw, "7.bias": fc.db,
        ]
        for (name, tensor) in model.namedParameters {
            expectClose(try #require(tensor.grad).toArray(), try #require(expected[name]), atol: 1e-6, rtol: 1e-4, "grad \(name)")
        }
        expectClose(try #require(x.grad).toArray(), g1.dx, atol: 1e-7, rtol: 1e-4, "grad input")
    }
}
