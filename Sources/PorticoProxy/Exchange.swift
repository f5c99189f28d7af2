import NIOCore
import PorticoHTTP1
import PorticoConfig
import PorticoCore
import PorticoRouting

/// One proxied request: what its `ExchangeStateMachine` decides on, and the I/O the handler
/// holds for it (the lease, the connection, the timers, the bytes kept for later).
///
/// The machine says what happens; this object only remembers what is in hand. A callback that
/// arrives for an exchange that is over finds its machine finished and is told to do nothing
/// (or to give back what it brought).
final class Exchange: UpstreamResponseDelegate, UpstreamLeaseWaiter, BackendLeaseWaiter, DeadlineWatched {
    /// The client's request line: its method, target and version, for the log and the
    /// answers. Its fields moved to `upstreamHead`.
    let requestHead: RequestHead
    /// Its `traceparent` names each try's span, with tracing.
    var upstreamHead: RequestHead
    let routeName: String
    let backend: BackendReference
    let requestID: String
    let started: NIODeadline
    var machine: ExchangeStateMachine

    /// Strong, and so are the handler's timer and pool callbacks: a weak reference would give
    /// the handler a side table, and every retain and release of it (several per request)
    /// would take the runtime's slow path. The handler leaves `.proxying` when its channel
    /// closes, which ends the cycle; a late callback finds the machine finished and lets go.
    let handler: ProxyHandler
    /// Where the tries go: a service, a function, or another backend, as the route chose it.
    var destination: any Backend
    /// The current try's endpoint, from `destination`; nil while none is held.
    var lease: BackendLease?
    /// The endpoint of the try that failed last, which a retry avoids when it can.
    var previousLease: BackendLease?
    /// While a lease is waited for (a function worker starting): the id to cancel it with.
    var leaseID: UInt64?
    /// The first try has begun (after any fault delay): a lease that arrives now goes on to
    /// lease a connection.
    var connecting = false
    /// The pool of the leased endpoint's connections (or streams).
    var pool: (any UpstreamSource)?
    /// The lease callback has run (it may run inside `lease` itself).
    var leaseSettled = true
    /// Counted as waiting for a connection by the backend (`Backend.connectionWaitBegins`).
    var waitingForConnection = false
    /// The route's timeout (with a backend that bounds each try itself and retries, it bounds all tries).
    var routeTimeout: TimeAmount = .seconds(15)
    /// Endpoints that refused this request's connection and were replaced by the backend.
    var endpointRefusals = 0
    /// The mirrored copy, when the route mirrors and this request drew it.
    var shadow: ShadowRequest?
    var slotReleased = false
    var upstream: (any LeasedUpstream)?
    var waiterID: Int?
    /// When the request times out (the route's timeout, or a lease's try timeout),
    /// watched by the loop's `timeouts` while set.
    var deadline: NIODeadline?
    var watchSlot = -1
    /// An injected fault delay, before the request is sent.
    var delayTask: Scheduled<Void>?
    /// Body parts received before there was a connection to send them on.
    var bufferedBody: [ByteBuffer] = []
    /// Of `bufferedBody`, the bytes that arrived while the lease was waited for, and the backend
    /// that agreed to hold them (`Backend.holdWaitingBody`); given back once, to that backend.
    var waitingBodyBytes = 0
    var waitingBodyHolder: (any Backend)?
    /// The request's trailers, once its end has come (sent with the end on every try).
    var trailers: HTTPFieldList?
    var bytesOut = 0
    /// Set on routes with `retries`: the body kept to send again, the budget, the timers.
    var retry: RetryState?
    /// The route's layers (`RequestPath`): the backend's answer passes their `responseHead`.
    var layers: [any RequestLayer] = []
    /// Fields the layers decided the answer gets, whoever makes it (`LayerRequest.responseFields`).
    var responseFields: [(String, String)] = []
    /// A WebSocket over HTTP/2 (RFC 8441): only a 101 from the upstream opens it.
    var isExtendedConnect = false
    /// Set for a gRPC-Web call: its body and trailers are translated both ways.
    var grpcWeb: GRPCWebTranslator?

    init(handler: ProxyHandler, requestHead: RequestHead, upstreamHead: RequestHead, routeName: String,
         backend: BackendReference, requestID: String, started: NIODeadline,
         machine: ExchangeStateMachine.Configuration, requestHasBody: Bool = true, destination: any Backend) {
        self.handler = handler
        self.destination = destination
        self.requestHead = requestHead
        self.upstreamHead = upstreamHead
        self.routeName = routeName
        self.backend = backend
        self.requestID = requestID
        self.started = started
        self.machine = ExchangeStateMachine(configuration: machine, requestHasBody: requestHasBody)
    }

    func record() -> RequestRecord {
        RequestRecord(route: routeName, backend: backend.description, requestID: requestID, started: started)
    }

    func cancelTimeout() {
        if watchSlot >= 0 { handler.timeouts.unwatch(self) }
        delayTask?.cancel()
        delayTask = nil
    }

    var downstreamIsWritable: Bool { handler.isDownstreamWritable }

    func leaseCompleted(_ result: Result<any LeasedUpstream, UpstreamPoolError>) {
        leaseSettled = true
        handler.leaseCompleted(self, result: result)
    }

    func backendLeased(_ result: Result<BackendLease, BackendUnavailable>) {
        handler.backendLeased(self, result: result)
    }

    func upstreamResponseHead(_ head: ResponseHead) { handler.upstreamResponseHead(self, head) }
    func upstreamResponseBody(_ buffer: ByteBuffer) { handler.upstreamResponseBody(self, buffer) }
    func upstreamResponseEnd(_ trailers: HTTPFieldList?) { handler.upstreamResponseEnd(self, trailers) }
    func upstreamReadComplete() { handler.upstreamReadComplete(self) }
    func upstreamWritabilityChanged(isWritable: Bool) { handler.upstreamWritabilityChanged(self, isWritable: isWritable) }
    func upstreamClosed() { handler.upstreamClosed(self) }
    func upstreamRefused() { handler.upstreamRefused(self) }
    func deadlinePassed() { handler.routeTimedOut(self) }
}

extension ProxyHandler {
    fileprivate var isDownstreamWritable: Bool { downstream?.isWritable ?? false }
    fileprivate var timeouts: DeadlineSweeper<Exchange> { loop.timeouts }
}
