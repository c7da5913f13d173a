import CMPI
import Foundation
import Prism

/// An MPI call that failed, or a peer that did not answer in time.
public struct MPIError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The processes of an `mpirun` job (MPI_COMM_WORLD), through Open MPI loaded at run time (`CMPI`):
/// a plain `prism` neither links nor needs MPI. Every wait on another process — a collective, a
/// message — has a deadline (`timeout`), so a lost or stuck rank is reported instead of hanging the
/// job (Open MPI 4.1 has no fault tolerance; mpirun itself ends the job when a process dies).
///
/// MPI is initialized with MPI_THREAD_SERIALIZED: calls may come from any one thread at a time.
public final class MPIWorld: ProcessGroup, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// This process's host (MPI_Get_processor_name).
    public let host: String
    /// The rank among the job's processes on this host (Open MPI's OMPI_COMM_WORLD_LOCAL_RANK), 0 when unknown.
    public let localRank: Int
    /// Seconds a wait on other ranks may last before it fails with `MPIError` (default 600, `PRISM_MPI_TIMEOUT`).
    public var timeout: Double
    /// Seconds this process has spent in MPI calls and waits on other ranks (sends, receives, collectives).
    public private(set) var communicationSeconds = 0.0
    /// Bytes this process has sent to and received from other ranks (collectives count their buffer once).
    public private(set) var bytesSent = 0, bytesReceived = 0
    private var finalized = false

    /// Whether this process was started by Open MPI's mpirun (or another launcher that sets
    /// OMPI_COMM_WORLD_SIZE), and with how many processes.
    public static var launchedSize: Int? {
        ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"].flatMap { Int($0) }
    }

    /// Loads Open MPI and initializes it.
    /// - Throws: `MPIError` when libmpi cannot be loaded (a one-line reason) or MPI_Init fails.
    public init() throws {
        var reason = [CChar](repeating: 0, count: 512)
        guard prism_mpi_load(&reason, Int32(reason.count)) == 0 else {
            throw MPIError(Self.text(reason))
        }
        var provided: Int32 = 0
        try Self.check(prism_mpi_init(&provided), "MPI_Init_thread")
        guard provided >= 2 else {
            throw MPIError("MPI_Init_thread: Open MPI provides thread level \(provided), Prism needs MPI_THREAD_SERIALIZED (2)")
        }
        var r: Int32 = 0, s: Int32 = 0
        try Self.check(prism_mpi_rank(&r), "MPI_Comm_rank")
        try Self.check(prism_mpi_size(&s), "MPI_Comm_size")
        rank = Int(r)
        size = Int(s)
        var name = [CChar](repeating: 0, count: 512)
        try Self.check(prism_mpi_processor_name(&name, Int32(name.count)), "MPI_Get_processor_name")
        host = Self.text(name)
        let environment = ProcessInfo.processInfo.environment
        localRank = environment["OMPI_COMM_WORLD_LOCAL_RANK"].flatMap { Int($0) } ?? 0
        timeout = environment["PRISM_MPI_TIMEOUT"].flatMap { Double($0) }.flatMap { $0 > 0 ? $0 : nil } ?? 600
    }

    /// The text of a NUL-terminated C string buffer.
    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `rank R on HOST`, for messages.
    public var label: String { "rank \(rank) on \(host)" }

    private static func check(_ code: Int32, _ call: String) throws {
        guard code == 0 else { throw MPIError("\(call) failed with MPI error code \(code)") }
    }

    /// Ends MPI in this process (every rank must call it once, at the end).
    public func finalize() {
        guard !finalized else { return }
        finalized = true
        _ = prism_mpi_finalize()
    }

    /// Ends every process of the job with `code` (MPI_Abort): after an error on one rank, so that no
    /// other rank waits for it.
    public func abort(_ code: Int32) -> Never {
        prism_mpi_abort(code)
        exit(code)
    }

    /// Waits for `request` until it completes, or fails after `timeout` seconds.
    /// - Parameter what: the operation, for the message (`the gradient sum of step 3`).
    private func wait(_ request: inout UnsafeMutableRawPointer?, _ what: String) throws {
        let start = Date()
        defer { communicationSeconds += Date().timeIntervalSince(start) }
        let deadline = start.addingTimeInterval(timeout)
        var done: Int32 = 0
        var pause: useconds_t = 20
        while true {
            try Self.check(prism_mpi_test(&request, &done), "MPI_Test")
            if done != 0 { return }
            if Date() > deadline {
                throw MPIError("\(label): \(what) did not complete within \(Int(timeout)) s; another rank is lost or stuck (PRISM_MPI_TIMEOUT sets the limit)")
            }
            usleep(pause)
            pause = min(pause * 2, 2000)
        }
    }

    /// Sums `values` element-wise over every rank, in place (MPI_Iallreduce, waited on with the deadline).
    public func sumAll(_ values: inout [Float]) throws {
        try sumAll(&values, what: "a sum over the ranks")
    }

    public func sumAll(_ values: inout [Float], what: String) throws {
        guard values.count <= Int(Int32.max) else { throw MPIError("\(what): \(values.count) values are more than one MPI call takes") }
        try values.withUnsafeMutableBufferPointer { buffer in
            var request: UnsafeMutableRawPointer?
            try Self.check(prism_mpi_iallreduce_sum_float(buffer.baseAddress, Int32(buffer.count), &request), "MPI_Iallreduce")
            try wait(&request, what)
        }
        bytesSent += 4 * values.count
        bytesReceived += 4 * values.count
    }

    /// Rank `root`'s `bytes` on every rank (the others pass anything; its length travels first).
    public func broadcast(_ bytes: [UInt8], from root: Int, what: String) throws -> [UInt8] {
        var length = [UInt8](repeating: 0, count: 8)
        if rank == root { withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { length = Array($0) } }
        try broadcastInPlace(&length, from: root, what: what)
        let count = length.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard count <= Int(Int32.max) else { throw MPIError("\(what): \(count) bytes are more than one MPI call takes") }
        var data = rank == root ? bytes : [UInt8](repeating: 0, count: count)
        try broadcastInPlace(&data, from: root, what: what)
        return data
    }

    private func broadcastInPlace(_ bytes: inout [UInt8], from root: Int, what: String) throws {
        try bytes.withUnsafeMutableBytes { buffer in
            var request: UnsafeMutableRawPointer?
            try Self.check(prism_mpi_ibcast_bytes(buffer.baseAddress, Int32(buffer.count), Int32(root), &request), "MPI_Ibcast")
            try wait(&request, what)
        }
    }

    /// Waits until every rank has come here.
    public func barrier(_ what: String) throws {
        var request: UnsafeMutableRawPointer?
        try Self.check(prism_mpi_ibarrier(&request), "MPI_Ibarrier")
        try wait(&request, what)
    }

    /// A message on its way: its bytes stay alive until it has been delivered.
    public final class Send {
        fileprivate var request: UnsafeMutableRawPointer?
        fileprivate let bytes: UnsafeMutableRawBufferPointer
        public let what: String
        fileprivate var done = false

        fileprivate init(bytes: [UInt8], what: String) {
            self.bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
            _ = self.bytes.initializeMemory(as: UInt8.self, from: bytes)
            self.what = what
        }

        deinit { bytes.deallocate() }
    }

    /// Starts sending `bytes` to `destination` with `tag` (MPI_Isend); `isDone` or `complete` finishes it.
    public func send(_ bytes: [UInt8], to destination: Int, tag: Int, what: String) throws -> Send {
        guard bytes.count <= Int(Int32.max) else { throw MPIError("\(what): \(bytes.count) bytes are more than one MPI message takes") }
        let start = Date()
        defer { communicationSeconds += Date().timeIntervalSince(start) }
        bytesSent += bytes.count
        let message = Send(bytes: bytes, what: what)
        try Self.check(prism_mpi_isend_bytes(message.bytes.baseAddress, Int32(bytes.count), Int32(destination), Int32(tag), &message.request),
                       "MPI_Isend")
        return message
    }

    /// Whether `message` has been delivered (lets MPI make progress on it).
    public func isDone(_ message: Send) throws -> Bool {
        if message.done { return true }
        var done: Int32 = 0
        let start = Date()
        try Self.check(prism_mpi_test(&message.request, &done), "MPI_Test")
        communicationSeconds += Date().timeIntervalSince(start)
        message.done = done != 0
        return message.done
    }

    /// Waits until `message` has been delivered, or fails after `timeout` seconds.
    public func complete(_ message: Send) throws {
        guard !message.done else { return }
        try wait(&message.request, message.what)
        message.done = true
    }

    /// The next message waiting from any rank with any tag, received, or nil when none is waiting.
    public func poll() throws -> (source: Int, tag: Int, bytes: [UInt8])? {
        var waiting: Int32 = 0, from: Int32 = 0, tag: Int32 = 0, count: Int32 = 0
        let start = Date()
        defer { communicationSeconds += Date().timeIntervalSince(start) }
        try Self.check(prism_mpi_iprobe(-1, -1, &waiting, &from, &tag, &count), "MPI_Iprobe")
        guard waiting != 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(max(count, 0)))
        try bytes.withUnsafeMutableBytes { buffer in
            try Self.check(prism_mpi_recv_bytes(buffer.baseAddress, count, from, tag), "MPI_Recv")
        }
        bytesReceived += bytes.count
        return (Int(from), Int(tag), bytes)
    }
}
