import COpenCL
import Foundation
@testable import PrismCL
import PrismTestSupport
import Testing

@Suite struct BufferTests {
    @Test(arguments: [0, 1, 1023, 1 << 20])
    func roundTrip(count: Int) throws {
        let context = try testContext()
        let values = seededFloats(count, seed: UInt64(count) + 1)
        let buffer = try context.buffer(values)
        #expect(buffer.count == count)
        #expect(try buffer.read() == values)
        let pending = try buffer.readAsync()
        #expect(try pending.wait() == values)
    }

    @Test func integerAndDoubleElements() throws {
        let context = try testContext()
        let ints: [Int32] = [Int32.min, -1, 0, 7, Int32.max]
        #expect(try context.buffer(ints).read() == ints)
        let doubles: [Double] = [-.pi, 0, 1e300]
        #expect(try context.buffer(doubles).read() == doubles)
    }

    @Test func subRangesReadWriteFillCopy() throws {
        let context = try testContext()
        let buffer = try context.buffer(Float.self, count: 100)
        try buffer.fill(0)
        try buffer.write([1, 2, 3], at: 10)
        try buffer.fill(9, range: 50..<53)
        #expect(try buffer.read(9..<14) == [0, 1, 2, 3, 0])
        #expect(try buffer.read(49..<54) == [0, 9, 9, 9, 0])
        let other = try context.buffer([Float](repeating: -1, count: 8))
        try other.copy(from: buffer, sourceOffset: 10, to: 2, count: 3)
        #expect(try other.read() == [-1, -1, 1, 2, 3, -1, -1, -1])
        #expect(throws: CLError.self) { try buffer.read(90..<101) }
        #expect(throws: CLError.self) { try buffer.write([1, 2], at: 99) }
        #expect(throws: CLError.self) { try other.copy(from: buffer, sourceOffset: 0, to: 7, count: 2) }
    }

    @Test func subBufferAliasesItsParent() throws {
        let context = try testContext()
        let align = max(context.device.info.memoryBaseAddressAlignBits / 8 / MemoryLayout<Float>.stride, 1)
        let parent = try context.buffer([Float](repeating: 0, count: align * 3))
        let sub = try parent.subBuffer(align..<(align + 5))
        #expect(sub.count == 5)
        try sub.write([1, 2, 3, 4, 5])
        #expect(try parent.read(align..<(align + 5)) == [1, 2, 3, 4, 5])
        #expect(try parent.read(0..<align).allSatisfy { $0 == 0 })
        if align > 1 {
            #expect(throws: CLError.self) { try parent.subBuffer(1..<3) }
        }
    }

    @Test func nonBlockingUploadIsSeenByTheNextKernel() throws {
        let context = try testContext()
        let n = 300_001
        let x = seededFloats(n, seed: 11)
        let y = seededFloats(n, seed: 12)
        let bx = try context.buffer(Float.self, count: n)
        let by = try context.buffer(Float.self, count: n)
        // The arrays are local to this scope: only Prism's staging copy keeps the data alive.
        do {
            let xs = x, ys = y
            try bx.writeAsync(xs)
            try by.writeAsync(ys)
        }
        let axpy = try context.program(file: "elementwise.cl").kernel("axpy_f32")
        try axpy.launch(on: context, global: [n], [Float(0.5), bx, by, Int32(n)])
        let result = try by.read()
        expectClose(result, zip(x, y).map { 0.5 * $0 + $1 })
    }

    @Test func poolReusesAReleasedBuffer() throws {
        let context = try testContext()
        let count = 12_345 + Int.random(in: 0..<1000)  // a size no other test uses
        var handle: cl_mem?
        do {
            let first = try context.buffer(Float.self, count: count)
            handle = first.handle
        }
        let before = context.pool.statistics
        let second = try context.buffer(Float.self, count: count)
        #expect(second.handle == handle)
        #expect(context.pool.statistics.hits == before.hits + 1)
    }

    /// With `retainsReleasedBuffers` (for memory checkers) a released allocation is held, never handed
    /// to a later buffer, even with the pool on.
    @Test func retainedBuffersAreNeverReused() throws {
        var settings = Settings.current
        settings.diskCacheEnabled = false
        settings.retainsReleasedBuffers = true
        let context = try Context(device: try Device.select("cpu"), settings: settings)
        var released: [cl_mem] = []
        for _ in 0..<3 {
            let buffer = try context.buffer(Float.self, count: 1000)
            #expect(!released.contains(buffer.handle))
            try buffer.write([Float](repeating: 1, count: 1000))
            released.append(buffer.handle)
        }
        #expect(context.pool.statistics.retainedBuffers == 3)
        #expect(context.pool.statistics.idleBuffers == 0 && context.pool.statistics.hits == 0)
    }

    @Test func allocationFailureDrainsThePoolAndRetriesOnce() throws {
        let device = try Device.select("cpu")
        var settings = Settings.current
        settings.diskCacheEnabled = false
        let context = try Context(device: device, settings: settings)
        do { _ = try context.buffer(Float.self, count: 1000) }  // one idle buffer in the pool
        #expect(context.pool.statistics.idleBuffers == 1)

        var attempts: [Int] = []
        context.pool.allocationHook = { attempt in
            attempts.append(attempt)
            return attempt == 0 ? CL_MEM_OBJECT_ALLOCATION_FAILURE : nil
        }
        let buffer = try context.buffer(Float.self, count: 5000)
        #expect(attempts == [0, 1])
        #expect(context.pool.statistics.idleBuffers == 0)  // emptied before the retry
        try buffer.write([1, 2, 3])
        #expect(try buffer.read(0..<3) == [1, 2, 3])

        attempts = []
        context.pool.allocationHook = { attempt in
            attempts.append(attempt)
            return CL_MEM_OBJECT_ALLOCATION_FAILURE
        }
        #expect(throws: CLError.self) { try context.buffer(Float.self, count: 7000) }
        #expect(attempts == [0, 1])
        context.pool.allocationHook = nil
    }

    @Test func oversizedAllocationIsAClearError() throws {
        let context = try testContext()
        let tooMany = context.device.info.maxAllocationBytes / 4 + 1
        do {
            _ = try context.buffer(Float.self, count: tooMany)
            Issue.record("allocation should fail")
        } catch let error as CLError {
            #expect(error.description.contains("maximum allocation"))
        }
    }
}
