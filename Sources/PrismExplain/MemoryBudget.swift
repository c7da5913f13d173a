import Prism

/// Refuses work whose host-memory need is past what is available, before anything is allocated.
/// - Parameters:
///   - bytes: what the work holds at once (`nil`: more than an Int counts, from a checked product).
///   - what: the work, named for the message ("kernel-shap: a budget of … coalitions × … features").
///   - purpose: what the memory holds ("the coalition matrix and its fit").
/// - Throws: `ExplainError` stating the need and the available memory, in one line.
func requireHostMemory(_ bytes: Int?, _ what: @autoclosure () -> String, for purpose: String) throws {
    guard !HostMemory.fits(bytes) else { return }
    throw ExplainError("\(what()) needs \(HostMemory.describe(bytes)) for \(purpose); \(HostMemory.availableDescription)")
}
