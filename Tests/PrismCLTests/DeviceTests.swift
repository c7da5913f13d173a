import Foundation
@testable import PrismCL
import PrismTestSupport
import Testing

@Suite struct DeviceTests {
    static func info(_ index: Int, _ type: DeviceType, _ name: String, platform: String = "Test") -> DeviceInfo {
        DeviceInfo(index: index, name: name, vendor: "Vendor\(index)", platform: platform, driverVersion: "1.0",
                   deviceVersion: "OpenCL 3.0", openCLCVersion: "OpenCL C 1.2", type: type, computeUnits: 1,
                   clockMHz: 1, globalMemoryBytes: 1 << 30, localMemoryBytes: 1 << 15, maxAllocationBytes: 1 << 28,
                   maxWorkGroupSize: 256, memoryBaseAddressAlignBits: 1024, fp16: false, fp64: false, extensions: [])
    }

    let devices = [
        info(0, .cpu, "pthread-haswell"),
        info(1, .accelerator, "FPGA emulator"),
        info(2, .gpu, "NVIDIA H100 80GB HBM3", platform: "NVIDIA CUDA"),
        info(3, .gpu, "Second GPU"),
    ]

    @Test func defaultPrefersGPUThenAcceleratorThenCPU() throws {
        #expect(try Device.selectIndex(nil, from: devices) == 2)
        #expect(try Device.selectIndex("", from: devices) == 2)
        #expect(try Device.selectIndex(nil, from: [devices[0], devices[1]]) == 1)
        #expect(try Device.selectIndex(nil, from: [devices[0]]) == 0)
    }

    @Test func selectsByIndexTypeAndName() throws {
        #expect(try Device.selectIndex("3", from: devices) == 3)
        #expect(try Device.selectIndex("0", from: devices) == 0)
        #expect(try Device.selectIndex("cpu", from: devices) == 0)
        #expect(try Device.selectIndex("GPU", from: devices) == 2)
        #expect(try Device.selectIndex("accelerator", from: devices) == 1)
        #expect(try Device.selectIndex("h100", from: devices) == 2)
        #expect(try Device.selectIndex("second", from: devices) == 3)
        #expect(try Device.selectIndex("cuda", from: devices) == 2)
    }

    @Test func unknownSelectionListsTheDevices() {
        for bad in ["7", "-1", "tpu-from-mars"] {
            do {
                _ = try Device.selectIndex(bad, from: devices)
                Issue.record("selection '\(bad)' should fail")
            } catch let error as CLError {
                guard case let .noSuchDevice(selection, available) = error else {
                    Issue.record("wrong error \(error)"); continue
                }
                #expect(selection == bad)
                #expect(available.count == devices.count)
                #expect(error.description.contains("NVIDIA H100 80GB HBM3"))
                #expect(error.description.contains("'\(bad)'"))
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
    }

    @Test func realDiscoveryFindsTheCPUDevice() throws {
        let all = try Device.all()
        let cpu = try #require(all.first { $0.info.type == .cpu })
        #expect(cpu.info.computeUnits >= 1)
        #expect(cpu.info.maxWorkGroupSize >= 1)
        #expect(cpu.info.globalMemoryBytes > 0)
        #expect(cpu.info.maxAllocationBytes > 0)
        #expect(!cpu.info.name.isEmpty)
        #expect(cpu.info.openCLCVersion.hasPrefix("OpenCL C"))
        #expect(try Device.select("cpu", from: all).info.index == cpu.info.index)
        #expect(try Device.select("\(cpu.info.index)", from: all).info.index == cpu.info.index)
        for (i, device) in all.enumerated() { #expect(device.info.index == i) }
    }

    @Test func queueVersionParsing() {
        #expect(Queue.majorVersion("OpenCL 3.0 PoCL HSTR: x") == 3)
        #expect(Queue.majorVersion("OpenCL 1.2 CUDA") == 1)
        #expect(Queue.majorVersion("garbage") == 1)
    }
}

@Suite struct ErrorAndSettingsTests {
    @Test func symbolicNames() {
        #expect(CLError.name(of: 0) == "CL_SUCCESS")
        #expect(CLError.name(of: -5) == "CL_OUT_OF_RESOURCES")
        #expect(CLError.name(of: -11) == "CL_BUILD_PROGRAM_FAILURE")
        #expect(CLError.name(of: -46) == "CL_INVALID_KERNEL_NAME")
        #expect(CLError.name(of: -54) == "CL_INVALID_WORK_GROUP_SIZE")
        #expect(CLError.name(of: -72) == "CL_MAX_SIZE_RESTRICTION_EXCEEDED")
        #expect(CLError.name(of: -1001) == "CL_PLATFORM_NOT_FOUND_KHR")
        #expect(CLError.name(of: -12345) == "CL_UNKNOWN_ERROR")
        let error = CLError.call(function: "clEnqueueNDRangeKernel", status: -5)
        #expect(error.description == "clEnqueueNDRangeKernel failed: CL_OUT_OF_RESOURCES (-5)")
        #expect(error.status == -5)
        // Every code from CL_SUCCESS down to CL_MAX_SIZE_RESTRICTION_EXCEEDED that the headers define has a name.
        for code in Int32(-72)...0 where !(-29 ... -20).contains(code) {
            #expect(CLError.name(of: code) != "CL_UNKNOWN_ERROR", "code \(code)")
        }
    }

    @Test func noPlatformMessage() {
        #expect(CLError.noPlatform.description
            == "no OpenCL platform found: install pocl-opencl-icd (CPU) or your GPU vendor's OpenCL driver")
    }

    @Test func settingsFromEnvironment() {
        let s = Settings(environment: ["PRISM_DEVICE": " gpu ", "PRISM_KERNELS_DIR": "/k", "PRISM_NO_CACHE": "1",
                                       "XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"])
        #expect(s.device == "gpu")
        #expect(s.kernelsDirectory == "/k")
        #expect(!s.diskCacheEnabled)
        #expect(s.cacheDirectory == "/xdg/prism")
        let d = Settings(environment: ["HOME": "/home/u", "PRISM_DEVICE": ""])
        #expect(d.device == nil)
        #expect(d.diskCacheEnabled)
        #expect(d.cacheDirectory == "/home/u/.cache/prism")
        #expect(Settings(environment: ["PRISM_CACHE_DIR": "/c", "XDG_CACHE_HOME": "/xdg"]).cacheDirectory == "/c")
        #expect(Settings(environment: ["PRISM_NO_CACHE": "0"]).diskCacheEnabled)
        #expect(d.bufferPoolEnabled && !d.retainsReleasedBuffers)
        let checker = Settings(environment: ["PRISM_NO_POOL": "1", "PRISM_RETAIN_BUFFERS": "yes"])
        #expect(!checker.bufferPoolEnabled && checker.retainsReleasedBuffers)
    }
}
