import Foundation
@testable import PrismCL
import PrismKernels
import PrismTestSupport
import Testing

@Suite struct KernelLaunchTests {
    @Test(arguments: [1, 7, 31, 32, 33, 257, 1009, 65_537])
    func elementwiseKernelsMatchTheHost(n: Int) throws {
        let context = try testContext()
        let program = try context.program(file: "elementwise.cl")
        let x = seededFloats(n, seed: UInt64(n))
        let y = seededFloats(n, seed: UInt64(n) + 99)
        let bx = try context.buffer(x)
        let by = try context.buffer(y)
        let alpha: Float = -1.75
        try program.kernel("axpy_f32").launch(on: context, global: [n], [alpha, bx, by, Int32(n)])
        expectClose(try by.read(), zip(x, y).map { alpha * $0 + $1 })

        // A global size rounded up to the work-group size: surplus work-items must not write.
        let guarded = try context.buffer([Float](repeating: 5, count: n + 64))
        let local = 64
        let global = (n + local - 1) / local * local
        try program.kernel("fill_f32").launch(on: context, global: [global], local: [local], [guarded, Float(2.5), Int32(n)])
        let filled = try guarded.read()
        #expect(filled[0..<n].allSatisfy { $0 == 2.5 })
        #expect(filled[n...].allSatisfy { $0 == 5 })

        let copy = try context.buffer(Float.self, count: n)
        try program.kernel("copy_f32").launch(on: context, global: [n], [bx, copy, Int32(n)])
        #expect(try copy.read() == x)
    }

    @Test(arguments: [1, 5, 33, 1000])
    func vectorizedVariantMatchesTheHost(n: Int) throws {
        let context = try testContext()
        let program = try context.program(file: "elementwise.cl", defines: ["PRISM_VEC": "4"])
        let x = seededFloats(n, seed: 3), y = seededFloats(n, seed: 4)
        let bx = try context.buffer(x), by = try context.buffer(y)
        try program.kernel("axpy_f32").launch(on: context, global: [(n + 3) / 4], [Float(3), bx, by, Int32(n)])
        expectClose(try by.read(), zip(x, y).map { 3 * $0 + $1 })
    }

    @Test func eventsCarryProfilingTimes() throws {
        let context = try testContext()
        let n = 1 << 20
        let bx = try context.buffer(Float.self, count: n)
        let kernel = try context.program(file: "elementwise.cl").kernel("fill_f32")
        let start = Date()
        let event = try #require(try kernel.launch(on: context, global: [n], [bx, Float(1), Int32(n)]))
        let nanoseconds = try event.durationNanoseconds()
        let wall = Date().timeIntervalSince(start)
        #expect(nanoseconds > 0)
        #expect(Double(nanoseconds) * 1e-9 <= wall + 1e-3)
        #expect(try bx.read(0..<3) == [1, 1, 1])
    }

    @Test func badLaunchesThrow() throws {
        let context = try testContext()
        let program = try context.program(file: "elementwise.cl")
        #expect(throws: CLError.self) { try program.kernel("no_such_kernel") }
        let kernel = try program.kernel("fill_f32")
        #expect(throws: CLError.self) { try kernel.launch(on: context, global: [1, 1, 1, 1], []) }
        #expect(throws: CLError.self) { try kernel.launch(on: context, global: [4], local: [2, 2], []) }
        // A ragged last work-group: PoCL would run it, a GPU driver refuses it, so Prism refuses it
        // everywhere, naming the kernel and the sizes, before any argument is set.
        let buffer = try context.buffer(Float.self, count: 100)
        let error = #expect(throws: CLError.self) { try kernel.launch(on: context, global: [100], local: [64], [buffer, Float(1), Int32(100)]) }
        #expect("\(error!)".contains("fill_f32: global size [100] is not a whole number of work-groups of [64]"))
        #expect(throws: CLError.self) { try kernel.launch(on: context, global: [64, 3], local: [64, 2], [buffer, Float(1), Int32(100)]) }
        #expect(throws: CLError.self) { try kernel.launch(on: context, global: [64], local: [0], [buffer, Float(1), Int32(100)]) }
    }

    @Test func everyKernelFileIsEmbedded() {
        #expect(PrismKernelSources.source(named: "elementwise.cl")?.contains("__kernel void axpy_f32") == true)
        #expect(PrismKernelSources.source(named: "nothing.cl") == nil)
    }
}

@Suite struct ProgramCacheTests {
    static let source = """
    __kernel void scale(__global float *y, const float a, const int n) {
        int i = get_global_id(0);
        if (i < n) y[i] *= a * SCALE_BIAS;
    }
    """

    func makeContext(cache: String, kernels: String? = nil) throws -> Context {
        let settings = Settings(device: "cpu", kernelsDirectory: kernels, diskCacheEnabled: true, cacheDirectory: cache)
        return try Context(settings: settings)
    }

