import NIOCore
import PorticoHTTP1
import PorticoConfig
import PorticoCore
import PorticoRouting

/// A request head arrives: the edge checks, the route, the policies, and the backend chosen.
extension ProxyHandler {
    // MARK: Request start

    func startRequest(head received: consuming RequestHead) {
        guard let downstream else { return }
        var head = consume received
        let snapshot = loop.snapshot
        let started = NIODeadline.now()
        let requestID = head.fields.firstValue(of: "x-request-id") ?? loop.random.makeRequestID()
        grpcStatus = nil
        coldStart = nil
        trace = nil
        if let tracing = snapshot.tracing {
            trace = tracing.begin(fields: head.fields, random: &loop.random, started: started)
        }
        grpcKind = head.fields.firstIndex(of: "content-type").flatMap { index in
            head.fields[index].withUnsafeValueBytes { GRPCContentType(bytes: $0) }
        }

        func reject(_ reply: LocalReply, close: Bool) {
            writeLocalReply(reply, head: head, close: close,
                               record: .init(route: "-", backend: "-", requestID: requestID, started: started))
        }

        // The edge checks (`RequestPath.edge`): what routing needs to be sure of.
        var edge = EdgeRequest(head: head, connection: connection)
        let checks = snapshot.requestPath.edge
        for index in 0..<checks.count {
            if case .reject(let reply, let close) = checks[index].check(&edge) { return reject(reply, close: close) }
        }
        head = edge.head
        edge.head.fields = HTTPFieldList()  // held once, by `head` (see the upstream head below)
        let contentLength = edge.contentLength
        let authority = edge.authority
        // `PathCheck` is on every edge list: a request it did not see cannot be routed.
        guard var target = edge.target else { return reject(.malformedRequest, close: true) }
        if trace?.recording == true {
            trace!.path = target.path
            trace!.authority = authority
        }

        guard let matched = snapshot.routeTable.match(
            RoutedRequestView(head: head, authority: authority, normalizedPath: target.path)) else {
            return reject(.noRoute, close: false)
        }
        let route = matched.route
        let routeName = route.config.name

        // The route's layers (`RequestPath`), in order: each may edit the request, delay it, or
        // answer it.
        let layers = snapshot.requestPath.layers(listener: connection.listenerName, route: matched.index)
        var request = LayerRequest(
            head: head, query: target.query, path: target.path, authority: authority, requestID: requestID,
            hadRequestID: head.fields.contains("x-request-id"), connection: connection, random: loop.random)
        var faultDelay: TimeAmount?
        var rejection: (status: HTTPStatus, headers: [(String, String)], backend: String, reason: LocalReplyReason)?
        for index in 0..<layers.count {
            switch layers[index].requestHead(&request) {
            case .proceed: continue
            case .delay(let delay): faultDelay = delay
            case .reject(let status, let headers, let backend, let reason): rejection = (status, headers, backend, reason)
            }
            if rejection != nil { break }
        }
        loop.random = request.random
        head = request.head
        target.query = request.query
        if let rejection {
            writeLocalResponse(head: head, status: rejection.status, extraHeaders: rejection.headers + request.responseFields,
                               close: false,
                               record: .init(route: routeName, backend: rejection.backend, requestID: requestID, started: started),
                               localReply: rejection.reason)
            return
        }

        switch route.config.action {
        case .directResponse(let direct):
            writeLocalResponse(
                head: head, status: HTTPStatus(statusCode: direct.status),
                body: direct.body, contentType: direct.contentType, extraHeaders: request.responseFields, close: false,
                record: .init(route: routeName, backend: "direct", requestID: requestID, started: started),
                localReply: .directResponse)
            return
        case .redirect(let redirect):
            let location = snapshot.routeTable.redirectLocation(
                redirect, matched: matched, scheme: connection.scheme, authority: authority,
                normalizedPath: target.path, query: target.query)
            writeLocalResponse(
                head: head, status: HTTPStatus(statusCode: redirect.status),
                extraHeaders: [("location", location)] + request.responseFields, close: false,
                record: .init(route: routeName, backend: "redirect", requestID: requestID, started: started),
                localReply: .redirect)
            return
        case .service, .function, .split:
            break
        }

        // A split draws by weight for each request, unless its sticky value (looked up after the
        // policies, which may have set it) keeps the client on one side.
        let splitDraw = route.picker == nil ? 0 : route.stickyHash(
            of: RoutedRequestView(head: head, authority: authority, normalizedPath: target.path)) ?? loop.random.next()
        guard let backend = route.backend(draw: splitDraw) else {
            return reject(.noBackend, close: false)
        }
        var service: ServiceConfig?
        var function: (any DeployedFunction)?
        switch backend {
        case .service(let name):
            service = snapshot.servicesByName[name]
        case .function(let name):
            function = snapshot.functions[name]
        }
        guard service != nil || function != nil else {
            // A route to a service or function that is not there (a function not deployed yet).
            return reject(.noBackend, close: false)
        }
        let upstreamPath = snapshot.routeTable.upstreamPath(for: matched, normalizedPath: target.path, query: target.query)
        if head.fields.expectsContinue {
            // Portico answers the interim response itself (as Envoy does by default): the
            // client may send its body, which flows on once there is somewhere to send it.
            downstream.writeAndFlush(.head(ResponseHead(status: 100, version: head.version)))
        }
        let destination: any Backend
        switch function?.serving {
        case .responder(let execFunction)?:
            // The process reads the headers from its environment: they pass the layers' edits
            // for a backend as an upstream head would.
            for index in 0..<layers.count { layers[index].upstreamHead(&head, of: request) }
            if trace != nil {
                // The process is this request's one try: its span's id goes in its `traceparent`.
                let span = trace!.tryStarted(random: &loop.random, endpoint: nil)
                trace!.propagate(spanID: span, into: &head.fields)
            }
            state = .execCollecting(ExecExchange(
                head: head, function: execFunction, path: upstreamPath, contentLength: contentLength,
                maxRequestBody: snapshot.maxRequestBody,
                record: .init(route: routeName, backend: backend.description, requestID: requestID, started: started),
                allocator: downstream.allocator, layers: layers))
            return
        case .backend(let functionBackend)?:
            destination = functionBackend
        case nil:
            destination = loop.serviceBackend(for: service!)  // not nil: checked above
        }

        // Only the upgrades the route allows become tunnels (WebSocket by default, as Envoy's
        // `upgrade_configs`). Any other, h2c above all, is served as a plain request without
        // its upgrade headers: a tunnelled h2c would carry HTTP/2 requests straight to the
        // backend, past routing and every policy.
        // An HTTP/2 request carries `Upgrade` only as an extended CONNECT made one (RFC 8441,
        // `HTTP2RequestHead`): HTTP/2 forbids the field itself.
        let asksUpgrade = (connection.isHTTP1 || head.version == .http2) && head.fields.isUpgradeRequest
        let isUpgrade = asksUpgrade && head.fields.upgradeProtocolsAllowed(route.config.upgrades)
        if asksUpgrade && !isUpgrade && head.version == .http2 {
            // An extended CONNECT asks for a tunnel and nothing else: served as a plain GET, its
            // answer would read as a WebSocket opened. 403, as Envoy answers an upgrade its
            // route does not allow.
            // Now: the stream stays open for the tunnel the client expects, so its end never comes.
            writeLocalResponse(head: head, status: .forbidden, body: "this route does not tunnel that protocol\n",
                               extraHeaders: request.responseFields, close: false,
                               record: .init(route: routeName, backend: backend.description, requestID: requestID,
                                             started: started), requestComplete: true, localReply: .upgradeRefused)
            return
        }
        let hadTransferEncoding = head.fields.contains("transfer-encoding")
        // The request reader stops parsing after a request that asks to switch protocols: if the
        // answer is not a 101, or the upgrade is not tunnelled, the connection cannot carry
        // another request.
        let closeClientAfterResponse = connection.isHTTP1 && (asksUpgrade || !head.keepAlive || head.method == "CONNECT")
        // The client's fields become the upstream head's: the exchange keeps only the client's
        // request line (for the log and its answers), and the layers' `upstreamHead` hooks read
        // what the request learned, not its fields. Held once, they are edited in place; only
        // bytes still shared with the received buffer (HTTP/1) are copied, once, with room for
        // the forwarding headers.
        var upstreamHead = RequestHead(method: head.method, target: upstreamPath, version: .http1_1, fields: head.fields)
        head.fields = HTTPFieldList()
        request.head.fields = HTTPFieldList()
        // With tracing, room for the `traceparent` each try gets.
        let traceRoom = trace == nil ? 0 : 16 + TraceParent.encodedLength
        upstreamHead.fields.reserveCapacity(fields: trace == nil ? 6 : 7, bytes: 256 + authority.utf8.count + traceRoom)
        upstreamHead.fields.removeHopByHop(keepUpgrade: isUpgrade)
        upstreamHead.fields.removeAll(named: "expect")
        if asksUpgrade && !isUpgrade { upstreamHead.fields.removeAll(named: "http2-settings") }
        if let contentLength {
            // Written again as one plain number: the client's may have been a list ("5, 5").
            upstreamHead.fields.replaceOrAppend(name: "content-length", value: String(contentLength))
        } else if hadTransferEncoding {
            // The body's framing was hop-by-hop and went with the other hop-by-hop headers; it
            // must be framed again, or its bytes would read upstream as the next request.
            upstreamHead.fields.replaceOrAppend(name: "transfer-encoding", value: "chunked")
        }
        if let host = route.config.rewrite?.host {
            upstreamHead.fields.replaceOrAppend(name: "host", value: host)
        } else if target.authority != nil || !upstreamHead.fields.contains("host") {
            upstreamHead.fields.replaceOrAppend(name: "host", value: authority)
        }
        // The layers' edits come after Portico's own (framing, Host), so a route can override
        // them, as Envoy's route headers can.
        for index in 0..<layers.count { layers[index].upstreamHead(&upstreamHead, of: request) }
        if trace != nil { trace!.prepareFirstTry(random: &loop.random, fields: &upstreamHead.fields) }
        // A gRPC-Web call goes on as a gRPC one (`GRPCWebTranslator`).
        let isGRPCWeb = grpcKind == .grpcWeb || grpcKind == .grpcWebText
        if isGRPCWeb { GRPCWebTranslator.upstreamHead(&upstreamHead, text: grpcKind == .grpcWebText) }

        var machine = ExchangeStateMachine.Configuration(
            maxRequestBody: snapshot.maxRequestBody, closeClientAfterResponse: closeClientAfterResponse,
            upgradeAllowed: isUpgrade, requestBodyFramed: contentLength != nil || hadTransferEncoding)
        var retry: RetryState?
        if let retries = request.retries, !isUpgrade, retries.rules.retries > 0 {
            let budgetKey = service?.name ?? backend.description
            loop.recordRequestForRetryBudget(budgetKey, config: service?.retryBudget ?? RetryBudgetConfig(),
                                             now: Int64(truncatingIfNeeded: started.uptimeNanoseconds))
            retry = RetryState(compiled: retries, budgetKey: budgetKey)
            machine.retries = retries.rules
            machine.replayLimit = retries.replayBuffer
            machine.hasPerTryTimeout = retries.perTryTimeout != nil
        }
        // Framing says whether a body follows the head (RFC 9112 6.3; an HTTP/2 request was
        // given a length or chunked framing when it may have one). Without one the request is
        // whole with its head and goes upstream in one piece: for an HTTP/2 upstream one
        // HEADERS frame that ends the stream, rather than HEADERS then an empty DATA frame,
        // which a server that answers at once meets with a reset.
        let requestHasBody = contentLength.map { $0 > 0 } ?? hadTransferEncoding
        let exchange = Exchange(
            handler: self, requestHead: head, upstreamHead: upstreamHead, routeName: routeName, backend: backend,
            requestID: requestID, started: started, machine: machine, requestHasBody: requestHasBody,
            destination: destination)
        exchange.layers = layers
        exchange.retry = retry
        exchange.responseFields = request.responseFields
        exchange.isExtendedConnect = isUpgrade && head.version == .http2
        if isGRPCWeb { exchange.grpcWeb = GRPCWebTranslator(text: grpcKind == .grpcWebText) }
        state = .proxying(exchange)

        var timeout = request.timeout
        if grpcKind != nil, let value = upstreamHead.fields.firstValue(of: "grpc-timeout"),
           let deadline = GRPCStatus.timeoutNanoseconds(value), deadline < timeout.nanoseconds {
            // The client's deadline, when it is sooner than the route's (as Envoy's
            // `max_grpc_timeout` does): past it the client has given up anyway.
            timeout = .nanoseconds(deadline)
        }
        exchange.routeTimeout = timeout
        if !destination.leaseMayWait {
            // The endpoint is chosen now, from the snapshot this request matched with, even when
            // a fault delays it: a reload during the delay must not hand it a stale service.
            leaseBackend(exchange)
            guard exchange.machine.isLeasing else { return }
        }
        if let mirror = request.mirrorService, !isUpgrade, let shadowService = snapshot.servicesByName[mirror] {
            exchange.shadow = startShadow(of: upstreamHead, to: shadowService, timeout: timeout)
        }
        if let faultDelay {
            trace?.faultDelay = (start: NIODeadline.now(), nanoseconds: faultDelay.nanoseconds)
            // Injected delay: the request waits as it would for a slow backend; the timeout
            // starts after it, as it does after Envoy's fault filter.
            exchange.delayTask = loop.eventLoop.assumeIsolated().scheduleTask(in: faultDelay) {
                exchange.delayTask = nil
                guard exchange.machine.isLeasing, self.downstream != nil else { return }
                self.connectBackend(exchange)
            }
        } else {
            connectBackend(exchange)
        }
    }

