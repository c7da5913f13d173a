import Prism
import PrismReference
import PrismTestSupport
import Testing

@Suite struct DropoutTests {
    static let sizes = TestSizes.pick([1, 3, 4, 7, 31, 32, 33, 257, 1031], small: [1, 7, 33])

    @Test(arguments: [0.5, 0.1, 0.9] as [Float], sizes)
    func maskMatchesTheReferenceGenerator(_ p: Float, _ n: Int) throws {
        let engine = try testEngine()
        let seed: UInt64 = 0x1234_5678_9ABC_DEF0 &+ UInt64(n)
        let x = seededFloats(n, seed: 41)
        let xt = try Tensor(x, shape: [n], engine: engine, requiresGrad: true)
        let y = try dropout(xt, p: p, seed: seed, training: true)
        let expected = Reference.dropout(x: doubles(x), p: Double(p), seed: seed)
        expectClose(try y.toArray(), expected, atol: 0, rtol: 1e-6, "dropout p=\(p) n=\(n)")
        // The backward regenerates the same mask.
        let dy = seededFloats(n, seed: 42)
        try y.backward(try Tensor(dy, shape: [n], engine: engine))
        expectClose(try #require(xt.grad).toArray(), Reference.dropout(x: doubles(dy), p: Double(p), seed: seed),
                    atol: 0, rtol: 1e-6, "dropout dx p=\(p) n=\(n)")
    }

    /// A slice of a tensor given its first element's index draws the whole tensor's mask for its
    /// elements, at offsets inside and across Philox blocks of 4 (data-parallel training's slices).
    @Test(arguments: [0, 1, 2, 3, 4, 5, 13, 1000] as [Int])
    func offsetSlicesDrawTheWholeTensorsMask(_ offset: Int) throws {
        let engine = try testEngine()
        let (n, seed) = (37, UInt64(0xFEED_0000_0000_0001))
        let whole = seededFloats(offset + n, seed: 44)
        let full = try dropout(try Tensor(whole, shape: [offset + n], engine: engine), p: 0.4, seed: seed, training: true).toArray()
        let xt = try Tensor(Array(whole[offset...]), shape: [n], engine: engine, requiresGrad: true)
        let part = try dropout(xt, p: 0.4, seed: seed, training: true, elementOffset: UInt64(offset))
        #expect(try part.toArray() == Array(full[offset...]), "offset \(offset)")
        let expected = Reference.dropout(x: doubles(Array(whole[offset...])), p: 0.4, seed: seed, offset: UInt64(offset))
        expectClose(try part.toArray(), expected, atol: 0, rtol: 1e-6, "dropout offset \(offset)")
        // The reference's slice is its whole stream's too.
        #expect(Reference.dropoutMask(count: n, p: 0.4, seed: seed, offset: UInt64(offset))
                == Array(Reference.dropoutMask(count: offset + n, p: 0.4, seed: seed)[offset...]))
        let dy = seededFloats(n, seed: 45)
        try part.backward(try Tensor(dy, shape: [n], engine: engine))
        expectClose(try #require(xt.grad).toArray(), Reference.dropout(x: doubles(dy), p: 0.4, seed: seed, offset: UInt64(offset)),
                    atol: 0, rtol: 1e-6, "dropout dx offset \(offset)")
    }

    @Test func keptFractionIsOneMinusP() throws {
        let engine = try testEngine()
        let n = TestSizes.small ? 4096 : 1 << 20
        let ones = try Tensor.ones([n], engine: engine)
        for (p, seed) in [(0.3, 7), (0.75, 8)] as [(Float, UInt64)] {
            let y = try dropout(ones, p: p, seed: seed, training: true).toArray()
            let kept = y.filter { $0 != 0 }
            // 6 standard deviations of a binomial proportion.
            let tolerance = 6 * (Double(p) * Double(1 - p) / Double(n)).squareRoot()
            #expect(abs(Double(kept.count) / Double(n) - Double(1 - p)) <= tolerance, "p=\(p): kept \(kept.count) of \(n)")
            #expect(kept.allSatisfy { abs($0 - 1 / (1 - p)) <= 1e-6 })
        }
        // Different seeds give different masks.
        let a = try dropout(ones, p: 0.5, seed: 1, training: true).toArray()
        let b = try dropout(ones, p: 0.5, seed: 2, training: true).toArray()
        #expect(a != b)
    }

    @Test func identityWithoutTrainingOrWithPZeroAndZerosWithPOne() throws {
        let engine = try testEngine()
        let x = seededFloats(33, seed: 43)
        for (p, training) in [(Float(0.5), false), (Float(0), true)] {
            let xt = try Tensor(x, shape: [3, 11], engine: engine, requiresGrad: true)
            let y = try dropout(xt, p: p, seed: 9, training: training)
            #expect(try y.toArray() == x)
            try (try y * 2).backward(try Tensor.ones([3, 11], engine: engine))
            #expect(try #require(xt.grad).toArray() == [Float](repeating: 2, count: 33))
        }
        let xt = try Tensor(x, shape: [3, 11], engine: engine, requiresGrad: true)
        let y = try dropout(xt, p: 1, seed: 9, training: true)
        #expect(try y.toArray() == [Float](repeating: 0, count: 33))
        try y.backward(try Tensor.ones([3, 11], engine: engine))
        #expect(try #require(xt.grad).toArray() == [Float](repeating: 0, count: 33))
    }

    @Test func errorsNameTheProbability() throws {
        let engine = try testEngine()
        let x = try Tensor.zeros([2, 3], engine: engine)
        #expect(errorMessage { try dropout(x, p: 1.5, seed: 0, training: true) } == "dropout: probability 1.5 is outside [0, 1] for input [2, 3]")
        #expect(errorMessage { try dropout(x, p: -0.1, seed: 0, training: false) } == "dropout: probability -0.1 is outside [0, 1] for input [2, 3]")
    }
}
