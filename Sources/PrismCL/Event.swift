import COpenCL
import Foundation

/// A command on the queue. Its times come from the queue's profiling information.
public final class Event: @unchecked Sendable {
    // `@unchecked Sendable`: cl_event is thread-safe by specification and the handle never changes.
    public let handle: cl_event

    /// What the command was (the kernel's name for launches), for timing breakdowns.
    public internal(set) var label: String?

    init(_ handle: cl_event, label: String? = nil) {
        self.handle = handle
        self.label = label
    }

    /// Takes ownership of an event that another OpenCL library returned (it is released in `deinit`),
    /// so its times can be read like Prism's own.
    public convenience init(adopting handle: cl_event, label: String? = nil) { self.init(handle, label: label) }

    deinit { clReleaseEvent(handle) }

    /// Blocks until the command has finished.
    /// - Throws: `CLError` when the command ended in error.
    public func wait() throws {
        var event: cl_event? = handle
        try CLError.check(clWaitForEvents(1, &event), "clWaitForEvents")
    }

    /// The command's execution time in nanoseconds (end − start), after waiting for it.
    public func durationNanoseconds() throws -> UInt64 {
        try wait()
        let start = try profile(CL_PROFILING_COMMAND_START)
        let end = try profile(CL_PROFILING_COMMAND_END)
        return end >= start ? end - start : 0
    }

    private func profile(_ param: Int32) throws -> UInt64 {
        var value: cl_ulong = 0
        try CLError.check(
            clGetEventProfilingInfo(handle, cl_profiling_info(param), MemoryLayout<cl_ulong>.size, &value, nil),
            "clGetEventProfilingInfo")
        return value
    }

    static func handles(_ events: [Event]) -> [cl_event?] { events.map { $0.handle } }
}

/// Keeps the events of every kernel launch between `start()` and `stop()`, so a benchmark can tell
/// how much of a step's wall time the device spent and in which kernels. Off (and free) otherwise.
public final class EventLog: @unchecked Sendable {
    // `@unchecked Sendable`: the event list is guarded by `lock`.
    public static let shared = EventLog()
    private let lock = NSLock()
    private var events: [Event]?

    /// Starts recording (forgetting anything recorded before).
    public func start() {
        lock.lock(); events = []; lock.unlock()
    }

    func record(_ event: Event) {
        lock.lock(); events?.append(event); lock.unlock()
    }

    /// Stops recording and returns the recorded events, in launch order.
    public func stopEvents() -> [Event] {
        lock.lock()
        defer { lock.unlock() }
        let recorded = events ?? []
        events = nil
        return recorded
    }

    /// Stops recording and returns the device milliseconds spent per kernel name.
    public func stop() throws -> [String: Double] {
        let recorded = stopEvents()
        var totals: [String: Double] = [:]
        for event in recorded {
            totals[event.label ?? "?", default: 0] += Double(try event.durationNanoseconds()) * 1e-6
        }
        return totals
    }
}
