// Writes COUNT bytes through OutputFile to PATH (`-` is standard output), for the tests that need a
// process of their own: a file size limit or a redirected standard output would disturb the others.
// Usage: prism-files-probe PATH COUNT [FILE-SIZE-LIMIT]
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PrismFiles

/// Writes `text` and a newline to standard error and exits with `status`.
func fail(_ text: String, _ status: Int32) -> Never {
    let bytes = Array((text + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(status)
}

let arguments = CommandLine.arguments
guard arguments.count == 3 || arguments.count == 4, let count = Int(arguments[2]), count >= 0 else {
    fail("usage: prism-files-probe PATH COUNT [FILE-SIZE-LIMIT]", 2)
}
if arguments.count == 4 {
    guard let limit = rlim_t(arguments[3]) else { fail("bad limit", 2) }
    // Past the limit, write(2) fails with EFBIG instead of the process ending with SIGXFSZ.
    signal(SIGXFSZ, SIG_IGN)
    var value = rlimit(rlim_cur: limit, rlim_max: limit)
    #if canImport(Glibc)
    let resource = __rlimit_resource_t(RLIMIT_FSIZE.rawValue)
    #else
    let resource = RLIMIT_FSIZE
    #endif
    guard setrlimit(resource, &value) == 0 else { fail("setrlimit failed", 2) }
}
do {
    try OutputFile(path: arguments[1], allowStandardOutput: true).write([UInt8](repeating: 0x78, count: count))
} catch {
    fail("\(error)", 1)
}
