import Foundation
import Prism
import PrismTestSupport
import Testing

/// Image folders, CSV feature rows, and hostile files.
@Suite struct InputSourcesTests {
    /// Classes are the sorted subfolders, files sorted within each (a folder's own before its
    /// subfolders'), hidden entries skipped; images mapped and resized with counted notes.
    @Test func imageFolder() throws {
        let dir = try temporaryFolder("folder")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fm = FileManager.default
        for folder in ["dog", "cat", "cat/more", ".hidden"] { try fm.createDirectory(atPath: dir + "/" + folder, withIntermediateDirectories: true) }
        func copy(_ fixture: String, _ to: String) throws { try fm.copyItem(atPath: inputFixture(fixture), toPath: dir + "/" + to) }
        try copy("gray8.png", "dog/b.png")
        try copy("rgb8.png", "dog/a.png")      // 10×12 RGB: converted to luma and resized
        try copy("gray8.png", "cat/z.png")
        try copy("gray8.png", "cat/more/a.png")  // after cat/z.png: a folder's files first
        try copy("gray_alpha.png", "cat/y")     // by content, whatever the name: 6×4, alpha dropped, resized
        try copy("rgb8.png", ".hidden/x.png")
        try copy("rgb8.png", "cat/.x.png")
        let (dataset, classes, notes) = try ImageDataset.loadImageFolder(directory: dir, height: 7, width: 5, channels: 1, policy: .convert)
        #expect(classes == ["cat", "dog"])
        #expect(dataset.labels == [0, 0, 0, 1, 1] && dataset.imageShape == [1, 7, 5] && dataset.classCount == 2)
        let gray = try #require((inputExpectations["gray8.png"] as? [String: Any])?["pixels"] as? [Int]).map { Double($0) / 255 }
        let size = 35
        // Order: cat/y, cat/z.png, cat/more/a.png, dog/a.png, dog/b.png.
        for (i, name) in [(1, "cat/z.png"), (2, "cat/more/a.png"), (4, "dog/b.png")] {
            expectClose(Array(dataset.pixels[(i * size)..<((i + 1) * size)]), gray, tol: 1e-7, name)
        }
        let expectedRGB = try ImageFile.read(path: inputFixture("rgb8.png")).mapped(toChannels: 1, policy: .convert, name: "a").image
        let resized = ImageResize.bilinear(expectedRGB.values, channels: 1, height: 10, width: 12, toHeight: 7, toWidth: 5)
        expectClose(Array(dataset.pixels[(3 * size)..<(4 * size)]), resized.map(Double.init), tol: 0, "dog/a.png")
        #expect(notes.contains { $0.contains("2 of 5 images resized to 7×5") }, "\(notes)")
        #expect(notes.contains { $0.contains("1 of 5 images converted to 1 channel") }, "\(notes)")
        #expect(notes.contains { $0.contains("1 of 5 images alpha dropped") }, "\(notes)")

        try "hello".write(toFile: dir + "/dog/notes.txt", atomically: true, encoding: .utf8)
        let bad = errorMessage { _ = try ImageDataset.loadImageFolder(directory: dir, height: 7, width: 5, channels: 1, policy: .convert) }
        #expect(bad == "\(dir)/dog/notes.txt: neither a PNG nor a JPEG file", "\(bad ?? "no error")")
        try fm.removeItem(atPath: dir + "/dog/notes.txt")
        try fm.createDirectory(atPath: dir + "/empty", withIntermediateDirectories: true)
        let empty = errorMessage { _ = try ImageDataset.loadImageFolder(directory: dir, height: 7, width: 5, channels: 1, policy: .convert) }
        #expect(empty == "\(dir)/empty: class 'empty' holds no images", "\(empty ?? "no error")")
        try fm.removeItem(atPath: dir + "/empty")
        let strict = errorMessage { _ = try ImageDataset.loadImageFolder(directory: dir, height: 7, width: 5, channels: 1) }
        #expect(strict?.contains("dog/a.png: the image has 3 channels") == true, "\(strict ?? "no error")")
        try fm.createSymbolicLink(atPath: dir + "/cat/more/loop", withDestinationPath: dir + "/cat")
        let loop = errorMessage { _ = try ImageDataset.loadImageFolder(directory: dir, height: 7, width: 5, channels: 1, policy: .convert) }
        #expect(loop == "\(dir)/cat/more/loop: a link back to a folder it is in", "\(loop ?? "no error")")
        try fm.removeItem(atPath: dir + "/cat/more/loop")
        try copy("gray8.png", "stray.png")
        let stray = errorMessage { _ = try ImageDataset.loadImageFolder(directory: dir, height: 7, width: 5, channels: 1, policy: .convert) }
        #expect(stray?.contains("stray.png: a file beside the class folders") == true, "\(stray ?? "no error")")
        #expect(errorMessage { _ = try ImageDataset.loadImageFolder(directory: dir + "/nope", height: 7, width: 5, channels: 1) } == "\(dir)/nope: no such folder")
    }

