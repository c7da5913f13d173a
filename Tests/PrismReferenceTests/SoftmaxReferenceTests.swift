import Foundation
import PrismReference
import PrismTestSupport
import Testing

@Suite struct SoftmaxReferenceTests {
    @Test func valuesByHand() {
        expectClose(Reference.softmax(x: [0, 0, 1000, 1000], classes: 2), [0.5, 0.5, 0.5, 0.5], atol: 0, rtol: 1e-13, "softmax")
        expectClose(Reference.logSoftmax(x: [1, 2], classes: 2), [1 - (2 + log(1 + exp(-1))), -log(1 + exp(-1))], atol: 1e-15, rtol: 1e-14, "log-softmax")
        expectClose([Reference.crossEntropy(x: [0, 0, 0, 0], labels: [1, 0], classes: 2)], [log(2)], atol: 1e-15, rtol: 1e-14, "ce")
        #expect(Reference.mse(x: [1, 2], target: [0, 4]) == 2.5)
    }

    @Test(arguments: [2, 5])
    func softmaxBackwardsMatchFiniteDifferences(_ c: Int) {
        let x = seededFloats(3 * c, seed: 10, low: -3, high: 3).map(Double.init)
        let dy = seededFloats(3 * c, seed: 11).map(Double.init)
        let y = Reference.softmax(x: x, classes: c), ly = Reference.logSoftmax(x: x, classes: c)
        let fd = finiteDifferences(at: x) { dot(dy, Reference.softmax(x: $0, classes: c)) }
        expectClose(Reference.softmaxBackward(y: y, dy: dy, classes: c), fd, atol: 1e-8, rtol: 1e-6, "softmax")
        let lfd = finiteDifferences(at: x) { dot(dy, Reference.logSoftmax(x: $0, classes: c)) }
        expectClose(Reference.logSoftmaxBackward(y: ly, dy: dy, classes: c), lfd, atol: 1e-8, rtol: 1e-6, "log-softmax")
    }

    @Test func lossBackwardsMatchFiniteDifferences() {
        let c = 4, labels = [3, 0, 2]
        let x = seededFloats(12, seed: 12, low: -3, high: 3).map(Double.init)
        let fd = finiteDifferences(at: x) { 1.5 * Reference.crossEntropy(x: $0, labels: labels, classes: c) }
        expectClose(Reference.crossEntropyBackward(x: x, labels: labels, classes: c, dloss: 1.5), fd, atol: 1e-8, rtol: 1e-6, "ce")
        let t = seededFloats(12, seed: 13).map(Double.init)
        let mfd = finiteDifferences(at: x) { 0.5 * Reference.mse(x: $0, target: t) }
        expectClose(Reference.mseBackward(x: x, target: t, dloss: 0.5), mfd, atol: 1e-8, rtol: 1e-6, "mse")
    }
}
