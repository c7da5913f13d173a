import Foundation
import Prism
import PrismCL

/// The engine for tests on this thread, kept for the process (see Tests/PrismTests/Support.swift for
/// why per thread, and why never freed).
func explainTestEngine() throws -> Engine {
    let key = "prism.explain-test-engine"
    if let engine = Thread.current.threadDictionary[key] as? Engine { return engine }
    var settings = Settings.current
    settings.device = settings.device ?? "cpu"
    let engine = try Engine(settings: settings)
    Thread.current.threadDictionary[key] = engine
    ExplainTestEngines.keep(engine)
    return engine
}

/// Every explain-test engine, held until the process ends (see `TestEngines` in PrismTests).
///
/// `@unchecked Sendable`: `engines` is only touched under `lock`.
final class ExplainTestEngines: @unchecked Sendable {
    private static let shared = ExplainTestEngines()
    private let lock = NSLock()
    private var engines: [Engine] = []

    static func keep(_ engine: Engine) {
        shared.lock.lock()
        shared.engines.append(engine)
        shared.lock.unlock()
    }
}
