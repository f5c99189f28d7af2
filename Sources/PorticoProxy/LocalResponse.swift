import NIOCore
import PorticoCore
import PorticoHTTP1

/// An answer the gateway writes itself (404, a direct response, a redirect, an error status).
struct LocalResponse {
    var head: RequestHead
    var status: HTTPStatus
    var body: ByteBuffer
    var contentType: String
    var extraHeaders: [(String, String)]
    var close: Bool
    var record: RequestRecord
    /// Why the gateway answered; nil for a function's own answer (exec, lambda).
    var localReply: LocalReplyReason?
    /// Only on an exec function's own answer: the route's layers, whose `responseHead` acts on
    /// what a backend answers (not on the gateway's own answers).
    var layers: [any RequestLayer] = []
}
