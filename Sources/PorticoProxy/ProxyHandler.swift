import NIOCore
import NIOHTTP1
import PorticoConfig
import PorticoCore
import PorticoFunctions
import PorticoRouting

/// Serves the requests of one HTTP/1.1 connection or one HTTP/2 stream: checks the request at
/// the edge, matches a route, and either answers locally or streams the exchange through an
/// upstream connection leased from this event loop's pool.
///
/// HTTP/1 pipelining reaches this handler one request at a time (`HTTP1ServerConnection`
/// sits before it), so there is at most one `Exchange` in flight per handler.
final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        /// The answer is decided (a local response, or an upstream answer that already went
        /// out); the rest of the request body is read and dropped, and `pending`, if any, is
        /// written when the request ends. Answering before the request's end would let
        /// `HTTP1ServerConnection` hand over a pipelined request while this one still reads.
        case awaitingRequestEnd(pending: LocalResponse?)
        case proxying(Exchange)
        /// An exec-mode function: the body is gathered, then one process answers it.
        case execCollecting(ExecExchange)
        case execRunning(ExecExchange)
        /// The connection switched protocols and is now a byte pipe; this handler is leaving.
        case upgraded
        case closing
    }

    private let loop: LoopContext
    private let connection: DownstreamConnectionInfo
    private var state: State = .idle
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private var upstreamNeedsFlush = false

    init(loop: LoopContext, connection: DownstreamConnectionInfo) {
        self.loop = loop
        self.connection = connection
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// The context holds this handler: kept after removal, the pair would keep each other (and
    /// the channel) alive. An HTTP/2 stream's handler is removed after every request.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            startRequest(context: context, head: head)
        case .body(let buffer):
            requestBody(context: context, buffer: buffer)
        case .end(let trailers):
            requestEnd(context: context, trailers: trailers)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if upstreamNeedsFlush, case .proxying(let exchange) = state {
            upstreamNeedsFlush = false
            exchange.upstream?.flush()
        }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        // Hold the client back while the request body has nowhere to go: no upstream
        // connection yet, or one whose send buffer is full.
        if case .proxying(let exchange) = state, !exchange.requestComplete,
           exchange.upstream.map({ !$0.isWritable }) ?? true {
            pendingRead = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .proxying(let exchange) = state {
            exchange.upstream?.resumeReading()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .proxying(let exchange) = state {
            // The client left mid-exchange: the upstream connection is mid-message too.
            exchange.status = exchange.responseStarted ? exchange.status : 499
            abandonUpstream(exchange)
            finish(exchange)
        }
        state = .closing
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            // Idle means no bytes either way; a request waiting on a slow upstream is the
            // route timeout's business, not this one's.
            switch state {
            case .idle, .awaitingRequestEnd, .execCollecting:
                context.close(promise: nil)
            default:
                break
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Request start

    private func startRequest(context: ChannelHandlerContext, head: HTTPRequestHead) {
        var head = head
        let snapshot = loop.snapshot
        let started = NIODeadline.now()
        let requestID = head.headers.first(name: "x-request-id") ?? loop.random.makeRequestID()

        func reject(_ status: HTTPResponseStatus, close: Bool) {
            writeLocalResponse(context: context, head: head, status: status, close: close,
                               record: .init(route: "-", backend: "-", requestID: requestID, started: started))
        }

        if head.headers.wireSize + head.uri.utf8.count > snapshot.maxRequestHeaders {
            return reject(.requestHeaderFieldsTooLarge, close: true)
        }
        // Two Host fields, or one that is not host[:port]: routing, policies and the backend
        // could each read a different host (RFC 9112 3.2 asks for 400).
        guard head.headers.hasValidHost else { return reject(.badRequest, close: true) }
        let contentLength: Int?
        do {
            contentLength = try head.headers.validateRequestFraming(version: head.version)
        } catch {
            return reject(error.status, close: true)
        }
        if head.headers.hasUnderscoreName, connection.underscoreHeaders != .allow {
            // `Content_Length` may become `Content-Length` at a backend that maps `_` to `-`:
            // with a body, whatever the action, the request is refused (as nginx and HAProxy
            // refuse it); without one, the names are dropped unless the listener says reject.
            // HTTP/2 frames its body itself (NIO's codec adds the framing headers it converts to),
            // so there only the names go.
            let hasBody = connection.isHTTP1 && (contentLength != nil || head.headers.contains(name: "transfer-encoding"))
            if connection.underscoreHeaders == .reject || hasBody {
                return reject(.badRequest, close: true)
            }
            head.headers.removeUnderscoreNames()
        }
        if let contentLength, contentLength > snapshot.maxRequestBody {
            return reject(.payloadTooLarge, close: true)
        }
        var target: NormalizedTarget
        switch PathNormalizer.normalize(head.uri, method: head.method.rawValue) {
        case .success(let normalized): target = normalized
        case .failure: return reject(.badRequest, close: false)
        }
        let authority = target.authority ?? head.headers.first(name: "host") ?? ""
        if authority.isEmpty && head.version == .http1_1 {
            return reject(.badRequest, close: true)  // HTTP/1.1 requires Host (RFC 9112 3.2).
        }
        // An absolute-form target's authority replaces Host, so it meets the same grammar.
        if target.authority != nil, !HostHeader.isValid(authority.utf8) { return reject(.badRequest, close: true) }

        let request = RoutedRequestView(head: head, authority: authority, normalizedPath: target.path)
        guard let matched = snapshot.routeTable.match(request) else {
            return reject(.notFound, close: false)
        }
        let route = matched.route
        let routeName = route.config.name

        var faultDelay: TimeAmount?
        // Never trust a client's claim to have been verified by a proxy before this one.
        if head.headers.contains(name: "x-forwarded-client-cert") {
            head.headers.remove(name: "x-forwarded-client-cert")
        }
        if let forwardedCertificate = connection.forwardedClientCertificate {
            head.headers.add(name: "x-forwarded-client-cert", value: forwardedCertificate)
        }
        let policyRequest = PolicyRequest(
            listener: connection.listenerName, clientAddress: connection.clientAddress, principal: connection.principal,
            method: head.method.rawValue, uri: head.uri, path: target.path, host: authority)
        switch snapshot.evaluatePolicies(route: matched.index, request: policyRequest, headers: &head.headers,
                                         query: &target.query, random: &loop.random) {
        case .proceed(let delay):
            faultDelay = delay
        case .reject(let status, let headers, let backend):
            writeLocalResponse(context: context, head: head, status: status, extraHeaders: headers, close: false,
                               record: .init(route: routeName, backend: backend, requestID: requestID, started: started))
            return
        }

        switch route.config.action {
        case .directResponse(let direct):
            writeLocalResponse(
                context: context, head: head, status: HTTPResponseStatus(statusCode: direct.status),
                body: direct.body, contentType: direct.contentType, close: false,
                record: .init(route: routeName, backend: "direct", requestID: requestID, started: started))
            return
        case .redirect(let redirect):
            let location = snapshot.routeTable.redirectLocation(
                redirect, matched: matched, scheme: connection.scheme, authority: authority,
                normalizedPath: target.path, query: target.query)
            writeLocalResponse(
                context: context, head: head, status: HTTPResponseStatus(statusCode: redirect.status),
                extraHeaders: [("location", location)], close: false,
                record: .init(route: routeName, backend: "redirect", requestID: requestID, started: started))
            return
        case .service, .function, .split:
            break
        }

        // A split draws by weight for each request, unless its sticky value (looked up after the
        // policies, which may have set it) keeps the client on one side.
        let splitDraw = route.picker == nil ? 0 : route.stickyHash(
            of: RoutedRequestView(head: head, authority: authority, normalizedPath: target.path)) ?? loop.random.next()
        guard let backend = route.backend(draw: splitDraw) else {
            return reject(.serviceUnavailable, close: false)
        }
        var service: ServiceConfig?
        var function: FunctionBackend?
        switch backend {
        case .service(let name):
            service = snapshot.servicesByName[name]
        case .function(let name):
            function = snapshot.functions[name]
        }
        guard service != nil || function != nil else {
            // A route to a service or function that is not there (a function not deployed yet).
            return reject(.serviceUnavailable, close: false)
        }
        let upstreamPath = snapshot.routeTable.upstreamPath(for: matched, normalizedPath: target.path, query: target.query)
        if head.headers.expectsContinue {
            // Portico answers the interim response itself (as Envoy does by default): the
            // client may send its body, which flows on once there is somewhere to send it.
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        let policies = snapshot.policies(ofRoute: matched.index)
        if case .exec(let execFunction)? = function {
            // Layer: requestHeaders (the process reads the headers from its environment)
            policies?.requestHeaders?.apply(to: &head.headers)
            state = .execCollecting(ExecExchange(
                head: head, function: execFunction, path: upstreamPath, contentLength: contentLength,
                maxRequestBody: snapshot.maxRequestBody,
                record: .init(route: routeName, backend: backend.description, requestID: requestID, started: started),
                allocator: context.channel.allocator, responseHeaders: policies?.responseHeaders))  // Layer: responseHeaders
            return
        }

        // Only the upgrades the route allows become tunnels (WebSocket by default, as Envoy's
        // `upgrade_configs`). Any other, h2c above all, is served as a plain request without
        // its upgrade headers: a tunnelled h2c would carry HTTP/2 requests straight to the
        // backend, past routing and every policy.
        let asksUpgrade = connection.isHTTP1 && head.headers.isUpgradeRequest
        let isUpgrade = asksUpgrade && head.headers.upgradeProtocolsAllowed(route.config.upgrades)
        var upstreamHead = HTTPRequestHead(version: .http1_1, method: head.method, uri: upstreamPath, headers: head.headers)
        // The copy made here has room for the forwarding headers, so adding them does not grow it.
        upstreamHead.headers.reserveCapacity(head.headers.count + 6)
        let hadTransferEncoding = head.headers.contains(name: "transfer-encoding")
        upstreamHead.headers.removeHopByHop(keepUpgrade: isUpgrade)
        upstreamHead.headers.remove(name: "expect")
        if asksUpgrade && !isUpgrade { upstreamHead.headers.remove(name: "http2-settings") }
        if let contentLength {
            upstreamHead.headers.replaceOrAdd(name: "content-length", value: String(contentLength))
        } else if hadTransferEncoding {
            // The body's framing was hop-by-hop and went with the other hop-by-hop headers; it
            // must be framed again, or its bytes would read upstream as the next request.
            upstreamHead.headers.replaceOrAdd(name: "transfer-encoding", value: "chunked")
        }
        if let host = route.config.rewrite?.host {
            upstreamHead.headers.replaceOrAdd(name: "host", value: host)
        } else if target.authority != nil || !upstreamHead.headers.contains(name: "host") {
            upstreamHead.headers.replaceOrAdd(name: "host", value: authority)
        }
        addForwardingHeaders(to: &upstreamHead.headers, authority: authority, requestID: requestID,
                             hadRequestID: head.headers.contains(name: "x-request-id"))
        // Layer: requestHeaders, after Portico's own headers so a route can override them (as Envoy's route headers)
        policies?.requestHeaders?.apply(to: &upstreamHead.headers)

        let exchange = Exchange(
            handler: self, requestHead: head, upstreamHead: upstreamHead, routeName: routeName, backend: backend,
            requestID: requestID, started: started, isUpgrade: isUpgrade, maxRequestBody: snapshot.maxRequestBody)
        exchange.bodyIsFramed = contentLength != nil || hadTransferEncoding
        exchange.responseHeaders = policies?.responseHeaders  // Layer: responseHeaders
        // NIO's decoder stops parsing after a request that asks to switch protocols: if the
        // answer is not a 101, or the upgrade is not tunnelled, the connection cannot carry
        // another request.
        exchange.closeAfterResponse = asksUpgrade || !head.isKeepAlive
        if let retries = snapshot.routePolicies.isEmpty ? nil : snapshot.routePolicies[matched.index]?.retries,
           !isUpgrade, retries.rules.retries > 0 {
            let budgetKey = service?.name ?? backend.description
            loop.recordRequestForRetryBudget(budgetKey, config: service?.retryBudget ?? RetryBudgetConfig(),
                                             now: Int64(truncatingIfNeeded: started.uptimeNanoseconds))
            exchange.retry = RetryState(compiled: retries, budgetKey: budgetKey, serviceName: service?.name)
        }
        state = .proxying(exchange)

        if let service {
            // The endpoint is chosen now, from the snapshot this request matched with, even when
            // a fault delays it: a reload during the delay must not hand it a stale service.
            let (pool, endpointIndex, health) = loop.pool(for: service)
            exchange.pool = pool
            exchange.endpointIndex = endpointIndex
            exchange.serviceName = service.name
            exchange.circuitBreaker = service.circuitBreaker
            exchange.health = health
        }
        let timeout = route.config.timeout.timeAmount
        exchange.routeTimeout = timeout
        if let mirror = route.config.mirror, !isUpgrade, loop.random.percentDraw() < mirror.percent,
           let shadowService = snapshot.servicesByName[mirror.service] {
            exchange.shadow = startShadow(of: upstreamHead, to: shadowService, timeout: timeout)
        }
        if let faultDelay {
            // Injected delay: the request waits as it would for a slow backend; the timeout
            // starts after it, as it does after Envoy's fault filter.
            exchange.delayTask = context.eventLoop.assumeIsolated().scheduleTask(in: faultDelay) {
                guard case .proxying(let current) = self.state, current === exchange, let context = self.context
                else { return }
                exchange.delayTask = nil
                self.connectBackend(exchange, function: function, timeout: timeout, context: context)
            }
        } else {
            connectBackend(exchange, function: function, timeout: timeout, context: context)
        }
    }

    /// Sends a copy of the request to the mirror service, `Host` suffixed `-shadow` so the
    /// shadow (and its logs) can tell copies from real traffic, as Envoy marks them.
    private func startShadow(of head: HTTPRequestHead, to service: ServiceConfig, timeout: TimeAmount) -> ShadowRequest {
        var shadowHead = head
        if let host = shadowHead.headers.first(name: "host") {
            shadowHead.headers.replaceOrAdd(name: "host", value: Self.shadowHost(host))
        }
        let (pool, endpointIndex, _) = loop.pool(for: service)
        let loop = self.loop
        return ShadowRequest(head: shadowHead, pool: pool, timeout: timeout) {
            loop.requestFinished(service: service.name, endpointIndex: endpointIndex)
        }
    }

    /// `api.example.com:8080` → `api.example.com-shadow:8080`.
    static func shadowHost(_ host: String) -> String {
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]"), host[host.index(after: colon)...].allSatisfy(\.isNumber) {
            return host[..<colon] + "-shadow" + host[colon...]
        }
        return host + "-shadow"
    }

    /// Leases a connection from the endpoint already chosen, or waits for a function worker.
    private func connectBackend(_ exchange: Exchange, function: FunctionBackend?, timeout: TimeAmount,
                                context: ChannelHandlerContext) {
        if let pool = exchange.pool {
            startTimeout(exchange, timeout, context: context)
            leaseConnection(exchange, from: pool)
        } else if case .http(let instance)? = function {
            acquireWorker(exchange, from: instance, context: context)
        }
    }

    private func leaseConnection(_ exchange: Exchange, from pool: UpstreamPool) {
        exchange.leaseSettled = false
        let id = pool.lease(for: exchange)
        guard !exchange.leaseSettled else { return }
        exchange.waiterID = id
        // No connection to hand out at once: the request waits, if the service's circuit
        // breaker lets one more wait; if not, 503 now rather than a longer queue.
        guard let service = exchange.serviceName, let breaker = exchange.circuitBreaker, breaker.maxPendingRequests != nil
        else { return }
        if loop.queueRequest(service: service, breaker: breaker) {
            exchange.queuedInBreaker = true
        } else {
            pool.cancelLease(id)
            exchange.waiterID = nil
            exchange.leaseSettled = true
            leaseCompleted(exchange, result: .failure(.overloaded))
        }
    }

    /// The request stopped waiting for a connection (it got one, or gave up).
    private func leftBreakerQueue(_ exchange: Exchange) {
        guard exchange.queuedInBreaker, let service = exchange.serviceName else { return }
        exchange.queuedInBreaker = false
        loop.dequeueRequest(service: service)
    }

    /// What a try of a service request came to, for outlier detection: a status, or nil when
    /// the endpoint gave no answer (connect failure, reset, timeout).
    private func recordOutcome(_ exchange: Exchange, status: Int?) {
        if let lease = exchange.lease {
            if lease.instance.manifest.outlierDetection != nil { lease.instance.recordOutcome(lease, status: status) }
            return
        }
        guard let health = exchange.health, exchange.pool != nil else { return }
        if let status {
            health.recordResponse(endpoint: exchange.endpointIndex, status: status)
        } else {
            health.recordFailure(endpoint: exchange.endpointIndex)
        }
    }

    /// The request waits here while a worker starts (the activator's job). That wait is bounded
    /// by the function's startup timeout, not by the request timeout, which starts once a
    /// worker is assigned.
    private func acquireWorker(_ exchange: Exchange, from instance: FunctionInstance, context: ChannelHandlerContext) {
        let id = loop.nextFunctionRequestID()
        exchange.function = instance
        exchange.functionWaitID = id
        instance.acquire(id: id, on: context.eventLoop) { result in
            // A request that ended meanwhile gives the worker back there.
            self.workerAssigned(exchange, result: result)
        }
    }

    private func startTimeout(_ exchange: Exchange, _ timeout: TimeAmount, context: ChannelHandlerContext) {
        loop.timeouts.watch(exchange, until: context.eventLoop.now + timeout)
    }

    /// The function's scaler chose a worker (or could not).
    private func workerAssigned(_ exchange: Exchange, result: Result<WorkerLease, FunctionUnavailable>) {
        exchange.functionWaitID = nil
        guard case .proxying(let current) = state, current === exchange, let context else {
            if case .success(let lease) = result { lease.instance.release(lease) }
            return
        }
        switch result {
        case .failure(let reason):
            let status: HTTPResponseStatus
            var headers: [(String, String)] = []
            switch reason {
            case .queueFull:
                status = .serviceUnavailable
                headers = [("retry-after", "1")]
            case .startupTimeout:
                status = .gatewayTimeout
            case .draining:
                status = .serviceUnavailable
                headers = [("retry-after", "1")]
            case .crashLooping:
                status = .badGateway
            }
            exchange.retry?.cancelTimers()
            writeLocalResponse(context: context, head: exchange.requestHead, status: status, extraHeaders: headers,
                               close: false, record: exchange.record(), requestComplete: exchange.requestComplete)
        case .success(let lease):
            exchange.lease = lease
            let pool = loop.pool(forWorker: lease.endpoint)
            exchange.pool = pool
            exchange.cancelTimeout()  // a retry's earlier try had one
            startTimeout(exchange, lease.instance.manifest.requestTimeout.timeAmount, context: context)
            if let retry = exchange.retry, retry.overallTask == nil {
                // With retries, the route's timeout bounds all tries (as for a service), counted
                // from the first try's worker: a cold start is not spent from it either.
                retry.overallTask = context.eventLoop.assumeIsolated().scheduleTask(in: exchange.routeTimeout) {
                    self.routeTimedOut(exchange)
                }
            }
            leaseConnection(exchange, from: pool)
        }
    }

    private func addForwardingHeaders(to headers: inout HTTPHeaders, authority: String, requestID: String, hadRequestID: Bool) {
        let client = connection.clientAddress
        if let existing = headers.first(name: "x-forwarded-for") {
            headers.replaceOrAdd(name: "x-forwarded-for", value: existing + ", " + client)
        } else {
            headers.add(name: "x-forwarded-for", value: client)
        }
        headers.replaceOrAdd(name: "x-forwarded-proto", value: connection.scheme)
        headers.replaceOrAdd(name: "x-forwarded-host", value: authority)
        headers.add(name: "forwarded", value: connection.forwardedValue(authority: authority))
        if !hadRequestID { headers.add(name: "x-request-id", value: requestID) }
    }

    // MARK: Request body

    private func requestBody(context: ChannelHandlerContext, buffer: ByteBuffer) {
        if case .execCollecting(let exec) = state {
            var buffer = buffer
            guard exec.body.readableBytes + buffer.readableBytes <= exec.maxRequestBody else {
                writeLocalResponse(context: context, head: exec.head, status: .payloadTooLarge, close: true, record: exec.record)
                return
            }
            exec.body.writeBuffer(&buffer)
            return
        }
        guard case .proxying(let exchange) = state else { return }  // discarding or closing
        if !exchange.bodyIsFramed && buffer.readableBytes > 0 {
            // An HTTP/2 request with a body but no content-length, on a method NIO's codec frames
            // as bodyless: sent on, its bytes would read upstream as another request.
            abandonUpstream(exchange)
            releaseBackendSlot(exchange)
            if exchange.responseStarted {
                finish(exchange)
                state = .closing
                context.close(promise: nil)
            } else {
                writeLocalResponse(context: context, head: exchange.requestHead, status: .badRequest, close: true,
                                   record: exchange.record())
            }
            return
        }
        exchange.bytesIn += buffer.readableBytes
        if exchange.bytesIn > exchange.maxRequestBody {
            if exchange.responseStarted {
                abandonUpstream(exchange)
                finish(exchange)
                state = .closing
                context.close(promise: nil)
            } else {
                abandonUpstream(exchange)
                releaseBackendSlot(exchange)
                writeLocalResponse(context: context, head: exchange.requestHead, status: .payloadTooLarge, close: true,
                                   record: exchange.record())
            }
            return
        }
        exchange.retry?.keep(buffer)
        exchange.shadow?.send(buffer)
        if let upstream = exchange.upstream {
            upstream.send(.body(.byteBuffer(buffer)))
            upstreamNeedsFlush = true
        } else {
            exchange.bufferedBody.append(buffer)
        }
    }

    private func requestEnd(context: ChannelHandlerContext, trailers: HTTPHeaders?) {
        switch state {
        case .proxying(let exchange):
            exchange.requestComplete = true
            exchange.bufferedTrailers = trailers
            exchange.shadow?.end(trailers)
            if let upstream = exchange.upstream {
                upstream.send(.end(trailers))
                upstream.flush()
                upstreamNeedsFlush = false
                startPerTryTimer(exchange, context: context)
                if exchange.responseComplete { completeExchange(exchange) }
            } else {
                exchange.bufferedEnd = true
                exchange.bufferedTrailers = trailers
            }
        case .awaitingRequestEnd(let pending):
            state = .idle
            if let pending { write(pending, context: context) }
        case .execCollecting(let exec):
            state = .execRunning(exec)
            runExec(exec, context: context)
        case .idle, .upgraded, .closing, .execRunning:
            break
        }
    }

    // MARK: Exec functions

    private func runExec(_ exec: ExecExchange, context: ChannelHandlerContext) {
        let head = exec.head
        let (path, query) = exec.path.splitQuery()
        let request = ExecRequest(method: head.method.rawValue, path: path, query: query,
                                  headers: head.headers.map { ($0.name, $0.value) }, body: exec.body,
                                  remoteAddress: connection.clientAddress)
        exec.function.run(request, on: context.eventLoop).assumeIsolated().whenComplete { [self] result in
            guard case .execRunning(let current) = state, current === exec else { return }
            switch result {
            case .success(.ok(let output)):
                writeLocalResponse(context: context, head: head, status: .ok, bodyBytes: output,
                                   contentType: "application/octet-stream", close: false, record: exec.record,
                                   requestComplete: true, responseHeaders: exec.responseHeaders)  // Layer: responseHeaders
            case .success(.queueFull):
                writeLocalResponse(context: context, head: head, status: .serviceUnavailable, extraHeaders: [("retry-after", "1")],
                                   close: false, record: exec.record, requestComplete: true)
            case .success(.timedOut):
                writeLocalResponse(context: context, head: head, status: .gatewayTimeout, close: false,
                                   record: exec.record, requestComplete: true)
            case .success(.failed), .failure:
                writeLocalResponse(context: context, head: head, status: .badGateway, close: false,
                                   record: exec.record, requestComplete: true)
            }
        }
    }

    // MARK: Upstream

    fileprivate func leaseCompleted(_ exchange: Exchange, result: Result<UpstreamConnection, UpstreamPoolError>) {
        exchange.waiterID = nil
        leftBreakerQueue(exchange)
        guard case .proxying(let current) = state, current === exchange, let context else {
            // The request ended (timeout, client gone) while the connection was on its way.
            if case .success(let connection) = result { exchange.pool?.release(connection, reusable: true) }
            return
        }
        switch result {
        case .failure(let error):
            if error == .connectFailed, let lease = exchange.lease, exchange.workerRefusals < 2 {
                // The worker died (or stopped listening) since it was handed out: another one
                // takes the request, as Knative's activator does. Nothing was sent, so the body
                // is still all here; this is not one of the route's retries.
                exchange.workerRefusals += 1
                exchange.lease = nil
                exchange.pool = nil
                exchange.cancelTimeout()
                lease.instance.workerUnreachable(lease)
                acquireWorker(exchange, from: lease.instance, context: context)
                return
            }
            if error == .connectFailed { recordOutcome(exchange, status: nil) }
            if error == .connectFailed, retryScheduled(exchange, after: .connectFailure) { return }
            exchange.cancelTimeout()
            exchange.retry?.cancelTimers()
            releaseBackendSlot(exchange)
            let status: HTTPResponseStatus = error == .connectFailed ? .badGateway : .serviceUnavailable
            writeLocalResponse(context: context, head: exchange.requestHead, status: status, close: false,
                               record: exchange.record(), requestComplete: exchange.requestComplete)
        case .success(let upstream):
            exchange.upstream = upstream
            upstream.requestsServed += 1
            upstream.attach(exchange)
            upstream.send(.head(exchange.upstreamHead))
            for buffer in exchange.bufferedBody { upstream.send(.body(.byteBuffer(buffer))) }
            exchange.bufferedBody.removeAll()
            if exchange.bufferedEnd { upstream.send(.end(exchange.bufferedTrailers)) }
            upstream.flush()
            if exchange.requestComplete { startPerTryTimer(exchange, context: context) }
            if pendingRead, upstream.isWritable {
                pendingRead = false
                context.read()
            }
        }
    }

    fileprivate func upstreamResponseHead(_ exchange: Exchange, _ head: HTTPResponseHead) {
        guard let context else { return }
        recordOutcome(exchange, status: Int(head.status.code))
        if let retry = exchange.retry {
            retry.perTryTask?.cancel()
            retry.perTryTask = nil
            if retryScheduled(exchange, after: .status(Int(head.status.code))) { return }
        }
        exchange.cancelTimeout()
        exchange.retry?.overallTask?.cancel()
        if head.status == .switchingProtocols {
            guard exchange.isUpgrade else {
                // A 101 nobody asked for cannot be relayed safely.
                abandonUpstream(exchange)
                releaseBackendSlot(exchange)
                writeLocalResponse(context: context, head: exchange.requestHead, status: .badGateway, close: false,
                                   record: exchange.record(), requestComplete: exchange.requestComplete)
                return
            }
            upgrade(context: context, exchange: exchange, head: head)
            return
        }
        var response = HTTPResponseHead(version: exchange.requestHead.version, status: head.status, headers: head.headers)
        response.headers.removeHopByHop()
        exchange.responseHeaders?.apply(to: &response.headers)  // Layer: responseHeaders
        if exchange.closeAfterResponse && connection.isHTTP1 {
            // HTTP/1.0 without keep-alive, or an upgrade request answered without a 101: the
            // connection ends with this response (for 1.0, that is also how the body ends).
            response.headers.add(name: "connection", value: "close")
        }
        exchange.status = Int(head.status.code)
        exchange.responseStarted = true
        context.write(wrapOutboundOut(.head(response)), promise: nil)
    }

    fileprivate func upstreamResponseBody(_ exchange: Exchange, _ buffer: ByteBuffer) {
        guard let context, exchange.responseStarted else { return }
        exchange.bytesOut += buffer.readableBytes
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    fileprivate func upstreamResponseEnd(_ exchange: Exchange, _ trailers: HTTPHeaders?) {
        guard let context, exchange.responseStarted else { return }
        exchange.responseComplete = true
        // Settle this exchange before writing the end: the next pipelined request may follow
        // it soon after.
        if exchange.requestComplete {
            completeExchange(exchange)
        } else {
            // The upstream answered before reading the whole body: that connection is out of
            // step, and the client's remaining body is read and dropped.
            abandonUpstream(exchange)
            finish(exchange)
            state = .awaitingRequestEnd(pending: nil)
            resumeClientReads(context)
        }
        let closeAfter = exchange.closeAfterResponse && connection.isHTTP1
        if closeAfter { state = .closing }
        if closeAfter {
            context.writeAndFlush(wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
        }
    }

    /// A read held back for an upstream that is no longer there must be issued now, or the
    /// rest of the request (and the answer waiting for its end) would never arrive.
    private func resumeClientReads(_ context: ChannelHandlerContext) {
        if pendingRead {
            pendingRead = false
            context.read()
        }
    }

    fileprivate func upstreamReadComplete(_ exchange: Exchange) {
        context?.flush()
    }

    fileprivate func upstreamWritabilityChanged(_ exchange: Exchange, isWritable: Bool) {
        if isWritable, pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    fileprivate func upstreamClosed(_ exchange: Exchange) {
        guard case .proxying(let current) = state, current === exchange, let context else { return }
        exchange.upstream = nil
        if !exchange.responseStarted, !exchange.responseComplete { recordOutcome(exchange, status: nil) }
        if !exchange.responseStarted, !exchange.responseComplete, retryScheduled(exchange, after: .reset) { return }
        exchange.retry?.cancelTimers()
        exchange.cancelTimeout()
        if exchange.responseComplete { return }
        if exchange.responseStarted {
            // Mid-body: the only honest signal left is to cut the client's stream too.
            exchange.status = exchange.status == 0 ? 502 : exchange.status
            finish(exchange)
            state = .closing
            context.close(promise: nil)
        } else {
            releaseBackendSlot(exchange)
            writeLocalResponse(context: context, head: exchange.requestHead, status: .badGateway, close: false,
                               record: exchange.record(), requestComplete: exchange.requestComplete)
        }
    }

    // MARK: Retries

    /// Starts another try when the route's retries allow one after `outcome`: conditions,
    /// count, a body that can be sent again, and the backend's retry budget. The try that
    /// failed gives back its connection (not for reuse: its answer was not read) and its slot;
    /// the next one goes to another endpoint where there is one, after a jittered backoff.
    /// The route's overall timeout keeps running across tries.
    private func retryScheduled(_ exchange: Exchange, after outcome: RetryRules.Outcome) -> Bool {
        guard let retry = exchange.retry, !exchange.responseStarted, retry.replayable,
              retry.retriesDone < retry.compiled.rules.retries, retry.compiled.rules.matches(outcome),
              let context, case .proxying(let current) = state, current === exchange else { return false }
        let now = Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds)
        guard loop.takeRetryFromBudget(retry.budgetKey, now: now) else { return false }
        retry.retriesDone += 1
        loop.metrics.recordRetry(route: exchange.routeName)
        retry.perTryTask?.cancel()
        retry.perTryTask = nil

        if let waiterID = exchange.waiterID {
            exchange.pool?.cancelLease(waiterID)
            exchange.waiterID = nil
            leftBreakerQueue(exchange)
        }
        if let upstream = exchange.upstream {
            exchange.upstream = nil
            exchange.pool?.release(upstream, reusable: false)
        }
        if case .service(let name) = exchange.backend, exchange.pool != nil {
            loop.requestFinished(service: name, endpointIndex: exchange.endpointIndex)
        }
        if let lease = exchange.lease {
            exchange.lease = nil
            lease.instance.release(lease)
            // A function's try is bounded by its requestTimeout, which the next try starts
            // afresh once it has a worker: the backoff and a cold start are not counted.
            exchange.cancelTimeout()
        }
        exchange.pool = nil
        // The next try starts from everything the client has sent so far; what is still to
        // come is buffered behind it until that try has a connection.
        exchange.bufferedBody = retry.replay.map { [$0] } ?? []
        exchange.bufferedEnd = exchange.requestComplete

        let backoff = retry.compiled.rules.backoff(retry: retry.retriesDone, unit: loop.random.unitDraw())
        let previousEndpoint = exchange.endpointIndex
        retry.backoffTask = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(backoff)) {
            guard case .proxying(let current) = self.state, current === exchange, let context = self.context
            else { return }
            retry.backoffTask = nil
            self.startRetry(exchange, retry: retry, avoiding: previousEndpoint, context: context)
        }
        return true
    }

    private func startRetry(_ exchange: Exchange, retry: RetryState, avoiding previousEndpoint: Int,
                            context: ChannelHandlerContext) {
        if let name = retry.serviceName {
            // The service as this loop serves it now: a reload during the backoff may have
            // changed its endpoints, and a pick from the old list would point past the new one.
            guard let service = loop.snapshot.servicesByName[name] else {
                releaseBackendSlot(exchange)
                exchange.cancelTimeout()
                retry.cancelTimers()
                writeLocalResponse(context: context, head: exchange.requestHead, status: .serviceUnavailable, close: false,
                                   record: exchange.record(), requestComplete: exchange.requestComplete)
                return
            }
            // Another endpoint is preferred (least_request and random can pick the same one).
            let choice = loop.pool(for: service, avoiding: previousEndpoint)
            exchange.pool = choice.pool
            exchange.endpointIndex = choice.endpointIndex
            exchange.serviceName = service.name
            exchange.circuitBreaker = service.circuitBreaker
            exchange.health = choice.health
            leaseConnection(exchange, from: choice.pool)
        } else if let instance = exchange.function {
            // A function: another worker if one is free, or a new one (the scaler decides).
            acquireWorker(exchange, from: instance, context: context)
        }
    }

    /// The per-try timeout runs from the moment the try's request has been sent whole (as in
    /// Envoy), so a slow upload is not cut short by it.
    private func startPerTryTimer(_ exchange: Exchange, context: ChannelHandlerContext) {
        guard let retry = exchange.retry, let perTry = retry.compiled.perTryTimeout, retry.perTryTask == nil,
              !exchange.responseStarted else { return }
        retry.perTryTask = context.eventLoop.assumeIsolated().scheduleTask(in: perTry) {
            self.perTryTimedOut(exchange)
        }
    }

    private func perTryTimedOut(_ exchange: Exchange) {
        guard case .proxying(let current) = state, current === exchange, !exchange.responseStarted, let context else { return }
        exchange.retry?.perTryTask = nil
        if exchange.upstream != nil { recordOutcome(exchange, status: nil) }
        if retryScheduled(exchange, after: .perTryTimeout) { return }
        abandonUpstream(exchange)
        releaseBackendSlot(exchange)
        writeLocalResponse(context: context, head: exchange.requestHead, status: .gatewayTimeout,
                           close: !exchange.requestComplete, record: exchange.record(), requestComplete: exchange.requestComplete)
    }

    fileprivate func routeTimedOut(_ exchange: Exchange) {
        guard case .proxying(let current) = state, current === exchange, !exchange.responseStarted, let context else { return }
        if exchange.upstream != nil { recordOutcome(exchange, status: nil) }
        abandonUpstream(exchange)
        releaseBackendSlot(exchange)
        // A client still sending its body is not made to finish first: it hears now, and the
        // connection closes behind the answer.
        writeLocalResponse(context: context, head: exchange.requestHead, status: .gatewayTimeout,
                           close: !exchange.requestComplete, record: exchange.record(), requestComplete: exchange.requestComplete)
    }

    /// Both directions are done: the connection goes back to the pool and the request is logged.
    private func completeExchange(_ exchange: Exchange) {
        if let upstream = exchange.upstream {
            exchange.upstream = nil
            // Envoy's max_requests_per_connection: a connection that served its share closes.
            let retire = exchange.circuitBreaker?.maxRequestsPerConnection.map { upstream.requestsServed >= $0 } ?? false
            exchange.pool?.release(upstream, reusable: !retire)
        }
        finish(exchange)
        state = .idle
    }

    /// Gives up the exchange's upstream connection without reusing it.
    private func abandonUpstream(_ exchange: Exchange) {
        exchange.cancelTimeout()
        exchange.retry?.cancelTimers()
        if let waiterID = exchange.waiterID {
            exchange.pool?.cancelLease(waiterID)
            exchange.waiterID = nil
            leftBreakerQueue(exchange)
        }
        if let functionWaitID = exchange.functionWaitID {
            exchange.function?.cancel(id: functionWaitID)
            exchange.functionWaitID = nil
        }
        if let upstream = exchange.upstream {
            exchange.upstream = nil
            exchange.pool?.release(upstream, reusable: false)
        }
    }

    private func finish(_ exchange: Exchange) {
        guard !exchange.finished else { return }
        exchange.finished = true
        releaseBackendSlot(exchange)
        record(exchange.record(), method: exchange.requestHead.method, uri: exchange.requestHead.uri,
               status: exchange.status, bytesIn: exchange.bytesIn, bytesOut: exchange.bytesOut,
               upstream: exchange.pool?.endpoint)
    }

    /// Gives back what the request held of its backend: the load balancer's in-flight count,
    /// or the function worker's concurrency slot. Once.
    private func releaseBackendSlot(_ exchange: Exchange) {
        guard !exchange.slotReleased else { return }
        exchange.slotReleased = true
        switch exchange.backend {
        case .service(let name):
            if exchange.pool != nil { loop.requestFinished(service: name, endpointIndex: exchange.endpointIndex) }
        case .function:
            if let lease = exchange.lease { lease.instance.release(lease) }
        }
    }

    // MARK: Upgrades

    /// Relays the 101 and turns both connections into a plain byte pipe.
    ///
    /// The pipelines change only when the 101 has left for the client and the upstream decoder
    /// has emitted the whole 101 message, and then on a fresh event-loop tick: either event can
    /// fire from inside a decoder's call stack, where swapping handlers would hand HTTP parts
    /// to the byte glue.
    private func upgrade(context: ChannelHandlerContext, exchange: Exchange, head: HTTPResponseHead) {
        guard let upstream = exchange.upstream, let upstreamChannel = upstream.channel else { return }
        exchange.status = 101
        exchange.responseStarted = true
        exchange.cancelTimeout()
        exchange.upstream = nil
        upstream.isUpgrading = true
        upstream.detach()
        exchange.pool?.detach(upstream)
        finish(exchange)
        state = .upgraded

        var response = HTTPResponseHead(version: exchange.requestHead.version, status: .switchingProtocols, headers: head.headers)
        response.headers.removeHopByHop(keepUpgrade: true)
        exchange.responseHeaders?.apply(to: &response.headers)  // Layer: responseHeaders
        let downstreamChannel = context.channel
        let eventLoop = context.eventLoop
        let idleTimeout = loop.snapshot.config.limits.idleTimeout.timeAmount
        var waitingFor = 2
        let stepDone = {
            waitingFor -= 1
            guard waitingFor == 0 else { return }
            eventLoop.execute {
                do {
                    try ByteGlue.join(downstream: downstreamChannel, upstream: upstreamChannel, idleTimeout: idleTimeout)
                } catch {
                    downstreamChannel.close(promise: nil)
                    upstreamChannel.close(promise: nil)
                }
            }
        }
        upstream.onUpgradeMessageEnd = stepDone
        context.writeAndFlush(wrapOutboundOut(.head(response))).assumeIsolated().whenComplete { result in
            guard case .success = result else {
                downstreamChannel.close(promise: nil)
                upstreamChannel.close(promise: nil)
                return
            }
            stepDone()
        }
    }

    // MARK: Local responses

    /// Answers from the gateway itself. The answer goes out now when the request is complete
    /// or the connection closes after it; otherwise when the request ends.
    private func writeLocalResponse(
        context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus, body: String? = nil,
        bodyBytes: ByteBuffer? = nil, contentType: String = "text/plain; charset=utf-8",
        extraHeaders: [(String, String)] = [], close: Bool, record: RequestRecord, requestComplete: Bool = false,
        responseHeaders: ResponseHeadersPolicy? = nil
    ) {
        // After a request that asks to switch protocols, or an HTTP/1.0 one without keep-alive,
        // the connection cannot carry another request.
        let close = close || (connection.isHTTP1 && (head.headers.isUpgradeRequest || !head.isKeepAlive))
        let bytes = bodyBytes ?? ByteBuffer(string: body ?? Self.defaultBody(for: status))
        let response = LocalResponse(head: head, status: status, body: bytes,
                                     contentType: contentType, extraHeaders: extraHeaders, close: close, record: record,
                                     responseHeaders: responseHeaders)
        if close || requestComplete {
            state = close ? .closing : .idle
            write(response, context: context)
        } else {
            state = .awaitingRequestEnd(pending: response)
            resumeClientReads(context)
        }
    }

    private func write(_ response: LocalResponse, context: ChannelHandlerContext) {
        let body = response.body
        var headers = HTTPHeaders()
        headers.reserveCapacity(4 + response.extraHeaders.count)
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: String(body.readableBytes))
        for (name, value) in response.extraHeaders { headers.add(name: name, value: value) }
        response.responseHeaders?.apply(to: &headers)  // Layer: responseHeaders (an exec function's answer)
        if response.close, connection.isHTTP1 { headers.add(name: "connection", value: "close") }
        let head = response.head
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))), promise: nil)
        if head.method != .HEAD, body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        if response.close {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        record(response.record, method: head.method, uri: head.uri, status: Int(response.status.code), bytesIn: 0,
               bytesOut: body.readableBytes, upstream: nil)
    }

    /// A short body that names the status and nothing about Portico's insides.
    private static func defaultBody(for status: HTTPResponseStatus) -> String {
        switch status.code {
        case 400: return "bad request\n"
        case 404: return "not found\n"
        case 413: return "request body too large\n"
        case 431: return "request headers too large\n"
        case 502: return "upstream unavailable\n"
        case 503: return "service unavailable\n"
        case 504: return "upstream timed out\n"
        default: return ""
        }
    }

    // MARK: Logging and metrics

    private func record(_ record: RequestRecord, method: HTTPMethod, uri: String, status: Int,
                        bytesIn: Int, bytesOut: Int, upstream: HostPort?) {
        let elapsed = NIODeadline.now().uptimeNanoseconds &- record.started.uptimeNanoseconds
        loop.metrics.recordRequest(route: record.route, backend: record.backend, status: status,
                                   nanoseconds: Int64(truncatingIfNeeded: elapsed))
        guard let accessLog = loop.accessLog else { return }
        let connection = self.connection
        accessLog.append { buffer in
            buffer.writeStaticString("{\"time_unix_ms\":")
            buffer.writeDecimal(Int(AccessClock.unixMilliseconds()))
            buffer.writeStaticString(",\"listener\":")
            buffer.writeJSONString(connection.listenerName)
            buffer.writeStaticString(",\"client\":")
            buffer.writeJSONString(connection.clientAddress)
            buffer.writeStaticString(",\"protocol\":")
            buffer.writeJSONString(connection.protocolName)
            buffer.writeStaticString(",\"method\":")
            buffer.writeJSONString(method.rawValue)
            buffer.writeStaticString(",\"uri\":")
            buffer.writeJSONString(uri)
            buffer.writeStaticString(",\"status\":")
            buffer.writeDecimal(status)
            buffer.writeStaticString(",\"route\":")
            buffer.writeJSONString(record.route)
            buffer.writeStaticString(",\"backend\":")
            buffer.writeJSONString(record.backend)
            buffer.writeStaticString(",\"upstream\":")
            buffer.writeJSONString(upstream?.description ?? "-")
            buffer.writeStaticString(",\"bytes_in\":")
            buffer.writeDecimal(bytesIn)
            buffer.writeStaticString(",\"bytes_out\":")
            buffer.writeDecimal(bytesOut)
            buffer.writeStaticString(",\"duration_us\":")
            buffer.writeDecimal(Int(elapsed / 1000))
            buffer.writeStaticString(",\"request_id\":")
            buffer.writeJSONString(record.requestID)
            buffer.writeStaticString("}")
        }
    }
}

