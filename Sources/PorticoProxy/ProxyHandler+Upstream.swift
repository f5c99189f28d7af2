import NIOCore
import PorticoHTTP1
import PorticoConfig
import PorticoCore
import PorticoRouting

/// The backend side of an exchange: local responders (exec functions), the upstream lease, and the response relayed.
extension ProxyHandler {
    // MARK: Local responders (exec functions)

    func runExec(_ exec: ExecExchange) {
        let head = exec.head
        let (path, query) = exec.path.splitQuery()
        let request = ExecRequest(method: head.method, path: path, query: query,
                                  headers: head.fields.pairs.map { ($0.name, $0.value) }, body: exec.body,
                                  remoteAddress: connection.clientAddress,
                                  protocolName: head.version == .http2 ? "HTTP/2.0" : head.version == .http1_0 ? "HTTP/1.0" : "HTTP/1.1",
                                  requestID: exec.record.requestID)
        exec.function.respond(to: request, on: loop.eventLoop).assumeIsolated().whenComplete { [self] result in
            guard case .execRunning(let current) = state, current === exec else { return }
            switch result {
            case .success(.ok(let output)):
                writeLocalResponse(head: head, status: .ok, bodyBytes: output,
                                   contentType: "application/octet-stream", close: false, record: exec.record,
                                   requestComplete: true, layers: exec.layers, localReply: nil)
            case .success(.response(let status, let headers, let body)):
                var contentType = "application/octet-stream"
                var others: [(String, String)] = []
                others.reserveCapacity(headers.count)
                for (name, value) in headers {
                    if name == "content-type" { contentType = value } else { others.append((name, value)) }
                }
                writeLocalResponse(head: head, status: HTTPStatus(statusCode: status), bodyBytes: body,
                                   contentType: contentType, extraHeaders: others, close: false, record: exec.record,
                                   requestComplete: true, layers: exec.layers, localReply: nil)
            case .success(.unavailable(let reason)):
                writeLocalReply(LocalReply(reason), head: head, close: false, record: exec.record, requestComplete: true)
            case .success(.queueFull):
                writeLocalReply(.overloaded, head: head, close: false, record: exec.record, requestComplete: true)
            case .success(.timedOut):
                writeLocalReply(.upstreamTimeout, head: head, close: false, record: exec.record, requestComplete: true)
            case .success(.failed), .failure:
                writeLocalReply(.functionFailed, head: head, close: false, record: exec.record, requestComplete: true)
            }
        }
    }

    // MARK: Upstream

    func leaseCompleted(_ exchange: Exchange, result: Result<any LeasedUpstream, UpstreamPoolError>) {
        exchange.waiterID = nil
        leftBreakerQueue(exchange)
        guard downstream != nil else {
            if case .success(let connection) = result { connection.release(reusable: true) }
            return
        }
        switch result {
        case .failure(let error):
            guard exchange.machine.isLeasing else { return }
            trace?.tryFailed(error == .connectFailed ? "connect_failed" : "pool_overloaded")
            if error == .connectFailed, let lease = exchange.lease, exchange.endpointRefusals < 2,
               exchange.destination.replaceRefusedEndpoint(lease) {
                // The endpoint (a function worker) died or stopped listening since it was handed
                // out, and the backend replaced it: another one takes the request. Nothing was
                // sent, so the body is still all here; this is not one of the route's retries.
                exchange.endpointRefusals += 1
                exchange.lease = nil
                exchange.pool = nil
                exchange.cancelTimeout()
                if let next = exchange.destination.backendForNextTry(after: lease) {
                    exchange.destination = next
                    leaseBackend(exchange)
                    return
                }
            }
            if error == .connectFailed {
                recordOutcome(exchange, status: nil)
                perform(budgeted(exchange.machine.leaseFailed(.connectFailed), exchange), exchange)
            } else {
                perform(exchange.machine.leaseFailed(.overloaded), exchange)
            }
        case .success(let upstream):
            // A request that ended while the connection was on its way gives it back.
            guard case .sendRequest(let end, let startPerTryTimer) = exchange.machine.leased() else {
                upstream.release(reusable: true)
                return
            }
            exchange.upstream = upstream
            upstream.requestsServed += 1
            upstream.attach(exchange)
            // A retry's try names its own span (the first try's is in the head already).
            if trace != nil { trace!.propagateCurrentTry(into: &exchange.upstreamHead.fields) }
            upstream.send(.head(exchange.upstreamHead))
            for buffer in exchange.bufferedBody { upstream.send(.body(buffer)) }
            exchange.bufferedBody.removeAll()
            if end { upstream.send(.end(exchange.trailers)) }
            upstream.flush()
            if startPerTryTimer { self.startPerTryTimer(exchange) }
            if upstream.isWritable { resumeClientReads() }
        }
    }

