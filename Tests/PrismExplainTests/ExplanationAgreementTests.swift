import PrismExplain
import Testing

/// Explanation agreement: Spearman equals scipy.stats.spearmanr on fixed vectors with ties (values
/// printed by scipy 1.x: `spearmanr(a, b).statistic`), and the top-k overlap by hand.
@Suite struct ExplanationAgreementTests {
    static let a: [Double] = [0.3, -1.2, 0.3, 2.5, 0, 0, -0.7, 1.1]
    static let b: [Double] = [0.1, -0.9, 0.5, 2.0, 0.2, -0.1, -0.7, 0.3]

    @Test func spearmanEqualsScipys() throws {
        #expect(abs(try ParameterRandomization.spearman(Self.a, Self.b) - 0.9036800488347748) <= 1e-12)
        #expect(abs(try ParameterRandomization.spearman(Self.a.map(abs), Self.b.map(abs)) - 0.8363789970005029) <= 1e-12)
        #expect(abs(try ParameterRandomization.spearman([1, 2, 2, 2, 5, 6, 6, 8, 9, 10], [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]) - 0.44100229556245846) <= 1e-12)
    }

    @Test func agreementOfTwoExplanations() throws {
        // Two instances of 8 features, one output: the second instance identical in both.
        let x = try Explanation(method: "ig", instanceCount: 2, featureCount: 8, outputCount: 1, values: Self.a + Self.b, modelEvaluations: 0, seconds: 0)
        let y = try Explanation(method: "ig", instanceCount: 2, featureCount: 8, outputCount: 1, values: Self.b + Self.b, modelEvaluations: 0, seconds: 0)
        let agreement = try ExplanationAgreement(x, y, k: 3)
        #expect(abs(agreement.spearman - (0.9036800488347748 + 1) / 2) <= 1e-12)
        #expect(abs(agreement.spearmanAbsolute - (0.8363789970005029 + 1) / 2) <= 1e-12)
        // Top 3 by |φ|: a → {3, 1, 7} (2.5, 1.2, 1.1), b → {3, 1, 6} (2.0, 0.9, 0.7): 2 shared.
        #expect(ExplanationAgreement.topOverlap(Self.a, Self.b, k: 3) == 2.0 / 3)
        #expect(abs(agreement.topKOverlap - (2.0 / 3 + 1) / 2) <= 1e-12 && agreement.k == 3 && agreement.instances == 2)
        let other = try Explanation(method: "ig", instanceCount: 1, featureCount: 8, outputCount: 1, values: Self.a, modelEvaluations: 0, seconds: 0)
        #expect(throws: ExplainError.self) { try ExplanationAgreement(x, other) }
    }
}
