import COpenCL
import Foundation

/// Reuses device allocations by size: a released buffer's `cl_mem` goes back here and the next
/// request of the same (rounded) size takes it instead of calling `clCreateBuffer`.
///
/// Sizes are rounded up to a multiple of 256 bytes. The pool keeps at most `capacityBytes` of idle
/// memory; past that the oldest idle allocations are released. On allocation failure the pool is
/// emptied and the allocation retried once. With `retainsReleased`, released allocations are instead
/// held, never reused, until `releaseRetained()` (for memory checkers: see
/// `Settings.retainsReleasedBuffers`).
public final class BufferPool: @unchecked Sendable {
    // `@unchecked Sendable`: all mutable state is guarded by `lock`.
    public struct Statistics: Equatable, Sendable {
        public var hits = 0
        public var misses = 0
        public var idleBytes = 0
        public var idleBuffers = 0
        /// Released allocations held, unused, with `retainsReleased`.
        public var retainedBuffers = 0
    }

    struct Allocation {
        let handle: cl_mem
        let capacityBytes: Int
    }

    public let capacityBytes: Int
    /// Whether released allocations are held until `releaseRetained()` instead of reused or released.
    public let retainsReleased: Bool
    private let lock = NSLock()
    private var idle: [Int: [cl_mem]] = [:]
    private var retained: [cl_mem] = []
    private var order: [(bytes: Int, handle: cl_mem)] = []
    private var stats = Statistics()
    /// Test hook: a function that may replace the real `clCreateBuffer` status (to simulate failure).
    var allocationHook: ((Int) -> cl_int?)?

    init(capacityBytes: Int, retainsReleased: Bool = false) {
        self.capacityBytes = max(capacityBytes, 0)
        self.retainsReleased = retainsReleased
    }

    public var statistics: Statistics {
        lock.lock(); defer { lock.unlock() }
        return stats
    }

    static func roundedSize(_ bytes: Int) -> Int { max(256, (bytes + 255) / 256 * 256) }

    func allocate(context: cl_context, bytes: Int) throws -> Allocation {
        let size = BufferPool.roundedSize(bytes)
        lock.lock()
        if var list = idle[size], let handle = list.popLast() {
            idle[size] = list.isEmpty ? nil : list
            if let i = order.firstIndex(where: { $0.handle == handle }) { order.remove(at: i) }
            stats.hits += 1
            stats.idleBytes -= size
            stats.idleBuffers -= 1
            lock.unlock()
            return Allocation(handle: handle, capacityBytes: size)
        }
        stats.misses += 1
        lock.unlock()

        var lastStatus: cl_int = CL_SUCCESS
        for attempt in 0..<2 {
            if attempt == 1 { drain() }
            var status: cl_int = CL_SUCCESS
            if let forced = allocationHook?(attempt) {
                status = forced
            } else if let handle = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), size, nil, &status), status == CL_SUCCESS {
                return Allocation(handle: handle, capacityBytes: size)
            }
            lastStatus = status
            let retryable = [CL_MEM_OBJECT_ALLOCATION_FAILURE, CL_OUT_OF_RESOURCES, CL_OUT_OF_HOST_MEMORY, CL_INVALID_BUFFER_SIZE]
            if !retryable.contains(status) { break }
        }
        throw CLError.allocationFailed(bytes: bytes, reason: "clCreateBuffer returned \(CLError.name(of: lastStatus)) after emptying the buffer pool")
    }

    /// Takes back an allocation of `capacityBytes` bytes for reuse.
    func recycle(_ handle: cl_mem, capacityBytes size: Int) {
        lock.lock()
        if retainsReleased {
            retained.append(handle)
            stats.retainedBuffers += 1
            lock.unlock()
            return
        }
        idle[size, default: []].append(handle)
        order.append((size, handle))
        stats.idleBytes += size
        stats.idleBuffers += 1
        var evicted: [cl_mem] = []
        while stats.idleBytes > capacityBytes, !order.isEmpty {
            let oldest = order.removeFirst()
            if var list = idle[oldest.bytes], let i = list.firstIndex(of: oldest.handle) {
                list.remove(at: i)
                idle[oldest.bytes] = list.isEmpty ? nil : list
                stats.idleBytes -= oldest.bytes
                stats.idleBuffers -= 1
                evicted.append(oldest.handle)
            }
        }
        lock.unlock()
        for handle in evicted { clReleaseMemObject(handle) }
    }

    /// Releases the allocations held with `retainsReleased` (when the context closes).
    func releaseRetained() {
        lock.lock()
        let all = retained
        retained = []
        stats.retainedBuffers = 0
        lock.unlock()
        for handle in all { clReleaseMemObject(handle) }
    }

    /// Releases every idle allocation (not those held with `retainsReleased`).
    public func drain() {
        lock.lock()
        let all = idle.values.flatMap { $0 }
        idle = [:]
        order = []
        stats.idleBytes = 0
        stats.idleBuffers = 0
        lock.unlock()
        for handle in all { clReleaseMemObject(handle) }
    }
}