    func upstreamResponseHead(_ exchange: Exchange, _ head: ResponseHead) {
        guard let downstream = downstream else { return }
        if exchange.isExtendedConnect && head.status >= 200 && head.status < 300 {
            // An HTTP/2 client reads a 2xx to its extended CONNECT as the tunnel open. An
            // upstream that answered the upgrade with a page (an HTTP/2 service, which never
            // sees the `Upgrade`, or one that ignores it) did not open one: 502.
            perform(budgeted(exchange.machine.upstreamClosed(), exchange), exchange)
            return
        }
        recordOutcome(exchange, status: head.status)
        trace?.currentTry?.status = head.status
        if let leased = coldStartLeased, coldStart?.firstResponseNanoseconds == nil {
            coldStart?.firstResponseNanoseconds = NIODeadline.now().uptimeNanoseconds &- leased.uptimeNanoseconds
            coldStartLeased = nil
        }
        exchange.retry?.cancelPerTryTimer()
        if grpcKind != nil { grpcStatus = head.fields.firstValue(of: "grpc-status").flatMap { GRPCStatus.parse($0) } }
        let action = budgeted(exchange.machine.responseHeadReceived(status: head.status, grpcStatus: grpcStatus), exchange)
        switch action {
        case .writeResponseHead(let closeClientAfter):
            exchange.cancelTimeout()
            exchange.retry?.cancelTimers()
            var response = head
            response.version = exchange.requestHead.version
            response.fields.removeHopByHop()
            for index in 0..<exchange.layers.count { exchange.layers[index].responseHead(&response) }
            for (name, value) in exchange.responseFields { response.fields.append(name: name, value: value) }
            exchange.grpcWeb?.responseHead(&response)
            if closeClientAfter {
                // HTTP/1.0 without keep-alive, or an upgrade request answered without a 101: the
                // connection ends with this response (for 1.0, that is also how the body ends).
                response.fields.append(name: "connection", value: "close")
            }
            downstream.write(.head(response))
        case .becomeTunnel(let finish):
            upgrade(exchange: exchange, head: head, finish: finish)
        default:
            perform(action, exchange)
        }
    }

    func upstreamResponseBody(_ exchange: Exchange, _ buffer: ByteBuffer) {
        guard let downstream = downstream, exchange.machine.isResponding else { return }
        let buffer = exchange.grpcWeb == nil ? buffer : exchange.grpcWeb!.responseBody(buffer, allocator: downstream.allocator)
        exchange.bytesOut += buffer.readableBytes
        downstream.write(.body(buffer))
    }

    func upstreamResponseEnd(_ exchange: Exchange, _ trailers: HTTPFieldList?) {
        guard let downstream = downstream else { return }
        if grpcKind != nil, let status = trailers?.firstValue(of: "grpc-status").flatMap({ GRPCStatus.parse($0) }) {
            grpcStatus = status
        }
        var trailers = trailers
        if exchange.grpcWeb != nil, exchange.machine.isResponding {
            // The trailers travel as the body's last frame.
            if let last = exchange.grpcWeb!.responseEnd(trailers: trailers, allocator: downstream.allocator) {
                exchange.bytesOut += last.readableBytes
                downstream.write(.body(last))
            }
            trailers = nil
        }
        let action = exchange.machine.responseEnded()
        // Settle this exchange before writing the end: the next pipelined request may follow
        // it soon after.
        let closeClient: Bool
        switch action {
        case .writeResponseEnd(let close, let finish):
            if let upstream = exchange.upstream {
                exchange.upstream = nil
                upstream.release(reusable: exchange.destination.mayReuse(connectionThatServed: upstream.requestsServed))
            }
            end(exchange, finish)
            becomeIdle(after: exchange, close: close)
            closeClient = close
        case .writeResponseEndEarly(let close, let finish):
            // The upstream answered before reading the whole body: that connection is out of
            // step, and the client's remaining body is read and dropped.
            settle(exchange, abandonUpstream: true)
            end(exchange, finish)
            if close { state = .closing } else { resumeClientReads() }
            closeClient = close
        default:
            return perform(action, exchange)
        }
        if closeClient {
            downstream.writeAndFlushThenClose(.end(trailers))
        } else {
            downstream.writeAndFlush(.end(trailers))
        }
    }

    /// Issues a read `holdsReads` held back, once the body has somewhere to go again (a
    /// connection, room in it) or is to be dropped: otherwise the rest of the request (and an
    /// answer waiting for its end) would never arrive.
    func resumeClientReads() {
        if pendingRead {
            pendingRead = false
            downstream?.read()
        }
    }

    func upstreamReadComplete(_ exchange: Exchange) {
        downstream?.flush()
    }

    func upstreamWritabilityChanged(_ exchange: Exchange, isWritable: Bool) {
        if isWritable { resumeClientReads() }
    }

    /// The upstream refused the stream before starting on it (HTTP/2): a `refused-stream` retry
    /// may send it again. Not the endpoint's failure for outlier detection: it is shedding
    /// load or going away, and said so.
    func upstreamRefused(_ exchange: Exchange) {
        guard downstream != nil else { return }
        trace?.tryFailed("refused_stream")
        exchange.upstream = nil
        perform(budgeted(exchange.machine.upstreamRefused(), exchange), exchange)
    }

    func upstreamClosed(_ exchange: Exchange) {
        guard downstream != nil else { return }
        trace?.tryFailed("reset")
        exchange.upstream = nil
        if exchange.machine.isAwaitingResponse { recordOutcome(exchange, status: nil) }
        perform(budgeted(exchange.machine.upstreamClosed(), exchange), exchange)
    }
}
