import Foundation
@testable import Prism
import PrismCL
import PrismReference
import PrismTestSupport
import Testing

/// The kernel families' descriptors: defaults agree with the kernel files, the variant-choice rule
/// on synthetic devices, and the tuning table's part in both.
@Suite struct KernelFamilyTests {
    static let gpu64K = DeviceTraits(type: .gpu, nativeFloatWidth: 1, localMemoryBytes: 64 << 10, computeUnits: 80, maxWorkGroupSize: 1024)
    /// A GPU whose local memory holds none of the default local-memory tiles.
    static let gpu1K = DeviceTraits(type: .gpu, nativeFloatWidth: 1, localMemoryBytes: 1 << 10, computeUnits: 8, maxWorkGroupSize: 256)
    static let cpu8 = DeviceTraits(type: .cpu, nativeFloatWidth: 8, localMemoryBytes: 256 << 10, computeUnits: 16, maxWorkGroupSize: 4096)
    static let cpu16 = DeviceTraits(type: .cpu, nativeFloatWidth: 16, localMemoryBytes: 256 << 10, computeUnits: 2, maxWorkGroupSize: 4096)

    /// conv2 of the reference network (deep: micro-tiles) and conv1 (shallow: the row kernel applies).
    static let deep = try! Conv2DGeometry(input: [8, 32, 13, 13], weight: [64, 32, 3, 3], bias: nil, stride: (1, 1), padding: (0, 0), dilation: (1, 1))
    static let shallow = try! Conv2DGeometry(input: [8, 1, 28, 28], weight: [32, 1, 3, 3], bias: nil, stride: (1, 1), padding: (0, 0), dilation: (1, 1))
    static let pool2x2 = try! Pool2DGeometry("maxPool2d", input: [2, 3, 26, 26], kernel: (2, 2), stride: (2, 2), padding: (0, 0))
    static let pool3x3 = try! Pool2DGeometry("maxPool2d", input: [2, 3, 26, 26], kernel: (3, 3), stride: (2, 2), padding: (1, 1))
    /// 2×2 pooling of 6×6 planes: 9 outputs each.
    static let pool2x2Small = try! Pool2DGeometry("maxPool2d", input: [64, 16, 6, 6], kernel: (2, 2), stride: (2, 2), padding: (0, 0))

    @Test func gpuWithLocalMemoryTakesTheLocalMemoryVariants() throws {
        let t = Self.gpu64K
        #expect(try GEMMFamily.choose(.automatic, traits: t, defines: [:]) == .gpu)
        #expect(try Conv2DFamily.choose(.automatic, Self.deep, traits: t, defines: [:]) == .gpu)
        #expect(try Conv2DFamily.choose(.automatic, Self.shallow, traits: t, defines: [:]) == .gpu)
        #expect(try AttentionFamily.choose(.automatic, d: 64, traits: t, defines: [:]) == .general)
        #expect(try AttentionFamily.choose(.automatic, d: 20, traits: t, defines: [:]) == .general)
        #expect(try LayerNormFamily.choose(.automatic, traits: t, defines: [:]) == .gpu)
        #expect(try PoolFamily.choose(.automatic, Self.pool2x2, traits: t, defines: [:]) == .window2x2)
        #expect(try PoolFamily.choose(.automatic, Self.pool3x3, traits: t, defines: [:]) == .general)
        // Small planes stay last on the range on a GPU, and the vector kernel keeps them.
        #expect(!PoolFamily.planesFirst(Self.pool2x2Small, traits: t))
        #expect(try PoolFamily.choose(.automatic, Self.pool2x2Small, traits: t, defines: [:]) == .window2x2)
        // Only the register-tile kernels fuse the pooling: on this device there is no pooled variant.
        #expect(Conv2DFamily.preference(t, pooled: true).isEmpty)
        #expect(throws: TensorError.self) { try Conv2DFamily.choose(.automatic, Self.deep, pooled: true, traits: t, defines: [:]) }
    }

    @Test(arguments: [cpu8, cpu16])
    func cpusTakeTheRegisterTileVariantsAtEveryWidth(_ t: DeviceTraits) throws {
        #expect(try GEMMFamily.choose(.automatic, traits: t, defines: [:]) == .cpu)
        #expect(try Conv2DFamily.choose(.automatic, Self.deep, traits: t, defines: [:]) == .cpu)
        #expect(try Conv2DFamily.choose(.automatic, Self.shallow, traits: t, defines: [:]) == .rows)
        let pooled = Conv2DFamily.pooledCallSite(Conv2DFamily.descriptor.defaults)
        #expect(try Conv2DFamily.choose(.automatic, Self.deep, pooled: true, traits: t, defines: pooled) == .cpu)
        #expect(try Conv2DFamily.choose(.automatic, Self.shallow, pooled: true, traits: t, defines: pooled) == .rows)
        #expect(try AttentionFamily.choose(.automatic, d: 64, traits: t, defines: [:]) == .tiled)
        #expect(try AttentionFamily.choose(.automatic, d: 24, traits: t, defines: [:]) == .cpu)
        #expect(try AttentionFamily.choose(.automatic, d: 20, traits: t, defines: [:]) == .general)
        #expect(try LayerNormFamily.choose(.automatic, traits: t, defines: [:]) == .cpu)
        #expect(try PoolFamily.choose(.automatic, Self.pool2x2, traits: t, defines: [:]) == .window2x2)
        // Small planes: the general kernel on its planes-first range; the vector kernel still runs when forced.
        #expect(PoolFamily.planesFirst(Self.pool2x2Small, traits: t) && !PoolFamily.planesFirst(Self.pool2x2, traits: t))
        #expect(try PoolFamily.choose(.automatic, Self.pool2x2Small, traits: t, defines: [:]) == .general)
        #expect(try PoolFamily.choose(.window2x2, Self.pool2x2Small, traits: t, defines: [:]) == .window2x2)
    }

