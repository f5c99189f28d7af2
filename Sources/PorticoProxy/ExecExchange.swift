import NIOCore
import PorticoHTTP1

/// A request to a local responder (an exec-mode function): its body is gathered whole, then
/// handed over.
final class ExecExchange {
    let head: RequestHead
    let function: any LocalResponder
    /// The path (rewritten) and query the process sees.
    let path: String
    let maxRequestBody: Int
    let record: RequestRecord
    /// The route's layers: the function's answer passes their `responseHead`.
    let layers: [any RequestLayer]
    var body: ByteBuffer

    init(head: RequestHead, function: any LocalResponder, path: String, contentLength: Int?, maxRequestBody: Int,
         record: RequestRecord, allocator: ByteBufferAllocator, layers: [any RequestLayer]) {
        self.layers = layers
        self.head = head
        self.function = function
        self.path = path
        self.maxRequestBody = maxRequestBody
        self.record = record
        self.body = allocator.buffer(capacity: min(contentLength ?? 0, 1 << 20))
    }
}
