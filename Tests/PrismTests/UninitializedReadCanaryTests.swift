import Foundation
import Prism
import PrismTestSupport
import Testing

/// A kernel that reads memory nobody wrote, run only with `PRISM_OCLGRIND_CANARY=1`. The Oclgrind step
/// runs it first and fails unless Oclgrind reports it: a checker that silently stopped working (an
/// ICD that is not Oclgrind, a changed environment variable) would otherwise make a clean run mean
/// nothing.
@Suite struct UninitializedReadCanaryTests {
    static let enabled = ProcessInfo.processInfo.environment["PRISM_OCLGRIND_CANARY"] == "1"

    @Test(.enabled(if: enabled, "only in the Oclgrind step, which expects a report from it"))
    func kernelReadsABufferNobodyWrote() throws {
        let engine = try testEngine()
        let never = try Tensor.empty([8], engine: engine)
        // Scaling reads every element: a memory checker must flag the values it writes.
        let y = try never.scaled(by: 2)
        #expect(try y.toArray().count == 8)
    }
}