/// An answer the gateway writes itself (404, a direct response, a redirect, an error status).
struct LocalResponse {
    var head: HTTPRequestHead
    var status: HTTPResponseStatus
    var body: ByteBuffer
    var contentType: String
    var extraHeaders: [(String, String)]
    var close: Bool
    var record: RequestRecord
    /// Only on an exec function's own answer: the route's edits to what its backend answers.
    var responseHeaders: ResponseHeadersPolicy?
}

/// A request to an exec-mode function: its body is gathered whole, then handed to one process.
final class ExecExchange {
    let head: HTTPRequestHead
    let function: ExecFunction
    /// The path (rewritten) and query the process sees.
    let path: String
    let maxRequestBody: Int
    let record: RequestRecord
    let responseHeaders: ResponseHeadersPolicy?
    var body: ByteBuffer

    init(head: HTTPRequestHead, function: ExecFunction, path: String, contentLength: Int?, maxRequestBody: Int,
         record: RequestRecord, allocator: ByteBufferAllocator, responseHeaders: ResponseHeadersPolicy?) {
        self.responseHeaders = responseHeaders
        self.head = head
        self.function = function
        self.path = path
        self.maxRequestBody = maxRequestBody
        self.record = record
        self.body = allocator.buffer(capacity: min(contentLength ?? 0, 1 << 20))
    }
}

