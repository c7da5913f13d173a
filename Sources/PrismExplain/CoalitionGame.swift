/// A cooperative game over `featureCount` players with vector-valued payoffs: the value v(S) of
/// each coalition S for every output (class) at once. Shapley estimators only ever see this.
///
/// Coalitions are passed as a row-major 0/1 matrix [count, featureCount] (1 = the feature is
/// present, taken from the instance; 0 = hidden, taken from the background or baseline).
public protocol CoalitionGame {
    /// Number of players (features or feature groups).
    var featureCount: Int { get }
    /// Number of outputs (classes) each value has.
    var outputCount: Int { get }
    /// v(S) for each coalition: [count, outputCount], row-major.
    /// - Throws: when the underlying model fails.
    func values(coalitions: [UInt8], count: Int) throws -> [Double]
    /// Model rows one coalition costs (the background size for a background masker); estimators
    /// report coalitions × this as their model evaluations.
    var rowsPerCoalition: Int { get }
}

extension CoalitionGame {
    public var rowsPerCoalition: Int { 1 }
}
