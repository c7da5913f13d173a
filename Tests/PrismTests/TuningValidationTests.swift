import Foundation
@testable import Prism
import PrismCL
import PrismTestSupport
import Testing

/// Tuning-table values are checked against the kernel families' descriptors (range, power of two,
/// divisibility, per-launch switches, names, variants) before any kernel is built: a 0 used to
/// reach the host's launch sizing and divide by zero.
@Suite struct TuningValidationTests {
    /// The problem `KernelFamilies` finds in a table with one default-level entry.
    static func problem(_ file: String, _ defines: [String: String]) -> String? {
        KernelFamilies.problem(in: TuningTable(default: [file: defines]), source: "t.json")
    }

    /// An engine on the CPU device whose user table is `table` (written to a file), and the file's path.
    static func engine(table: TuningTable) throws -> (Engine, String) {
        let folder = temporaryDirectory("tuning-validation")
        let path = folder + "/t.json"
        try table.json().write(to: URL(fileURLWithPath: path))
        var settings = Settings.current
        settings.device = settings.device ?? "cpu"
        settings.tuningFile = path
        settings.diskCacheEnabled = false
        settings.cacheDirectory = folder
        let engine = Engine(context: try Context(settings: settings))
        TestEngines.keep(engine)
        return (engine, path)
    }

    /// Every default and every value the tuner tries passes its own checks, and so does the shipped table.
    @Test func defaultsCandidatesAndTheShippedTableAreValid() throws {
        for family in KernelFamilies.all {
            for tunable in family.tunables {
                for value in [tunable.defaultValue] + tunable.values {
                    #expect(tunable.problem(with: value) == nil, "\(family.file) \(tunable.name) = \(value)")
                }
            }
            let searched = family.tunables.filter { !$0.isPerLaunch }.map { ($0.name, $0.defaultValue) }
            #expect(family.problem(in: Dictionary(uniqueKeysWithValues: searched), tabled: true) == nil, "\(family.file)")
        }
        let engine = try testEngine()
        #expect(engine.context.tuning.shipped != nil)
        #expect(engine.tuningProblem == nil)
    }

