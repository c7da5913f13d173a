import COpenCL
import Foundation

/// The kind of an OpenCL device.
public enum DeviceType: String, Codable, Sendable, CaseIterable {
    case gpu, accelerator, cpu, custom, other

    init(_ bits: cl_device_type) {
        if bits & cl_device_type(CL_DEVICE_TYPE_GPU) != 0 { self = .gpu }
        else if bits & cl_device_type(CL_DEVICE_TYPE_ACCELERATOR) != 0 { self = .accelerator }
        else if bits & cl_device_type(CL_DEVICE_TYPE_CPU) != 0 { self = .cpu }
        else if bits & cl_device_type(CL_DEVICE_TYPE_CUSTOM) != 0 { self = .custom }
        else { self = .other }
    }

    /// Order of preference for the default device: GPU, then accelerator, then CPU.
    var preference: Int {
        switch self {
        case .gpu: return 0
        case .accelerator: return 1
        case .cpu: return 2
        case .custom: return 3
        case .other: return 4
        }
    }
}

/// What Prism knows about one device, read once at discovery.
public struct DeviceInfo: Codable, Sendable, Equatable {
    /// Position in the list of all devices over all platforms (what `PRISM_DEVICE=1` selects).
    public var index: Int
    public var name: String
    public var vendor: String
    public var platform: String
    public var driverVersion: String
    public var deviceVersion: String
    public var openCLCVersion: String
    public var type: DeviceType
    public var computeUnits: Int
    public var clockMHz: Int
    public var globalMemoryBytes: Int
    public var localMemoryBytes: Int
    public var maxAllocationBytes: Int
    public var maxWorkGroupSize: Int
    public var memoryBaseAddressAlignBits: Int
    public var fp16: Bool
    public var fp64: Bool
    public var extensions: [String]
    /// `CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT`: floats per native SIMD register (16 on AVX-512, 8 on
    /// AVX2, often 1 on GPUs, which vectorize across work-items).
    public var nativeFloatWidth: Int = 1

    /// A one-line summary: `#0 cpu "pthread-…" (Portable Computing Language, driver 3.1)`.
    public var summary: String {
        "#\(index) \(type.rawValue) \"\(name)\" (\(platform), driver \(driverVersion))"
    }
}

/// One OpenCL device with its platform.
///
/// `@unchecked Sendable`: it holds immutable handles and values only; OpenCL device and platform
/// handles may be used from any thread.
public final class Device: @unchecked Sendable, CustomStringConvertible {
    public let id: cl_device_id
    public let platformID: cl_platform_id
    public let info: DeviceInfo

    init(id: cl_device_id, platformID: cl_platform_id, index: Int) throws {
        self.id = id
        self.platformID = platformID
        let extensions = try Device.string(id, CL_DEVICE_EXTENSIONS).split(separator: " ").map(String.init)
        info = DeviceInfo(
            index: index,
            name: try Device.string(id, CL_DEVICE_NAME),
            vendor: try Device.string(id, CL_DEVICE_VENDOR),
            platform: try Device.platformString(platformID, CL_PLATFORM_NAME),
            driverVersion: try Device.string(id, CL_DRIVER_VERSION),
            deviceVersion: try Device.string(id, CL_DEVICE_VERSION),
            openCLCVersion: try Device.string(id, CL_DEVICE_OPENCL_C_VERSION),
            type: DeviceType(try Device.scalar(id, CL_DEVICE_TYPE, as: cl_device_type.self)),
            computeUnits: Int(try Device.scalar(id, CL_DEVICE_MAX_COMPUTE_UNITS, as: cl_uint.self)),
            clockMHz: Int(try Device.scalar(id, CL_DEVICE_MAX_CLOCK_FREQUENCY, as: cl_uint.self)),
            globalMemoryBytes: Int(try Device.scalar(id, CL_DEVICE_GLOBAL_MEM_SIZE, as: cl_ulong.self)),
            localMemoryBytes: Int(try Device.scalar(id, CL_DEVICE_LOCAL_MEM_SIZE, as: cl_ulong.self)),
            maxAllocationBytes: Int(try Device.scalar(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, as: cl_ulong.self)),
            maxWorkGroupSize: Int(try Device.scalar(id, CL_DEVICE_MAX_WORK_GROUP_SIZE, as: Int.self)),
            memoryBaseAddressAlignBits: Int(try Device.scalar(id, CL_DEVICE_MEM_BASE_ADDR_ALIGN, as: cl_uint.self)),
            fp16: extensions.contains("cl_khr_fp16"),
            fp64: extensions.contains("cl_khr_fp64"),
            extensions: extensions,
            nativeFloatWidth: max(1, Int(try Device.scalar(id, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, as: cl_uint.self)))
        )
    }

