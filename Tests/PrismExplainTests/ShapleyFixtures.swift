import Foundation
import Prism
import PrismExplain
import PrismTestSupport
import Testing

/// Every coalition's value of a game, computed once; estimators then query the table, so sampled
/// estimators can be run for many seeds cheaply. Counts the coalitions asked for.
final class CachedGame: CoalitionGame {
    let featureCount: Int
    let outputCount: Int
    private let table: [Double]  // [2^M, O], coalition numbered by its bitmask
    private(set) var coalitionsAsked = 0

    init(_ game: CoalitionGame) throws {
        let m = game.featureCount, total = 1 << m
        var masks = [UInt8](repeating: 0, count: total * m)
        for s in 0..<total {
            for j in 0..<m where s & (1 << j) != 0 { masks[s * m + j] = 1 }
        }
        featureCount = m
        outputCount = game.outputCount
        table = try game.values(coalitions: masks, count: total)
    }

    func values(coalitions: [UInt8], count: Int) throws -> [Double] {
        coalitionsAsked += count
        var out: [Double] = []
        out.reserveCapacity(count * outputCount)
        for r in 0..<count {
            var s = 0
            for j in 0..<featureCount where coalitions[r * featureCount + j] != 0 { s |= 1 << j }
            out += table[(s * outputCount)..<((s + 1) * outputCount)]
        }
        return out
    }
}

/// A seeded 8 → 16 → 3 MLP with an instance and 20 background rows: the M = 8 test model.
struct SmallMLP {
    static let features = 8, hidden = 16, classes = 3, backgroundRows = 20
    let model: Model
    let instance: [Float]
    let background: [Float]

    init(engine: Engine) throws {
        model = try Model(spec: try .mlp(inputShape: [Self.features], hidden: [Self.hidden], classes: Self.classes),
                               seed: 7, engine: engine)
        instance = seededFloats(Self.features, seed: 11, low: -2, high: 2)
        background = seededFloats(Self.backgroundRows * Self.features, seed: 12, low: -2, high: 2)
    }

    func deviceGame(rowsPerChunk: Int? = nil) throws -> DeviceGame {
        try DeviceGame(model: model, instance: instance, background: background, rowsPerChunk: rowsPerChunk)
    }

    /// The same network in plain Swift from its state dict (Double inside): a model that is not Prism's.
    func hostForward() throws -> ([Float], Int) throws -> [Float] {
        let state = try model.stateDict()
        let w1 = state["1.weight"]!.values, b1 = state["1.bias"]!.values
        let w2 = state["3.weight"]!.values, b2 = state["3.bias"]!.values
        let d = Self.features, h = Self.hidden, c = Self.classes
        return { rows, count in
            var out = [Float](repeating: 0, count: count * c)
            var hidden = [Double](repeating: 0, count: h)
            for r in 0..<count {
                for i in 0..<h {
                    var s = Double(b1[i])
                    for e in 0..<d { s += Double(w1[i * d + e]) * Double(rows[r * d + e]) }
                    hidden[i] = max(0, s)
                }
                for k in 0..<c {
                    var s = Double(b2[k])
                    for i in 0..<h { s += Double(w2[k * h + i]) * hidden[i] }
                    out[r * c + k] = Float(s)
                }
            }
            return out
        }
    }
}

/// Root-mean-square difference.
func rms(_ a: [Double], _ b: [Double]) -> Double {
    (zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / Double(max(a.count, 1))).squareRoot()
}

/// Fails unless every |a − e| <= atol + rtol·|e| (NaN fails), naming the first bad index.
func expectClose(_ actual: [Double], _ expected: [Double], atol: Double, rtol: Double = 0, _ label: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record("\(label): \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    for i in actual.indices {
        let diff = abs(actual[i] - expected[i])
        if !(diff <= atol + rtol * abs(expected[i])) {
            Issue.record("\(label): index \(i): \(actual[i]) vs \(expected[i]) (|diff| \(diff))", sourceLocation: sourceLocation)
            return
        }
    }
}
