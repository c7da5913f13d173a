import ArgumentParser
import Foundation
import Prism
import PrismFiles
import PrismExplain

/// Options of whole-data-set runs (`--index all` or ranges).
struct WholeSetOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Whole-data-set runs (--index all or ranges): examples per shard file; a resumed run must use the same.")
    var shardSize: Int = 16

    func validate() throws {
        if shardSize < 1 { throw ValidationError("--shard-size must be at least 1") }
    }

    /// Checks the options a whole-data-set run needs or cannot take.
    /// - Throws: `ValidationError` naming the flag.
    func check(selection: IndexSelection, command: ExplainCommand) throws {
        guard selection.isWholeSet else { return }
        if command.out == nil {
            throw ValidationError("--index \(selection.text): a whole-data-set run writes its shards and report into a folder; give --out DIR")
        }
        if command.randomization {
            throw ValidationError("--randomization re-explains every example after each layer is re-initialized; give it with --index I,J,…, not with all or ranges")
        }
    }
}

/// What a shard folder was made with: the model file, the examples, the background, the features,
/// the methods and every option that changes a result, one line each. A resumed run must match it.
struct ShardManifest: Codable, Equatable {
    var format = "prism-explain-shards"
    var version = 1
    var settings: [String: String]

    /// The settings of `plan` with `shardSize` examples per shard.
    /// - Throws: `FileError` when the model file cannot be read for its hash.
    init(plan: ExplainPlan, shardSize: Int) throws {
        let o = plan.options
        func text<T>(_ value: T?) -> String { value.map { "\($0)" } ?? "default" }
        var s: [String: String] = [:]
        s["prism version"] = PrismCommand.version
        s["model file"] = try fileFingerprint(plan.modelPath)
        s["examples"] = "\(plan.instances.count), rows \(hashText(plan.instances.indices ?? [])), values \(hashText(plan.instances.values))"
        let rows = plan.background.count / max(plan.elementCount, 1)
        s["background"] = "\(rows) rows, values \(hashText(plan.background)), weights \(hashText(plan.backgroundWeights ?? []))"
        s["features"] = "\(plan.groups.featureCount) (\(hashText(plan.groups.elementFeature.map { Int($0) })), names \(hashText(plan.featureNames.joined(separator: "\n"))))"
        s["methods"] = plan.methods.map(\.name).joined(separator: ",")
        s["target"] = "\(plan.target)"
        s["metrics"] = plan.metrics ? "true, \(plan.sensitivitySamples) max-sensitivity samples\(plan.shapleySensitivity ? "" : " (not for SHAP estimators)")" : "false"
        s["--baseline-token"] = text(plan.baselineToken)
        s["extra inputs"] = plan.extraInputs.keys.sorted().map { "\($0) \(hashText(plan.extraInputs[$0]!.values))" }.joined(separator: ", ")
        s["shard size"] = "\(shardSize)"
        let options: [(String, String)] = [
            ("--samples", text(o.samples)), ("--lime-samples", text(o.limeSamples)), ("--smoothgrad-samples", text(o.smoothgradSamples)),
            ("--seed", "\(o.seed)"), ("--stop-threshold", text(o.stopThreshold)), ("--stratify", "\(o.stratify)"), ("--shap-baseline", text(o.shapBaseline?.rawValue)),
            ("--num-features", text(o.numFeatures)), ("--steps", "\(o.steps)"), ("--ig-rule", o.igRule.rawValue),
            ("--baseline", o.baseline.rawValue), ("--blur-sigma", text(o.blurSigma)), ("--noise", "\(o.noise)"),
            ("--smoothgrad-variant", o.smoothgradVariant.rawValue), ("--layer", text(o.layer)), ("--no-gradcam-relu", "\(o.noGradcamRelu)"),
            ("--lrp-rule", o.lrpRule.rawValue), ("--lrp-epsilon", "\(o.lrpEpsilon)"), ("--lrp-gamma", "\(o.lrpGamma)"),
            ("--window", text(o.window)), ("--stride", text(o.stride)), ("--kernel-width", "\(o.kernelWidth)"),
            ("--instances-per-batch", "\(o.instancesPerBatch)"),
            ("--gradient-shap-samples", "\(o.gradientShapSamples)"), ("--gradient-shap-noise", "\(o.gradientShapNoise)"),
        ]
        for (flag, value) in options { s[flag] = value }
        settings = s
    }

    /// The first setting (in name order) that differs from `other`, as `name: theirs there, ours now`.
    func firstDifference(from other: ShardManifest) -> String? {
        if format != other.format || version != other.version { return "format \(other.format) \(other.version) there, \(format) \(version) now" }
        for key in Set(settings.keys).union(other.settings.keys).sorted() where settings[key] != other.settings[key] {
            return "\(key): \(other.settings[key] ?? "absent") there, \(settings[key] ?? "absent") now"
        }
        return nil
    }
}