extension String {
    /// `/a/b?x=1` as `("/a/b", "x=1")`.
    func splitQuery() -> (String, String) {
        guard let mark = firstIndex(of: "?") else { return (self, "") }
        return (String(self[..<mark]), String(self[index(after: mark)...]))
    }
}

/// What the access log and the metrics need to know about a request, wherever it ended.
struct RequestRecord {
    var route: String
    var backend: String
    var requestID: String
    var started: NIODeadline
}

/// What a request on a route with `retries` carries for them.
final class RetryState {
    let compiled: CompiledRetries
    /// The retry budget's key: the service's name, or `function:NAME`.
    let budgetKey: String
    /// Looked up again for each retry: a reload may have changed the service.
    let serviceName: String?
    var retriesDone = 0
    /// Every body byte received so far, copied into one buffer while it fits: slices of the
    /// received buffers would keep each whole receive buffer alive.
    var replay: ByteBuffer?
    var replayable = true
    var perTryTask: Scheduled<Void>?
    var backoffTask: Scheduled<Void>?
    /// On a function route: the route's timeout over all tries, from the first try's worker.
    var overallTask: Scheduled<Void>?

    init(compiled: CompiledRetries, budgetKey: String, serviceName: String?) {
        self.compiled = compiled
        self.budgetKey = budgetKey
        self.serviceName = serviceName
    }

