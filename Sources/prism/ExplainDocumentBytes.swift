import Foundation

/// `explanation.json` for many examples: the encoder builds a tree of every value before it writes
/// (about 400 bytes per number: 6 GB for 10,000 saliency maps of 28×28), so large arrays are written
/// straight into the bytes instead.
extension ExplainDocument {
    /// The document as `encoded()` writes it, except that arrays of more than `threshold` values are
    /// written as compact nested lists straight into the bytes (numbers in Swift's shortest form that
    /// reads back to the same Double; non-finite ones as the strings `nan`, `inf`, `-inf`).
    /// - Throws: the encoder's errors.
    func encodedDirectly(threshold: Int = 4096) throws -> [UInt8] {
        var copy = self
        var table: [ShapedArray] = []
        // A fresh name per call, so no text in the document (a feature's name) can pass for one.
        let stem = "@@prism-array-\(UUID().uuidString)-"
        func take(_ a: inout ShapedArray) {
            guard a.values.count > threshold else { return }
            a.placeholder = stem + "\(table.count)@@"
            table.append(a)
        }
        func take(_ a: inout ShapedArray?) {
            guard var array = a else { return }
            take(&array)
            a = array
        }
        take(&copy.inputs.values)
        take(&copy.background.rows)
        take(&copy.predictions.outputs)
        for m in copy.methods.indices {
            take(&copy.methods[m].values)
            take(&copy.methods[m].baseValues)
            take(&copy.methods[m].outputs)
            take(&copy.methods[m].standardErrors)
        }
        let text = [UInt8](try copy.encoded())
        guard !table.isEmpty else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.count + table.reduce(0) { $0 + 22 * $1.values.count })
        let marker = Array(("\"" + stem).utf8), end = Array("@@\"".utf8)
        var i = 0
        while i < text.count {
            if text[i] == marker[0], i + marker.count <= text.count, text[i..<(i + marker.count)].elementsEqual(marker) {
                var j = i + marker.count, k = 0
                while j < text.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(text[j]), k < table.count {
                    k = k * 10 + Int(text[j] - UInt8(ascii: "0"))
                    j += 1
                }
                if k < table.count, j + end.count <= text.count, text[j..<(j + end.count)].elementsEqual(end) {
                    let a = table[k]
                    appendNested(a.values, shape: a.shape[...], offset: 0, to: &out)
                    i = j + end.count
                    continue
                }
                out.append(text[i])
                i += 1
            } else {
                out.append(text[i])
                i += 1
            }
        }
        return out
    }

    private func appendNested(_ values: [Double], shape: ArraySlice<Int>, offset: Int, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        if let first = shape.first {
            let rest = shape.dropFirst(), stride = rest.reduce(1, *)
            for i in 0..<first {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                if rest.isEmpty {
                    let v = values[offset + i]
                    let text = v.isNaN ? "\"nan\"" : v == .infinity ? "\"inf\"" : v == -.infinity ? "\"-inf\"" : v.description
                    out += text.utf8
                } else {
                    appendNested(values, shape: rest, offset: offset + i * stride, to: &out)
                }
            }
        }
        out.append(UInt8(ascii: "]"))
    }
}