    @Test func gpuWithLittleLocalMemoryFallsBackUnlessTheTilesFit() throws {
        let t = Self.gpu1K
        #expect(try GEMMFamily.choose(.automatic, traits: t, defines: [:]) == .cpu)
        #expect(try Conv2DFamily.choose(.automatic, Self.deep, traits: t, defines: [:]) == .cpu)
        #expect(try AttentionFamily.choose(.automatic, d: 64, traits: t, defines: [:]) == .tiled)
        #expect(try LayerNormFamily.choose(.automatic, traits: t, defines: [:]) == .gpu)  // 512 bytes fit
        // Tuned tiles small enough for 1 KiB bring the local-memory GEMM back.
        let small = ["MM_TM": "16", "MM_TN": "16", "MM_TK": "8", "MM_WM": "2", "MM_WN": "2"]
        #expect(try GEMMFamily.choose(.automatic, traits: t, defines: small) == .gpu)
        // A forced variant that does not fit says why.
        #expect(throws: TensorError("matmul: the gpu variant needs 8192 bytes of local memory, the device has 1024")) {
            try GEMMFamily.choose(.gpu, traits: t, defines: [:])
        }
    }

    /// A micro-tile's channel side is fitted to thin layers: no more vectors than the channels fill,
    /// then the narrowest width that holds them; a tile that fits is left alone.
    @Test func thinLayersNarrowTheConvolutionTile() {
        let wide = ["CONV_VW": "16", "CONV_FWD_KV": "2"]
        #expect(Conv2DFamily.narrowed(wide, channels: 3, vectors: "CONV_FWD_KV") == ["CONV_FWD_KV": "1", "CONV_VW": "4"])
        #expect(Conv2DFamily.narrowed(wide, channels: 8, vectors: "CONV_FWD_KV") == ["CONV_FWD_KV": "1", "CONV_VW": "8"])
        #expect(Conv2DFamily.narrowed(wide, channels: 12, vectors: "CONV_FWD_KV") == ["CONV_FWD_KV": "1"])
        #expect(Conv2DFamily.narrowed(wide, channels: 17, vectors: "CONV_FWD_KV") == [:])
        #expect(Conv2DFamily.narrowed(wide, channels: 64, vectors: "CONV_FWD_KV") == [:])
        #expect(Conv2DFamily.narrowed(["CONV_VW": "8", "CONV_DW_KV": "4"], channels: 20, vectors: "CONV_DW_KV") == ["CONV_DW_KV": "3"])
        #expect(Conv2DFamily.narrowed(["CONV_VW": "4", "CONV_DX_KV": "1"], channels: 1, vectors: "CONV_DX_KV") == [:])
    }

    @Test func theTuningTablesVariantIsTakenWhereItCanRun() throws {
        let key = KernelFamilyDescriptor.variantKey
        #expect(try GEMMFamily.choose(.automatic, traits: Self.cpu16, defines: [key: "gpu"]) == .gpu)
        #expect(try GEMMFamily.choose(.automatic, traits: Self.gpu1K, defines: [key: "gpu"]) == .cpu)  // does not fit
        #expect(try GEMMFamily.choose(.automatic, traits: Self.cpu16, defines: [key: "no-such-variant"]) == .cpu)
        #expect(try GEMMFamily.choose(.cpu, traits: Self.gpu64K, defines: [key: "gpu"]) == .cpu)  // forced wins
        #expect(try AttentionFamily.choose(.automatic, d: 24, traits: Self.cpu8, defines: [key: "tiled"]) == .cpu)  // 24 % 16 ≠ 0
        #expect(try LayerNormFamily.choose(.automatic, traits: Self.cpu8, defines: [key: "gpu"]) == .gpu)
    }

    @Test func forcedVariantsOutsideTheirPreconditionsThrow() throws {
        let t = Self.cpu16
        #expect(throws: TensorError.self) { try AttentionFamily.choose(.tiled, d: 24, traits: t, defines: [:]) }
        #expect(throws: TensorError.self) { try AttentionFamily.choose(.cpu, d: 20, traits: t, defines: [:]) }
        #expect(throws: TensorError.self) { try Conv2DFamily.choose(.rows, Self.deep, traits: t, defines: [:]) }
        #expect(throws: TensorError.self) { try Conv2DFamily.choose(.gpu, Self.deep, pooled: true, traits: t, defines: [:]) }
        #expect(throws: TensorError.self) {
            try Conv2DFamily.choose(.cpu, Self.deep, pooled: true, traits: t, defines: ["CONV_FWD_NP": "6"])
        }
        #expect(throws: TensorError.self) { try PoolFamily.choose(.window2x2, Self.pool3x3, traits: t, defines: [:]) }
        #expect(throws: TensorError.self) { try LayerNormFamily.choose(.gpu, traits: t, defines: ["LN_GROUP": "96"]) }
    }

    /// Names a kernel file (with the files it includes) sets with `#ifndef NAME` / `#define NAME value`, with their values.
    static func fileDefaults(_ file: String) throws -> [String: String] {
        let kernels = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Kernels")
        func read(_ name: String) throws -> String { try String(contentsOf: kernels.appendingPathComponent(name), encoding: .utf8) }
        let source = try KernelIncludes.expand(try read(file), file: file, load: read)
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var found: [String: String] = [:]
        for (i, line) in lines.enumerated() where line.hasPrefix("#ifndef ") && i + 1 < lines.count {
            let name = String(line.dropFirst("#ifndef ".count))
            let next = lines[i + 1].split(separator: " ", maxSplits: 2).map(String.init)
            if next.count == 3, next[0] == "#define", next[1] == name { found[name] = next[2] }
        }
        return found
    }

    @Test func descriptorsHoldEveryTunableOfTheirFileWithItsDefault() throws {
        // Constants a file guards with #ifndef that are no tunables.
        let constants: Set = ["M_SQRT1_2_F"]
        for family in KernelFamilies.all {
            let defaults = try Self.fileDefaults(family.file).filter { !constants.contains($0.key) }
            #expect(family.defaults == defaults, "\(family.file)")
            for tunable in family.tunables where !tunable.values.isEmpty {
                #expect(tunable.values.contains(tunable.defaultValue), "\(family.file) \(tunable.name): the default is among the searched values")
            }
        }
        #expect(Set(KernelFamilies.all.map(\.stem)) == ["matmul", "conv2d", "conv2d_grouped", "attention", "layernorm", "softmax", "pool", "elementwise", "shap", "index", "quantized", "batchnorm"])
    }

    @Test func theEngineResolvesTheFullSetOverTheTablesFallback() throws {
        let folder = NSTemporaryDirectory() + "prism-families-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/t.json"
        // A default-level entry (every device falls back to it) for one tunable of one file.
        try TuningTable(default: ["matmul.cl": ["MM_MB": "16"]]).json().write(to: URL(fileURLWithPath: path))
        var settings = Settings.current
        settings.device = settings.device ?? "cpu"
        settings.tuningFile = path
        settings.diskCacheEnabled = false
        settings.cacheDirectory = folder
        let engine = Engine(context: try Context(settings: settings))
        TestEngines.keep(engine)  // torn down with the others (see PrismTestSupport/Engines.swift)
        var expected = GEMMFamily.descriptor.defaults
        expected["MM_MB"] = "16"
        #expect(engine.resolvedDefines("matmul.cl") == expected)
        // No entry in either table (the shipped one tunes matmul and conv2d only): the descriptor's
        // defaults, every one of them.
        #expect(engine.resolvedDefines("pool.cl") == PoolFamily.descriptor.defaults)
        // Call-site values and overrides come on top; files without a family pass only those.
        engine.defineOverrides["matmul.cl"] = ["MM_PACK_ROWS": "8"]
        #expect(engine.resolvedDefines("matmul.cl", ["MM_MB": "4"])["MM_MB"] == "4")
        #expect(engine.resolvedDefines("matmul.cl")["MM_PACK_ROWS"] == "8")
        #expect(engine.resolvedDefines("layout.cl") == [:])
    }

    /// A variant named in the table (here through an override, which resolves the same way) runs,
    /// and the `variant` entry never reaches the compiler's defines.
    @Test func aTabledVariantRunsAndMatchesTheReference() throws {
        let engine = try testEngine()
        let saved = engine.defineOverrides["layernorm.cl"]
        defer { engine.defineOverrides["layernorm.cl"] = saved }
        let (rows, n) = (7, 33)
        let x = seededFloats(rows * n, seed: 5)
        let reference = Reference.layerNorm(x: doubles(x), weight: nil, bias: nil, features: n)
        for variant in LayerNormFamily.variants {
            engine.defineOverrides["layernorm.cl"] = [KernelFamilyDescriptor.variantKey: variant.rawValue]
            #expect(try LayerNormFamily.choose(.automatic, traits: engine.traits, defines: engine.resolvedDefines("layernorm.cl")) == variant)
            let y = try engine.noGrad { try layerNorm(try Tensor(x, shape: [rows, n], engine: engine), weight: nil, bias: nil) }
            expectClose(try y.toArray(), reference.y, atol: 1e-5, rtol: 1e-4, "tabled \(variant)")
        }
    }
}
