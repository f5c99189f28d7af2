import NIOCore
import PorticoHTTP1
import PorticoConfig
import PorticoCore
import PorticoRouting

/// Upgrades, answers the gateway writes itself, and the access log.
extension ProxyHandler {
    // MARK: Upgrades

    /// Relays the 101 and turns both connections into a plain byte pipe.
    ///
    /// The pipelines change only when the 101 has left for the client and the upstream decoder
    /// has emitted the whole 101 message, and then on a fresh event-loop tick: either event can
    /// fire from inside a decoder's call stack, where swapping handlers would hand HTTP parts
    /// to the byte glue.
    func upgrade(exchange: Exchange, head: ResponseHead, finish: ExchangeOutcome) {
        if let stream = downstream as? HTTP2ServerStream, let upstream = exchange.upstream,
           let upstreamChannel = upstream.channel {
            return upgradeStream(stream, exchange: exchange, upstream: upstream, channel: upstreamChannel, head: head,
                                 finish: finish)
        }
        // An HTTP/1.1 connection upgrades: its handler is in the connection's pipeline.
        guard let context, let upstream = exchange.upstream, let upstreamChannel = upstream.channel else {
            // Nothing to glue: the exchange breaks off as if the upstream had gone.
            settle(exchange, abandonUpstream: true)
            end(exchange, ExchangeOutcome(kind: .upstreamResetMidResponse, tries: finish.tries,
                                          requestBytes: finish.requestBytes, upstreamStatus: 502))
            state = .closing
            downstream?.close()
            return
        }
        exchange.upstream = nil
        keepBackendSlot(exchange, until: upstreamChannel)
        settle(exchange, abandonUpstream: false)
        end(exchange, finish)
        state = .upgraded

        var response = head
        response.version = exchange.requestHead.version
        response.fields.removeHopByHop(keepUpgrade: true)
        for index in 0..<exchange.layers.count { exchange.layers[index].responseHead(&response) }
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
        upstream.leaveForUpgrade(messageEnded: stepDone)
        context.writeAndFlush(wrapOutboundOut(.head(response))).assumeIsolated().whenComplete { result in
            guard case .success = result else {
                downstreamChannel.close(promise: nil)
                upstreamChannel.close(promise: nil)
                return
            }
            stepDone()
        }
    }

    /// A WebSocket over HTTP/2 (RFC 8441) whose HTTP/1.1 upstream answered 101: the client
    /// hears 200 on its stream, with the WebSocket fields but not the 101's `Upgrade`,
    /// `Connection` and `Sec-WebSocket-Accept` (the stream is the connection), and the stream
    /// and the upstream's socket become a byte pipe (`HTTP2StreamTunnel`).
    private func upgradeStream(_ stream: HTTP2ServerStream, exchange: Exchange, upstream: any LeasedUpstream,
                               channel upstreamChannel: Channel, head: ResponseHead, finish: ExchangeOutcome) {
        exchange.upstream = nil
        keepBackendSlot(exchange, until: upstreamChannel)
        settle(exchange, abandonUpstream: false)
        end(exchange, finish)
        state = .upgraded
        var response = head
        response.status = 200
        response.reason = nil
        response.version = .http2
        response.fields.removeHopByHop()
        response.fields.removeAll(named: "sec-websocket-accept")
        for index in 0..<exchange.layers.count { exchange.layers[index].responseHead(&response) }
        let tunnel = HTTP2StreamTunnel(stream: stream)
        self.tunnel = tunnel
        stream.write(.head(response), promise: nil)
        stream.flush()
        let idleTimeout = loop.snapshot.config.limits.idleTimeout.timeAmount
        let eventLoop = loop.eventLoop
        upstream.leaveForUpgrade { [weak self] in
            // On a fresh tick: this runs inside the upstream decoder's call stack.
            eventLoop.assumeIsolated().execute {
                do {
                    try tunnel.install(on: upstreamChannel, idleTimeout: idleTimeout)
                } catch {
                    upstreamChannel.close(promise: nil)
                    self?.downstream?.close()
                }
            }
        }
    }

