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

    /// A device the table does not name takes the winners of a measured device of its kind (type and
    /// native float width) before the vendor's and the global defaults; a named device keeps its own.
    @Test func unnamedDevicesFallBackByNativeWidth() {
        let pocl = TuningTable(
            default: ["matmul.cl": ["MM_MB": "8"]],
            widths: ["cpu 16": ["matmul.cl": ["MM_VW": "16", "MM_MR": "8"]], "cpu 8": ["conv2d.cl": ["CONV_FWD_NP": "6"]]],
            vendors: ["Portable Computing": .init(default: ["matmul.cl": ["MM_MB": "16"], "conv2d.cl": ["CONV_FWD_NP": "4"]],
                                                  devices: ["Xeon": ["matmul.cl": ["MM_VW": "8"]]])])
        func cpu(_ name: String, width: Int) -> DeviceInfo {
            var d = Self.device(vendor: "AuthenticAMD", name: name, platform: "Portable Computing Language")
            d.type = .cpu
            d.nativeFloatWidth = width
            return d
        }
        #expect(pocl.defines(for: "matmul.cl", device: cpu("pthread-skylake-avx512-Intel(R) Xeon(R)", width: 16)) == ["MM_VW": "8"])
        #expect(pocl.defines(for: "matmul.cl", device: cpu("pthread-znver5-AMD EPYC", width: 16)) == ["MM_VW": "16", "MM_MR": "8"])
        #expect(pocl.defines(for: "matmul.cl", device: cpu("pthread-haswell-AMD EPYC", width: 8)) == ["MM_MB": "16"])
        #expect(pocl.defines(for: "conv2d.cl", device: cpu("pthread-haswell-AMD EPYC", width: 8)) == ["CONV_FWD_NP": "6"])
        // A GPU as wide is another kind.
        var gpu = Self.device(vendor: "Other", name: "G")
        gpu.nativeFloatWidth = 16
        #expect(pocl.defines(for: "matmul.cl", device: gpu) == ["MM_MB": "8"])
        #expect(TuningTable.widthKey(cpu("x", width: 16)) == "cpu 16")
        // The tuner records a winner under both keys.
        let written = TuningTable().setting(["MM_VW": "16"], file: "matmul.cl", vendor: "P", device: "D")
            .setting(["MM_VW": "16"], file: "matmul.cl", widthKey: "cpu 16")
        #expect(written.widths == ["cpu 16": ["matmul.cl": ["MM_VW": "16"]]])
        #expect(written.vendors?["P"]?.devices?["D"] == ["matmul.cl": ["MM_VW": "16"]])
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
