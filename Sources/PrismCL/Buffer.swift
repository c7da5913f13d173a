import COpenCL
import Foundation

/// A typed device buffer of `count` elements. It owns its `cl_mem`: when the buffer goes away the
/// memory returns to the context's pool (or, for a sub-buffer, is released).
///
/// `@unchecked Sendable`: the handle and sizes never change; OpenCL memory objects may be used from
/// any thread, and commands on them are ordered by the context's in-order queue.
public final class Buffer<Element: BitwiseCopyable>: @unchecked Sendable {
    public let context: Context
    public let handle: cl_mem
    /// Number of elements.
    public let count: Int
    let capacityBytes: Int
    let pooled: Bool
    private let parent: AnyObject?

    init(context: Context, handle: cl_mem, count: Int, capacityBytes: Int, pooled: Bool, parent: AnyObject? = nil) {
        self.context = context
        self.handle = handle
        self.count = count
        self.capacityBytes = capacityBytes
        self.pooled = pooled
        self.parent = parent
    }

    deinit {
        if pooled {
            context.pool.recycle(handle, capacityBytes: capacityBytes)
        } else {
            clReleaseMemObject(handle)
        }
    }

    /// Size in bytes of the elements (not of the underlying allocation).
    public var byteCount: Int { count * MemoryLayout<Element>.stride }

    private var queue: cl_command_queue { context.queue.handle }
    private static var stride: Int { MemoryLayout<Element>.stride }