    /// A tunnel (a WebSocket) stays a request in flight on its backend for as long as it is
    /// open: a function worker with one counts it against its concurrency and is never idle, so
    /// no scale-down stops it under an open stream (Knative's activator loses long streams this
    /// way), and a redeploy's drain waits for it; an endpoint's least-request count sees it too.
    /// The tunnel's upstream socket closes when either side ends it; that gives the slot back.
    private func keepBackendSlot(_ exchange: Exchange, until upstreamChannel: Channel) {
        guard !exchange.slotReleased, let lease = exchange.lease else { return }
        exchange.slotReleased = true
        let destination = exchange.destination
        upstreamChannel.closeFuture.assumeIsolated().whenComplete { _ in destination.release(lease) }
    }

    // MARK: Local responses

    /// A failure's answer, as `LocalReply` maps it.
    func writeLocalReply(_ reply: LocalReply, head: RequestHead, close: Bool, record: RequestRecord,
                         requestComplete: Bool = false) {
        writeLocalResponse(head: head, status: reply.status, body: reply.body, extraHeaders: reply.headers, close: close,
                           record: record, requestComplete: requestComplete, localReply: reply.reason)
    }

    /// Answers from the gateway itself. The answer goes out now when the request is complete
    /// or the connection closes after it; otherwise when the request ends.
    func writeLocalResponse(
        head: RequestHead, status: HTTPStatus, body: String? = nil,
        bodyBytes: ByteBuffer? = nil, contentType: String = "text/plain; charset=utf-8",
        extraHeaders: [(String, String)] = [], close: Bool, record: RequestRecord, requestComplete: Bool = false,
        layers: [any RequestLayer] = [], localReply: LocalReplyReason?
    ) {
        // After a request that asks to switch protocols, or an HTTP/1.0 one without keep-alive,
        // the connection cannot carry another request.
        // CONNECT too: the request reader takes what follows it for the tunnel, and parses no
        // request after it.
        let close = close || (connection.isHTTP1 && (head.fields.isUpgradeRequest || head.method == "CONNECT" || !head.keepAlive))
        let bytes = bodyBytes ?? ByteBuffer(string: body ?? LocalReply.body(for: status))
        let response = LocalResponse(head: head, status: status, body: bytes,
                                     contentType: contentType, extraHeaders: extraHeaders, close: close, record: record,
                                     localReply: localReply, layers: layers)
        if close || requestComplete {
            state = close ? .closing : .idle
            write(response)
        } else {
            state = .awaitingRequestEnd(pending: response)
            resumeClientReads()
        }
    }

    func write(_ response: LocalResponse) {
        let bytesOut = send(response)
        record(response.record, method: response.head.method, uri: response.head.target, status: Int(response.status.code),
               bytesIn: 0, bytesOut: bytesOut, upstream: nil, requestFields: response.head.fields,
               localReply: response.localReply)
    }

    /// Writes `response`; the body's size, for the log.
    @discardableResult
    func send(_ response: LocalResponse) -> Int {
        guard let downstream else { return 0 }
        if let grpcKind, response.status.code != 200 { return sendGRPC(response, kind: grpcKind, to: downstream) }
        let body = response.body
        var fields = HTTPFieldList()
        fields.reserveCapacity(fields: 4 + response.extraHeaders.count, bytes: 128)
        fields.append(name: "content-type", value: response.contentType)
        fields.append(name: "content-length", value: String(body.readableBytes))
        for (name, value) in response.extraHeaders { fields.append(name: name, value: value) }
        let head = response.head
        var responseHead = ResponseHead(status: Int(response.status.code), version: head.version, fields: fields)
        for index in 0..<response.layers.count { response.layers[index].responseHead(&responseHead) }
        if response.close, connection.isHTTP1 { responseHead.fields.append(name: "connection", value: "close") }
        downstream.write(.head(responseHead))
        if head.method != "HEAD", body.readableBytes > 0 {
            downstream.write(.body(body))
        }
        if response.close {
            downstream.writeAndFlushThenClose(.end(nil))
        } else {
            downstream.writeAndFlush(.end(nil))
        }
        return body.readableBytes
    }

