import Foundation

/// Per-device values of kernel tunables (`-D` defines), looked up device → native width → vendor
/// → default.
///
/// JSON layout (written by `prism-bench tune`, never by hand):
/// ```
/// { "default": { "matmul.cl": { "TILE": "16" } },
///   "widths": { "cpu 16": { "matmul.cl": { "MM_VW": "16" } } },
///   "vendors": { "NVIDIA": { "default": { ... },
///                            "devices": { "H100": { "matmul.cl": { "TILE": "32" } } } } } }
/// ```
/// Vendor and device keys match as case-insensitive substrings of the device's vendor (or
/// platform) and name. A `widths` key is a device type and its native float vector width
/// (`cpu 16`): the winners measured on a device of that kind, for devices the table does not
/// name (a CPU model that was never measured takes those of a measured CPU as wide as it). For a
/// kernel file, the most specific level that has an entry for that file wins. The table is plain data (no OpenCL): PrismCL looks it up for a device and loads the user's
/// and the shipped table (`Tuning`).
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
    /// Entries by device kind (`widthKey`): the fallback for devices no device key matches.
    public var widths: [String: [String: Defines]]?
    public var vendors: [String: Vendor]?

    public init(default: [String: Defines]? = nil, widths: [String: [String: Defines]]? = nil, vendors: [String: Vendor]? = nil) {
        self.default = `default`
        self.widths = widths
        self.vendors = vendors
    }

    /// The `widths` key of a device kind: its type (`cpu`, `gpu`, …) and native float vector width.
    public static func widthKey(type: String, nativeFloatWidth: Int) -> String { "\(type) \(nativeFloatWidth)" }

    /// The defines for `file` on a device from this table alone, or nil when no level has an entry.
    /// - Parameters:
    ///   - file: the kernel file, e.g. `matmul.cl`.
    ///   - vendor: the device's vendor and platform names, matched by the vendor keys.
    ///   - deviceName: the device's name, matched by the device keys.
    ///   - widthKey: the device's kind (`widthKey(type:nativeFloatWidth:)`), or nil to skip that level.
    public func defines(for file: String, vendor: String, deviceName: String, widthKey: String? = nil) -> Defines? {
        let vendorText = vendor.lowercased()
        let name = deviceName.lowercased()
        // Longest matching key first, so "H100 PCIe" beats "H100".
        let matching = (vendors ?? [:]).sorted(by: { $0.key.count > $1.key.count }).filter { vendorText.contains($0.key.lowercased()) }
        for (_, vendor) in matching {
            for (deviceKey, files) in (vendor.devices ?? [:]).sorted(by: { $0.key.count > $1.key.count })
            where name.contains(deviceKey.lowercased()) {
                if let d = files[file] { return d }
            }
        }
        if let widthKey, let d = widths?[widthKey]?[file] { return d }
        for (_, vendor) in matching {
            if let d = vendor.default?[file] { return d }
        }
        return self.default?[file]
    }

    /// Parses a table.
    /// - Throws: `DataError` naming `source` when the JSON does not have the layout above.
    public static func parse(_ data: Data, source: String) throws -> TuningTable {
        do {
            return try JSONDecoder().decode(TuningTable.self, from: data)
        } catch {
            throw DataError("tuning table \(source): not a valid table (\(error))")
        }
    }

    /// The table with `defines` recorded for `file` under the vendor and device keys (merged over
    /// what the table already holds for that file there).
    public func setting(_ defines: Defines, file: String, vendor: String, device: String) -> TuningTable {
        var table = self
        var vendors = table.vendors ?? [:]
        var entry = vendors[vendor] ?? Vendor()
        var devices = entry.devices ?? [:]
        var files = devices[device] ?? [:]
        files[file] = (files[file] ?? [:]).merging(defines) { $1 }
        devices[device] = files
        entry.devices = devices
        vendors[vendor] = entry
        table.vendors = vendors
        return table
    }

    /// The table with `defines` recorded for `file` as the winners of devices of kind `widthKey`
    /// (merged over what the table already holds for that file there).
    public func setting(_ defines: Defines, file: String, widthKey: String) -> TuningTable {
        var table = self
        var widths = table.widths ?? [:]
        var files = widths[widthKey] ?? [:]
        files[file] = (files[file] ?? [:]).merging(defines) { $1 }
        widths[widthKey] = files
        table.widths = widths
        return table
    }

    /// The table as pretty-printed JSON with sorted keys.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}