    func checkScale(_ context: Context, _ program: Program) throws {
        let buffer = try context.buffer([Float](repeating: 1, count: 10))
        try program.kernel("scale").launch(on: context, global: [10], [buffer, Float(3), Int32(10)])
        #expect(try buffer.read() == [Float](repeating: 6, count: 10))
    }

    @Test func buildErrorCarriesTheCompilerLog() throws {
        let context = try testContext()
        let bad = "__kernel void broken(__global float *y) { y[0] = undeclared_prism_identifier; }"
        do {
            _ = try context.program(source: bad, name: "broken.cl", options: "-DPRISM_PROBE=3")
            Issue.record("build should fail")
        } catch let error as CLError {
            guard case let .buildFailed(program, _, log) = error else { Issue.record("wrong error \(error)"); return }
            #expect(program == "broken.cl")
            #expect(log.contains("undeclared_prism_identifier"))
            #expect(error.description.contains("undeclared_prism_identifier"))
            // Prism's own line first, naming the file and the options; the compiler's log after it.
            #expect(error.description.split(separator: "\n").first == "OpenCL build of broken.cl with options '-DPRISM_PROBE=3' failed:",
                    "\(error.description.prefix(200))")
        }
    }

    @Test func memoryThenDiskHits() throws {
        let cache = temporaryDirectory("program-cache")
        let first = try makeContext(cache: cache)
        let a = try first.program(source: Self.source, defines: ["SCALE_BIAS": "2.0f"])
        let b = try first.program(source: Self.source, defines: ["SCALE_BIAS": "2.0f"])
        #expect(a === b)
        #expect(first.programs.statistics == .init(memoryHits: 1, diskHits: 0, builds: 1, rejectedDiskEntries: 0))
        // Different options are a different program.
        _ = try first.program(source: Self.source, defines: ["SCALE_BIAS": "3.0f"])
        #expect(first.programs.statistics.builds == 2)
        let files = try FileManager.default.contentsOfDirectory(atPath: cache).filter { $0.hasSuffix(".clbin") }
        #expect(files.count == 2)

        let second = try makeContext(cache: cache)
        let c = try second.program(source: Self.source, defines: ["SCALE_BIAS": "2.0f"])
        #expect(second.programs.statistics == .init(memoryHits: 0, diskHits: 1, builds: 0, rejectedDiskEntries: 0))
        try checkScale(second, c)
    }

    @Test(arguments: ["truncate", "flip", "garbage", "empty"])
    func corruptCacheFileIsRebuilt(damage: String) throws {
        let cache = temporaryDirectory("corrupt-\(damage)")
        let first = try makeContext(cache: cache)
        _ = try first.program(source: Self.source, defines: ["SCALE_BIAS": "2.0f"])
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: cache).first { $0.hasSuffix(".clbin") })
        let path = (cache as NSString).appendingPathComponent(name)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        switch damage {
        case "truncate": bytes = Array(bytes.prefix(bytes.count / 2))
        case "flip": bytes[bytes.count / 2] ^= 0xFF
        case "garbage": bytes = Array("not a program binary at all".utf8)
        default: bytes = []
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let second = try makeContext(cache: cache)
        let program = try second.program(source: Self.source, defines: ["SCALE_BIAS": "2.0f"])
        #expect(second.programs.statistics == .init(memoryHits: 0, diskHits: 0, builds: 1, rejectedDiskEntries: 1))
        try checkScale(second, program)
        // The rebuilt entry was written back and is good again.
        let third = try makeContext(cache: cache)
        _ = try third.program(source: Self.source, defines: ["SCALE_BIAS": "2.0f"])
        #expect(third.programs.statistics.diskHits == 1)
    }

    @Test func diskCacheOffWritesNothing() throws {
        let cache = temporaryDirectory("off")
        let settings = Settings(device: "cpu", diskCacheEnabled: false, cacheDirectory: cache)
        let context = try Context(settings: settings)
        _ = try context.program(source: Self.source, defines: ["SCALE_BIAS": "1.0f"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache).isEmpty)
    }

    @Test func entryEncodingRoundTripsAndRejectsOtherKeys() {
        let binary: [UInt8] = Array(0..<200).map { UInt8($0) }
        let encoded = ProgramCache.encode(key: "k1", binary: binary)
        #expect(ProgramCache.decode(encoded, key: "k1") == binary)
        #expect(ProgramCache.decode(encoded, key: "k2") == nil)
        #expect(ProgramCache.decode(Array(encoded.dropLast()), key: "k1") == nil)
        #expect(ProgramCache.decode(encoded + [0], key: "k1") == nil)
    }

    @Test func kernelsDirectoryOverridesTheEmbeddedSource() throws {
        let kernels = temporaryDirectory("kernels")
        // A modified elementwise.cl whose fill writes value + 1.
        let original = try #require(PrismKernelSources.source(named: "elementwise.cl"))
        let modified = original.replacingOccurrences(of: "if (i < n) y[i] = value;", with: "if (i < n) y[i] = value + 1.0f;")
        #expect(modified != original)
        try modified.write(toFile: (kernels as NSString).appendingPathComponent("elementwise.cl"), atomically: true, encoding: .utf8)
        let context = try makeContext(cache: temporaryDirectory("override-cache"), kernels: kernels)
        let buffer = try context.buffer(Float.self, count: 4)
        try context.program(file: "elementwise.cl").kernel("fill_f32").launch(on: context, global: [4], [buffer, Float(1), Int32(4)])
        #expect(try buffer.read() == [2, 2, 2, 2])
        do {
            _ = try context.program(file: "matmul.cl")
            Issue.record("missing file should throw")
        } catch let error as CLError {
            #expect(error.description.contains("matmul.cl"))
            #expect(error.description.contains(kernels))
        }
    }
}

