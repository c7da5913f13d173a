import Foundation
import PrismFormats

// The graph's wiring checked before anything is read: every name a node reads is defined once (by
// an initializer, the input or one node's output) and the nodes form no cycle.

extension ONNXImporter {
    /// Refuses a graph that reads names nothing defines, defines a name twice, or has a cycle.
    /// - Throws: `DataError` of one line naming the file, the node (with its op and the opset) and the value.
    static func checkWiring(_ graph: Onnx_GraphProto, opset: Int, source: String) throws {
        let constants = Set(graph.initializer.map(\.name)), inputs = Set(graph.input.map(\.name))
        var producer: [String: Int] = [:]
        for (i, node) in graph.node.enumerated() {
            let site = Site(node: node, opset: opset, source: source)
            for name in node.output where !name.isEmpty {
                if let j = producer[name] {
                    throw site.fail("computes '\(name)', which \(Site(node: graph.node[j], opset: opset, source: source).label) computes too")
                }
                if constants.contains(name) || inputs.contains(name) {
                    throw site.fail("computes '\(name)', which is also the graph's \(constants.contains(name) ? "initializer" : "input") of that name")
                }
                producer[name] = i
            }
        }
        for node in graph.node {
            for name in node.input where !name.isEmpty && producer[name] == nil && !constants.contains(name) && !inputs.contains(name) {
                throw Site(node: node, opset: opset, source: source)
                    .fail("reads '\(name)', which no node, initializer or input defines (a missing initializer?)")
            }
        }
        for output in graph.output where producer[output.name] == nil && !constants.contains(output.name) && !inputs.contains(output.name) {
            throw DataError("\(source): the graph's output '\(output.name)' is computed by no node")
        }
        // Kahn's algorithm: the nodes left once no more can run lie on or after a cycle.
        var waiting = graph.node.map { node in Set(node.input.compactMap { producer[$0] }) }
        var readers: [Int: [Int]] = [:]
        for (i, sources) in waiting.enumerated() { for j in sources { readers[j, default: []].append(i) } }
        var ready = waiting.indices.filter { waiting[$0].isEmpty }, done = 0
        while let i = ready.popLast() {
            done += 1
            for r in readers[i] ?? [] {
                waiting[r].remove(i)
                if waiting[r].isEmpty { ready.append(r) }
            }
        }
        guard done < graph.node.count, var current = waiting.indices.first(where: { !waiting[$0].isEmpty }) else { return }
        // Walk back through unfinished producers until a node repeats: that stretch is a cycle.
        var path: [Int] = [], seen: [Int: Int] = [:]
        while seen[current] == nil {
            seen[current] = path.count
            path.append(current)
            current = waiting[current].min()!
        }
        // path runs from readers back to producers and ends at the node before `current` again.
        let cycle = [current] + Array(path[seen[current]!...].reversed().dropLast()) + [current]
        let names = cycle.map { i in graph.node[i].name.isEmpty ? "'\(graph.node[i].output.first ?? "?")'" : "'\(graph.node[i].name)'" }
        throw Site(node: graph.node[current], opset: opset, source: source)
            .fail("is on a cycle (\(names.joined(separator: " → "))); an ONNX graph is acyclic")
    }
}

extension ONNXImporter {
    /// Refuses a graph output whose declared element type is not float32 or whose declared fixed
    /// sizes after the batch differ from the ones the graph computes.
    /// - Throws: `DataError` naming the file, the output and both shapes.
    func checkDeclared(output: Onnx_ValueInfoProto, computed: [Int]) throws {
        guard case let .tensorType(tensor)? = output.type.value else { return }
        if tensor.hasElemType, tensor.elemType != Int32(Onnx_TensorProto.DataType.float.rawValue) {
            throw DataError("\(source): output '\(output.name)' is declared \(dataTypeName(tensor.elemType)); Prism's outputs are float32")
        }
        guard tensor.hasShape else { return }
        let declared = tensor.shape.dim.map { dim -> String in
            switch dim.value {
            case let .dimValue(n)?: return "\(n)"
            case let .dimParam(p)?: return p
            case nil: return "?"
            }
        }
        let fixed = tensor.shape.dim.dropFirst().map { dim -> Int? in if case let .dimValue(n)? = dim.value { return Int(clamping: n) } else { return nil } }
        guard declared.count == computed.count + 1, zip(fixed, computed).allSatisfy({ $0 == nil || $0 == $1 }) else {
            throw DataError("\(source): output '\(output.name)' is declared [\(declared.joined(separator: ", "))], but the graph computes [batch] + \(computed)")
        }
    }
}
