import Foundation

/// How much host memory this process may use, read once from the cgroup limit and `/proc/meminfo`,
/// and the check that work which must hold `bytes` on the host fits in it.
public enum HostMemory {
    /// The bytes this process may allocate: the smallest of the cgroup memory limits (v2
    /// `memory.max` of the process's cgroup and its ancestors, or v1 `memory.limit_in_bytes`) and
    /// `/proc/meminfo`'s `MemAvailable`; `nil` where none can be read (not Linux), in which case no
    /// budget is enforced.
    public static let available: Int? = {
        let cgroup = contents("/proc/self/cgroup")
        return parse(
            cgroupV2Max: cgroupFolders(procSelfCgroup: cgroup, version: 2).compactMap { contents($0 + "/memory.max") },
            cgroupV1Limit: cgroupFolders(procSelfCgroup: cgroup, version: 1).compactMap { contents($0 + "/memory.limit_in_bytes") },
            meminfo: contents("/proc/meminfo"))
    }()

    /// The cgroup folders whose memory limit bounds this process: its own (from the `0::` line of
    /// `/proc/self/cgroup` for v2, the `memory` controller's line for v1) and each ancestor up to
    /// the hierarchy's root (`/sys/fs/cgroup`, or `/sys/fs/cgroup/memory` for v1). Folders that do
    /// not exist (a cgroup namespace hides them) are simply not read.
    public static func cgroupFolders(procSelfCgroup: String?, version: Int) -> [String] {
        let root = version == 2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory"
        let lines = procSelfCgroup?.split(separator: "\n") ?? []
        let line = version == 2 ? lines.first { $0.hasPrefix("0::") }
            : lines.first { $0.split(separator: ":", maxSplits: 2).dropFirst().first?.split(separator: ",").contains("memory") == true }
        guard let line, let path = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).last else { return [root] }
        var parts = path.split(separator: "/").map(String.init)
        var folders: [String] = []
        while !parts.isEmpty {
            folders.append(root + "/" + parts.joined(separator: "/"))
            parts.removeLast()
        }
        return folders + [root]
    }

    /// The budget from the text of the cgroup files and `/proc/meminfo` (any may be missing).
    /// - Parameters:
    ///   - cgroupV2Max: the contents of each `memory.max` that applies: a byte count or `max` (no limit).
    ///   - cgroupV1Limit: the contents of each `memory.limit_in_bytes` that applies: a byte count,
    ///     where a value of 2^60 or more is the kernel's way of saying "no limit".
    ///   - meminfo: the contents of `/proc/meminfo`, of which `MemAvailable: N kB` is used.
    /// - Returns: the smallest limit found, or `nil` where none is.
    public static func parse(cgroupV2Max: [String], cgroupV1Limit: [String], meminfo: String?) -> Int? {
        var limits: [Int] = []
        for max in cgroupV2Max {
            let text = max.trimmingCharacters(in: .whitespacesAndNewlines)
            if text != "max", let bytes = Int(text), bytes >= 0 { limits.append(bytes) }
        }
        for limit in cgroupV1Limit {
            let text = limit.trimmingCharacters(in: .whitespacesAndNewlines)
            if let bytes = Int(text), bytes >= 0, bytes < 1 << 60 { limits.append(bytes) }
        }
        if let meminfo {
            for line in meminfo.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count >= 2, let value = Int(fields[1]) else { continue }
                let unit = fields.count >= 3 ? fields[2].lowercased() : ""
                let scale = unit == "kb" ? 1024 : unit == "mb" ? 1 << 20 : unit == "gb" ? 1 << 30 : 1
                let (bytes, overflow) = value.multipliedReportingOverflow(by: scale)
                limits.append(overflow ? Int.max : bytes)
            }
        }
        return limits.min()
    }

    /// Whether `bytes` (`nil`: a size too large for an Int) fits in `available`.
    public static func fits(_ bytes: Int?, available: Int? = HostMemory.available) -> Bool {
        guard let bytes else { return false }
        guard let available else { return true }
        return bytes <= available
    }

    /// A short description of a byte count in decimal units ("49 TB", "23 GB", "512 MB", "640 bytes");
    /// `nil` reads "more than 9 EB" (a size past Int.max).
    public static func describe(_ bytes: Int?) -> String {
        guard let bytes else { return "more than 9 EB" }
        let units: [(Double, String)] = [(1e18, "EB"), (1e15, "PB"), (1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")]
        for (scale, name) in units where Double(bytes) >= scale {
            let value = Double(bytes) / scale
            return value >= 10 ? "\(Int(value.rounded())) \(name)" : "\(String(format: "%.1f", value)) \(name)"
        }
        return "\(bytes) bytes"
    }

    /// "N GB of memory is available" for messages (or "the available memory is unknown").
    public static var availableDescription: String {
        available.map { "\(describe($0)) of host memory is available" } ?? "the available host memory is unknown"
    }

    /// The product of `factors` with checked arithmetic; `nil` on overflow or a negative factor.
    public static func product(_ factors: [Int]) -> Int? {
        var total = 1
        for f in factors {
            guard f >= 0 else { return nil }
            let (p, overflow) = total.multipliedReportingOverflow(by: f)
            if overflow { return nil }
            total = p
        }
        return total
    }

    private static func contents(_ path: String) -> String? {
        try? String(contentsOfFile: path, encoding: .utf8)
    }
}
