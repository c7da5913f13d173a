// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Prism",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "PrismCL", targets: ["PrismCL"]),
        .library(name: "Prism", targets: ["Prism"]),
        .library(name: "PrismReference", targets: ["PrismReference"]),
        .library(name: "PrismFiles", targets: ["PrismFiles"]),
        .library(name: "PrismFormats", targets: ["PrismFormats"]),
        .library(name: "PrismONNX", targets: ["PrismONNX"]),
        .executable(name: "prism", targets: ["prism"]),
        .executable(name: "prism-bench", targets: ["prism-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // ONNX files are protobuf; Sources/PrismONNX/Generated is generated against this exact version.
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
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
        // The tuning table's format lives in PrismFormats (fuzzed without OpenCL).
        .target(
            name: "PrismCL",
            dependencies: ["COpenCL", "PrismKernels", "PrismFormats"]
        ),
        // zlib (Debian: zlib1g-dev), for gzip-compressed datasets, linked from its static archive so
        // that a release binary needs no libz at run time.
        .target(
            name: "CZlib",
            path: "Sources/CZlib",
            linkerSettings: [
                .unsafeFlags(["-Xlinker", "-l:libz.a"], .when(platforms: [.linux])),
                .linkedLibrary("z", .when(platforms: [.macOS])),
            ]
        ),
        // PNG and JPEG decoding for the user's input files, in C so that libpng's and libjpeg's
        // longjmp error handling stays inside C (Debian: libpng-dev, libjpeg62-turbo-dev). The
        // static archives are linked so that a release binary needs no libpng or libjpeg at run
        // time; libz.a is named again after libpng16.a, which uses it (GNU ld reads archives in order).
        .target(
            name: "CImageDecode",
            dependencies: ["CZlib"],
            path: "Sources/CImageDecode",
            linkerSettings: [
                .unsafeFlags([
                    "-Xlinker", "-l:libpng16.a", "-Xlinker", "-l:libjpeg.a", "-Xlinker", "-l:libz.a", "-Xlinker", "-lm",
                ], .when(platforms: [.linux])),
                .linkedLibrary("png16", .when(platforms: [.macOS])),
                .linkedLibrary("jpeg", .when(platforms: [.macOS])),
            ]
        ),
        // Open MPI loaded at run time (dlopen of libmpi.so.40), so that a plain prism neither links
        // nor needs MPI; only `mpirun -np N prism …` loads it (Debian: openmpi-bin).
        .target(
            name: "CMPI",
            path: "Sources/CMPI",
            linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]
        ),
        // The processes of an mpirun job: rank, size, host, and collectives and messages with deadlines.
        .target(
            name: "PrismMPI",
            dependencies: ["CMPI", "Prism"]
        ),
        // Output files: checked before any work, written through a temporary file and a rename.
        .target(
            name: "PrismFiles",
            dependencies: ["CZlib"]
        ),
        // Plain-Swift implementations (Double accumulation): the oracle every kernel is checked against.
        .target(name: "PrismReference"),
        // The file parsers (safetensors, .npy, CSV, IDX, segmentation maps, column groups, tuning
        // tables) and the host memory budget, without the OpenCL stack, so that the fuzz targets in
        // Fuzz/ can link them alone.
        .target(
            name: "PrismFormats",
            dependencies: ["PrismFiles", "CZlib"]
        ),
        // PNG and JPEG input files decoded to samples (no OpenCL: fuzzed with the parsers).
        .target(
            name: "PrismImages",
            dependencies: ["PrismFormats", "CImageDecode"]
        ),
        // Model descriptions: ops' schemas, graphs, shape inference (no OpenCL: fuzzed with the parsers).
        .target(
            name: "PrismGraph",
            dependencies: ["PrismFormats"]
        ),
        // ONNX import: a ModelProto as a model description and its parameters (no OpenCL: fuzzed with
        // the parsers). Generated/onnx.pb.swift comes from Sources/PrismONNX/Generated/generate-onnx-swift.
        .target(
            name: "PrismONNX",
            dependencies: ["PrismGraph", "PrismFormats", "PrismFiles", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Generated/generate-onnx-swift"]
        ),
        // Tensors, ops, autograd, layers, optimizers.
        .target(
            name: "Prism",
            dependencies: ["PrismFormats", "PrismGraph", "PrismONNX", "PrismImages", "PrismCL", "PrismFiles", "CZlib"]
        ),
        // Explanations: maskers, the batched evaluator, Shapley estimators, attributions, metrics.
        .target(
            name: "PrismExplain",
            dependencies: ["Prism", "PrismCL", "PrismFiles"]
        ),
        // Pictures and reports: colormaps, PNG (through zlib), heatmaps.
        .target(
            name: "PrismReport",
            dependencies: ["Prism", "PrismExplain", "PrismFiles", "CZlib"]
        ),
        // The tests' shared support: seeded random data, tolerance expectations, finite differences,
        // the per-thread test engine and the shared test context.
        .target(
            name: "PrismTestSupport",
            dependencies: ["PrismReference", "Prism", "PrismCL"]
        ),
        // CLBlast's C API, linked only by the benchmark (Debian: libclblast-dev).
        .systemLibrary(
            name: "CCLBlast",
            path: "Benchmarks/CCLBlast",
            providers: [.apt(["libclblast-dev"])]
        ),
        .executableTarget(
            name: "prism-bench",
            dependencies: [
                "Prism", "PrismCL", "PrismExplain", "PrismFiles", "PrismReference", "PrismReport", "CCLBlast",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/prism-bench"
        ),
        .executableTarget(
            name: "prism",
            dependencies: [
                "PrismCL", "Prism", "PrismExplain", "PrismFiles", "PrismONNX", "PrismReport", "PrismMPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "PrismCLTests",
            dependencies: ["PrismCL", "Prism", "PrismTestSupport"]
        ),
        // The command-line tool run as a user runs it (and its explain pipeline in process).
        .testTarget(
            name: "PrismCommandLineTests",
            dependencies: ["prism", "Prism", "PrismCL", "PrismExplain", "PrismReport", "PrismTestSupport", "CZlib"]
        ),
        // Writes through OutputFile in a process of its own (a file size limit, a redirected standard output).
        .executableTarget(
            name: "prism-files-probe",
            dependencies: ["PrismFiles"],
            path: "Tests/PrismFilesProbe"
        ),
        .testTarget(
            name: "PrismFilesTests",
            dependencies: ["PrismFiles", "prism-files-probe", "CZlib"]
        ),
        .testTarget(
            name: "PrismReferenceTests",
            dependencies: ["PrismReference", "PrismTestSupport"]
        ),
        .testTarget(
            name: "PrismExplainTests",
            dependencies: ["PrismExplain", "Prism", "PrismReference", "PrismTestSupport"],
            exclude: []
        ),
        .testTarget(
            name: "PrismReportTests",
            dependencies: ["PrismReport", "PrismExplain", "CZlib", "PrismTestSupport"]
        ),
        .testTarget(
            name: "PrismONNXTests",
            dependencies: ["PrismONNX", "Prism", "PrismCL", "PrismExplain", "PrismTestSupport"]
        ),
        .testTarget(
            name: "PrismTests",
            dependencies: ["Prism", "PrismCL", "PrismReference", "PrismTestSupport", "CZlib"]
        ),
    ]
)
