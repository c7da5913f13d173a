import COpenCL
import Foundation

/// A value that can be passed to a kernel: a buffer, a scalar, or a local-memory size.
public protocol KernelArgument {
    /// Sets this value as argument `index` of `kernel`; returns the OpenCL status.
    func setArgument(of kernel: cl_kernel, at index: cl_uint) -> cl_int
}

extension Buffer: KernelArgument {
    public func setArgument(of kernel: cl_kernel, at index: cl_uint) -> cl_int {
        var mem: cl_mem? = handle
        return clSetKernelArg(kernel, index, MemoryLayout<cl_mem>.size, &mem)
    }
}

/// Scalars passed by value (`int`, `uint`, `float`, `long`, `ulong` in OpenCL C).
public protocol KernelScalar: KernelArgument, BitwiseCopyable {}

extension KernelScalar {
    public func setArgument(of kernel: cl_kernel, at index: cl_uint) -> cl_int {
        var value = self
        return clSetKernelArg(kernel, index, MemoryLayout<Self>.size, &value)
    }
}

extension Int32: KernelScalar {}
extension UInt32: KernelScalar {}
extension Float: KernelScalar {}
extension Int64: KernelScalar {}
extension UInt64: KernelScalar {}

/// A `__local` memory argument of `bytes` bytes.
public struct LocalMemory: KernelArgument {
    public let bytes: Int
    public init(bytes: Int) { self.bytes = bytes }
    /// Local memory for `count` elements of `type`.
    public init<T>(_ type: T.Type, count: Int) { bytes = count * MemoryLayout<T>.stride }
    public func setArgument(of kernel: cl_kernel, at index: cl_uint) -> cl_int {
        clSetKernelArg(kernel, index, bytes, nil)
    }
}

/// One kernel of a compiled program.
///
/// `@unchecked Sendable`: setting arguments and enqueuing happen under `lock`, because a
/// `cl_kernel`'s arguments are shared state.
public final class Kernel: @unchecked Sendable {
    public let handle: cl_kernel
    public let name: String
    let program: Program
    private let lock = NSLock()

    init(program: Program, name: String) throws {
        var status: cl_int = 0
        guard let kernel = clCreateKernel(program.handle, name, &status), status == CL_SUCCESS else {
            throw CLError.call(function: "clCreateKernel(\(name))", status: status)
        }
        handle = kernel
        self.name = name
        self.program = program
    }

    deinit { clReleaseKernel(handle) }

    /// Enqueues the kernel on `context`'s queue.
    /// - Parameters:
    ///   - global: global work size, one to three dimensions; a zero dimension enqueues nothing.
    ///   - local: work-group size, or nil to let the driver choose.
    ///   - arguments: the kernel's arguments in order.
    ///   - waitFor: events that must finish first (the queue is in order; this is for other queues).
    /// - Returns: the launch's event (nil when the global size is empty).
    /// - Throws: `CLError` naming the argument or launch that failed.
    @discardableResult
    public func launch(on context: Context, global: [Int], local: [Int]? = nil,
                       _ arguments: [any KernelArgument], waitFor: [Event] = []) throws -> Event? {
        guard (1...3).contains(global.count) else {
            throw CLError.invalidArgument("\(name): global size must have 1 to 3 dimensions, got \(global.count)")
        }
        if let local, local.count != global.count {
            throw CLError.invalidArgument("\(name): local size \(local) does not match global size \(global)")
        }
        if global.contains(0) { return nil }
        // Programs are built as OpenCL C 1.2, where every global size must be a whole number of
        // work-groups: PoCL runs a ragged last group anyway, a GPU driver refuses the launch.
        if let local, let axis = global.indices.first(where: { local[$0] < 1 || global[$0] % local[$0] != 0 }) {
            throw CLError.invalidArgument("\(name): global size \(global) is not a whole number of work-groups of \(local) (axis \(axis))")
        }
        lock.lock(); defer { lock.unlock() }
        for (i, argument) in arguments.enumerated() {
            let status = argument.setArgument(of: handle, at: cl_uint(i))
            if status != CL_SUCCESS {
                throw CLError.call(function: "clSetKernelArg(\(name), \(i))", status: status)
            }
        }
        var event: cl_event?
        let waits = Event.handles(waitFor)
        let status = global.withUnsafeBufferPointer { g in
            waits.withUnsafeBufferPointer { w in
                if let local {
                    return local.withUnsafeBufferPointer { l in
                        clEnqueueNDRangeKernel(context.queue.handle, handle, cl_uint(global.count), nil, g.baseAddress, l.baseAddress,
                                               cl_uint(w.count), w.count == 0 ? nil : w.baseAddress, &event)
                    }
                }
                return clEnqueueNDRangeKernel(context.queue.handle, handle, cl_uint(global.count), nil, g.baseAddress, nil,
                                              cl_uint(w.count), w.count == 0 ? nil : w.baseAddress, &event)
            }
        }
        try CLError.check(status, "clEnqueueNDRangeKernel(\(name), global \(global)\(local.map { ", local \($0)" } ?? ""))")
        guard let event else { return nil }
        let recorded = Event(event, label: name)
        EventLog.shared.record(recorded)
        return recorded
    }

    /// The largest work-group size this kernel can use on `device`.
    public func maxWorkGroupSize(on device: Device) throws -> Int {
        var size = 0
        try CLError.check(
            clGetKernelWorkGroupInfo(handle, device.id, cl_kernel_work_group_info(CL_KERNEL_WORK_GROUP_SIZE), MemoryLayout<Int>.size, &size, nil),
            "clGetKernelWorkGroupInfo")
        return size
    }
}