    /// CSV rows matched to the model's features by name, in the model's order; ignored columns
    /// skipped and said; missing, extra, repeated columns and bad cells refused with row and column.
    @Test func csvRows() throws {
        let dir = try temporaryFolder("csv")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func write(_ text: String, _ name: String = "rows.csv") throws -> String {
            try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
            return dir + "/" + name
        }
        let path = try write("id, b,a\n7,2.5,-1\n\n8,\"3\",1e2\n")
        let batch = try InputFiles.loadCSV(path: path, featureNames: ["a", "b"], ignoring: ["id"])
        #expect(batch.values == [-1, 2.5, 100, 3] && batch.count == 2 && batch.shape == [2])
        #expect(batch.sources == ["rows.csv row 2", "rows.csv row 4"])
        #expect(batch.notes == ["rows.csv: 1 blank row skipped", "rows.csv: column id ignored", "rows.csv: columns taken in the model's order (a, b)"])
        let same = try InputFiles.load(paths: [path], inputShape: [2], featureNames: ["a", "b"], ignoring: ["id"])
        #expect(same.values == batch.values && same.sources == batch.sources)

        func message(_ text: String, features: [String] = ["a", "b"]) throws -> String {
            let path = try write(text, "bad.csv")
            return errorMessage { _ = try InputFiles.loadCSV(path: path, featureNames: features) } ?? "no error"
        }
        #expect(try message("a\n1\n") == "bad.csv: no column 'b' (the model's features: a, b)")
        #expect(try message("a,b,c,d\n1,2,3,4\n") == "bad.csv: column 'c', 'd' is not one of the model's features (list it as ignored to skip it)")
        #expect(try message("a,b,a\n1,2,3\n") == "bad.csv: column 'a' appears twice in the header (columns 1 and 3)")
        #expect(try message("a,b\n1,2\n3,x\n") == "bad.csv: row 3, column 'b': 'x' is not a finite number")
        #expect(try message("a,b\n1,nan\n") == "bad.csv: row 2, column 'b': 'nan' is not a finite number")
        #expect(try message("a,b\n1,2,3\n") == "bad.csv: row 2 has 3 cells, the header has 2")
        #expect(try message("a,b\n") == "bad.csv: no data rows")
        let noNames = errorMessage { _ = try InputFiles.load(paths: [path], inputShape: [2]) }
        #expect(noNames?.contains("CSV inputs need the model's feature names") == true)
    }

