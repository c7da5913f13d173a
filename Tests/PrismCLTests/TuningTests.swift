import Foundation
@testable import PrismCL
import PrismFormats
import PrismTestSupport
import Testing

@Suite struct TuningTests {
    static func device(vendor: String, name: String, platform: String = "P") -> DeviceInfo {
        DeviceInfo(index: 0, name: name, vendor: vendor, platform: platform, driverVersion: "1", deviceVersion: "OpenCL 3.0",
                   openCLCVersion: "OpenCL C 1.2", type: .gpu, computeUnits: 1, clockMHz: 1, globalMemoryBytes: 1,
                   localMemoryBytes: 1, maxAllocationBytes: 1, maxWorkGroupSize: 1, memoryBaseAddressAlignBits: 8,
                   fp16: false, fp64: false, extensions: [])
    }

    let table = TuningTable(
        default: ["matmul.cl": ["TILE": "8"], "conv2d.cl": ["V": "1"]],
        vendors: [
            "nvidia": .init(default: ["matmul.cl": ["TILE": "16"]],
                            devices: ["H100": ["matmul.cl": ["TILE": "32"]], "H100 PCIe": ["matmul.cl": ["TILE": "64"]]]),
            "Portable Computing": .init(devices: ["avx512": ["matmul.cl": ["TILE": "6x32"]]]),
        ])

    @Test func lookupFallsBackDeviceVendorDefault() {
        #expect(table.defines(for: "matmul.cl", device: Self.device(vendor: "NVIDIA Corporation", name: "NVIDIA H100 80GB HBM3")) == ["TILE": "32"])
        #expect(table.defines(for: "matmul.cl", device: Self.device(vendor: "NVIDIA Corporation", name: "NVIDIA H100 PCIe")) == ["TILE": "64"])
        #expect(table.defines(for: "matmul.cl", device: Self.device(vendor: "NVIDIA Corporation", name: "Tesla T4")) == ["TILE": "16"])
        #expect(table.defines(for: "matmul.cl", device: Self.device(vendor: "AMD", name: "gfx90a")) == ["TILE": "8"])
        // A vendor entry without this file falls through to the global default.
        #expect(table.defines(for: "conv2d.cl", device: Self.device(vendor: "NVIDIA Corporation", name: "H100")) == ["V": "1"])
        // Vendor keys also match the platform name (PoCL reports the CPU's vendor).
        #expect(table.defines(for: "matmul.cl", device: Self.device(vendor: "AuthenticAMD", name: "pthread-skylake-avx512",
                                                                    platform: "Portable Computing Language")) == ["TILE": "6x32"])
        #expect(table.defines(for: "pool.cl", device: Self.device(vendor: "X", name: "Y")) == nil)
    }

    @Test func overrideIsSearchedFirst() throws {
        let override = TuningTable(vendors: ["nvidia": .init(default: ["matmul.cl": ["TILE": "4"]])])
        let tuning = Tuning(override: override, shipped: table)
        let h100 = Self.device(vendor: "NVIDIA", name: "H100")
        #expect(tuning.defines(for: "matmul.cl", device: h100) == ["TILE": "4"])
        #expect(tuning.defines(for: "conv2d.cl", device: h100) == ["V": "1"])  // not in the override
        #expect(Tuning().defines(for: "matmul.cl", device: h100) == [:])
    }

    @Test func tablesRoundTripThroughJSONAndBadFilesAreNamed() throws {
        let data = try JSONEncoder().encode(table)
        #expect(try TuningTable.decode(data, source: "x") == table)
        let folder = NSTemporaryDirectory() + "prism-tuning-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/t.json"
        try Data("{\"default\": 3}".utf8).write(to: URL(fileURLWithPath: path))
        var settings = Settings(cacheDirectory: folder, tuningFile: path)
        do { _ = try Tuning.load(settings: settings, shippedJSON: nil); Issue.record("should fail") } catch let e as CLError {
            #expect(e.description.hasPrefix("tuning table \(path): not a valid table"))
        }
        settings.tuningFile = folder + "/missing.json"
        #expect(throws: CLError.self) { try Tuning.load(settings: settings, shippedJSON: nil) }
        try data.write(to: URL(fileURLWithPath: path))
        settings.tuningFile = path
        #expect(try Tuning.load(settings: settings, shippedJSON: nil).override == table)
    }

    @Test func contextUsesTheOverrideFile() throws {
        let folder = NSTemporaryDirectory() + "prism-tuning-ctx-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/t.json"
        try JSONEncoder().encode(TuningTable(default: ["elementwise.cl": ["PRISM_VEC": "4"]])).write(to: URL(fileURLWithPath: path))
        let context = try Context(settings: Settings(device: "cpu", diskCacheEnabled: false, cacheDirectory: folder, tuningFile: path))
        #expect(context.tunedDefines(for: "elementwise.cl") == ["PRISM_VEC": "4"])
    }
}