    @Test func badValuesAreNamedWithTheFamilyTunableAndValue() {
        let prefix = "tuning table t.json, default: kernel family"
        let cases: [(String, [String: String], String)] = [
            ("conv2d.cl", ["CONV_FWD_NP": "0"], "\(prefix) conv2d (conv2d.cl): CONV_FWD_NP = 0 is outside 1…32"),
            ("conv2d.cl", ["CONV_DX_KV": "-2"], "\(prefix) conv2d (conv2d.cl): CONV_DX_KV = -2 is outside 1…8"),
            ("matmul.cl", ["MM_MB": "99999999999999999999"], "\(prefix) matmul (matmul.cl): MM_MB = 99999999999999999999 is not an integer"),
            ("matmul.cl", ["MM_TK": "16.0"], "\(prefix) matmul (matmul.cl): MM_TK = 16.0 is not an integer"),
            ("layernorm.cl", ["LN_GROUP": "96"], "\(prefix) layernorm (layernorm.cl): LN_GROUP = 96 is not a power of two"),
            ("matmul.cl", ["MM_WM": "3"], "\(prefix) matmul (matmul.cl): MM_WM = 3 does not divide MM_TM = 64"),
            ("conv2d.cl", ["CONV_TN": "48", "CONV_WN": "32"], "\(prefix) conv2d (conv2d.cl): CONV_WN = 32 is outside 1…16"),
            ("conv2d.cl", ["CONV_TN": "40", "CONV_WN": "16"], "\(prefix) conv2d (conv2d.cl): CONV_WN = 16 does not divide CONV_TN = 40"),
            ("conv2d.cl", ["CONV_RELU": "1"], "\(prefix) conv2d (conv2d.cl): CONV_RELU is set per launch by the host, not by a tuning table"),
            ("elementwise.cl", ["VEC": "4"], "\(prefix) elementwise (elementwise.cl): VEC is not a tunable of elementwise.cl (tunables: PRISM_VEC)"),
            ("shap.cl", ["X": "1"], "\(prefix) shap (shap.cl): X is not a tunable of shap.cl (it has none)"),
            ("attention.cl", ["variant": "fastest"], "\(prefix) attention (attention.cl): variant 'fastest' is not one of tiled, cpu, general"),
        ]
        for (file, defines, expected) in cases {
            #expect(Self.problem(file, defines) == expected)
        }
        #expect(Self.problem("layout.cl", ["A": "1"])?.hasPrefix("tuning table t.json, default: no kernel family has tunables in 'layout.cl'") == true)
        // Valid entries pass, a tabled variant included.
        #expect(Self.problem("matmul.cl", ["MM_TM": "96", "MM_WM": "3", "variant": "gpu"]) == nil)
        // Entries at the vendor and device levels are checked too, and say where they are.
        let deep = TuningTable(vendors: ["NVIDIA": .init(default: ["matmul.cl": ["MM_MB": "8"]],
                                                         devices: ["H100": ["pool.cl": ["POOL_KH": "2"]]])])
        #expect(KernelFamilies.problem(in: deep, source: "t.json")
            == "tuning table t.json, vendor 'NVIDIA' device 'H100': kernel family pool (pool.cl): POOL_KH is set per launch by the host, not by a tuning table")
        let wide = TuningTable(widths: ["cpu 16": ["matmul.cl": ["MM_VW": "12"]]])
        #expect(KernelFamilies.problem(in: wide, source: "t.json")
            == "tuning table t.json, width 'cpu 16': kernel family matmul (matmul.cl): MM_VW = 12 is not a power of two")
    }

    /// A table with a 0 refuses every kernel build with its one line, instead of a trap in the
    /// convolution's launch sizing.
    @Test func anEngineOverABadTableRefusesToBuildKernels() throws {
        let (engine, path) = try Self.engine(table: TuningTable(default: ["conv2d.cl": ["CONV_FWD_NP": "0", "CONV_DX_NP": "0"]]))
        let expected = TensorError("tuning table \(path), default: kernel family conv2d (conv2d.cl): CONV_DX_NP = 0 is outside 1…32")
        #expect(engine.tuningProblem == expected)
        // Host sizing reads the default instead of the refused value.
        #expect(Conv2DFamily.descriptor.int("CONV_FWD_NP", in: engine.resolvedDefines("conv2d.cl")) == 6)
        #expect(throws: expected) {
            let x = try Tensor(seededFloats(2 * 9 * 9, seed: 1), shape: [2, 1, 9, 9], engine: engine)
            let w = try Tensor(seededFloats(4 * 9, seed: 2), shape: [4, 1, 3, 3], engine: engine)
            _ = try conv2d(x, weight: w, bias: nil, variant: .cpu)
        }
        #expect(throws: expected) {
            let a = try Tensor(seededFloats(6, seed: 3), shape: [2, 3], engine: engine)
            _ = try matmul(a, a, transposeB: true)
        }
    }

    @Test func badOverridesAreRefusedAtTheBuild() throws {
        let (engine, _) = try Self.engine(table: TuningTable())
        #expect(engine.tuningProblem == nil)
        engine.defineOverrides["conv2d.cl"] = ["CONV_DW_NP": "0"]
        #expect(throws: TensorError("define override for conv2d.cl (kernel family conv2d): CONV_DW_NP = 0 is outside 1…32")) {
            _ = try engine.program("conv2d.cl")
        }
        // Overrides may set per-launch switches (tests force kernels with them); their range still holds.
        engine.defineOverrides["conv2d.cl"] = ["CONV_PADDED": "2"]
        #expect(throws: TensorError("define override for conv2d.cl (kernel family conv2d): CONV_PADDED = 2 is outside 0…1")) {
            _ = try engine.program("conv2d.cl")
        }
        engine.defineOverrides["conv2d.cl"] = ["CONV_PADDED": "1"]
        _ = try engine.program("conv2d.cl")
    }
}
