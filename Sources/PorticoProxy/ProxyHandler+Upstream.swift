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
                                  remoteAddress: connection.clientAddress)
        exec.function.respond(to: request, on: loop.eventLoop).assumeIsolated().whenComplete { [self] result in
            guard case .execRunning(let current) = state, current === exec else { return }
            switch result {
            case .success(.ok(let output)):
                writeLocalResponse(head: head, status: .ok, bodyBytes: output,
                                   contentType: "application/octet-stream", close: false, record: exec.record,
                                   requestComplete: true, layers: exec.layers)
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
        guard case .proxying(let current) = state, current === exchange, let downstream = downstream else {
            // The request ended (timeout, client gone) while the connection was on its way.
            if case .success(let connection) = result { connection.release(reusable: true) }
            return
        }
        switch result {
        case .failure(let error):
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
            if error == .connectFailed { recordOutcome(exchange, status: nil) }
            if error == .connectFailed, retryScheduled(exchange, after: .connectFailure) { return }
            exchange.cancelTimeout()
            exchange.retry?.cancelTimers()
            releaseBackendSlot(exchange)
            writeLocalReply(error == .connectFailed ? .upstreamConnectFailed : .breakerOpen, head: exchange.requestHead,
                            close: false, record: exchange.record(), requestComplete: exchange.requestComplete)
        case .success(let upstream):
            exchange.upstream = upstream
            upstream.requestsServed += 1
            upstream.attach(exchange)
            upstream.send(.head(exchange.upstreamHead))
            for buffer in exchange.bufferedBody { upstream.send(.body(buffer)) }
            exchange.bufferedBody.removeAll()
            if exchange.bufferedEnd { upstream.send(.end(exchange.bufferedTrailers)) }
            upstream.flush()
            if exchange.requestComplete { startPerTryTimer(exchange) }
            if pendingRead, upstream.isWritable {
                pendingRead = false
                downstream.read()
            }
        }
    }

    func upstreamResponseHead(_ exchange: Exchange, _ head: ResponseHead) {
        guard let downstream = downstream else { return }
        recordOutcome(exchange, status: head.status)
        if let retry = exchange.retry {
            retry.perTryTask?.cancel()
            retry.perTryTask = nil
            if retryScheduled(exchange, after: .status(head.status)) { return }
        }
        exchange.cancelTimeout()
        exchange.retry?.overallTask?.cancel()
        if head.status == 101 {
            guard exchange.isUpgrade else {
                // A 101 nobody asked for cannot be relayed safely.
                abandonUpstream(exchange)
                releaseBackendSlot(exchange)
                writeLocalReply(.upstreamReset, head: exchange.requestHead, close: false,
                                   record: exchange.record(), requestComplete: exchange.requestComplete)
                return
            }
            upgrade(exchange: exchange, head: head)
            return
        }
        var response = head
        response.version = exchange.requestHead.version
        response.fields.removeHopByHop()
        for index in 0..<exchange.layers.count { exchange.layers[index].responseHead(&response) }
        if exchange.closeAfterResponse && connection.isHTTP1 {
            // HTTP/1.0 without keep-alive, or an upgrade request answered without a 101: the
            // connection ends with this response (for 1.0, that is also how the body ends).
            response.fields.append(name: "connection", value: "close")
        }
        exchange.status = head.status
        exchange.responseStarted = true
        downstream.write(.head(response))
    }

    func upstreamResponseBody(_ exchange: Exchange, _ buffer: ByteBuffer) {
        guard let downstream = downstream, exchange.responseStarted else { return }
        exchange.bytesOut += buffer.readableBytes
        downstream.write(.body(buffer))
    }

    func upstreamResponseEnd(_ exchange: Exchange, _ trailers: HTTPFieldList?) {
        guard let downstream = downstream, exchange.responseStarted else { return }
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
            resumeClientReads()
        }
        let closeAfter = exchange.closeAfterResponse && connection.isHTTP1
        if closeAfter { state = .closing }
        if closeAfter {
            downstream.writeAndFlushThenClose(.end(trailers))
        } else {
            downstream.writeAndFlush(.end(trailers))
        }
    }

    /// A read held back for an upstream that is no longer there must be issued now, or the
    /// rest of the request (and the answer waiting for its end) would never arrive.
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
        if isWritable, pendingRead, let downstream = downstream {
            pendingRead = false
            downstream.read()
        }
    }

    func upstreamClosed(_ exchange: Exchange) {
        guard case .proxying(let current) = state, current === exchange, let downstream = downstream else { return }
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
            downstream.close()
        } else {
            releaseBackendSlot(exchange)
            writeLocalReply(.upstreamReset, head: exchange.requestHead, close: false,
                               record: exchange.record(), requestComplete: exchange.requestComplete)
        }
    }
}
