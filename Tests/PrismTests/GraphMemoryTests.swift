import Prism
import PrismTestSupport
import Testing

/// A forward pass recorded for autograd (parameters require gradients) but never back-propagated
/// must free its whole graph once the output is dropped: no op's backward closure may hold its own
/// output (a cycle leaked every intermediate buffer of every taped inference, and the buffer pool
/// then allocated afresh on each call).
@Suite struct GraphMemoryTests {
    static func spec(_ name: String) throws -> (ModelSpec, [Int]) {
        switch name {
        case "mlp": (try .mlp(inputShape: [7], hidden: [5, 4], classes: 3), [3, 7])
        case "cnn": (try .cnn(height: 12, width: 12, channels: 1, classes: 3), [2, 1, 12, 12])
        default: (try .vit(height: 8, width: 8, channels: 1, classes: 3, patch: 4, dim: 8, depth: 1, heads: 2, mlpDim: 16), [2, 1, 8, 8])
        }
    }

    @Test(arguments: ["mlp", "cnn", "vit"])
    func aTapedForwardWithoutBackwardFreesItsGraph(_ name: String) throws {
        let (spec, shape) = try Self.spec(name)
        let engine = try testEngine()
        let model = try Model(spec: spec, seed: 1, engine: engine)
        let x = try Tensor(seededFloats(shape.reduce(1, *), seed: 2, low: 0, high: 1), shape: shape, engine: engine)
        weak var output: Tensor?
        do {
            let y = try model(x)
            #expect(y.requiresGrad, "\(name): the forward pass was not recorded")
            output = y
            _ = try y.toArray()
        }
        #expect(output == nil, "\(name): the output of a taped forward pass outlives its last reference")
        // Repeated taped passes reuse the pool's buffers instead of allocating new ones (when the pool
        // reuses: not with PRISM_NO_POOL, nor under the memory checker's PRISM_RETAIN_BUFFERS).
        let pool = engine.context.pool
        guard pool.capacityBytes > 0, !pool.retainsReleased else { return }
        for _ in 0..<2 { _ = try model(x).toArray() }
        let misses = pool.statistics.misses
        for _ in 0..<3 { _ = try model(x).toArray() }
        #expect(pool.statistics.misses == misses, "\(name): taped forward passes allocate afresh")
    }
}
