import Foundation
import Prism

/// One game evaluated on several devices at once: each call's coalitions are cut into contiguous
/// parts, one per device (sizes differing by at most one), each part evaluated by that device's game
/// (its own copy of the model, its own instance and background buffers) at the same time as the
/// others, and the values put back in order. A coalition's value does not depend on the coalitions
/// evaluated with it (nor on the chunking), so on alike devices the values are one device's bit for
/// bit, and every estimator gives the same explanation with the same seed.
public final class SplitGame: CoalitionGame {
    /// The device games, the first the coordinating one.
    public let games: [DeviceGame]
    public var featureCount: Int { games[0].featureCount }
    public var outputCount: Int { games[0].outputCount }
    public var rowsPerCoalition: Int { games[0].rowsPerCoalition }
    /// Coalitions each device has evaluated so far (the first game's device first).
    public private(set) var coalitionsPerDevice: [Int]
    /// Model rows evaluated so far on all devices.
    public var modelEvaluations: Int { games.reduce(0) { $0 + $1.modelEvaluations } }

    /// - Throws: `ExplainError` when there is no game or the games are of different shapes.
    public init(_ games: [DeviceGame]) throws {
        guard let first = games.first else { throw ExplainError("explain: a split game needs at least one device's game") }
        for g in games.dropFirst() where g.featureCount != first.featureCount || g.outputCount != first.outputCount
            || g.rowsPerCoalition != first.rowsPerCoalition {
            throw ExplainError("explain: the devices' games differ (\(g.featureCount) features, \(g.outputCount) outputs, \(g.rowsPerCoalition) rows per coalition against \(first.featureCount), \(first.outputCount), \(first.rowsPerCoalition))")
        }
        self.games = games
        coalitionsPerDevice = Array(repeating: 0, count: games.count)
    }

    public func values(coalitions: [UInt8], count: Int) throws -> [Double] {
        let m = featureCount, k = games.count
        guard coalitions.count == count * m else {
            throw ExplainError("explain: \(coalitions.count) mask entries for \(count) coalitions of \(m) features")
        }
        // One device: its game as it is (no copy of the coalitions, no thread).
        if k == 1 {
            coalitionsPerDevice[0] += count
            return try games[0].values(coalitions: coalitions, count: count)
        }
        let bounds = (0...k).map { $0 * count / k }
        let parts = try onEveryDevice(k) { j -> [Double] in
            let (a, b) = (bounds[j], bounds[j + 1])
            guard b > a else { return [] }
            return try games[j].values(coalitions: Array(coalitions[(a * m)..<(b * m)]), count: b - a)
        }
        for j in 0..<k { coalitionsPerDevice[j] += bounds[j + 1] - bounds[j] }
        return parts.flatMap { $0 }
    }
}
