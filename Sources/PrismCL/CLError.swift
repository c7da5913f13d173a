import COpenCL

/// An error from the OpenCL runtime or from Prism's host layer.
///
/// Every OpenCL call is checked; a failing one becomes `.call` with the status code, its symbolic
/// name (`CL_OUT_OF_RESOURCES`) and the function that failed.
public enum CLError: Error, Equatable, CustomStringConvertible, Sendable {
    /// An OpenCL call returned a status other than `CL_SUCCESS`.
    case call(function: String, status: Int32)
    /// No OpenCL platform is installed (or the ICD loader found none).
    case noPlatform
    /// A device selection (`PRISM_DEVICE`, `--device`) matched no device.
    case noSuchDevice(selection: String, available: [String])
    /// The OpenCL compiler rejected a program; `log` is the compiler's build log.
    case buildFailed(program: String, options: String, log: String)
    /// A kernel file named by the caller is neither embedded nor in `PRISM_KERNELS_DIR`.
    case missingKernelFile(name: String, searched: String)
    /// An allocation larger than the device allows, or that failed even after emptying the pool.
    case allocationFailed(bytes: Int, reason: String)
    /// A host-side precondition on arguments (ranges, sizes) failed.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .call(function, status):
            return "\(function) failed: \(CLError.name(of: status)) (\(status))"
        case .noPlatform:
            return "no OpenCL platform found: install pocl-opencl-icd (CPU) or your GPU vendor's OpenCL driver"
        case let .noSuchDevice(selection, available):
            let list = available.isEmpty ? "none" : available.joined(separator: "; ")
            return "no OpenCL device matches '\(selection)'; available: \(list)"
        case let .buildFailed(program, options, log):
            let opts = options.isEmpty ? "" : " with options '\(options)'"
            return "OpenCL build of \(program)\(opts) failed:\n\(log)"
        case let .missingKernelFile(name, searched):
            return "kernel file '\(name)' not found (\(searched))"
        case let .allocationFailed(bytes, reason):
            return "cannot allocate \(bytes) bytes on the device: \(reason)"
        case let .invalidArgument(message):
            return message
        }
    }

    /// The status code of a failed OpenCL call, or nil for host-side errors.
    public var status: Int32? {
        if case let .call(_, status) = self { return status }
        return nil
    }

    /// Throws `.call` unless `status` is `CL_SUCCESS`.
    @inline(__always)
    static func check(_ status: cl_int, _ function: @autoclosure () -> String) throws {
        if status != CL_SUCCESS { throw CLError.call(function: function(), status: status) }
    }

    /// The symbolic name of an OpenCL status code, for every code in the 1.2–3.0 headers and the
    /// common extension codes; unknown codes read `CL_UNKNOWN_ERROR`.
    public static func name(of status: Int32) -> String {
        statusNames[status] ?? "CL_UNKNOWN_ERROR"
    }

    static let statusNames: [Int32: String] = [
        0: "CL_SUCCESS",
        -1: "CL_DEVICE_NOT_FOUND",
        -2: "CL_DEVICE_NOT_AVAILABLE",
        -3: "CL_COMPILER_NOT_AVAILABLE",
        -4: "CL_MEM_OBJECT_ALLOCATION_FAILURE",
        -5: "CL_OUT_OF_RESOURCES",
        -6: "CL_OUT_OF_HOST_MEMORY",
        -7: "CL_PROFILING_INFO_NOT_AVAILABLE",
        -8: "CL_MEM_COPY_OVERLAP",
        -9: "CL_IMAGE_FORMAT_MISMATCH",
        -10: "CL_IMAGE_FORMAT_NOT_SUPPORTED",
        -11: "CL_BUILD_PROGRAM_FAILURE",
        -12: "CL_MAP_FAILURE",
        -13: "CL_MISALIGNED_SUB_BUFFER_OFFSET",
        -14: "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST",
        -15: "CL_COMPILE_PROGRAM_FAILURE",
        -16: "CL_LINKER_NOT_AVAILABLE",
        -17: "CL_LINK_PROGRAM_FAILURE",
        -18: "CL_DEVICE_PARTITION_FAILED",
        -19: "CL_KERNEL_ARG_INFO_NOT_AVAILABLE",
        -30: "CL_INVALID_VALUE",
        -31: "CL_INVALID_DEVICE_TYPE",
        -32: "CL_INVALID_PLATFORM",
        -33: "CL_INVALID_DEVICE",
        -34: "CL_INVALID_CONTEXT",
        -35: "CL_INVALID_QUEUE_PROPERTIES",
        -36: "CL_INVALID_COMMAND_QUEUE",
        -37: "CL_INVALID_HOST_PTR",
        -38: "CL_INVALID_MEM_OBJECT",
        -39: "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR",
        -40: "CL_INVALID_IMAGE_SIZE",
        -41: "CL_INVALID_SAMPLER",
        -42: "CL_INVALID_BINARY",
        -43: "CL_INVALID_BUILD_OPTIONS",
        -44: "CL_INVALID_PROGRAM",
        -45: "CL_INVALID_PROGRAM_EXECUTABLE",
        -46: "CL_INVALID_KERNEL_NAME",
        -47: "CL_INVALID_KERNEL_DEFINITION",
        -48: "CL_INVALID_KERNEL",
        -49: "CL_INVALID_ARG_INDEX",
        -50: "CL_INVALID_ARG_VALUE",
        -51: "CL_INVALID_ARG_SIZE",
        -52: "CL_INVALID_KERNEL_ARGS",
        -53: "CL_INVALID_WORK_DIMENSION",
        -54: "CL_INVALID_WORK_GROUP_SIZE",
        -55: "CL_INVALID_WORK_ITEM_SIZE",
        -56: "CL_INVALID_GLOBAL_OFFSET",
        -57: "CL_INVALID_EVENT_WAIT_LIST",
        -58: "CL_INVALID_EVENT",
        -59: "CL_INVALID_OPERATION",
        -60: "CL_INVALID_GL_OBJECT",
        -61: "CL_INVALID_BUFFER_SIZE",
        -62: "CL_INVALID_MIP_LEVEL",
        -63: "CL_INVALID_GLOBAL_WORK_SIZE",
        -64: "CL_INVALID_PROPERTY",
        -65: "CL_INVALID_IMAGE_DESCRIPTOR",
        -66: "CL_INVALID_COMPILER_OPTIONS",
        -67: "CL_INVALID_LINKER_OPTIONS",
        -68: "CL_INVALID_DEVICE_PARTITION_COUNT",
        -69: "CL_INVALID_PIPE_SIZE",
        -70: "CL_INVALID_DEVICE_QUEUE",
        -71: "CL_INVALID_SPEC_ID",
        -72: "CL_MAX_SIZE_RESTRICTION_EXCEEDED",
        -1000: "CL_INVALID_GL_SHAREGROUP_REFERENCE_KHR",
        -1001: "CL_PLATFORM_NOT_FOUND_KHR",
        -1002: "CL_INVALID_D3D10_DEVICE_KHR",
        -1003: "CL_INVALID_D3D10_RESOURCE_KHR",
        -1004: "CL_D3D10_RESOURCE_ALREADY_ACQUIRED_KHR",
        -1005: "CL_D3D10_RESOURCE_NOT_ACQUIRED_KHR",
        -1057: "CL_DEVICE_PARTITION_FAILED_EXT",
        -1058: "CL_INVALID_PARTITION_COUNT_EXT",
        -1059: "CL_INVALID_PARTITION_NAME_EXT",
        -1092: "CL_INVALID_ACCELERATOR_INTEL",
        -1093: "CL_INVALID_ACCELERATOR_TYPE_INTEL",
        -1094: "CL_INVALID_ACCELERATOR_DESCRIPTOR_INTEL",
        -1095: "CL_ACCELERATOR_TYPE_NOT_SUPPORTED_INTEL",
        -1098: "CL_INVALID_VA_API_MEDIA_ADAPTER_INTEL",
        -1099: "CL_INVALID_VA_API_MEDIA_SURFACE_INTEL",
        -1100: "CL_VA_API_MEDIA_SURFACE_ALREADY_ACQUIRED_INTEL",
        -1101: "CL_VA_API_MEDIA_SURFACE_NOT_ACQUIRED_INTEL",
        -1138: "CL_INVALID_COMMAND_BUFFER_KHR",
        -1139: "CL_INVALID_SYNC_POINT_WAIT_LIST_KHR",
        -1140: "CL_INCOMPATIBLE_COMMAND_QUEUE_KHR",
        -9999: "CL_NV_KERNEL_ILLEGAL_BUFFER_READ_WRITE",
    ]
}
