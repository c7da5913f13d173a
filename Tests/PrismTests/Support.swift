import Foundation
import Prism
import PrismCL
import PrismTestSupport
import Testing

/// The engine for tests on this thread: the CPU device (PoCL) unless `PRISM_DEVICE` says otherwise.
///
/// One engine per thread, created on that thread and kept for the process: Oclgrind (the simulator
/// the kernel tests also run on) keeps per-thread state that exists only on the thread that created
/// a context, so every OpenCL call of a (synchronous) test stays on the thread of its engine.
func testEngine() throws -> Engine {
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
final class TestEngines: @unchecked Sendable {
    private static let shared = TestEngines()
    private let lock = NSLock()
    private var engines: [Engine] = []

    static func keep(_ engine: Engine) {
        shared.lock.lock()
        shared.engines.append(engine)
        shared.lock.unlock()
    }
}

/// Records an issue unless `actual` matches `expected` within `atol + rtol·|expected|` (NaN fails).
func expectClose(_ actual: [Float], _ expected: [Double], atol: Double = 1e-5, rtol: Double = 1e-4, _ label: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    let result = closeness(actual, expected, atol: atol, rtol: rtol, label: label)
    if !result.passed { Issue.record(Comment(rawValue: result.message), sourceLocation: sourceLocation) }
}

func expectClose(_ actual: [Float], _ expected: [Float], atol: Double = 1e-5, rtol: Double = 1e-4, _ label: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    expectClose(actual, expected.map(Double.init), atol: atol, rtol: rtol, label, sourceLocation: sourceLocation)
}

func doubles(_ x: [Float]) -> [Double] { x.map(Double.init) }