    func keep(_ buffer: ByteBuffer) {
        guard replayable else { return }
        if (replay?.readableBytes ?? 0) + buffer.readableBytes > compiled.replayBuffer {
            replayable = false
            replay = nil
        } else {
            if replay == nil { replay = ByteBufferAllocator().buffer(capacity: buffer.readableBytes) }
            replay!.writeImmutableBuffer(buffer)
        }
    }

    func cancelTimers() {
        perTryTask?.cancel()
        perTryTask = nil
        backoffTask?.cancel()
        backoffTask = nil
        overallTask?.cancel()
        overallTask = nil
    }
}

/// One proxied request: the state both of its connections share.
final class Exchange: UpstreamResponseDelegate, UpstreamLeaseWaiter, DeadlineWatched {
    let requestHead: HTTPRequestHead
    let upstreamHead: HTTPRequestHead
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
    var bufferedTrailers: HTTPHeaders?
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

    init(handler: ProxyHandler, requestHead: HTTPRequestHead, upstreamHead: HTTPRequestHead, routeName: String,
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

    func upstreamResponseHead(_ head: HTTPResponseHead) { handler.upstreamResponseHead(self, head) }
    func upstreamResponseBody(_ buffer: ByteBuffer) { handler.upstreamResponseBody(self, buffer) }
    func upstreamResponseEnd(_ trailers: HTTPHeaders?) { handler.upstreamResponseEnd(self, trailers) }
    func upstreamReadComplete() { handler.upstreamReadComplete(self) }
    func upstreamWritabilityChanged(isWritable: Bool) { handler.upstreamWritabilityChanged(self, isWritable: isWritable) }
    func upstreamClosed() { handler.upstreamClosed(self) }
    func deadlinePassed() { handler.routeTimedOut(self) }
}

extension ProxyHandler {
    fileprivate var isDownstreamWritable: Bool { context?.channel.isWritable ?? false }
    fileprivate var timeouts: DeadlineSweeper<Exchange> { loop.timeouts }
}

/// Adapts an HTTP/1 head (HTTP/2 streams arrive as HTTP/1 heads too) to route matching.
struct RoutedRequestView: RoutableRequest {
    let head: HTTPRequestHead
    let authority: String
    let normalizedPath: String

    var method: String { head.method.rawValue }

    func firstHeaderValue(lowercasedName: String) -> String? {
        head.headers.first(name: lowercasedName)
    }

    func headerValues(lowercasedName: String) -> [String] {
        head.headers[lowercasedName]
    }
}

extension FastRandom {
    /// A random UUID-shaped id (version 4 layout) for `x-request-id`.
    mutating func makeRequestID() -> String {
        let high = next()
        let low = next()
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var index = 0
            func put(_ value: UInt64, nibbles: Int) {
                for shift in stride(from: (nibbles - 1) * 4, through: 0, by: -4) {
                    buffer[index] = ByteBuffer.hexDigit(UInt8((value >> UInt64(shift)) & 0xF))
                    index += 1
                }
            }
            func dash() {
                buffer[index] = UInt8(ascii: "-")
                index += 1
            }
            put(high >> 32, nibbles: 8); dash()
            put((high >> 16) & 0xFFFF, nibbles: 4); dash()
            put(0x4000 | (high & 0x0FFF), nibbles: 4); dash()
            put(0x8000 | ((low >> 48) & 0x3FFF), nibbles: 4); dash()
            put(low & 0xFFFF_FFFF_FFFF, nibbles: 12)
            return index
        }
    }
}