    /// A gateway answer to a gRPC call, in gRPC's terms: HTTP 200 and a trailers-only
    /// response whose `grpc-status` and `grpc-message` say what happened (a 404 is UNIMPLEMENTED,
    /// a 503 UNAVAILABLE, and so on: `GRPCStatus.code(forHTTPStatus:)`), as Envoy answers gRPC
    /// requests. The HTTP status is logged as it was decided.
    private func sendGRPC(_ response: LocalResponse, kind: GRPCContentType, to downstream: ProxyDownstream) -> Int {
        let code = GRPCStatus.code(forHTTPStatus: Int(response.status.code))
        grpcStatus = code
        var message = String(buffer: response.body)
        while message.last == "\n" { message.removeLast() }
        var fields = HTTPFieldList()
        fields.reserveCapacity(fields: 5 + response.extraHeaders.count, bytes: 128 + message.utf8.count)
        switch kind {
        case .grpc: fields.append(name: "content-type", value: "application/grpc")
        case .grpcWeb: fields.append(name: "content-type", value: "application/grpc-web+proto")
        case .grpcWebText: fields.append(name: "content-type", value: "application/grpc-web-text+proto")
        }
        fields.append(name: "grpc-status", value: String(code))
        fields.append(name: "grpc-message", value: GRPCStatus.encodeMessage(message))
        if connection.isHTTP1 { fields.append(name: "content-length", value: "0") }
        for (name, value) in response.extraHeaders where name != "content-type" { fields.append(name: name, value: value) }
        var head = ResponseHead(status: 200, version: response.head.version, fields: fields)
        for index in 0..<response.layers.count { response.layers[index].responseHead(&head) }
        if response.close, connection.isHTTP1 { head.fields.append(name: "connection", value: "close") }
        downstream.write(.head(head))
        if response.close {
            downstream.writeAndFlushThenClose(.end(nil))
        } else {
            downstream.writeAndFlush(.end(nil))
        }
        return 0
    }

    /// The connection's parser refused what came before it was a request, and the connection
    /// answered it (`HTTP1ServerConnection`): the ending layers hear of it as the gateway's own
    /// answer before routing (route and backend `-`; no method or target could be read).
    func parseErrorAnswered(status: Int) {
        let reason: LocalReplyReason
        switch status {
        case 431: reason = .headersTooLarge
        case 501: reason = .unsupportedTransferCoding
        case 408: reason = .requestHeadersTimeout
        default: reason = .badRequest
        }
        grpcStatus = nil
        coldStart = nil
        let record = RequestRecord(route: "-", backend: "-", requestID: loop.random.makeRequestID(), started: .now())
        self.record(record, method: "-", uri: "-", status: status, bytesIn: 0, bytesOut: 0, upstream: nil,
                    requestFields: HTTPFieldList(), localReply: reason)
    }

    // MARK: The end

    /// The request is over: the layers that watch endings (access log, metrics) hear of it.
    func record(_ record: RequestRecord, method: String, uri: String, status: Int,
                bytesIn: Int, bytesOut: Int, upstream: HostPort?, retries: Int = 0, requestFields: HTTPFieldList,
                localReply: LocalReplyReason?) {
        let elapsed = NIODeadline.now().uptimeNanoseconds &- record.started.uptimeNanoseconds
        let ending = ExchangeEnding(
            record: record, method: method, target: uri, status: status, bytesIn: bytesIn, bytesOut: bytesOut,
            upstream: upstream, elapsedNanoseconds: elapsed, connection: connection, loop: loop, grpcStatus: grpcStatus,
            coldStart: coldStart, retries: retries, requestFields: requestFields, localReply: localReply, trace: trace)
        let layers = loop.snapshot.requestPath.ending
        for index in 0..<layers.count { layers[index].exchangeEnded(ending) }
    }
}
