import PrismExplain
import Testing

/// Feature names must tell features apart: two groups of one name, or a group named as a column
/// left in no group, are refused.
@Suite struct FeatureGroupNameTests {
    func message(_ groups: [(name: String, columns: [Int])]) -> String {
        do { _ = try FeatureGroups.columns(groups, columnNames: ["a", "b", "c", "d"]); return "no error" } catch { return "\(error)" }
    }

    @Test func repeatedGroupNamesAreRefused() {
        #expect(message([("x", [0]), ("y", [1]), ("x", [2])]) == "feature groups: two groups are named 'x'")
        #expect(message([("d", [0, 1])]).hasPrefix("feature groups: group 'd' has the name of column 'd', which is in no group"))
        // A group named as one of its own columns is one feature of that name.
        #expect(message([("a", [0, 1])]) == "no error")
    }
}
