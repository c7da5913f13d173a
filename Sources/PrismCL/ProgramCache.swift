import COpenCL
import Foundation
import PrismKernels

/// Builds programs once per (device, driver version, source hash, build options) and keeps them in
/// memory and, unless disabled, on disk as device binaries.
///
/// A disk entry holds a header (magic, format version), the full key, the binary and a checksum;
/// an entry that is truncated, corrupt, for another key, or that the driver refuses is rebuilt from
/// source and rewritten. Entries are written atomically (temporary file, then rename).
///
/// `@unchecked Sendable`: all mutable state is guarded by `lock`.
public final class ProgramCache: @unchecked Sendable {
    public struct Statistics: Equatable, Sendable {
        public var memoryHits = 0
        public var diskHits = 0
        public var builds = 0
        /// Disk entries found but unusable (truncated, corrupt, refused) and rebuilt.
        public var rejectedDiskEntries = 0
    }

    let device: Device
    /// The on-disk cache folder, or nil when the disk cache is off.
    public let directory: String?
    let kernelsDirectory: String?
    private let lock = NSLock()
    private var programs: [String: Program] = [:]
    private var stats = Statistics()

    init(device: Device, directory: String?, kernelsDirectory: String?) {
        self.device = device
        self.directory = directory
        self.kernelsDirectory = kernelsDirectory
    }

    public var statistics: Statistics {
        lock.lock(); defer { lock.unlock() }
        return stats
    }

    func releaseAll() {
        lock.lock()
        let all = programs.values
        programs = [:]
        lock.unlock()
        for program in all { program.releaseKernels() }
    }

    /// The source of a kernel file, its includes expanded (`KernelIncludes`): from `PRISM_KERNELS_DIR`
    /// when set, else the embedded copies.
    public func source(file: String) throws -> String {
        try KernelIncludes.expand(try rawSource(file: file), file: file) { try rawSource(file: $0) }
    }

