import Foundation
import Prism
import PrismCL

/// The engine for tests on this thread (see Tests/PrismTests/Support.swift for why per thread).
func explainTestEngine() throws -> Engine {
    let key = "prism.explain-test-engine"
    if let engine = Thread.current.threadDictionary[key] as? Engine { return engine }
    var settings = Settings.current
    settings.device = settings.device ?? "cpu"
    let engine = try Engine(settings: settings)
    Thread.current.threadDictionary[key] = engine
    return engine
}