    /// Hostile or wrong files: each gives one line naming the file, without a crash and without
    /// allocating what a lying header asks for.
    @Test func hostileFiles() throws {
        let dir = try temporaryFolder("hostile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func load(_ path: String, _ shape: [Int] = [3, 10, 12]) -> String { errorMessage { _ = try InputFiles.load(paths: [path], inputShape: shape) } ?? "no error" }

        let png = try #require(FileManager.default.contents(atPath: inputFixture("rgb8.png")))
        _ = FileManager.default.createFile(atPath: dir + "/cut.png", contents: png.prefix(png.count / 2))
        let cut = load(dir + "/cut.png")
        #expect(cut.hasPrefix("cut.png: cannot decode the PNG image: ") && !cut.contains("\n"), "\(cut)")
        let jpeg = try #require(FileManager.default.contents(atPath: inputFixture("rgb.jpg")))
        _ = FileManager.default.createFile(atPath: dir + "/cut.jpg", contents: jpeg.prefix(jpeg.count - 100))
        let cutJPEG = load(dir + "/cut.jpg", [3, 12, 16])
        #expect(cutJPEG.hasPrefix("cut.jpg: cannot decode the JPEG image: ") && cutJPEG.contains("truncated"), "\(cutJPEG)")
        _ = FileManager.default.createFile(atPath: dir + "/head.jpg", contents: jpeg.prefix(20))
        let head = load(dir + "/head.jpg", [3, 12, 16])
        #expect(head.hasPrefix("head.jpg: cannot decode the JPEG image: "), "\(head)")
        let huge = load(inputFixture("huge.png"))
        #expect(huge.hasPrefix("huge.png: cannot decode the PNG image: ") && (huge.contains("exceed") || huge.contains("limit")), "\(huge)")
        var corrupt = [UInt8](png)
        corrupt[50] ^= 0xFF  // inside the first IDAT chunk's data: its CRC no longer matches
        _ = FileManager.default.createFile(atPath: dir + "/crc.png", contents: Data(corrupt))
        #expect(load(dir + "/crc.png").hasPrefix("crc.png: cannot decode the PNG image: "))
        try "not an image".write(toFile: dir + "/fake.png", atomically: true, encoding: .utf8)
        #expect(load(dir + "/fake.png") == "fake.png: not a PNG, JPEG, .npy or .csv file")
        #expect(load(dir + "/missing.png") == "\(dir)/missing.png: no such file")
        #expect(load(dir) == "\(dir): is a directory, not a file")
        #expect(load(inputFixture("rgb8.png"), [30]) == "rgb8.png: an image, but the model takes inputs of shape [30], not [channels, height, width]")
        #expect((errorMessage { _ = try InputFiles.load(paths: [], inputShape: [3]) }) == "inputs: no files given")
        let absurd = errorMessage { _ = try InputFiles.load(paths: [inputFixture("rgb8.png")], inputShape: [3, 1 << 40, 1 << 40]) }
        #expect(absurd?.hasPrefix("inputs: the model's input shape [3, 1099511627776, 1099511627776] is not usable") == true, "\(absurd ?? "no error")")
    }
}

extension InputSourcesTests {
    /// Every strict prefix of a PNG, a JPEG and a .npy file is refused with one line (the JPEG's
    /// first 2 bytes are not even recognised as JPEG); seeded single-byte changes either decode to an
    /// image of consistent size with samples in [0, 1] or are refused — never a crash.
    @Test func prefixesAndDamagedBytes() throws {
        for name in ["rgb8.png", "interlaced.png", "rgb.jpg", "gray.jpg"] {
            let bytes = [UInt8](try #require(FileManager.default.contents(atPath: inputFixture(name))))
            for n in 0..<bytes.count {
                let message = errorMessage { _ = try ImageFile.decode(Array(bytes.prefix(n)), name: name) }
                #expect(message?.hasPrefix(name + ": ") == true && message?.contains("\n") == false, "\(name) cut to \(n) bytes: \(message ?? "decoded")")
            }
            var state: UInt64 = 0x5EED_0000 &+ UInt64(bytes.count)
            for _ in 0..<300 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                var damaged = bytes
                damaged[Int((state >> 33) % UInt64(bytes.count))] ^= UInt8(truncatingIfNeeded: (state >> 16) | 1)
                do {
                    let image = try ImageFile.decode(damaged, name: name)
                    #expect(image.values.count == image.channels * image.height * image.width)
                    #expect(image.values.allSatisfy { $0 >= 0 && $0 <= 1 })
                } catch {
                    #expect("\(error)".hasPrefix(name + ": "))
                }
            }
        }
        let npy = [UInt8](try #require(FileManager.default.contents(atPath: inputFixture("x_f4.npy"))))
        for n in 0..<npy.count {
            #expect(errorMessage { _ = try NumPyArray.parse(Array(npy.prefix(n)), name: "x.npy") }?.hasPrefix("x.npy: ") == true, "cut to \(n)")
        }
    }
}
