import Foundation

/// How much host memory this process may use, read once from the cgroup limit and `/proc/meminfo`,
/// and the check that work which must hold `bytes` on the host fits in it.
public enum HostMemory {
    /// The bytes this process may allocate: the smaller of the cgroup's memory limit (v2
    /// `memory.max`, or v1 `memory.limit_in_bytes`) and `/proc/meminfo`'s `MemAvailable`; `nil`
    /// where neither can be read (not Linux), in which case no budget is enforced.
    public static let available: Int? = parse(
        cgroupV2Max: contents("/sys/fs/cgroup/memory.max"),
        cgroupV1Limit: contents("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
        meminfo: contents("/proc/meminfo"))

    /// The budget from the text of the cgroup files and `/proc/meminfo` (any may be missing).
    /// - Parameters:
    ///   - cgroupV2Max: the contents of `memory.max`: a byte count or `max` (no limit).
    ///   - cgroupV1Limit: the contents of `memory.limit_in_bytes`: a byte count, where a value of
    ///     2^60 or more is the kernel's way of saying "no limit".
    ///   - meminfo: the contents of `/proc/meminfo`, of which `MemAvailable: N kB` is used.
    /// - Returns: the smallest limit found, or `nil` where none is.
    public static func parse(cgroupV2Max: String?, cgroupV1Limit: String?, meminfo: String?) -> Int? {
        var limits: [Int] = []
        if let text = cgroupV2Max?.trimmingCharacters(in: .whitespacesAndNewlines), text != "max", let bytes = Int(text), bytes >= 0 {
            limits.append(bytes)
        }
        if let text = cgroupV1Limit?.trimmingCharacters(in: .whitespacesAndNewlines), let bytes = Int(text), bytes >= 0, bytes < 1 << 60 {
            limits.append(bytes)
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
