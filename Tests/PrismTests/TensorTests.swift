import Prism
import PrismTestSupport
import Testing

@Suite struct TensorTests {
    @Test func creationAndReadBack() throws {
        let engine = try testEngine()
        let values = seededFloats(24, seed: 1)
        let t = try Tensor(values, shape: [2, 3, 4], engine: engine)
        #expect(t.count == 24)
        #expect(t.rank == 3)
        #expect(try t.toArray() == values)
        #expect(try Tensor.zeros([5], engine: engine).toArray() == [0, 0, 0, 0, 0])
        #expect(try Tensor.ones([2, 2], engine: engine).toArray() == [1, 1, 1, 1])
        #expect(try Tensor.full([3], 2.5, engine: engine).toArray() == [2.5, 2.5, 2.5])
        #expect(try Tensor.full([1], 7, engine: engine).item() == 7)
        #expect(throws: TensorError.self) { try Tensor([1, 2, 3], shape: [2, 2], engine: engine) }
        #expect(throws: TensorError.self) { try t.item() }
    }

    @Test func seededRandomIsReproducibleAndHasTheRightMoments() throws {
        let engine = try testEngine()
        let a = try Tensor.randn([10_000], mean: 1, std: 2, seed: 42, engine: engine).toArray()
        let b = try Tensor.randn([10_000], mean: 1, std: 2, seed: 42, engine: engine).toArray()
        let c = try Tensor.randn([10_000], mean: 1, std: 2, seed: 43, engine: engine).toArray()
        #expect(a == b)
        #expect(a != c)
        let mean = a.reduce(0, +) / Float(a.count)
        let variance = a.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(a.count)
        #expect(abs(mean - 1) < 0.06)
        #expect(abs(variance.squareRoot() - 2) < 0.06)
        let u = try Tensor.uniform([10_000], low: -3, high: 5, seed: 7, engine: engine).toArray()
        #expect(u.allSatisfy { $0 >= -3 && $0 < 5 })
        #expect(abs(u.reduce(0, +) / Float(u.count) - 1) < 0.1)
    }

    @Test func reshapeIsAViewAndChecksCounts() throws {
        let engine = try testEngine()
        let t = try Tensor(seededFloats(24, seed: 2), shape: [2, 3, 4], engine: engine)
        let r = try t.reshaped([6, -1])
        #expect(r.shape == [6, 4])
        #expect(r.storage === t.storage)
        #expect(try t.flattened().shape == [2, 12])
        #expect(try t.flattened(keepBatch: false).shape == [24])
        do {
            _ = try t.reshaped([5, 5])
            Issue.record("reshape should fail")
        } catch let error as TensorError {
            #expect(error.description == "reshape: element counts differ: [2, 3, 4] × [5, 5]")
        }
        #expect(throws: TensorError.self) { try t.reshaped([-1, -1]) }
        #expect(throws: TensorError.self) { try t.reshaped([7, -1]) }
    }

    @Test func gradientsFlowThroughViewsAndAccumulate() throws {
        let engine = try testEngine()
        let x = try Tensor(seededFloats(6, seed: 3), shape: [2, 3], engine: engine, requiresGrad: true)
        let y = try x.reshaped([6])
        #expect(!y.isLeaf)
        let g = try Tensor((1...6).map(Float.init), shape: [6], engine: engine)
        try y.backward(g, retainGraph: true)
        #expect(try x.grad?.toArray() == [1, 2, 3, 4, 5, 6])
        #expect(x.grad?.shape == [2, 3])
        try y.backward(g)
        #expect(try x.grad?.toArray() == [2, 4, 6, 8, 10, 12])
        x.zeroGrad()
        #expect(x.grad == nil)
        #expect(throws: TensorError.self) { try y.backward() }  // not a scalar
    }

    @Test func noGradRecordsNothing() throws {
        let engine = try testEngine()
        let x = try Tensor([1, 2], shape: [2], engine: engine, requiresGrad: true)
        let y = try engine.noGrad { try x.reshaped([2, 1]) }
        #expect(y.isLeaf)
        #expect(!y.requiresGrad)
        #expect(engine.isGradEnabled)
    }
}
