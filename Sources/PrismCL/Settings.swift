import Foundation

/// Every environment variable Prism reads, read in this one place.
///
/// | variable | meaning |
/// |---|---|
/// | `PRISM_DEVICE` | device to use: an index (`1`), a type (`gpu`, `cpu`, `accelerator`) or a name substring |
/// | `PRISM_KERNELS_DIR` | read `*.cl` kernel files from this folder instead of the embedded copies |
/// | `PRISM_NO_CACHE` | `1` turns the on-disk program cache off |
/// | `PRISM_CACHE_DIR` | folder of the on-disk program cache (default `$XDG_CACHE_HOME/prism`, else `~/.cache/prism`) |
/// | `XDG_CACHE_HOME` | base of the default cache folder |
/// | `PRISM_TUNING_FILE` | a tuning table (JSON) searched before the shipped one |
/// | `PRISM_NO_POOL` | `1` gives every buffer a fresh allocation (no reuse; for memory checkers) |
/// | `PRISM_RETAIN_BUFFERS` | `1` holds released buffers until the context closes, so no allocation is reused (for memory checkers) |
public struct Settings: Sendable, Equatable {
    /// Device selection, as given (nil: the default choice GPU > accelerator > CPU).
    public var device: String?
    /// Folder to read kernel sources from instead of the embedded table.
    public var kernelsDirectory: String?
    /// Whether compiled programs are cached on disk.
    public var diskCacheEnabled: Bool
    /// Folder of the on-disk program cache.
    public var cacheDirectory: String
    /// A user tuning table searched before the shipped one.
    public var tuningFile: String?
    /// Whether released buffers are kept for reuse. Off, every buffer is a new allocation, which
    /// memory checkers need: reuse would hide reads of memory a kernel never wrote. (The driver may
    /// still reuse a released allocation's address; `retainsReleasedBuffers` prevents that too.)
    public var bufferPoolEnabled = true
    /// Whether a released buffer's allocation is held, unused, until the context closes instead of
    /// being given back to the driver (and never reused, whatever `bufferPoolEnabled` says). A driver
    /// may hand a released allocation's address to the next buffer; Oclgrind 21.10 does (it reuses
    /// buffer slots) while its uninitialized-memory checker keeps the old slot's shadow state, so it
    /// reports reads of data a kernel did write, and misses reads of data nobody wrote. Device memory
    /// only grows: for memory checkers running small problems.
    public var retainsReleasedBuffers = false

    public init(device: String? = nil, kernelsDirectory: String? = nil,
                diskCacheEnabled: Bool = true, cacheDirectory: String, tuningFile: String? = nil) {
        self.device = device
        self.kernelsDirectory = kernelsDirectory
        self.diskCacheEnabled = diskCacheEnabled
        self.cacheDirectory = cacheDirectory
        self.tuningFile = tuningFile
    }

    /// Settings read from an environment (the process's by default).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        func value(_ key: String) -> String? {
            guard let v = environment[key]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }
        device = value("PRISM_DEVICE")
        kernelsDirectory = value("PRISM_KERNELS_DIR")
        tuningFile = value("PRISM_TUNING_FILE")
        func flag(_ key: String) -> Bool { value(key).map { ["1", "true", "yes", "on"].contains($0.lowercased()) } ?? false }
        diskCacheEnabled = !flag("PRISM_NO_CACHE")
        bufferPoolEnabled = !flag("PRISM_NO_POOL")
        retainsReleasedBuffers = flag("PRISM_RETAIN_BUFFERS")
        if let dir = value("PRISM_CACHE_DIR") {
            cacheDirectory = dir
        } else if let xdg = value("XDG_CACHE_HOME") {
            cacheDirectory = (xdg as NSString).appendingPathComponent("prism")
        } else {
            let home = value("HOME") ?? NSHomeDirectory()
            cacheDirectory = (home as NSString).appendingPathComponent(".cache/prism")
        }
    }

    /// The process's settings.
    public static var current: Settings { Settings() }
}
