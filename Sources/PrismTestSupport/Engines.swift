import Foundation
import Prism
import PrismCL

/// The engine for tests on this thread: the CPU device (PoCL) unless `PRISM_DEVICE` says otherwise.
///
/// One engine per thread, created on that thread and kept for the process: Oclgrind (the simulator
/// the kernel tests also run on) keeps per-thread state that exists only on the thread that created
/// a context, so every OpenCL call of a (synchronous) test stays on the thread of its engine.
public func testEngine() throws -> Engine {
    let key = "prism.test-engine"
    if let engine = Thread.current.threadDictionary[key] as? Engine { return engine }
    var settings = Settings.current
    settings.device = settings.device ?? "cpu"
    let engine = try Engine(settings: settings)
    Thread.current.threadDictionary[key] = engine
    TestEngines.keep(engine)
    return engine
}

/// Every test engine, held until the process ends. A thread's dictionary is emptied when the thread
/// exits, and the test runner retires idle threads while tests still run on others; an engine freed
/// then would tear down its OpenCL context on the exiting thread while another engine's kernels run,
/// which corrupts Oclgrind 21.10's heap (aborts such as "tcache_thread_shutdown(): unaligned tcache
/// chunk detected" in ModelTests).
///
/// `@unchecked Sendable`: `engines` is only touched under `lock`.
public final class TestEngines: @unchecked Sendable {
    private static let shared = TestEngines()
    private let lock = NSLock()
    private var engines: [Engine] = []

    public static func keep(_ engine: Engine) {
        shared.lock.lock()
        shared.engines.append(engine)
        shared.lock.unlock()
    }
}

/// One context on the CPU device (PoCL) for the whole test process, with its own program-cache folder
/// (for the host-layer tests, which look at the cache).
public let sharedTestContext: Result<Context, any Error> = Result {
    var settings = Settings.current
    settings.device = settings.device ?? "cpu"
    settings.cacheDirectory = temporaryDirectory("cache")
    return try Context(settings: settings)
}

/// The shared test context (see `sharedTestContext`).
public func testContext() throws -> Context { try sharedTestContext.get() }

/// A fresh, empty folder under the system's temporary directory.
public func temporaryDirectory(_ label: String) -> String {
    let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("prism-tests-\(label)-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
