import PrismExplain
import PrismTestSupport
import Testing

/// A game given by a table of values, for hand-computed examples.
struct TableGame: CoalitionGame {
    let featureCount: Int
    let outputCount = 1
    let table: [Int: Double]  // bitmask of the coalition -> value

    func values(coalitions: [UInt8], count: Int) throws -> [Double] {
        (0..<count).map { r in
            var mask = 0
            for j in 0..<featureCount where coalitions[r * featureCount + j] != 0 { mask |= 1 << j }
            return table[mask] ?? 0
        }
    }
}

@Suite struct CoalitionGameTests {
    @Test func tableGameReadsCoalitionRows() throws {
        let game = TableGame(featureCount: 2, table: [0: 0, 1: 1, 2: 2, 3: 10])
        #expect(try game.values(coalitions: [0, 0, 1, 0, 0, 1, 1, 1], count: 4) == [0, 1, 2, 10])
    }
}
