import CZlib
import Foundation
import Prism
import PrismCL
import Testing

/// IDX files built to hurt: a gzip bomb, dimensions whose product overflows, garbage magic numbers,
/// trailing bytes. Each must give one line naming the file, without a trap or a runaway allocation.
@Suite struct HostileIDXTests {
    let folder: String

    init() throws {
        folder = NSTemporaryDirectory() + "prism-hostile-idx-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    /// Writes a gzip file holding `header` followed by `zeros` zero bytes (compressed as it goes).
    func writeGzip(_ path: String, header: [UInt8], zeros: Int) throws {
        let file = try #require(gzopen(path, "wb"))
        defer { gzclose(file) }
        var header = header
        #expect(gzwrite(file, &header, UInt32(header.count)) == Int32(header.count))
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var left = zeros
        while left > 0 {
            let n = min(left, chunk.count)
            #expect(gzwrite(file, &chunk, UInt32(n)) == Int32(n))
            left -= n
        }
    }

    func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    @Test func gzipBombIsReadOnlyAsFarAsTheLimit() throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // 2,000,000,000 images of 28×28 declared (1.6 TB); 100 MB of zeros present, about 100 kB of gzip.
        let n: UInt32 = 2_000_000_000
        try writeGzip(folder + "/train-images-idx3-ubyte.gz", header: [0, 0, 8, 3] + be32(n) + be32(28) + be32(28), zeros: 100 << 20)
        try writeGzip(folder + "/train-labels-idx1-ubyte.gz", header: [0, 0, 8, 1] + be32(n), zeros: 1 << 20)
        let compressed = try #require(try FileManager.default.attributesOfItem(atPath: folder + "/train-images-idx3-ubyte.gz")[.size] as? Int)
        #expect(compressed < 1 << 20)

        // Only the header and 10 images are inflated.
        let reader = try IDXReader(path: folder + "/train-images-idx3-ubyte.gz")
        #expect(reader.dimensions == [Int(n), 28, 28])
        let values = try reader.readLeading(10)
        #expect(values.count == 10 * 784 && values.allSatisfy { $0 == 0 })
        #expect(reader.bytesRead == 16 + 10 * 784)

        let start = Date()
        let data = try ImageDataset.loadMNISTFormat(directory: folder, split: .train, limit: 10)
        #expect(data.count == 10 && data.height == 28 && data.width == 28)
        #expect(Date().timeIntervalSince(start) < 5, "a limited read of a gzip bomb took \(Date().timeIntervalSince(start)) s")

        // Without a limit, the declared size is refused before anything is allocated.
        let all = message { _ = try ImageDataset.loadMNISTFormat(directory: folder, split: .train) }
        #expect(all.hasPrefix("train-images-idx3-ubyte.gz: 2000000000 images of 28×28 need 19 TB to load; "), "\(all)")
        #expect(all.contains("of host memory is available") && !all.contains("\n"), "\(all)")
    }

