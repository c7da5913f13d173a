import Foundation

/// Per-device values of kernel tunables (`-D` defines), looked up vendor → device → default.
///
/// JSON layout (written by `prism-bench tune`, never by hand):
/// ```
/// { "default": { "matmul.cl": { "TILE": "16" } },
///   "vendors": { "NVIDIA": { "default": { ... },
///                            "devices": { "H100": { "matmul.cl": { "TILE": "32" } } } } } }
/// ```
/// Vendor and device keys match as case-insensitive substrings of the device's vendor (or
/// platform) and name. For a kernel file, the most specific level that has an entry for that file
/// wins, and the user's table (`PRISM_TUNING_FILE`) is searched before the shipped one.
public struct TuningTable: Codable, Equatable, Sendable {
    public typealias Defines = [String: String]

    public struct Vendor: Codable, Equatable, Sendable {
        public var `default`: [String: Defines]?
        public var devices: [String: [String: Defines]]?
        public init(default: [String: Defines]? = nil, devices: [String: [String: Defines]]? = nil) {
            self.default = `default`
            self.devices = devices
        }
    }

    public var `default`: [String: Defines]?
    public var vendors: [String: Vendor]?

    public init(default: [String: Defines]? = nil, vendors: [String: Vendor]? = nil) {
        self.default = `default`
        self.vendors = vendors
    }

    /// The defines for `file` on `device` from this table alone, or nil when no level has an entry.
    public func defines(for file: String, device: DeviceInfo) -> Defines? {
        let vendorText = (device.vendor + " " + device.platform).lowercased()
        let name = device.name.lowercased()
        // Longest matching key first, so "H100 PCIe" beats "H100".
        for (vendorKey, vendor) in (vendors ?? [:]).sorted(by: { $0.key.count > $1.key.count })
        where vendorText.contains(vendorKey.lowercased()) {
            for (deviceKey, files) in (vendor.devices ?? [:]).sorted(by: { $0.key.count > $1.key.count })
            where name.contains(deviceKey.lowercased()) {
                if let d = files[file] { return d }
            }
            if let d = vendor.default?[file] { return d }
        }
        return self.default?[file]
    }

    /// Decodes a table.
    /// - Throws: `CLError.invalidArgument` naming `source` when the JSON does not have the layout above.
    public static func decode(_ data: Data, source: String) throws -> TuningTable {
        do {
            return try JSONDecoder().decode(TuningTable.self, from: data)
        } catch {
            throw CLError.invalidArgument("tuning table \(source): not a valid table (\(error))")
        }
    }
}

/// The tables in force: the user's override (searched first), then the shipped one.
public struct Tuning: Sendable {
    public var override: TuningTable?
    public var shipped: TuningTable?

    public init(override: TuningTable? = nil, shipped: TuningTable? = nil) {
        self.override = override
        self.shipped = shipped
    }

    /// Loads the user's table from `settings.tuningFile` (when set) and the shipped table embedded
    /// with the kernels (`Kernels/tuning.json`, read from `PRISM_KERNELS_DIR` when that is set).
    /// - Throws: when the user's file is missing or malformed (a shipped table that fails is a bug
    ///   caught by tests, and is ignored here so kernels still build with their defaults).
    public static func load(settings: Settings, shippedJSON: String?) throws -> Tuning {
        var tuning = Tuning()
        if let path = settings.tuningFile {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CLError.invalidArgument("PRISM_TUNING_FILE=\(path): cannot read file")
            }
            tuning.override = try TuningTable.decode(data, source: path)
        }
        if let json = shippedJSON {
            tuning.shipped = try? TuningTable.decode(Data(json.utf8), source: "tuning.json")
        }
        return tuning
    }

    /// The defines for `file` on `device`: the override's answer if it has one, else the shipped one.
    public func defines(for file: String, device: DeviceInfo) -> TuningTable.Defines {
        override?.defines(for: file, device: device) ?? shipped?.defines(for: file, device: device) ?? [:]
    }
}