/// Kernel files that include others (`KernelIncludes`): one program from several files, compiler
/// messages naming the file a line was written in, and bad includes refused by name.
@Suite struct KernelIncludesTests {
    func write(_ files: [String: String]) throws -> String {
        let dir = temporaryDirectory("kernel-includes")
        for (name, text) in files { try text.write(toFile: (dir as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8) }
        return dir
    }

    @Test func anIncludedFileBuildsAsPartOfTheProgram() throws {
        let dir = try write([
            "main.cl": "#include \"shared.cl\"\n__kernel void first(__global float *y) { y[0] = TWICE(1.0f); }\n#include \"part.cl\"\n",
            "shared.cl": "#define TWICE(v) (2.0f * (v))\n",
            "part.cl": "#include \"shared.cl\"\n__kernel void second(__global float *y) { y[0] = TWICE(y[0]) + PART_BIAS; }\n",
            "cycle.cl": "#include \"loop.cl\"\n",
            "loop.cl": "#include \"cycle.cl\"\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let context = try Context(settings: Settings(device: "cpu", kernelsDirectory: dir, diskCacheEnabled: false, cacheDirectory: dir))
        let program = try context.program(file: "main.cl", defines: ["PART_BIAS": "1.0f"])
        let buffer = try context.buffer([Float](repeating: 0, count: 1))
        try program.kernel("first").launch(on: context, global: [1], [buffer])
        try program.kernel("second").launch(on: context, global: [1], [buffer])
        #expect(try buffer.read() == [5])
        // shared.cl is included once (a second #define would still compile; a second copy of a
        // kernel would not), between #line directives naming each file.
        let expanded = try context.programs.source(file: "main.cl")
        #expect(expanded.components(separatedBy: "#define TWICE").count == 2)
        #expect(expanded.contains("#line 1 \"part.cl\"") && expanded.contains("#line 4 \"main.cl\""))
        let cycle = #expect(throws: CLError.self) { try context.program(file: "cycle.cl") }
        #expect("\(cycle!)".contains("cycle.cl → loop.cl → cycle.cl"))
    }

    @Test func errorsNameTheIncludedFileAndLine() throws {
        let dir = try write([
            "main.cl": "__kernel void ok(__global float *y) { y[0] = 1.0f; }\n#include \"broken.cl\"\n",
            "broken.cl": "\n\n__kernel void bad(__global float *y) { y[0] = undeclared_in_part; }\n",
            "path.cl": "#include \"../main.cl\"\n",
            "missing.cl": "#include \"absent.cl\"\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let context = try Context(settings: Settings(device: "cpu", kernelsDirectory: dir, diskCacheEnabled: false, cacheDirectory: dir))
        let error = #expect(throws: CLError.self) { try context.program(file: "main.cl") }
        #expect("\(error!)".contains("broken.cl:3"), "\(String(describing: error).prefix(600))")
        let path = #expect(throws: CLError.self) { try context.program(file: "path.cl") }
        #expect("\(path!)".contains("by name only"))
        let missing = #expect(throws: CLError.self) { try context.program(file: "missing.cl") }
        #expect("\(missing!)".contains("absent.cl"))
    }

    @Test func theEmbeddedConvolutionFileTakesItsBackwardPart() throws {
        let context = try testContext()
        let source = try context.programs.source(file: "conv2d.cl")
        let written = try #require(PrismKernelSources.source(named: "conv2d.cl"))
        #expect(written.contains("#include \"conv2d_backward.cl\"") && !written.contains("__kernel void conv2d_backward_input("))
        for kernel in ["conv2d_forward_cpu", "conv2d_backward_input", "conv2d_backward_weight", "conv2d_reduce_chunks"] {
            #expect(source.contains("__kernel void \(kernel)("), "\(kernel)")
        }
        let program = try context.program(file: "conv2d.cl")
        _ = try program.kernel("conv2d_backward_bias")
    }
}
