import Foundation
import Prism
import PrismExplain
@testable import prism
import Testing

/// Whole-data-set runs (`--index all` or ranges): index parsing, shards, resume, refused resumes and
/// the global views.
@Suite(.serialized) struct WholeSetCLITests {
    static let csv = TrainCLITests.fixtures + "/tabular.csv"

    @Test func indexSelectionsParseAndRefuseInOneLine() throws {
        let mixed = try IndexSelection(parsing: "0-9,20,30-39")
        #expect(mixed.isWholeSet)
        #expect(try mixed.resolve(count: 40, source: "t") == Array(0...9) + [20] + Array(30...39))
        #expect(try IndexSelection(parsing: "all").resolve(count: 5, source: "t") == [0, 1, 2, 3, 4])
        #expect(try IndexSelection(parsing: " 7 - 7 ".replacingOccurrences(of: " ", with: "")).resolve(count: 8, source: "t") == [7])
        let list = try IndexSelection(parsing: "3,1")
        #expect(!list.isWholeSet)
        #expect(try list.resolve(count: 4, source: "t") == [3, 1])
        for (text, count, expected) in [("5-3", 10, "runs backwards"), ("0-9,5", 10, "names row 5 twice"), ("0-40", 40, "reaches outside 0..<40"),
                                        ("all,3", 10, "give it alone"), ("x", 10, "'x'"), ("-1", 10, "'-1'"), ("3-", 10, "'3-'"),
                                        ("12", 10, "--index 12 outside 0..<10"), ("99999999999999999999-1", 10, "not a range"), ("all", 0, "is empty")] {
            var message = ""
            do { _ = try IndexSelection(parsing: text).resolve(count: count, source: "t") } catch { message = "\(error)" }
            #expect(message.contains("--index") && message.contains(expected) && !message.contains("\n"), "\(text): \(message)")
        }
    }

    func trainedTabularModel(in dir: String) throws -> String {
        let model = dir + "/t.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", Self.csv, "--label", "species", "--arch", "mlp",
                                  "--hidden", "8", "--epochs", "3", "--batch", "16", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        return model
    }

    static let methods = ["permutation-shap", "kernel-shap", "smoothgrad", "lime"]

    /// The arguments of a tabular whole-set run: two sampled SHAP methods sharing batches, two methods
    /// that draw per example (noise, masks), all with curves.
    func tabularArguments(model: String, out: String, seed: String = "3", shardSize: String = "4") -> [String] {
        ["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model, "--index", "all",
         "--method", Self.methods.joined(separator: ","), "--samples", "16", "--smoothgrad-samples", "8", "--lime-samples", "64",
         "--background", "10", "--seed", seed, "--metrics",
         "--instances-per-batch", "2", "--shard-size", shardSize, "--out", out]
    }

