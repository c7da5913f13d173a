import ArgumentParser
import Foundation
import PrismCL

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List every OpenCL device and mark the one Prism would use."
    )

    @OptionGroup var global: GlobalOptions

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    struct Listing: Encodable {
        var selected: Int
        var devices: [DeviceInfo]
    }

    func run() throws {
        try runReportingErrors {
            let devices = try Device.all()
            let chosen = try Device.select(global.settings.device, from: devices)
            if global.verbose { printError("device: \(chosen.info.summary)") }
            let infos = devices.map(\.info)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                let data = try encoder.encode(Listing(selected: chosen.info.index, devices: infos))
                printLine(String(decoding: data, as: UTF8.self))
                return
            }
            for info in infos {
                let mark = info.index == chosen.info.index ? "*" : " "
                printLine("\(mark) #\(info.index) [\(info.type.rawValue)] \(info.name)")
                printLine("      platform \(info.platform); vendor \(info.vendor); driver \(info.driverVersion)")
                printLine("      \(info.deviceVersion); \(info.openCLCVersion)")
                printLine("      \(info.computeUnits) compute units @ \(info.clockMHz) MHz; global \(mib(info.globalMemoryBytes)); local \(kib(info.localMemoryBytes)); max alloc \(mib(info.maxAllocationBytes))")
                printLine("      max work-group \(info.maxWorkGroupSize); fp16 \(info.fp16 ? "yes" : "no"); fp64 \(info.fp64 ? "yes" : "no")")
            }
            printLine("* = selected (PRISM_DEVICE or --device; default GPU > accelerator > CPU)")
        }
    }

    private func mib(_ bytes: Int) -> String { "\(bytes >> 20) MiB" }
    private func kib(_ bytes: Int) -> String { "\(bytes >> 10) KiB" }
}
