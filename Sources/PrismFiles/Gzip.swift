import CZlib

/// `input` compressed as one gzip member (zlib's deflate with a gzip wrapper).
/// - Throws: `FileError` naming `path` when zlib fails.
func gzipCompressed(_ input: UnsafeRawBufferPointer, path: String) throws -> [UInt8] {
    var stream = z_stream()
    var status = deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                               zlibVersion(), Int32(MemoryLayout<z_stream>.size))
    guard status == Z_OK else { throw FileError(path: path, "cannot start gzip compression (zlib status \(status))") }
    defer { deflateEnd(&stream) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 18)
    let base = input.baseAddress?.assumingMemoryBound(to: Bytef.self)
    var offset = 0
    repeat {
        // avail_in is 32-bit: feed at most 1 GiB at a time.
        let take = min(input.count - offset, 1 << 30)
        stream.next_in = base.map { UnsafeMutablePointer(mutating: $0 + offset) }
        stream.avail_in = UInt32(take)
        offset += take
        let flush = offset == input.count ? Z_FINISH : Z_NO_FLUSH
        repeat {
            let produced = chunk.withUnsafeMutableBufferPointer { buffer -> Int in
                stream.next_out = buffer.baseAddress
                stream.avail_out = UInt32(buffer.count)
                status = deflate(&stream, flush)
                return buffer.count - Int(stream.avail_out)
            }
            guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                throw FileError(path: path, "gzip compression failed (zlib status \(status))")
            }
            out += chunk[0..<produced]
        } while stream.avail_out == 0
    } while offset < input.count
    guard status == Z_STREAM_END else { throw FileError(path: path, "gzip compression did not finish (zlib status \(status))") }
    return out
}
