import PrismFiles

/// Writes `bytes` to `path` through `OutputFile`: the target is checked (a symbolic link is
/// followed; a folder, FIFO, socket or device is refused), then written through a temporary file in
/// its folder and a rename.
/// - Throws: `FileError` naming the path and the reason.
public func writeFileAtomically(path: String, bytes: [UInt8], gzip: Bool = false) throws {
    try OutputFile(path: path, gzip: gzip).write(bytes)
}