    @Test func overflowingDimensionsAreRefusedWithoutATrap() throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/huge.idx"
        try Data([0, 0, 0x0E, 4] + be32(.max) + be32(.max) + be32(.max) + be32(.max)).write(to: URL(fileURLWithPath: path))
        #expect(message { _ = try IDXArray.read(path: path) }
            == "huge.idx: IDX dimensions [4294967295, 4294967295, 4294967295, 4294967295] declare a size that overflows a 64-bit count")
        // A product that fits an Int: a plain file is compared with it before anything is allocated.
        try Data([0, 0, 0x08, 3] + be32(65536) + be32(65536) + be32(65536)).write(to: URL(fileURLWithPath: path))
        #expect(message { _ = try IDXArray.read(path: path) }
            == "huge.idx: truncated IDX file: dimensions [65536, 65536, 65536] need 281474976710672 bytes, found 16")
        // The same gzip-compressed (size unknown until read): refused against the host memory.
        try writeGzip(path + ".gz", header: [0, 0, 0x08, 3] + be32(65536) + be32(65536) + be32(65536), zeros: 10)
        let gz = message { _ = try IDXArray.read(path: path + ".gz") }
        #expect(gz.hasPrefix("huge.idx.gz: 65536 IDX entries of [65536, 65536] need 2.3 PB as values; "), "\(gz)")
    }

    @Test func badMagicIsOneShortLineNamingTheExpectedMagic() throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // Type byte valid, rank 255, then garbage: the old reader printed 255 garbage dimensions.
        var garbage = SplitMix64(seed: 7)
        let bytes: [UInt8] = [0, 0, 0x08, 0xFF] + (0..<1200).map { _ in UInt8(truncatingIfNeeded: garbage.next()) }
        try Data(bytes).write(to: URL(fileURLWithPath: folder + "/train-images-idx3-ubyte"))
        try Data([0, 0, 8, 1, 0, 0, 0, 0]).write(to: URL(fileURLWithPath: folder + "/train-labels-idx1-ubyte"))
        let dataset = message { _ = try ImageDataset.loadMNISTFormat(directory: folder, split: .train) }
        #expect(dataset == "train-images-idx3-ubyte: not an IDX file: magic number 0x000008ff, expected 0x00000803 for images (uint8 elements, rank 3)")
        let plain = message { _ = try IDXArray.read(path: folder + "/train-images-idx3-ubyte") }
        #expect(plain.count < 200 && !plain.contains("\n"), "\(plain)")
        #expect(plain.hasPrefix("train-images-idx3-ubyte: "), "\(plain)")
        // Labels with an images magic.
        try Data([0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]).write(to: URL(fileURLWithPath: folder + "/l"))
        try Data([0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]).write(to: URL(fileURLWithPath: folder + "/i"))
        #expect(message { _ = try ImageDataset.loadIDX(images: folder + "/i", labels: folder + "/l") }
            == "l: not an IDX file: magic number 0x00000803, expected 0x00000801 for labels (uint8 elements, rank 1)")
    }

    @Test func trailingBytesAreRefusedWithoutALimitAndLeftUnreadWithOne() throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let images = IDXArray(type: .uint8, dimensions: [3, 2, 2], values: Array(repeating: 5, count: 12))
        try Data(images.encoded() + [1, 2]).write(to: URL(fileURLWithPath: folder + "/i"))
        try IDXArray(type: .uint8, dimensions: [3], values: [0, 1, 2]).write(path: folder + "/l")
        #expect(message { _ = try ImageDataset.loadIDX(images: folder + "/i", labels: folder + "/l") }
            == "i: IDX file has bytes beyond the 28 its dimensions [3, 2, 2] declare")
        let two = try ImageDataset.loadIDX(images: folder + "/i", labels: folder + "/l", limit: 2)
        #expect(two.labels == [0, 1] && two.pixels == Array(repeating: Float(5.0 / 255), count: 8))
    }

    @Test func hostMemoryIsTheSmallestLimitFound() {
        let meminfo = "MemTotal:       32000000 kB\nMemFree:         1000000 kB\nMemAvailable:   23571352 kB\n"
        #expect(HostMemory.parse(cgroupV2Max: [], cgroupV1Limit: [], meminfo: meminfo) == 23_571_352 * 1024)
        #expect(HostMemory.parse(cgroupV2Max: ["max\n"], cgroupV1Limit: [], meminfo: meminfo) == 23_571_352 * 1024)
        #expect(HostMemory.parse(cgroupV2Max: ["max\n", "4294967296\n", "8589934592"], cgroupV1Limit: [], meminfo: meminfo) == 4_294_967_296)
        // cgroup v1 writes "no limit" as a page-rounded Int64.max.
        #expect(HostMemory.parse(cgroupV2Max: [], cgroupV1Limit: ["9223372036854771712\n"], meminfo: meminfo) == 23_571_352 * 1024)
        #expect(HostMemory.parse(cgroupV2Max: [], cgroupV1Limit: ["9223372036854771712\n", "1073741824\n"], meminfo: meminfo) == 1 << 30)
        #expect(HostMemory.parse(cgroupV2Max: [], cgroupV1Limit: [], meminfo: "MemTotal: 5 kB\n") == nil)
        #expect(HostMemory.parse(cgroupV2Max: ["garbage"], cgroupV1Limit: [], meminfo: nil) == nil)
        #expect(HostMemory.cgroupFolders(procSelfCgroup: "0::/user.slice/job-7\n", version: 2)
            == ["/sys/fs/cgroup/user.slice/job-7", "/sys/fs/cgroup/user.slice", "/sys/fs/cgroup"])
        let v1 = "5:devices:/\n4:memory:/process_api/c9eb\n0::/\n"
        #expect(HostMemory.cgroupFolders(procSelfCgroup: v1, version: 2) == ["/sys/fs/cgroup"])
        #expect(HostMemory.cgroupFolders(procSelfCgroup: v1, version: 1)
            == ["/sys/fs/cgroup/memory/process_api/c9eb", "/sys/fs/cgroup/memory/process_api", "/sys/fs/cgroup/memory"])
        #expect(HostMemory.cgroupFolders(procSelfCgroup: "3:cpu,memory:/a\n", version: 1) == ["/sys/fs/cgroup/memory/a", "/sys/fs/cgroup/memory"])
        #expect(HostMemory.cgroupFolders(procSelfCgroup: nil, version: 2) == ["/sys/fs/cgroup"])
        #expect(HostMemory.describe(49_000_000_000_000) == "49 TB")
        #expect(HostMemory.describe(2_500_000_000) == "2.5 GB")
        #expect(HostMemory.describe(640) == "640 bytes")
        #expect(HostMemory.describe(nil) == "more than 9 EB")
        #expect(HostMemory.fits(10, available: 9) == false && HostMemory.fits(9, available: 9) && !HostMemory.fits(nil, available: nil))
        #expect(HostMemory.product([1 << 32, 1 << 32]) == nil && HostMemory.product([3, 5]) == 15)
    }
}
