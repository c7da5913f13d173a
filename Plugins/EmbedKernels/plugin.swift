import Foundation
import PackagePlugin

/// Turns every `*.cl` file (and the tuning table, `*.json`) of the target's folder into one
/// generated Swift file holding a `[fileName: source]` table, so that each binary carries its kernels. The command's inputs are
/// the `.cl` files, so editing one regenerates the table; adding one re-runs the plugin.
@main
struct EmbedKernels: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let target = target as? SourceModuleTarget else { return [] }
        let kernels = target.sourceFiles
            .map(\.url)
            .filter { ["cl", "json"].contains($0.pathExtension) }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedKernelSources.swift")
        let tool = try context.tool(named: "EmbedKernelsGenerator")
        return [
            .buildCommand(
                displayName: "Embedding \(kernels.count) OpenCL kernel files",
                executable: tool.url,
                arguments: [output.path(percentEncoded: false)] + kernels.map { $0.path(percentEncoded: false) },
                inputFiles: kernels,
                outputFiles: [output]
            )
        ]
    }
}
