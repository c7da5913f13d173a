import Foundation
import PrismFormats

extension TuningTable {
    /// The defines for `file` on `device` from this table alone, or nil when no level has an entry
    /// (vendor keys match the device's vendor or platform, device keys its name, width keys its
    /// type and native float vector width).
    public func defines(for file: String, device: DeviceInfo) -> Defines? {
        defines(for: file, vendor: device.vendor + " " + device.platform, deviceName: device.name,
                widthKey: TuningTable.widthKey(device))
    }

    /// The `widths` key of `device`: `cpu 16` for an AVX-512 CPU under PoCL.
    public static func widthKey(_ device: DeviceInfo) -> String {
        widthKey(type: device.type.rawValue, nativeFloatWidth: device.nativeFloatWidth)
    }

    /// Decodes a table (see `TuningTable.parse`).
    /// - Throws: `CLError.invalidArgument` naming `source` when the JSON does not have the table's layout.
    public static func decode(_ data: Data, source: String) throws -> TuningTable {
        do {
            return try parse(data, source: source)
        } catch let error as DataError {
            throw CLError.invalidArgument(error.message)
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