    /// `--device all` on two PoCL devices (`POCL_DEVICES="pthread pthread"`): the shards are shared
    /// between them, the JSON says which device explained how many examples, and every array equals
    /// the one-device run's bit for bit (per-example seeds, the same chunking on alike devices).
    @Test func twoDevicesShareTheShardsAndEqualOneDevice() throws {
        let dir = try scratchDirectory("wholeset-devices")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try trainedTabularModel(in: dir)
        let twoDevices = ["POCL_DEVICES": "pthread pthread"]
        func arguments(_ device: String, _ out: String) -> [String] {
            var a = tabularArguments(model: model, out: out)
            a[a.firstIndex(of: "--device")! + 1] = device
            return a + ["--json", out + "/e.json"]
        }
        let shared = try runPrism(arguments("all", dir + "/two"), environment: twoDevices)
        #expect(shared.status == 0, "\(shared.stderr)")
        #expect(shared.stdout.contains("sharing the shards among 2 devices: #0 "), "\(shared.stdout)")
        let alone = try runPrism(arguments("0", dir + "/one"), environment: twoDevices)
        #expect(alone.status == 0, "\(alone.stderr)")
        let (a, b) = (try ExplainDocumentReader(path: dir + "/two/e.json"), try ExplainDocumentReader(path: dir + "/one/e.json"))
        for method in Self.methods {
            #expect(a.values(method) == b.values(method) && !a.values(method).isEmpty, "\(method)")
            #expect(a.array("base_values", of: method)?.values == b.array("base_values", of: method)?.values, "\(method)")
        }
        let devices = try #require(a.json["devices"] as? [[String: Any]])
        let names = devices.compactMap { $0["device"] as? String }, examples = devices.compactMap { $0["examples"] as? Int }
        #expect(names.count == 2 && Set(names).count == 2 && names.allSatisfy { $0.hasPrefix("#0 ") || $0.hasPrefix("#1 ") }, "\(names)")
        #expect(examples.count == 2 && examples.allSatisfy { $0 > 0 } && examples.reduce(0, +) == 30, "\(examples)")
        #expect((b.json["devices"] as? [[String: Any]])?.count == 1)

        expectOneLineError(try runPrism(arguments("0,0", dir + "/x"), environment: twoDevices), "--device 0,0: '0' is named twice")
        // Outside whole-data-set runs, every example's coalitions are split between the devices: the
        // SHAP methods' values are one device's bit for bit; the other methods run on the first.
        func splitArguments(_ device: String, _ json: String, methods: String = "kernel-shap,permutation-shap,lime,occlusion,ig") -> [String] {
            ["explain", "--device", device, "--data", Self.csv, "--label", "species", "--model", model, "--index", "3,7",
             "--method", methods, "--samples", "64", "--lime-samples", "64", "--background", "10", "--seed", "3", "--json", json]
        }
        let split = try runPrism(splitArguments("0,1", dir + "/split.json"), environment: twoDevices)
        #expect(split.status == 0, "\(split.stderr)")
        #expect(split.stderr.contains("kernel-shap, permutation-shap, lime, occlusion split every example's coalitions among devices #0 ")
                && split.stderr.contains("ig runs on #0 "),
                "\(split.stderr)")
        let one = try runPrism(splitArguments("0", dir + "/one.json"), environment: twoDevices)
        #expect(one.status == 0, "\(one.stderr)")
        let (c, d) = (try ExplainDocumentReader(path: dir + "/split.json"), try ExplainDocumentReader(path: dir + "/one.json"))
        for method in ["kernel-shap", "permutation-shap", "lime", "occlusion", "ig"] {
            #expect(c.values(method) == d.values(method) && !c.values(method).isEmpty, "\(method)")
        }
        for method in ["kernel-shap", "permutation-shap"] {
            let counts = c.settings(method)["coalitions_per_device"] as? [Int] ?? []
            #expect(counts.count == 2 && counts.allSatisfy { $0 > 0 } && abs(counts[0] - counts[1]) <= counts[0] / 4 + 2, "\(method): \(counts)")
            #expect(d.settings(method)["coalitions_per_device"] == nil)
        }
        expectOneLineError(try runPrism(splitArguments("0,1", dir + "/ig.json", methods: "ig"), environment: twoDevices),
                           "--device 0,1: several devices share a whole-data-set run's shards (--index all or ranges, with --out DIR) or the coalitions of the SHAP methods, LIME and occlusion; ig runs on one device")
    }

    /// A run stopped after some shards (in this process, through the library's hook), with one of its
    /// shards deleted, then resumed by the command: every array equals the uninterrupted run's, bit
    /// for bit; a resume with other settings is refused in one line; the global views are the mean
    /// |φ| of the per-example values.
    @Test func resumedRunEqualsUninterruptedOne() throws {
        let dir = try scratchDirectory("wholeset")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try trainedTabularModel(in: dir)

        // A run that fails before its first shard leaves a manifest without shards: nothing to mix,
        // so the next run (other settings) takes the folder.
        var failing = tabularArguments(model: model, out: dir + "/a")
        failing[failing.firstIndex(of: "--samples")! + 1] = "12"
        expectOneLineError(try runPrism(failing), "permutation-shap: a budget of 12 coalitions is below the minimum")
        #expect(FileManager.default.fileExists(atPath: dir + "/a/shards/manifest.json"))

        let whole = try runPrism(tabularArguments(model: model, out: dir + "/a"))
        #expect(whole.status == 0, "\(whole.stderr)")
        #expect(whole.stdout.contains("whole-data-set run: 30 examples in 8 shards of up to 4"), "\(whole.stdout)")
        #expect(!whole.stdout.contains("resuming"))

        // Stopped after three shards, as an interrupt would leave it; then shard 1 is lost too.
        let command = try ExplainCommand.parse(Array(tabularArguments(model: model, out: dir + "/b").dropFirst()))
        let engine = Engine(context: try command.global.context())
        let plan = try command.makePlan(engine: engine, methods: try MethodRegistry.shared.parse(command.method),
                                        outputs: ExplainOutputs(json: nil, npy: nil, png: nil, out: dir + "/b"))
        var stopped = WholeSetRun(plan: plan, shardSize: 4)
        stopped.stopAfterShards = 3
        #expect(try stopped.run(top: 3) { _ in } == false)
        let shards = dir + "/b/shards"
        let written = try FileManager.default.contentsOfDirectory(atPath: shards).filter { $0.hasPrefix("shard-") }.sorted()
        #expect(written == ["shard-00000.json", "shard-00001.json", "shard-00002.json"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/b/explanation.json"))
        try FileManager.default.removeItem(atPath: shards + "/shard-00001.json")

        let resumed = try runPrism(tabularArguments(model: model, out: dir + "/b"))
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("resuming: 8 of 30 examples done (2 of 8 shards"), "\(resumed.stdout)")
        #expect(resumed.stdout.contains("explained 22 examples"), "\(resumed.stdout)")

        let a = try ExplainDocumentReader(path: dir + "/a/explanation.json")
        let b = try ExplainDocumentReader(path: dir + "/b/explanation.json")
        #expect(a.methodNames == Self.methods && b.methodNames == a.methodNames)
        for method in a.methodNames {
            #expect(a.array("values", of: method) != nil)
            for field in ["values", "base_values", "outputs", "standard_errors"] {
                guard let x = a.array(field, of: method) else { continue }
                let y = try #require(b.array(field, of: method), "\(method) \(field)")
                #expect(x.shape == y.shape && x.shape.first == 30, "\(method) \(field) \(x.shape)")
                #expect(x.values.count == y.values.count && zip(x.values, y.values).allSatisfy { $0.bitPattern == $1.bitPattern },
                        "\(method) \(field) differs after the resume")
            }
            let curvesA = try JSONSerialization.data(withJSONObject: a.method(method)["curves"] as Any, options: [.sortedKeys])
            let curvesB = try JSONSerialization.data(withJSONObject: b.method(method)["curves"] as Any, options: [.sortedKeys])
            #expect(curvesA == curvesB && curvesA.count > 100, "\(method) curves")
            for file in ["values.npy", "base_values.npy", "outputs.npy", "standard_errors.npy"]
                where FileManager.default.fileExists(atPath: dir + "/a/npy/\(method)/\(file)") {
                let x = try Data(contentsOf: URL(fileURLWithPath: dir + "/a/npy/\(method)/\(file)"))
                let y = try Data(contentsOf: URL(fileURLWithPath: dir + "/b/npy/\(method)/\(file)"))
                #expect(x == y && x.count > 128, "\(method) \(file)")
            }
        }
        // The same rows as a plain list, batched alike (pairs), give the same values: the merge puts
        // every shard's examples in their places.
        let listed = try runPrism(["explain", "--device", "cpu", "--data", Self.csv, "--label", "species", "--model", model,
                                   "--index", (0..<30).map(String.init).joined(separator: ","), "--method", Self.methods.joined(separator: ","),
                                   "--samples", "16", "--smoothgrad-samples", "8", "--lime-samples", "64", "--background", "10", "--seed", "3",
                                   "--instances-per-batch", "2", "--json", dir + "/list.json"])
        #expect(listed.status == 0, "\(listed.stderr)")
        let list = try ExplainDocumentReader(path: dir + "/list.json")
        for method in a.methodNames {
            // SHAP: the same device batches, so the same bits; SmoothGrad and LIME: the same noise and
            // masks per example (other batches of rows on the device).
            let tolerance = method.hasSuffix("shap") ? (abs: 0.0, rel: 1e-12) : (abs: 1e-6, rel: 1e-4)
            let (x, y) = (list.values(method), a.values(method))
            #expect(x.count == y.count && x.count >= 30 * 4 && zip(x, y).allSatisfy { abs($0 - $1) <= tolerance.abs + tolerance.rel * abs($1) },
                    "\(method): the list run differs")
        }
        let predictionsA = try JSONSerialization.data(withJSONObject: a.json["predictions"] as Any, options: [.sortedKeys])
        let predictionsB = try JSONSerialization.data(withJSONObject: b.json["predictions"] as Any, options: [.sortedKeys])
        #expect(predictionsA == predictionsB)
        #expect(a.inputs["indices"] as? [Int] == Array(0..<30))

        // Other settings are refused in one line, naming the setting; the shards stay as they were.
        expectOneLineError(try runPrism(tabularArguments(model: model, out: dir + "/b", seed: "4")), "(--seed: 3 there, 4 now)")
        expectOneLineError(try runPrism(tabularArguments(model: model, out: dir + "/b", shardSize: "5")), "(shard size: 4 there, 5 now)")
        var noOut = tabularArguments(model: model, out: dir + "/c")
        noOut.removeLast(2)
        expectOneLineError(try runPrism(noOut), "give --out DIR")
        #expect(try FileManager.default.contentsOfDirectory(atPath: shards).filter { $0.hasPrefix("shard-") }.count == 8)

        // The global views: mean |φ| of each example's explained output, over all and per predicted class.
        let views = try #require(a.json["global_views"] as? [[String: Any]])
        let predicted = try #require((a.json["predictions"] as? [String: Any])?["predicted"] as? [Int])
        #expect(views.compactMap { $0["method"] as? String } == Self.methods)
        for view in views {
            let method = try #require(view["method"] as? String)
            let values = a.values(method), slots = try #require(a.method(method)["output_slots"] as? [Int])
            let shape = a.shape(method)
            #expect(shape.count == 3 && shape[0] == 30 && shape[1] == 4, "\(method) \(shape)")
            let (m, o) = (shape[1], shape[2])
            func expected(_ members: [Int]) -> [Double] {
                (0..<m).map { j in members.reduce(0.0) { $0 + abs(values[($1 * m + j) * o + slots[$1]]) } / Double(members.count) }
            }
            let meanAbs = try #require(view["mean_abs"] as? [Double])
            #expect(meanAbs.count == m && zip(meanAbs, expected(Array(0..<30))).allSatisfy { abs($0 - $1) <= 1e-12 * max(1, abs($1)) },
                    "\(method): \(meanAbs)")
            let classes = try #require(view["per_class"] as? [[String: Any]])
            #expect(classes.compactMap { $0["output"] as? Int } == Array(Set(predicted)).sorted())
            for c in classes {
                let output = try #require(c["output"] as? Int), members = (0..<30).filter { predicted[$0] == output }
                let classMean = try #require(c["mean_abs"] as? [Double])
                #expect(c["examples"] as? Int == members.count)
                #expect(zip(classMean, expected(members)).allSatisfy { abs($0 - $1) <= 1e-12 * max(1, abs($1)) }, "\(method) class \(output)")
            }
            #expect(FileManager.default.fileExists(atPath: dir + "/a/global-\(method)-mean-abs.svg"))
            let swarm = try String(contentsOfFile: dir + "/a/global-\(method)-beeswarm.svg", encoding: .utf8)
            #expect(swarm.components(separatedBy: "<circle").count - 1 >= 30 * 4, "one dot per example and feature")
        }
        // The document's large arrays written straight into the bytes read back as the encoder's.
        let merged = try WholeSetRun(plan: plan, shardSize: 4).merge(try ShardFolder(path: dir + "/a/shards"))
        let document = ExplainDocument(plan: plan, results: merged)
        let direct = try document.encodedDirectly(threshold: 0), viaEncoder = try document.encoded()
        #expect(direct.count < viaEncoder.count && !String(decoding: direct, as: UTF8.self).contains("@@prism-array"))
        let readDirect = try #require(try JSONSerialization.jsonObject(with: Data(direct)) as? NSDictionary)
        let readEncoder = try #require(try JSONSerialization.jsonObject(with: viaEncoder) as? NSDictionary)
        #expect(readDirect == readEncoder)
        #expect(try document.encodedDirectly(threshold: 1 << 30) == [UInt8](viaEncoder))

        let html = try String(contentsOfFile: dir + "/a/index.html", encoding: .utf8)
        #expect(html.contains("global-kernel-shap-beeswarm.svg") && html.contains("Whole-data-set run: 30 examples"))
        #expect(html.components(separatedBy: "<h2>").count - 1 == 8 + 1, "the first 8 examples and the data files")
    }

    func trainedImageModel(in dir: String) throws -> String {
        let model = dir + "/m.safetensors"
        let train = try runPrism(["train", "--device", "cpu", "--data", TrainCLITests.images, "--arch", "mlp", "--hidden", "8",
                                  "--epochs", "1", "--limit", "64", "--out", model])
        #expect(train.status == 0, "\(train.stderr)")
        return model
    }

    /// The command killed once its first shard is written, then run again: it resumes
    /// with the shards still missing and writes the arrays of an uninterrupted run, bit for bit.
    @Test func interruptedCommandResumes() throws {
        let dir = try scratchDirectory("wholeset-interrupt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try trainedImageModel(in: dir)
        func arguments(_ out: String) -> [String] {
            ["explain", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--index", "0-29", "--method", "kernel-shap",
             "--samples", "40", "--background", "4", "--superpixel", "7", "--shard-size", "1", "--out", dir + "/" + out]
        }
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var url = bin.appendingPathComponent("prism")
        if !FileManager.default.fileExists(atPath: url.path) { url = bin.deletingLastPathComponent().appendingPathComponent("prism") }
        let process = Process()
        process.executableURL = url
        process.arguments = arguments("i")
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let first = dir + "/i/shards/shard-00000.json", deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: first) && process.isRunning && Date() < deadline { usleep(2000) }
        // SIGKILL: nothing runs on the way out (a test runner may leave SIGINT ignored in its children).
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal, "the run ended before the interrupt")
        let done = try FileManager.default.contentsOfDirectory(atPath: dir + "/i/shards").filter { $0.hasPrefix("shard-") }.count
        #expect(done >= 1 && done < 30, "\(done) shards")
        #expect(!FileManager.default.fileExists(atPath: dir + "/i/explanation.json"))

        let resumed = try runPrism(arguments("i"))
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("resuming: \(done) of 30 examples done"), "\(resumed.stdout)")
        let whole = try runPrism(arguments("u"))
        #expect(whole.status == 0, "\(whole.stderr)")
        for file in ["values.npy", "base_values.npy", "outputs.npy", "standard_errors.npy"] {
            let x = try Data(contentsOf: URL(fileURLWithPath: dir + "/i/npy/\(file)"))
            let y = try Data(contentsOf: URL(fileURLWithPath: dir + "/u/npy/\(file)"))
            #expect(x == y && x.count > 128, "\(file)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/i/shards").allSatisfy { !$0.hasSuffix(".tmp") })
    }

    /// Images: the mean |φ| heatmap per predicted class equals the per-pixel mean of the superpixel values.
    @Test func imageRunHasPerClassHeatmaps() throws {
        let dir = try scratchDirectory("wholeset-images")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try trainedImageModel(in: dir)
        let run = try runPrism(["explain", "--device", "cpu", "--data", TrainCLITests.images, "--model", model, "--index", "0-6",
                                "--method", "kernel-shap", "--samples", "40", "--background", "4", "--superpixel", "7",
                                "--shard-size", "3", "--out", dir + "/r"])
        #expect(run.status == 0, "\(run.stderr)")
        let doc = try ExplainDocumentReader(path: dir + "/r/explanation.json")
        let values = doc.values(), slots = try #require(doc.method()["output_slots"] as? [Int])
        let predicted = try #require((doc.json["predictions"] as? [String: Any])?["predicted"] as? [Int])
        let map = try #require(((doc.json["features"] as? [String: Any])?["segmentation"] as? [String: Any])?["values"] as? [[Double]])
            .flatMap { $0 }.map { Int($0) }
        #expect(map.count == 28 * 28 && values.count == 7 * 16 * 10)
        let view = try #require((doc.json["global_views"] as? [[String: Any]])?.first)
        let classes = try #require(view["per_class"] as? [[String: Any]])
        #expect(classes.count == Set(predicted).count)
        for c in classes {
            let output = try #require(c["output"] as? Int), members = (0..<7).filter { predicted[$0] == output }
            let pixels = try #require((c["mean_abs_pixels"] as? [String: Any])?["values"] as? [[Double]]).flatMap { $0 }
            #expect(pixels.count == 28 * 28)
            for (p, feature) in map.enumerated() {
                let expected = members.reduce(0.0) { $0 + abs(values[($1 * 16 + feature) * 10 + slots[$1]]) } / Double(members.count)
                #expect(abs(pixels[p] - expected) <= 1e-12 * max(1, expected), "class \(output) pixel \(p)")
            }
            #expect(FileManager.default.fileExists(atPath: dir + "/r/global-kernel-shap-class-\(output).png"))
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/r/global-kernel-shap-mean-abs.png"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/r/shards").filter { $0.hasPrefix("shard-") }.count == 3)
    }
}
