import COpenCL
import Foundation

/// A device with its OpenCL context, its one in-order profiling queue, its buffer pool and its
/// program cache. Everything Prism does on a device goes through one `Context`.
///
/// `@unchecked Sendable`: the handles are immutable after creation, OpenCL contexts and queues are
/// thread-safe by specification, and the mutable parts (pool, program cache) guard themselves
/// with locks.
public final class Context: @unchecked Sendable {
    public let device: Device
    public let handle: cl_context
    public let queue: Queue
    public let pool: BufferPool
    public let programs: ProgramCache
    public let settings: Settings
    /// Kernel tunables for this device: the user's table, then the shipped one.
    public let tuning: Tuning

    /// Creates a context on `device`.
    /// - Parameters:
    ///   - device: the device to use.
    ///   - settings: where kernels and the program cache live (the process's settings by default).
    ///   - cacheDirectory: overrides the settings' cache folder (nil: from settings; disk cache off
    ///     when the settings say so).
    /// - Throws: `CLError` when the context or queue cannot be created.
    public init(device: Device, settings: Settings = .current) throws {
        self.device = device
        self.settings = settings
        var status: cl_int = 0
        var deviceID: cl_device_id? = device.id
        var properties: [cl_context_properties] = [
            cl_context_properties(CL_CONTEXT_PLATFORM), cl_context_properties(Int(bitPattern: UnsafeRawPointer(device.platformID))), 0,
        ]
        guard let context = clCreateContext(&properties, 1, &deviceID, nil, nil, &status), status == CL_SUCCESS else {
            throw CLError.call(function: "clCreateContext", status: status)
        }
        handle = context
        do {
            queue = try Queue(context: context, device: device)
        } catch {
            clReleaseContext(context)
            throw error
        }
        pool = BufferPool(capacityBytes: settings.bufferPoolEnabled ? min(device.info.globalMemoryBytes / 4, 4 << 30) : 0,
                          retainsReleased: settings.retainsReleasedBuffers)
        programs = ProgramCache(
            device: device,
            directory: settings.diskCacheEnabled ? settings.cacheDirectory : nil,
            kernelsDirectory: settings.kernelsDirectory
        )
        do {
            tuning = try Tuning.load(settings: settings, shippedJSON: try? programs.source(file: "tuning.json"))
        } catch {
            pool.drain()
            queue.release()
            clReleaseContext(context)
            throw error
        }
    }

    /// The tuned `-D` defines for a kernel file on this device (empty when the tables have none).
    public func tunedDefines(for file: String) -> [String: String] {
        tuning.defines(for: file, device: device.info)
    }

    /// A context on the device chosen by `settings.device` (default GPU > accelerator > CPU).
    /// - Throws: `CLError.noPlatform`, `CLError.noSuchDevice`, or a creation error.
    public convenience init(settings: Settings = .current) throws {
        try self.init(device: Device.select(settings.device), settings: settings)
    }

    deinit {
        pool.drain()
        pool.releaseRetained()
        programs.releaseAll()
        queue.release()
        clReleaseContext(handle)
    }

    /// A new buffer of `count` elements, from the pool when one of that size is free.
    /// Its contents are undefined.
    /// - Throws: `CLError.allocationFailed` when the device cannot hold it even after the pool is emptied.
    public func buffer<Element: BitwiseCopyable>(_ type: Element.Type = Element.self, count: Int) throws -> Buffer<Element> {
        guard count >= 0 else { throw CLError.invalidArgument("buffer: negative element count \(count)") }
        let bytes = count * MemoryLayout<Element>.stride
        guard bytes <= device.info.maxAllocationBytes else {
            throw CLError.allocationFailed(
                bytes: bytes,
                reason: "larger than the device's maximum allocation of \(device.info.maxAllocationBytes) bytes")
        }
        let allocation = try pool.allocate(context: handle, bytes: bytes)
        return Buffer(context: self, handle: allocation.handle, count: count, capacityBytes: allocation.capacityBytes, pooled: true)
    }

    /// A new buffer holding `values` (blocking upload).
    public func buffer<Element: BitwiseCopyable>(_ values: [Element]) throws -> Buffer<Element> {
        let buffer = try buffer(Element.self, count: values.count)
        try buffer.write(values)
        return buffer
    }

    /// The compiled program for a kernel file, built once per (device, driver, source, options).
    /// - Parameters:
    ///   - file: kernel file name, e.g. `"elementwise.cl"`.
    ///   - defines: `-D NAME=VALUE` definitions (tunables).
    ///   - options: further build options.
    /// - Throws: `CLError.missingKernelFile`, or `CLError.buildFailed` carrying the build log.
    public func program(file: String, defines: [String: String] = [:], options: String = "") throws -> Program {
        try programs.program(file: file, defines: defines, options: options, context: handle)
    }

    /// The compiled program for a source string (for tests and experiments).
    public func program(source: String, name: String = "<source>", defines: [String: String] = [:], options: String = "") throws -> Program {
        try programs.program(source: source, name: name, defines: defines, options: options, context: handle)
    }

    /// Blocks until every command on the queue has finished.
    public func finish() throws { try queue.finish() }
}

/// The in-order command queue of a context, with profiling enabled.
public final class Queue: @unchecked Sendable {
    public let handle: cl_command_queue
    private var released = false

    init(context: cl_context, device: Device) throws {
        var status: cl_int = 0
        let major = Queue.majorVersion(device.info.deviceVersion)
        let queue: cl_command_queue?
        if major >= 2 {
            var properties: [cl_queue_properties] = [
                cl_queue_properties(CL_QUEUE_PROPERTIES), cl_queue_properties(CL_QUEUE_PROFILING_ENABLE), 0,
            ]
            queue = clCreateCommandQueueWithProperties(context, device.id, &properties, &status)
        } else {
            queue = clCreateCommandQueue(context, device.id, cl_command_queue_properties(CL_QUEUE_PROFILING_ENABLE), &status)
        }
        guard let queue, status == CL_SUCCESS else {
            throw CLError.call(function: "clCreateCommandQueue", status: status)
        }
        handle = queue
    }

    static func majorVersion(_ deviceVersion: String) -> Int {
        // "OpenCL 3.0 PoCL ..." -> 3
        let parts = deviceVersion.split(separator: " ")
        guard parts.count >= 2, let major = Int(parts[1].prefix { $0 != "." }) else { return 1 }
        return major
    }

    /// Blocks until every enqueued command has finished.
    public func finish() throws { try CLError.check(clFinish(handle), "clFinish") }

    func release() {
        guard !released else { return }
        released = true
        clFinish(handle)
        clReleaseCommandQueue(handle)
    }
}
