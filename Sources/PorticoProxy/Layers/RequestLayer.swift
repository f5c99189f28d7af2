import NIOCore
import PorticoAuth
import PorticoConfig
import PorticoCore
import PorticoHTTP1

/// One step of the request path: a policy, an edit, or an observer.
///
/// A layer may act at four moments, each a hook with a default that does nothing:
/// - `requestHead`: the request matched a route; the layer may edit it, let it go on (after a
///   delay), or answer it itself;
/// - `upstreamHead`: the head the backend will get is built; last edits;
/// - `responseHead`: the backend's answer, before it goes to the client;
/// - `exchangeEnded`: the request is over, however it ended (access log, metrics, tracing).
///
/// Layers are built once per config snapshot (`RequestPath` assembles them, in order) and
/// hold no per-request state: what a request carries between layers is in `LayerRequest`.
protocol RequestLayer: AnyObject, Sendable {
    func requestHead(_ request: inout LayerRequest) -> LayerVerdict
    func upstreamHead(_ head: inout RequestHead, of request: LayerRequest)
    func responseHead(_ head: inout ResponseHead)
    func exchangeEnded(_ ending: ExchangeEnding)
}

extension RequestLayer {
    func requestHead(_ request: inout LayerRequest) -> LayerVerdict { .proceed }
    func upstreamHead(_ head: inout RequestHead, of request: LayerRequest) {}
    func responseHead(_ head: inout ResponseHead) {}
    func exchangeEnded(_ ending: ExchangeEnding) {}
}

/// What a layer decided about a request.
enum LayerVerdict {
    case proceed
    /// Go on, but hold the request this long before it goes to the backend (injected delay).
    case delay(TimeAmount)
    /// Answer it now with `status` (and `headers`); `backend` labels metrics and the access log,
    /// `reason` says why (`portico_local_replies_total`, the access log's `local_reply`).
    case reject(status: HTTPStatus, headers: [(String, String)], backend: String, reason: LocalReplyReason)
}

/// A request while the layers decide it: the head (edited in place for the backend) and what
/// the edge checks and the layers before learned about it.
struct LayerRequest {
    var head: RequestHead
    /// The query the backend gets (a layer may take a token out of it).
    var query: String?
    /// The normalized path, as routes match it.
    let path: String
    /// The host the request is for: the absolute-form target's authority, or `Host`.
    let authority: String
    let requestID: String
    /// Whether the client sent `X-Request-Id` itself (then it is passed on as it is).
    let hadRequestID: Bool
    let connection: DownstreamConnectionInfo
    /// The token a `jwt` layer verified, for the layers after it.
    var token: VerifiedToken?
    /// The event loop's random source, for draws (fault injection); written back after the layers.
    var random: FastRandom
    /// What the exchange does with the request, as the route's layers set it: the route's
    /// timeout (its layer is on every route; 15s is the config's default too), its retries,
    /// and the service that gets a mirrored copy.
    var timeout = TimeAmount.seconds(15)
    var retries: CompiledRetries?
    var mirrorService: String?
    /// Fields the answer gets whoever makes it (the backend, or the gateway), decided from the
    /// request (a `cors` origin): they cannot be decided from the answer alone.
    var responseFields: [(String, String)] = []
}

/// How a request ended, for the layers that watch endings.
struct ExchangeEnding {
    let record: RequestRecord
    let method: String
    let target: String
    let status: Int
    let bytesIn: Int
    let bytesOut: Int
    /// The endpoint that answered, if one did.
    let upstream: HostPort?
    /// From the head's arrival to now, read once for every layer.
    let elapsedNanoseconds: UInt64
    let connection: DownstreamConnectionInfo
    /// Where this event loop's metrics and access log go.
    let loop: LoopContext
    /// A gRPC call's `grpc-status` (the upstream's trailers, or the gateway's own answer).
    let grpcStatus: Int?
    /// Set when the request waited for its endpoint to start (a function's cold start).
    let coldStart: ColdStartPhases?
    /// Tries after the first one.
    let retries: Int
    /// The request's fields (for a proxied request, as they went upstream: the exchange keeps
    /// no other copy), for an observer that reads one only when it needs it (a tap's trace
    /// id): carrying them costs a reference, not a copy.
    let requestFields: HTTPFieldList
    /// Why the gateway answered itself; nil when a backend answered (a service, a function's
    /// worker, an exec or lambda function's own output).
    let localReply: LocalReplyReason?
    /// The request's trace, when tracing is configured.
    let trace: RequestTrace?
}