    /// One kernel file's text as written.
    func rawSource(file: String) throws -> String {
        if let dir = kernelsDirectory {
            let path = (dir as NSString).appendingPathComponent(file)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CLError.missingKernelFile(name: file, searched: "PRISM_KERNELS_DIR=\(dir)")
            }
            return String(decoding: data, as: UTF8.self)
        }
        guard let source = PrismKernelSources.source(named: file) else {
            let known = PrismKernelSources.all.keys.sorted().joined(separator: ", ")
            throw CLError.missingKernelFile(name: file, searched: "embedded files: \(known)")
        }
        return source
    }

    func program(file: String, defines: [String: String], options: String, context: cl_context) throws -> Program {
        try program(source: source(file: file), name: file, defines: defines, options: options, context: context)
    }

    /// Build options from defines (sorted, so equal sets give equal keys) and extra options.
    static func buildOptions(defines: [String: String], options: String) -> String {
        let d = defines.keys.sorted().map { key in
            let value = defines[key]!
            return value.isEmpty ? "-D\(key)" : "-D\(key)=\(value)"
        }
        return (d + (options.isEmpty ? [] : [options])).joined(separator: " ")
    }

    func program(source: String, name: String, defines: [String: String], options: String, context: cl_context) throws -> Program {
        let opts = ProgramCache.buildOptions(defines: defines, options: options)
        let key = ProgramCache.key(device: device.info, source: source, options: opts)
        lock.lock()
        if let program = programs[key] {
            stats.memoryHits += 1
            lock.unlock()
            return program
        }
        lock.unlock()

        let program: Program
        if let cached = loadFromDisk(key: key, name: name, options: opts, context: context) {
            program = cached
            lock.lock(); stats.diskHits += 1; lock.unlock()
        } else {
            program = try buildFromSource(source, name: name, options: opts, context: context)
            lock.lock(); stats.builds += 1; lock.unlock()
            storeOnDisk(key: key, program: program)
        }
        lock.lock()
        if let existing = programs[key] {  // another thread built it meanwhile
            lock.unlock()
            return existing
        }
        programs[key] = program
        lock.unlock()
        return program
    }

    private func buildFromSource(_ source: String, name: String, options: String, context: cl_context) throws -> Program {
        var status: cl_int = 0
        let handle: cl_program? = source.withCString { cString in
            var pointer: UnsafePointer<CChar>? = cString
            var length = strlen(cString)
            return clCreateProgramWithSource(context, 1, &pointer, &length, &status)
        }
        guard let handle, status == CL_SUCCESS else {
            throw CLError.call(function: "clCreateProgramWithSource(\(name))", status: status)
        }
        do {
            try Program.build(handle, device: device, name: name, options: options)
        } catch {
            clReleaseProgram(handle)
            throw error
        }
        return Program(handle: handle, name: name, options: options)
    }

    // MARK: keys and disk entries

    /// The cache key: device name, driver version, source hash and options.
    static func key(device: DeviceInfo, source: String, options: String) -> String {
        "\(device.platform)|\(device.name)|\(device.driverVersion)|\(hashHex(Array(source.utf8)))|\(options)"
    }

    /// 128-bit FNV-1a (two 64-bit lanes with different offsets) as 32 hex digits.
    static func hashHex(_ bytes: [UInt8]) -> String {
        var a: UInt64 = 0xcbf2_9ce4_8422_2325
        var b: UInt64 = 0x6c62_272e_07bb_0142
        for byte in bytes {
            a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            b = (b ^ UInt64(byte ^ 0x5a)) &* 0x0000_0100_0000_01b3
        }
        return String(format: "%016llx%016llx", a, b)
    }

    static let magic = Array("PRISMBIN".utf8)
    static let formatVersion: UInt32 = 1

    func path(forKey key: String) -> String? {
        guard let directory else { return nil }
        return (directory as NSString).appendingPathComponent(ProgramCache.hashHex(Array(key.utf8)) + ".clbin")
    }

    static func encode(key: String, binary: [UInt8]) -> [UInt8] {
        var out = magic
        func append<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        let keyBytes = Array(key.utf8)
        append(formatVersion)
        append(UInt32(keyBytes.count))
        out += keyBytes
        append(UInt64(binary.count))
        out += binary
        append(checksum(binary))
        return out
    }

    /// The binary in an encoded entry, or nil when anything about it is wrong.
    static func decode(_ data: [UInt8], key: String) -> [UInt8]? {
        var position = 0
        func take(_ n: Int) -> ArraySlice<UInt8>? {
            guard n >= 0, position + n <= data.count else { return nil }
            defer { position += n }
            return data[position..<(position + n)]
        }
        func read<T: FixedWidthInteger>(_: T.Type) -> T? {
            guard let bytes = take(MemoryLayout<T>.size) else { return nil }
            var value: T = 0
            for (i, byte) in bytes.enumerated() { value |= T(byte) << (8 * i) }
            return value
        }
        guard let m = take(magic.count), Array(m) == magic,
              read(UInt32.self) == formatVersion,
              let keyLength = read(UInt32.self), let keyBytes = take(Int(keyLength)),
              Array(keyBytes) == Array(key.utf8),
              let binaryLength = read(UInt64.self), binaryLength <= UInt64(data.count),
              let binary = take(Int(binaryLength)),
              let sum = read(UInt64.self), position == data.count,
              sum == checksum(Array(binary)), !binary.isEmpty
        else { return nil }
        return Array(binary)
    }

    static func checksum(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return h
    }

    private func loadFromDisk(key: String, name: String, options: String, context: cl_context) -> Program? {
        guard let path = path(forKey: key), let data = FileManager.default.contents(atPath: path) else { return nil }
        guard let binary = ProgramCache.decode(Array(data), key: key) else {
            reject(path)
            return nil
        }
        var status: cl_int = 0
        var binaryStatus: cl_int = 0
        var deviceID: cl_device_id? = device.id
        let handle: cl_program? = binary.withUnsafeBufferPointer { buffer in
            var pointer: UnsafePointer<UInt8>? = buffer.baseAddress
            var length = buffer.count
            return clCreateProgramWithBinary(context, 1, &deviceID, &length, &pointer, &binaryStatus, &status)
        }
        guard let handle, status == CL_SUCCESS, binaryStatus == CL_SUCCESS else {
            if let handle { clReleaseProgram(handle) }
            reject(path)
            return nil
        }
        do {
            try Program.build(handle, device: device, name: name, options: options)
        } catch {
            clReleaseProgram(handle)
            reject(path)
            return nil
        }
        return Program(handle: handle, name: name, options: options)
    }

    private func reject(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
        lock.lock(); stats.rejectedDiskEntries += 1; lock.unlock()
    }

    /// Writes the program's binary; a cache that cannot be written is not an error (the program
    /// simply builds again next time).
    private func storeOnDisk(key: String, program: Program) {
        guard let path = path(forKey: key), let binary = try? Program.binary(program.handle), !binary.isEmpty else { return }
        let url = URL(fileURLWithPath: path)
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
        do {
            try Data(ProgramCache.encode(key: key, binary: binary)).write(to: temporary)
            if rename(temporary.path, url.path) != 0 { try? FileManager.default.removeItem(at: temporary) }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
        }
    }
}
