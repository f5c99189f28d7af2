import NIOCore
import PorticoHTTP1
import PorticoConfig
import PorticoCore
import PorticoFunctions
import PorticoRouting

/// One proxied request: the state both of its connections share.
final class Exchange: UpstreamResponseDelegate, UpstreamLeaseWaiter, DeadlineWatched {
    let requestHead: RequestHead
    let upstreamHead: RequestHead
    let routeName: String
    let backend: BackendReference
    let requestID: String
    let started: NIODeadline
    let isUpgrade: Bool
    let maxRequestBody: Int

    /// Strong, and so are the handler's timer and pool callbacks: a weak reference would give
    /// the handler a side table, and every retain and release of it (several per request)
    /// would take the runtime's slow path. The handler leaves `.proxying` when its channel
    /// closes, which ends the cycle; a late callback finds it no longer current and lets go.
    let handler: ProxyHandler
    /// The pool of the chosen endpoint; for a function, set once a worker is assigned.
    var pool: UpstreamPool?
    var endpointIndex = 0
    /// The service the request goes to (nil for a function), and its circuit breaker.
    var serviceName: String?
    var circuitBreaker: CircuitBreakerConfig?
    /// The service's outlier detection and health checks, when it has them.
    var health: ServiceHealth?
    /// The lease callback has run (it may run inside `lease` itself).
    var leaseSettled = true
    /// Counted as waiting in the service's circuit breaker.
    var queuedInBreaker = false
    /// The route's timeout (on a function route with retries it bounds all tries).
    var routeTimeout: TimeAmount = .seconds(15)
    /// Function workers that refused this request's connection (each is replaced).
    var workerRefusals = 0
    /// The mirrored copy, when the route mirrors and this request drew it.
    var shadow: ShadowRequest?
    var function: FunctionInstance?
    /// While waiting for a function worker: the id to cancel the wait with.
    var functionWaitID: UInt64?
    var lease: WorkerLease?
    var slotReleased = false
    /// Whether the upstream head frames a body (content-length or chunked).
    var bodyIsFramed = true
    var closeAfterResponse = false
    var upstream: UpstreamConnection?
    var waiterID: Int?
    /// When the request times out (the route's timeout, or a function's request timeout),
    /// watched by the loop's `timeouts` while set.
    var deadline: NIODeadline?
    var watchSlot = -1
    /// An injected fault delay, before the request is sent.
    var delayTask: Scheduled<Void>?
    var bufferedBody: [ByteBuffer] = []
    var bufferedEnd = false
    var bufferedTrailers: HTTPFieldList?
    var requestComplete = false
    var responseStarted = false
    var responseComplete = false
    var finished = false
    var status = 0
    var bytesIn = 0
    var bytesOut = 0
    /// Set on routes with `retries`: what a retry needs (the body to send again, the count).
    var retry: RetryState?
    /// The route's edits to the backend's answer.
    var responseHeaders: ResponseHeadersPolicy?

    init(handler: ProxyHandler, requestHead: RequestHead, upstreamHead: RequestHead, routeName: String,
         backend: BackendReference, requestID: String, started: NIODeadline, isUpgrade: Bool, maxRequestBody: Int) {
        self.handler = handler
        self.requestHead = requestHead
        self.upstreamHead = upstreamHead
        self.routeName = routeName
        self.backend = backend
        self.requestID = requestID
        self.started = started
        self.isUpgrade = isUpgrade
        self.maxRequestBody = maxRequestBody
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

    func leaseCompleted(_ result: Result<UpstreamConnection, UpstreamPoolError>) {
        leaseSettled = true
        handler.leaseCompleted(self, result: result)
    }

    func upstreamResponseHead(_ head: ResponseHead) { handler.upstreamResponseHead(self, head) }
    func upstreamResponseBody(_ buffer: ByteBuffer) { handler.upstreamResponseBody(self, buffer) }
    func upstreamResponseEnd(_ trailers: HTTPFieldList?) { handler.upstreamResponseEnd(self, trailers) }
    func upstreamReadComplete() { handler.upstreamReadComplete(self) }
    func upstreamWritabilityChanged(isWritable: Bool) { handler.upstreamWritabilityChanged(self, isWritable: isWritable) }
    func upstreamClosed() { handler.upstreamClosed(self) }
    func deadlinePassed() { handler.routeTimedOut(self) }
}

extension ProxyHandler {
    fileprivate var isDownstreamWritable: Bool { downstream?.isWritable ?? false }
    fileprivate var timeouts: DeadlineSweeper<Exchange> { loop.timeouts }
}