/// One shard: the results of a run of consecutive examples (positions `first..<first + indices.count`
/// of the run), as `ExplainPlan.run` returned them.
struct Shard: Codable {
    struct Run: Codable {
        var method: String
        var explanation: Explanation
        var outputSlot: [Int]
        var evaluations: [Int]
        var seconds: [Double]
        var curves: [DeletionInsertion.Curves]?
        var faithfulness: [Double?]?
        var sensitivity: [Double?]?
    }
    var number: Int
    var first: Int
    /// The test-set rows of its examples.
    var indices: [Int]
    var outputs: [[Float]]
    var predicted: [Int]
    var targets: [Int]
    var runs: [Run]
    /// The device that explained it (`#0 pthread-…`).
    var device: String?

    init(number: Int, first: Int, indices: [Int], results: ExplainResults, device: String? = nil) {
        self.device = device
        self.number = number
        self.first = first
        self.indices = indices
        outputs = results.outputs
        predicted = results.predicted
        targets = results.targets
        runs = results.runs.map { Run(method: $0.method.name, explanation: $0.explanation, outputSlot: $0.outputSlot,
                                      evaluations: $0.evaluations, seconds: $0.seconds, curves: $0.curves,
                                      faithfulness: $0.faithfulness, sensitivity: $0.sensitivity) }
    }

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}

/// The shard folder of a whole-data-set run: `manifest.json` and `shard-NNNNN.json`, each written
/// whole through a temporary file and a rename, so an interrupted run leaves only complete shards.
struct ShardFolder {
    let path: String
    let folder: OutputFolder

    /// Opens (creating) `path`.
    /// - Throws: `FileError` when it cannot be created or written.
    init(path: String) throws {
        self.path = path
        folder = try OutputFolder(path: path, create: true)
    }

    static let manifestName = "manifest.json"

    func shardName(_ number: Int) -> String { String(format: "shard-%05d.json", number) }

    /// Checks the folder's manifest against `manifest`, writing it when the folder holds none.
    /// - Throws: `ValidationError` in one line when the folder is of a run with other settings, or
    ///   holds shards without a manifest.
    func claim(_ manifest: ShardManifest) throws {
        let file = folder.path(Self.manifestName)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let shard = names.sorted().first(where: { $0.hasPrefix("shard-") })
        // A manifest without shards (a run that failed before its first shard) holds nothing to mix.
        if let data = FileManager.default.contents(atPath: file), shard != nil {
            guard let theirs = try? JSONDecoder().decode(ShardManifest.self, from: data) else {
                throw ValidationError("\(file): not a shard manifest Prism can read; give another --out or remove \(path)")
            }
            if let difference = manifest.firstDifference(from: theirs) {
                throw ValidationError("\(path) holds the shards of a run with other settings (\(difference)); resume with the same settings, or give another --out (or remove \(path))")
            }
            return
        }
        if let shard {
            throw ValidationError("\(path) holds \(shard) but no \(Self.manifestName); give another --out or remove \(path)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try folder.file(Self.manifestName).write(try encoder.encode(manifest) + Data("\n".utf8))
    }

    /// Removes the temporary files an interrupted write left (`.shard-….tmp`).
    func removeLeftovers() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for name in names where name.hasPrefix(".shard-") && name.hasSuffix(".tmp") {
            try? FileManager.default.removeItem(atPath: folder.path(name))
        }
    }

    /// Shard `number`, when its file exists.
    /// - Throws: `DataError` naming the file when it cannot be read or decoded.
    func read(_ number: Int) throws -> Shard? {
        let file = folder.path(shardName(number))
        guard FileManager.default.fileExists(atPath: file) else { return nil }
        guard let data = FileManager.default.contents(atPath: file) else { throw DataError("\(file): cannot be read") }
        do {
            return try Shard.decoder().decode(Shard.self, from: data)
        } catch {
            throw DataError("\(file): not a shard Prism can read (\(error))")
        }
    }

    /// Writes `shard` whole (temporary file, then rename).
    func write(_ shard: Shard) throws {
        try folder.file(shardName(shard.number)).write(try Shard.encoder().encode(shard))
    }
}

/// FNV-1a (64 bits) over bytes, fed in pieces.
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    }

    var hex: String { String(format: "%016llx", value) }
}

/// `fnv1a:…` of the bytes of floats, integers or text.
func hashText(_ values: [Float]) -> String {
    var h = FNV1a()
    for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { h.add($0) } }
    return "fnv1a:" + h.hex
}

func hashText(_ values: [Double]) -> String {
    var h = FNV1a()
    for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { h.add($0) } }
    return "fnv1a:" + h.hex
}

func hashText(_ values: [Int]) -> String {
    var h = FNV1a()
    for v in values { withUnsafeBytes(of: Int64(v).littleEndian) { h.add($0) } }
    return "fnv1a:" + h.hex
}

func hashText(_ text: String) -> String {
    var h = FNV1a()
    h.add(Array(text.utf8))
    return "fnv1a:" + h.hex
}

/// A model file by size and the FNV-1a hash of its bytes (read in pieces), wherever it lies.
/// - Throws: `DataError` naming the file when it cannot be read.
func fileFingerprint(_ path: String) throws -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else { throw DataError("\(path): cannot read the model file for its hash") }
    defer { try? handle.close() }
    var h = FNV1a(), size = 0
    while true {
        let piece = handle.readData(ofLength: 1 << 20)
        if piece.isEmpty { break }
        size += piece.count
        h.add(piece)
    }
    return "\(size) bytes, fnv1a:\(h.hex)"
}
