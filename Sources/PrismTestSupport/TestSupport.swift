import Foundation
import PrismCL
import PrismReference

/// Deterministic pseudo-random numbers for tests (Prism's SplitMix64).
public struct SeededRandom: Sendable {
    private var generator: SplitMix64
    public init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    public mutating func next() -> UInt64 { generator.next() }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Double = -1, _ high: Double = 1) -> Double {
        low + (high - low) * Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `count` floats uniform in [low, high).
    public mutating func floats(_ count: Int, _ low: Double = -1, _ high: Double = 1) -> [Float] {
        (0..<count).map { _ in Float(uniform(low, high)) }
    }
}

/// `count` seeded floats uniform in [low, high).
public func seededFloats(_ count: Int, seed: UInt64, low: Double = -1, high: Double = 1) -> [Float] {
    var rng = SeededRandom(seed: seed)
    return rng.floats(count, low, high)
}

/// The result of comparing an array with a reference under `atol + rtol·|ref|`.
public struct Closeness: CustomStringConvertible, Sendable {
    public let passed: Bool
    public let firstBadIndex: Int?
    public let maxDifference: Double
    public let message: String
    public var description: String { message }
}

/// Compares `actual` with `expected`: passes only if every `|a − e| <= atol + rtol·|e|`, so a NaN
/// anywhere fails. The message names the first bad index and the largest difference.
public func closeness(_ actual: [Float], _ expected: [Double], atol: Double = 1e-5, rtol: Double = 1e-4,
                      label: String = "") -> Closeness {
    let prefix = label.isEmpty ? "" : "\(label): "
    guard actual.count == expected.count else {
        return Closeness(passed: false, firstBadIndex: nil, maxDifference: .infinity,
                         message: "\(prefix)\(actual.count) values, expected \(expected.count)")
    }
    var firstBad: Int?
    var worst = 0.0
    for i in actual.indices {
        let a = Double(actual[i]), e = expected[i]
        let diff = abs(a - e)
        if !(diff <= atol + rtol * abs(e)) {
            if firstBad == nil { firstBad = i }
        }
        if diff.isNaN || diff > worst { worst = diff.isNaN ? .nan : diff }
        if worst.isNaN { worst = .nan }
    }
    if let i = firstBad {
        return Closeness(passed: false, firstBadIndex: i, maxDifference: worst,
                         message: "\(prefix)first mismatch at index \(i): \(actual[i]) vs reference \(expected[i]); max |diff| \(worst) (atol \(atol), rtol \(rtol))")
    }
    return Closeness(passed: true, firstBadIndex: nil, maxDifference: worst, message: "\(prefix)max |diff| \(worst)")
}

/// Float convenience.
public func closeness(_ actual: [Float], _ expected: [Float], atol: Double = 1e-5, rtol: Double = 1e-4, label: String = "") -> Closeness {
    closeness(actual, expected.map(Double.init), atol: atol, rtol: rtol, label: label)
}

/// Central finite differences of a scalar function: ∂f/∂xᵢ ≈ (f(x + h·eᵢ) − f(x − h·eᵢ)) / 2h.
public func finiteDifferences(at x: [Double], step h: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
    var point = x
    return x.indices.map { i in
        let saved = point[i]
        point[i] = saved + h
        let plus = f(point)
        point[i] = saved - h
        let minus = f(point)
        point[i] = saved
        return (plus - minus) / (2 * h)
    }
}

/// The scalar ⟨w, y⟩ used to check a backward with finite differences: for random weights w,
/// ∂⟨w, f(x)⟩/∂x is exactly the backward of f applied to dy = w.
public func dot(_ a: [Double], _ b: [Double]) -> Double {
    zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
}

/// Problem sizes for kernel tests. Under a simulator (Oclgrind, `PRISM_TEST_SMALL=1`) every work-item
/// is interpreted, so tests use the small list there; on real devices the full list.
public enum TestSizes {
    /// Whether tests run in small mode.
    public static let small: Bool = {
        guard let value = getenv("PRISM_TEST_SMALL") else { return false }
        return String(cString: value) == "1"
    }()

    /// `full` normally, `small` in small mode.
    public static func pick<T>(_ full: [T], small smallList: [T]) -> [T] { small ? smallList : full }
}
