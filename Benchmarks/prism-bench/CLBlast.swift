import CCLBlast
import COpenCL
import PrismCL

/// Errors from CLBlast, with its status code.
struct CLBlastError: Error, CustomStringConvertible {
    var call: String
    var status: Int32
    var description: String { "\(call) failed with CLBlast status \(status)" }
}

/// C = A · B (row-major, M × K times K × N) through CLBlast's SGEMM on the engine's queue.
/// - Returns: the event of CLBlast's launch.
func clblastSgemm(_ context: Context, a: Buffer<Float>, b: Buffer<Float>, c: Buffer<Float>, m: Int, n: Int, k: Int) throws -> [Event] {
    var queue: cl_command_queue? = context.queue.handle
    var event: cl_event?
    let status = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, m, n, k, 1,
                              a.handle, 0, k, b.handle, 0, n, 0, c.handle, 0, n, &queue, &event)
    guard status == CLBlastSuccess else { throw CLBlastError(call: "CLBlastSgemm(\(m), \(n), \(k))", status: status.rawValue) }
    return event.map { [Event(adopting: $0)] } ?? []
}
