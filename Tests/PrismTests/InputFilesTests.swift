import Foundation
import Prism
import PrismTestSupport
import Testing

/// A fixture of `Tests/Fixtures/inputs` (written by `Tests/Fixtures/make_inputs.py`).
func inputFixture(_ name: String) -> String { fixture("inputs/" + name) }

/// `expected.json` of the inputs fixtures: PIL's and numpy's answers.
var inputExpectations: [String: Any] {
    let data = FileManager.default.contents(atPath: inputFixture("expected.json")) ?? Data()
    return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
}

/// Fails unless every |actual − expected| <= tol (so NaN fails), naming the first bad index.
func expectClose(_ actual: [Float], _ expected: [Double], tol: Double, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record("\(what): \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    var worst = 0.0, first: Int?
    for i in actual.indices {
        let diff = abs(Double(actual[i]) - expected[i])
        if !(diff <= tol) {
            if first == nil { first = i }
            worst = diff.isNaN ? .nan : max(worst, diff)
        }
    }
    if let first {
        Issue.record("\(what): index \(first) is \(actual[first]), expected \(expected[first]); max diff \(worst) > \(tol)",
                     sourceLocation: sourceLocation)
    }
}

/// The error message of a throwing call, or nil when it does not throw.
func errorMessage(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return "\(error)" }
}

