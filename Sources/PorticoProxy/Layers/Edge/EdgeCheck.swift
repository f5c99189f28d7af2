import PorticoCore
import PorticoHTTP1
import PorticoRouting

/// One check a request meets at the edge, before routing: a limit, its framing, its `Host`,
/// its path. Routing needs what they establish (one host, a normalized path, a body length),
/// so they come before the route's layers and are the same for every route
/// (`RequestPath.edge`). Each fails with a `LocalReply`, never an answer of its own.
protocol EdgeCheck: AnyObject, Sendable {
    func check(_ request: inout EdgeRequest) -> EdgeVerdict
}

enum EdgeVerdict: Equatable {
    case pass
    /// Answer with `reply`; `close` when the connection cannot be trusted to carry another
    /// request (its framing or its head is in doubt).
    case reject(LocalReply, close: Bool)
}

/// A request at the edge: its head (a check may drop fields) and what the checks before
/// learned about it.
struct EdgeRequest {
    var head: RequestHead
    let connection: DownstreamConnectionInfo
    /// The body's length when `Content-Length` gives it (`FramingCheck`).
    var contentLength: Int?
    /// The target, normalized (`PathCheck`).
    var target: NormalizedTarget?
    /// The host the request is for: the absolute-form target's authority, or `Host`
    /// (`AuthorityCheck`).
    var authority = ""

    init(head: RequestHead, connection: DownstreamConnectionInfo) {
        self.head = head
        self.connection = connection
    }
}
