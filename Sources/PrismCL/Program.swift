import COpenCL
import Foundation

/// A program built for one device. Kernels are created once and reused.
///
/// `@unchecked Sendable`: the handle never changes and the kernel table is guarded by `lock`.
public final class Program: @unchecked Sendable {
    public let handle: cl_program
    /// The kernel file (or given name) this program was built from.
    public let name: String
    /// The build options, `-D` defines included.
    public let options: String
    private let lock = NSLock()
    private var kernels: [String: Kernel] = [:]

    init(handle: cl_program, name: String, options: String) {
        self.handle = handle
        self.name = name
        self.options = options
    }

    deinit { clReleaseProgram(handle) }

    /// The kernel called `name`.
    /// - Throws: `CLError` (`CL_INVALID_KERNEL_NAME`) when the program has no such kernel.
    public func kernel(_ name: String) throws -> Kernel {
        lock.lock(); defer { lock.unlock() }
        if let kernel = kernels[name] { return kernel }
        let kernel = try Kernel(program: self, name: name)
        kernels[name] = kernel
        return kernel
    }

    func releaseKernels() {
        lock.lock(); kernels = [:]; lock.unlock()
    }

    /// Builds `handle` for `device`; on failure throws `buildFailed` with the build log.
    static func build(_ handle: cl_program, device: Device, name: String, options: String) throws {
        var deviceID: cl_device_id? = device.id
        let status = clBuildProgram(handle, 1, &deviceID, options, nil, nil)
        if status == CL_SUCCESS { return }
        let log = (try? buildLog(handle, device: device)) ?? ""
        if status == CL_BUILD_PROGRAM_FAILURE || status == CL_INVALID_BUILD_OPTIONS || status == CL_COMPILE_PROGRAM_FAILURE {
            throw CLError.buildFailed(program: name, options: options,
                                      log: log.isEmpty ? "\(CLError.name(of: status)) with no build log" : log)
        }
        throw CLError.call(function: "clBuildProgram(\(name))", status: status)
    }

    static func buildLog(_ handle: cl_program, device: Device) throws -> String {
        var size = 0
        try CLError.check(clGetProgramBuildInfo(handle, device.id, cl_program_build_info(CL_PROGRAM_BUILD_LOG), 0, nil, &size),
                          "clGetProgramBuildInfo")
        var bytes = [UInt8](repeating: 0, count: max(size, 1))
        try CLError.check(clGetProgramBuildInfo(handle, device.id, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, &bytes, nil),
                          "clGetProgramBuildInfo")
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The device binary of a built program (single device).
    static func binary(_ handle: cl_program) throws -> [UInt8] {
        var size = 0
        try CLError.check(clGetProgramInfo(handle, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size, &size, nil),
                          "clGetProgramInfo(CL_PROGRAM_BINARY_SIZES)")
        guard size > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: size)
        try bytes.withUnsafeMutableBufferPointer { buffer in
            var pointer: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            try CLError.check(clGetProgramInfo(handle, cl_program_info(CL_PROGRAM_BINARIES), MemoryLayout<UnsafeMutablePointer<UInt8>?>.size, &pointer, nil),
                              "clGetProgramInfo(CL_PROGRAM_BINARIES)")
        }
        return bytes
    }
}