    public var description: String { info.summary }

    /// Every device of every platform, in platform order then device order.
    /// - Throws: `CLError.noPlatform` when no platform is installed.
    public static func all() throws -> [Device] {
        // The ICD loader initializes itself on the first call, and that is not safe to race.
        discoveryLock.lock()
        defer { discoveryLock.unlock() }
        var count: cl_uint = 0
        let status = clGetPlatformIDs(0, nil, &count)
        if status == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (status == CL_SUCCESS && count == 0) {
            throw CLError.noPlatform
        }
        try CLError.check(status, "clGetPlatformIDs")
        var platforms = [cl_platform_id?](repeating: nil, count: Int(count))
        try CLError.check(clGetPlatformIDs(count, &platforms, nil), "clGetPlatformIDs")
        var devices: [Device] = []
        for case let platform? in platforms {
            var n: cl_uint = 0
            let s = clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &n)
            if s == CL_DEVICE_NOT_FOUND || n == 0 { continue }
            try CLError.check(s, "clGetDeviceIDs")
            var ids = [cl_device_id?](repeating: nil, count: Int(n))
            try CLError.check(clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), n, &ids, nil), "clGetDeviceIDs")
            for case let id? in ids {
                devices.append(try Device(id: id, platformID: platform, index: devices.count))
            }
        }
        if devices.isEmpty { throw CLError.noPlatform }
        return devices
    }

    private static let discoveryLock = NSLock()

    /// The index of the default device among `devices`: the first GPU, else the first accelerator,
    /// else the first CPU.
    public static func defaultIndex(in devices: [DeviceInfo]) -> Int? {
        devices.enumerated().min { a, b in
            (a.element.type.preference, a.offset) < (b.element.type.preference, b.offset)
        }?.offset
    }

    /// Picks a device by `selection`: nil for the default, an index (`"1"`), a type (`"gpu"`,
    /// `"cpu"`, `"accelerator"`) or a case-insensitive substring of the device or platform name.
    /// - Throws: `CLError.noSuchDevice` listing the available devices when nothing matches.
    public static func select(_ selection: String?, from devices: [Device]) throws -> Device {
        guard let index = try selectIndex(selection, from: devices.map(\.info)) else {
            throw CLError.noPlatform
        }
        return devices[index]
    }

    /// Picks a device by `selection` from the process's devices.
    public static func select(_ selection: String? = Settings.current.device) throws -> Device {
        try select(selection, from: all())
    }

    /// The selection logic on plain descriptions, so it can be tested without hardware.
    public static func selectIndex(_ selection: String?, from devices: [DeviceInfo]) throws -> Int? {
        guard let raw = selection?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else {
            return defaultIndex(in: devices)
        }
        let key = raw.lowercased()
        if let index = Int(key) {
            guard devices.indices.contains(index) else {
                throw CLError.noSuchDevice(selection: raw, available: devices.map(\.summary))
            }
            return index
        }
        if let type = DeviceType(rawValue: key == "acc" ? "accelerator" : key),
           let match = devices.firstIndex(where: { $0.type == type }) {
            return match
        }
        if let match = devices.firstIndex(where: {
            $0.name.lowercased().contains(key) || $0.platform.lowercased().contains(key) || $0.vendor.lowercased().contains(key)
        }) {
            return match
        }
        throw CLError.noSuchDevice(selection: raw, available: devices.map(\.summary))
    }

    // MARK: info queries

    static func string(_ id: cl_device_id, _ param: Int32) throws -> String {
        var size = 0
        try CLError.check(clGetDeviceInfo(id, cl_device_info(param), 0, nil, &size), "clGetDeviceInfo")
        var bytes = [CChar](repeating: 0, count: max(size, 1))
        try CLError.check(clGetDeviceInfo(id, cl_device_info(param), size, &bytes, nil), "clGetDeviceInfo")
        return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .trimmingCharacters(in: .whitespaces)
    }

    static func platformString(_ id: cl_platform_id, _ param: Int32) throws -> String {
        var size = 0
        try CLError.check(clGetPlatformInfo(id, cl_platform_info(param), 0, nil, &size), "clGetPlatformInfo")
        var bytes = [CChar](repeating: 0, count: max(size, 1))
        try CLError.check(clGetPlatformInfo(id, cl_platform_info(param), size, &bytes, nil), "clGetPlatformInfo")
        return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .trimmingCharacters(in: .whitespaces)
    }

    static func scalar<T: FixedWidthInteger>(_ id: cl_device_id, _ param: Int32, as: T.Type) throws -> T {
        var value: T = 0
        try CLError.check(clGetDeviceInfo(id, cl_device_info(param), MemoryLayout<T>.size, &value, nil), "clGetDeviceInfo")
        return value
    }
}