/// A fresh temporary folder, removed by the caller.
func temporaryFolder(_ stem: String) throws -> String {
    let dir = NSTemporaryDirectory() + "prism-\(stem)-\(getpid())-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

@Suite struct InputFilesTests {
    /// Every PNG and JPEG fixture decodes to PIL's pixels / 255 (/ 65535 for 16-bit), channels first:
    /// exactly for PNG, within 2 levels for JPEG (two libjpeg-turbo builds).
    @Test func decodesAsPIL() throws {
        let names = ["gray8.png", "gray_alpha.png", "rgb8.png", "rgba8.png", "palette.png", "palette_trns.png", "gray1.png",
                     "interlaced.png", "gray16.png", "rgb16.png", "rgb.jpg", "gray.jpg"]
        for name in names {
            let entry = try #require(inputExpectations[name] as? [String: Any], "\(name) in expected.json")
            let shape = try #require(entry["shape"] as? [Int]), pixels = try #require(entry["pixels"] as? [Int])
            let scale = Double(try #require(entry["scale"] as? Int))
            let image = try ImageFile.read(path: inputFixture(name))
            #expect([image.channels, image.height, image.width] == shape, "\(name)")
            #expect(image.bitDepth == (scale == 65535 ? 16 : 8), "\(name)")
            let tol = name.hasSuffix(".jpg") ? 2.0 / 255 : 1e-7
            expectClose(image.values, pixels.map { Double($0) / scale }, tol: tol, name)
        }
        #expect(try ImageFile.read(path: inputFixture("palette.png")).colorType == "palette")
        #expect(try ImageFile.read(path: inputFixture("gray_alpha.png")).colorType == "gray+alpha")
    }

    /// RGB to a 1-channel model: refused by default naming the file and both counts; with
    /// `.convert`, PIL's convert("L") exactly.
    @Test func rgbToGray() throws {
        let path = inputFixture("rgb8.png")
        let message = errorMessage { _ = try InputFiles.load(paths: [path], inputShape: [1, 10, 12]) }
        #expect(message?.contains("rgb8.png: the image has 3 channels") == true && message?.contains("takes 1") == true, "\(message ?? "no error")")
        let batch = try InputFiles.load(paths: [path], inputShape: [1, 10, 12], channels: .convert)
        let luma = try #require((inputExpectations["luma"] as? [String: Any])?["pixels"] as? [Int])
        expectClose(batch.values, luma.map { Double($0) / 255 }, tol: 1e-7, "luma")
        #expect(batch.count == 1 && batch.sources == ["rgb8.png"] && batch.shape == [1, 10, 12])
        #expect(batch.notes.count == 1 && batch.notes[0].contains("converted to 1 channel"), "\(batch.notes)")
    }

    /// Alpha dropped and gray replicated, each said in the notes; the values are PIL's channels.
    @Test func alphaAndGrayMapping() throws {
        let entry = try #require(inputExpectations["gray_alpha.png"] as? [String: Any])
        let pixels = try #require(entry["pixels"] as? [Int])  // [2, 6, 4]: gray then alpha
        let gray = pixels[0..<24].map { Double($0) / 255 }
        let batch = try InputFiles.load(paths: [inputFixture("gray_alpha.png")], inputShape: [3, 6, 4])
        expectClose(batch.values, gray + gray + gray, tol: 1e-7, "gray+alpha → RGB")
        #expect(batch.notes.count == 1 && batch.notes[0].contains("alpha dropped") && batch.notes[0].contains("replicated"), "\(batch.notes)")

        let trns = try #require((inputExpectations["palette_trns.png"] as? [String: Any])?["pixels"] as? [Int])  // RGBA
        let rgb = try InputFiles.load(paths: [inputFixture("palette_trns.png")], inputShape: [3, 6, 7])
        expectClose(rgb.values, trns[0..<(3 * 42)].map { Double($0) / 255 }, tol: 1e-7, "palette+tRNS → RGB")
        #expect(rgb.notes.first?.contains("alpha dropped") == true)
        let rgbaToGray = errorMessage { _ = try InputFiles.load(paths: [inputFixture("rgba8.png")], inputShape: [1, 5, 6]) }
        #expect(rgbaToGray?.hasPrefix("rgba8.png: the image has 4 channels (RGBA), the model takes 1") == true, "\(rgbaToGray ?? "no error")")
        let rgba = try InputFiles.load(paths: [inputFixture("rgba8.png")], inputShape: [4, 5, 6])
        #expect(rgba.notes.isEmpty, "as is: \(rgba.notes)")
        let message = errorMessage { _ = try InputFiles.load(paths: [inputFixture("rgb8.png")], inputShape: [2, 10, 12]) }
        #expect(message?.contains("has 3 channels (RGB), the model takes 2") == true, "\(message ?? "no error")")
    }

    /// PIL's 4 × 4 → 2 × 2 bilinear by hand: the triangle widened to 2 input pixels each side spans
    /// inputs 0, 1, 2 for output 0 (weights f(−0.25), f(0.25), f(0.75) ∝ 3, 3, 1) and 1, 2, 3 for
    /// output 1 (∝ 1, 3, 3). On x[r][c] = 4r + c that gives rows 4·{5/7, 16/7} and columns {5/7, 16/7}.
    /// Enlarging 2 → 4 is plain bilinear with half-pixel centres: a, ¾a + ¼b, ¼a + ¾b, b.
    @Test func resizeByHand() {
        let down = ImageResize.bilinear((0..<16).map(Float.init), channels: 1, height: 4, width: 4, toHeight: 2, toWidth: 2)
        expectClose(down, [25.0 / 7, 36.0 / 7, 69.0 / 7, 80.0 / 7], tol: 1e-5, "4×4 → 2×2")
        let up = ImageResize.bilinear([1, 5, -2, 6], channels: 2, height: 1, width: 2, toHeight: 1, toWidth: 4)
        expectClose(up, [1, 2, 4, 5, -2, 0, 4, 6], tol: 1e-6, "2 → 4")
        let tall = ImageResize.bilinear([1, 5], channels: 1, height: 2, width: 1, toHeight: 4, toWidth: 1)
        expectClose(tall, [1, 2, 4, 5], tol: 1e-6, "2 → 4 vertically")
    }

    /// Resizing rgb8.png (10 × 12) down, up and in one axis agrees with PIL's BILINEAR resize of the
    /// float channels (mode "F"), and within one 8-bit level of PIL's resize of the 8-bit channels.
    @Test func resizeAsPIL() throws {
        let cases = try #require(inputExpectations["resize"] as? [[String: Any]])
        #expect(cases.count == 3)
        for c in cases {
            let h = try #require(c["height"] as? Int), w = try #require(c["width"] as? Int)
            let floats = try #require(c["floats"] as? [Double]), bytes = try #require(c["uint8"] as? [Int])
            let batch = try InputFiles.load(paths: [inputFixture("rgb8.png")], inputShape: [3, h, w])
            expectClose(batch.values, floats, tol: 2e-6, "\(h)×\(w) against PIL mode F")
            expectClose(batch.values, bytes.map { Double($0) / 255 }, tol: 1.0 / 255 + 1e-6, "\(h)×\(w) against PIL mode L")
            #expect(batch.notes.count == 1 && batch.notes[0].contains("resized to \(h)×\(w)"), "\(batch.notes)")
        }
        let message = errorMessage { _ = try InputFiles.load(paths: [inputFixture("rgb8.png")], inputShape: [3, 4, 5], resize: .none) }
        #expect(message?.contains("rgb8.png: the image is 10×12 (height×width), the model takes 4×5") == true, "\(message ?? "no error")")
    }

    /// Several files make one batch in order, one source per example; a .npy of another shape is
    /// refused naming its shape and the model's.
    @Test func batchOfFiles() throws {
        let gray = try #require((inputExpectations["gray8.png"] as? [String: Any])?["pixels"] as? [Int]).map { Double($0) / 255 }
        let x = try #require((inputExpectations["npy"] as? [String: Any])?["x_f4.npy"] as? [String: Any])
        let xValues = try #require(x["values"] as? [Double])
        let batch = try InputFiles.load(paths: [inputFixture("gray8.png"), inputFixture("gray8.png")], inputShape: [1, 7, 5])
        #expect(batch.count == 2 && batch.sources == ["gray8.png", "gray8.png"] && batch.notes.isEmpty)
        expectClose(batch.values, gray + gray, tol: 1e-7, "two images")
        let mixed = try InputFiles.load(paths: [inputFixture("x_f4.npy"), inputFixture("x_f4_v3.npy")], inputShape: [1, 3, 4])
        #expect(mixed.count == 4 && mixed.sources == ["x_f4.npy[0]", "x_f4.npy[1]", "x_f4_v3.npy[0]", "x_f4_v3.npy[1]"])
        expectClose(mixed.values, (xValues + xValues).map { Double(Float($0)) }, tol: 0, "two .npy files")
        let message = errorMessage { _ = try InputFiles.load(paths: [inputFixture("gray8.png"), inputFixture("x_f4.npy")], inputShape: [1, 7, 5]) }
        #expect(message?.contains("x_f4.npy: shape [2, 1, 3, 4] does not fit the model's inputs [1, 7, 5]") == true, "\(message ?? "no error")")
    }
}
