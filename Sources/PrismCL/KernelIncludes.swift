/// Kernel files that include others. A kernel family's file may pull in a part of itself kept in
/// another file with a line of its own, `#include "conv2d_backward.cl"`: the line is replaced by that
/// file's text (from the same place as the including file: the embedded copies or
/// `PRISM_KERNELS_DIR`) between `#line` directives, so the compiler's messages name the file and
/// line a kernel was written on. The program is built from the expanded text, so the program cache
/// keys on everything that was compiled. A file is included at most once per program; an include
/// of a file that is being expanded (a cycle) or of a name with a path is refused.
public enum KernelIncludes {
    /// `source` (the text of `file`) with every include expanded, recursively.
    /// - Parameter load: the text of a kernel file by name.
    /// - Throws: `CLError.invalidArgument` for a cycle or a name with a path; what `load` throws.
    public static func expand(_ source: String, file: String, load: (String) throws -> String) throws -> String {
        var included: Set<String> = [file]
        return try expand(source, file: file, stack: [file], included: &included, load: load)
    }

    private static func expand(_ source: String, file: String, stack: [String], included: inout Set<String>,
                               load: (String) throws -> String) throws -> String {
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.contains(where: { includedName($0) != nil }) else { return source }
        var out: [String] = []
        for (index, line) in lines.enumerated() {
            guard let name = includedName(line) else {
                out.append(line)
                continue
            }
            guard !name.contains("/"), !name.contains("\\"), !name.contains("\"") else {
                throw CLError.invalidArgument("\(file): #include \"\(name)\": kernel files include others by name only, from the same place")
            }
            if stack.contains(name) {
                throw CLError.invalidArgument("\(file): #include \"\(name)\" makes a cycle (\((stack + [name]).joined(separator: " → ")))")
            }
            guard included.insert(name).inserted else { continue }
            let text = try expand(try load(name), file: name, stack: stack + [name], included: &included, load: load)
            out.append("#line 1 \"\(name)\"")
            out.append(text)
            out.append("#line \(index + 2) \"\(file)\"")
        }
        return out.joined(separator: "\n")
    }

    /// The file a line includes (`#include "name"`, spaces allowed around the `#`), or nil.
    private static func includedName(_ line: String) -> String? {
        var rest = Substring(line).drop(while: { $0 == " " || $0 == "\t" })
        guard rest.hasPrefix("#") else { return nil }
        rest = rest.dropFirst().drop(while: { $0 == " " || $0 == "\t" })
        guard rest.hasPrefix("include") else { return nil }
        rest = rest.dropFirst("include".count).drop(while: { $0 == " " || $0 == "\t" })
        guard rest.first == "\"", let end = rest.dropFirst().firstIndex(of: "\"") else { return nil }
        return String(rest[rest.index(after: rest.startIndex)..<end])
    }
}
