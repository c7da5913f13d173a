import Foundation
import PrismFormats

// Tensors stored outside the .onnx file (`torch.onnx.export(…, external_data=True)`, onnx's
// `save_as_external_data`): `external_data` names a file (`location`) and a byte range (`offset`,
// `length`). Such files are read only from beside the model: the location must be a relative path
// without `..`, inside the model's folder, and not a link leading out of it.

extension Onnx_TensorProto {
    /// Whether the tensor's data lives in an external file.
    var isExternal: Bool { dataLocation == .external || !externalData.isEmpty }

    /// The tensor with its external data read into `rawData` from the file its `location` names in
    /// `folder` (the model file's folder).
    /// - Throws: `DataError` (message without the model file) naming the tensor and the problem: no
    ///   folder (the model was given as bytes), a missing, absolute or `..` location, an unknown key,
    ///   an offset or length that is not a non-negative integer, a file that is missing or not a
    ///   regular file, a range past the file's end, a length other than the tensor's size, or a size
    ///   that does not fit in memory. Sizes are checked before anything is allocated.
    func readingExternalData(folder: String?) throws -> Onnx_TensorProto {
        let label = name.isEmpty ? "a tensor" : "tensor '\(name)'"
        var entries: [String: String] = [:]
        for entry in externalData {
            guard ["location", "offset", "length", "checksum"].contains(entry.key) else {
                throw DataError("\(label): external data key '\(entry.key)' is not one Prism reads (location, offset, length, checksum)")
            }
            guard entries[entry.key] == nil else { throw DataError("\(label): external data key '\(entry.key)' is given twice") }
            entries[entry.key] = entry.value
        }
        guard let location = entries["location"], !location.isEmpty else { throw DataError("\(label): external data without a 'location'") }
        guard let folder else {
            throw DataError("\(label) is stored in an external data file ('\(location)'), which is read only from beside a model file")
        }
        let parts = location.split(separator: "/", omittingEmptySubsequences: false)
        guard !location.hasPrefix("/"), !location.contains("\\"), !location.contains("\0"), !parts.contains(".."), !parts.contains("") else {
            throw DataError("\(label): external data location '\(location)' is not a plain relative path; Prism reads external data only from beside the model (no absolute paths, no '..')")
        }
        func number(_ key: String) throws -> Int? {
            guard let text = entries[key] else { return nil }
            guard !text.isEmpty, text.utf8.allSatisfy({ (48...57).contains($0) }), let n = Int(text) else {
                throw DataError("\(label): external data \(key) '\(text)' is not a non-negative integer")
            }
            return n
        }
        let offset = try number("offset") ?? 0
        let path = (folder as NSString).appendingPathComponent(location)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DataError("\(label): its external data file '\(location)' does not exist beside the model (\(path))")
        }
        // A symbolic link beside the model must not lead out of its folder.
        let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        let realFolder = URL(fileURLWithPath: folder).resolvingSymlinksInPath().path
        guard real.hasPrefix(realFolder.hasSuffix("/") ? realFolder : realFolder + "/") else {
            throw DataError("\(label): its external data file '\(location)' is a link to \(real), outside the model's folder; Prism reads external data only from beside the model")
        }
        guard !isDirectory.boolValue, let attributes = try? FileManager.default.attributesOfItem(atPath: real),
              attributes[.type] as? FileAttributeType == .typeRegular, let size = (attributes[.size] as? NSNumber)?.intValue else {
            throw DataError("\(label): its external data file '\(location)' is not a regular file")
        }
        guard offset <= size else {
            throw DataError("\(label): external data offset \(offset) is past the end of '\(location)' (\(size) bytes)")
        }
        let length = try number("length") ?? (size - offset)
        guard case let (end, false) = offset.addingReportingOverflow(length), end <= size else {
            throw DataError("\(label): external data range \(offset)..<\(offset) + \(length) is past the end of '\(location)' (\(size) bytes)")
        }
        // The tensor's size in bytes, from its dims and dtype, before reading anything.
        let widths: [Onnx_TensorProto.DataType: Int] = [.float: 4, .int64: 8, .int32: 4]
        let type = Onnx_TensorProto.DataType(rawValue: Int(dataType))
        guard let type, let width = widths[type] else {
            throw DataError("\(label) has dtype \(dataTypeName(dataType)); Prism imports float32 tensors (and int64/int32 shape constants)")
        }
        guard dims.allSatisfy({ $0 >= 0 && $0 <= Int64(Int32.max) }), let count = HostMemory.product(dims.map { Int($0) }),
              let bytes = HostMemory.product([count, width]) else {
            throw DataError("\(label) has dims \(dims), not a valid shape")
        }
        guard length == bytes else {
            throw DataError("\(label) of shape \(dims) needs \(bytes) bytes; its external data in '\(location)' holds \(length)")
        }
        guard HostMemory.fits(bytes) else {
            throw DataError("\(label) needs \(HostMemory.describe(bytes)), more than the host has free")
        }
        guard let handle = FileHandle(forReadingAtPath: real) else { throw DataError("\(label): cannot read its external data file '\(location)'") }
        defer { try? handle.close() }
        let data: Data
        do {
            try handle.seek(toOffset: UInt64(offset))
            data = try handle.read(upToCount: length) ?? Data()
        } catch {
            throw DataError("\(label): cannot read its external data file '\(location)' (\(error))")
        }
        guard data.count == length else {
            throw DataError("\(label): read \(data.count) of \(length) bytes from '\(location)' (the file changed while it was read)")
        }
        var tensor = self
        tensor.externalData = []
        tensor.dataLocation = .default
        tensor.rawData = data
        return tensor
    }
}
