// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Prism",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "PrismCL", targets: ["PrismCL"]),
        .executable(name: "prism", targets: ["prism"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // OpenCL C API through the ICD loader (Debian: ocl-icd-opencl-dev, opencl-headers).
        .systemLibrary(
            name: "COpenCL",
            path: "Sources/COpenCL",
            pkgConfig: "OpenCL",
            providers: [.apt(["ocl-icd-opencl-dev", "opencl-headers"])]
        ),
        // Generator run by the EmbedKernels plugin: Kernels/*.cl -> Swift string table.
        .executableTarget(
            name: "EmbedKernelsGenerator",
            path: "Plugins/EmbedKernelsGenerator"
        ),
        .plugin(
            name: "EmbedKernels",
            capability: .buildTool(),
            dependencies: ["EmbedKernelsGenerator"]
        ),
        // The OpenCL C sources, embedded into every binary that links them.
        .target(
            name: "PrismKernels",
            path: "Kernels",
            plugins: ["EmbedKernels"]
        ),
        .target(
            name: "PrismCL",
            dependencies: ["COpenCL", "PrismKernels"]
        ),
        .executableTarget(
            name: "prism",
            dependencies: [
                "PrismCL",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "PrismCLTests",
            dependencies: ["PrismCL", "prism"]
        ),
    ]
)