    /// Sends a copy of the request to the mirror service, `Host` suffixed `-shadow` so the
    /// shadow (and its logs) can tell copies from real traffic, as Envoy marks them.
    func startShadow(of head: RequestHead, to service: ServiceConfig, timeout: TimeAmount) -> ShadowRequest {
        var shadowHead = head
        if let host = shadowHead.fields.firstValue(of: "host") {
            shadowHead.fields.replaceOrAppend(name: "host", value: Self.shadowHost(host))
        }
        let (pool, endpointIndex, _) = loop.pool(for: service)
        let loop = self.loop
        // The copy is a client span of its own, a sibling of the tries.
        var mirrorSpan: (trace: RequestTrace, spanID: UInt64, started: NIODeadline)?
        if let trace {
            let spanID = loop.random.nonZero()
            trace.propagate(spanID: spanID, into: &shadowHead.fields)
            if trace.sampled { mirrorSpan = (trace: trace, spanID: spanID, started: NIODeadline.now()) }
        }
        let finishedSpan = mirrorSpan
        let method = head.method
        return ShadowRequest(head: shadowHead, pool: pool, eventLoop: loop.eventLoop, timeout: timeout) { status in
            loop.requestFinished(service: service.name, endpointIndex: endpointIndex)
            if let finishedSpan { TracingLayer.writeMirrorSpan(finishedSpan, method: method, endpoint: pool.endpoint,
                                                             service: service.name, status: status, loop: loop) }
        }
    }

    /// `api.example.com:8080` → `api.example.com-shadow:8080`.
    static func shadowHost(_ host: String) -> String {
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]"), host[host.index(after: colon)...].allSatisfy(\.isNumber) {
            return host[..<colon] + "-shadow" + host[colon...]
        }
        return host + "-shadow"
    }
}