    private func checkRange(_ range: Range<Int>, _ op: String) throws {
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw CLError.invalidArgument("\(op): range \(range) outside buffer of \(count) elements")
        }
    }

    // MARK: upload

    /// Copies `values` into the buffer starting at element `offset`, and waits for the copy.
    public func write(_ values: [Element], at offset: Int = 0) throws {
        try checkRange(offset..<(offset + values.count), "write")
        guard !values.isEmpty else { return }
        try values.withUnsafeBytes { raw in
            try CLError.check(
                clEnqueueWriteBuffer(queue, handle, cl_bool(CL_TRUE), offset * Self.stride, raw.count, raw.baseAddress, 0, nil, nil),
                "clEnqueueWriteBuffer")
        }
    }

    /// Starts copying `values` into the buffer at element `offset` and returns at once. The host
    /// data is copied into memory that stays alive until the device has read it.
    /// - Returns: the copy's event (nil for an empty copy).
    @discardableResult
    public func writeAsync(_ values: [Element], at offset: Int = 0) throws -> Event? {
        try checkRange(offset..<(offset + values.count), "writeAsync")
        guard !values.isEmpty else { return nil }
        let bytes = values.count * Self.stride
        guard let staging = malloc(bytes) else { throw CLError.allocationFailed(bytes: bytes, reason: "host staging memory") }
        values.withUnsafeBytes { raw in staging.copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
        var event: cl_event?
        let status = clEnqueueWriteBuffer(queue, handle, cl_bool(CL_FALSE), offset * Self.stride, bytes, staging, 0, nil, &event)
        guard status == CL_SUCCESS, let event else {
            free(staging)
            throw CLError.call(function: "clEnqueueWriteBuffer", status: status)
        }
        // Free the staging copy when the device is done with it.
        let release: @convention(c) (cl_event?, cl_int, UnsafeMutableRawPointer?) -> Void = { _, _, memory in free(memory) }
        if clSetEventCallback(event, CL_COMPLETE, release, staging) != CL_SUCCESS {
            clWaitForEvents(1, [event])
            free(staging)
        }
        return Event(event)
    }

    // MARK: download

    /// The elements in `range` (all by default), after waiting for every earlier command.
    public func read(_ range: Range<Int>? = nil) throws -> [Element] {
        let range = range ?? 0..<count
        try checkRange(range, "read")
        guard !range.isEmpty else { return [] }
        return try [Element](unsafeUninitializedCapacity: range.count) { storage, initialized in
            try CLError.check(
                clEnqueueReadBuffer(queue, handle, cl_bool(CL_TRUE), range.lowerBound * Self.stride, range.count * Self.stride,
                                    UnsafeMutableRawPointer(storage.baseAddress!), 0, nil, nil),
                "clEnqueueReadBuffer")
            initialized = range.count
        }
    }

    /// Starts reading the elements in `range` and returns a handle whose `wait()` gives them.
    public func readAsync(_ range: Range<Int>? = nil) throws -> PendingRead<Element> {
        let range = range ?? 0..<count
        try checkRange(range, "readAsync")
        let pending = PendingRead<Element>(count: range.count)
        guard !range.isEmpty else { return pending }
        var event: cl_event?
        try CLError.check(
            clEnqueueReadBuffer(queue, handle, cl_bool(CL_FALSE), range.lowerBound * Self.stride, range.count * Self.stride,
                                UnsafeMutableRawPointer(pending.storage.baseAddress!), 0, nil, &event),
            "clEnqueueReadBuffer")
        pending.event = event.map { Event($0) }
        return pending
    }

    // MARK: on the device

    /// Sets every element in `range` (all by default) to `value`.
    @discardableResult
    public func fill(_ value: Element, range: Range<Int>? = nil) throws -> Event? {
        let range = range ?? 0..<count
        try checkRange(range, "fill")
        guard !range.isEmpty else { return nil }
        var pattern = value
        var event: cl_event?
        try withUnsafeBytes(of: &pattern) { raw in
            try CLError.check(
                clEnqueueFillBuffer(queue, handle, raw.baseAddress, raw.count, range.lowerBound * Self.stride, range.count * Self.stride, 0, nil, &event),
                "clEnqueueFillBuffer")
        }
        return event.map { Event($0) }
    }

    /// Copies `count` elements from `source` (starting at `sourceOffset`) into this buffer at
    /// `offset`, on the device.
    @discardableResult
    public func copy(from source: Buffer<Element>, sourceOffset: Int = 0, to offset: Int = 0, count n: Int? = nil) throws -> Event? {
        let n = n ?? min(source.count - sourceOffset, count - offset)
        try source.checkRange(sourceOffset..<(sourceOffset + n), "copy (source)")
        try checkRange(offset..<(offset + n), "copy (destination)")
        guard n > 0 else { return nil }
        var event: cl_event?
        try CLError.check(
            clEnqueueCopyBuffer(queue, source.handle, handle, sourceOffset * Self.stride, offset * Self.stride, n * Self.stride, 0, nil, &event),
            "clEnqueueCopyBuffer")
        return event.map { Event($0) }
    }

    /// A buffer that aliases the elements in `range` of this one (an OpenCL sub-buffer). Kernels
    /// writing it write this buffer. The start must be aligned to the device's base address
    /// alignment (`memoryBaseAddressAlignBits`).
    /// - Throws: `CLError.invalidArgument` for a range outside the buffer or a misaligned start.
    public func subBuffer(_ range: Range<Int>) throws -> Buffer<Element> {
        try checkRange(range, "subBuffer")
        let alignBytes = max(context.device.info.memoryBaseAddressAlignBits / 8, 1)
        let origin = range.lowerBound * Self.stride
        guard origin % alignBytes == 0 else {
            throw CLError.invalidArgument(
                "subBuffer: start \(range.lowerBound) (byte \(origin)) is not a multiple of the device's \(alignBytes)-byte base alignment")
        }
        var region = cl_buffer_region(origin: origin, size: max(range.count * Self.stride, Self.stride))
        var status: cl_int = 0
        guard let sub = clCreateSubBuffer(handle, cl_mem_flags(CL_MEM_READ_WRITE), cl_buffer_create_type(CL_BUFFER_CREATE_TYPE_REGION), &region, &status),
              status == CL_SUCCESS else {
            throw CLError.call(function: "clCreateSubBuffer", status: status)
        }
        return Buffer(context: context, handle: sub, count: range.count, capacityBytes: region.size, pooled: false, parent: self)
    }
}

/// A download in flight. `wait()` returns the elements; dropping it waits for the copy to end
/// before freeing the host memory the device writes into.
public final class PendingRead<Element: BitwiseCopyable> {
    let storage: UnsafeMutableBufferPointer<Element>
    var event: Event?

    private let storageCount: Int

    init(count: Int) {
        storage = .allocate(capacity: max(count, 1))
        storageCount = count
    }

    /// Waits for the copy and returns the elements.
    public func wait() throws -> [Element] {
        try event?.wait()
        return Array(UnsafeBufferPointer(rebasing: storage[0..<storageCount]))
    }

    deinit {
        try? event?.wait()
        storage.deallocate()
    }
}
