import Testing
import PrismFormats
@testable import PrismONNX

/// The folding of integer shape arithmetic whose entries may be multiples of the batch size
/// (`bsz * num_heads` in PyTorch's exports of attention), against values worked by hand.
@Suite struct ONNXShapeArithmeticTests {
    let site = Site(node: Onnx_NodeProto.with { $0.name = "n"; $0.opType = "Mul" }, opset: 17, source: "f.onnx")

    @Test func numbersFoldAsONNXDefinesThem() throws {
        #expect(try arithmetic("Add", .fixed(7), .fixed(-3), site: site) == .fixed(4))
        #expect(try arithmetic("Div", .fixed(-7), .fixed(2), site: site) == .fixed(-3))
        // Mod with fmod 0 takes the divisor's sign, as Python's %.
        #expect(try arithmetic("Mod", .fixed(-7), .fixed(3), site: site) == .fixed(2))
        #expect(try arithmetic("Mod", .fixed(7), .fixed(-3), site: site) == .fixed(-2))
        #expect(try arithmetic("Mod", .fixed(6), .fixed(3), site: site) == .fixed(0))
    }

    @Test func multiplesOfTheBatchScale() throws {
        #expect(try arithmetic("Mul", .batch(times: 1), .fixed(2), site: site) == .batch(times: 2))
        #expect(try arithmetic("Mul", .fixed(3), .batch(times: 2), site: site) == .batch(times: 6))
        #expect(try arithmetic("Div", .batch(times: 6), .fixed(3), site: site) == .batch(times: 2))
        #expect(try arithmetic("Add", .batch(times: 2), .fixed(0), site: site) == .batch(times: 2))
    }

    @Test func otherArithmeticOnTheBatchIsRefusedByName() {
        for (op, p, q) in [("Add", Dim.batch(times: 1), Dim.fixed(1)), ("Div", .batch(times: 3), .fixed(2)), ("Mul", .batch(times: 1), .batch(times: 1)),
                           ("Mod", .batch(times: 1), .fixed(2)), ("Div", .fixed(1), .fixed(0))] {
            var message = "folded"
            do { _ = try arithmetic(op, p, q, site: site) } catch let error as DataError { message = error.message } catch { message = "\(error)" }
            #expect(message.hasPrefix("f.onnx: node 'n' (Mul, opset 17): "), "\(op) \(p) \(q): \(message)")
        }
    }
}
