import NIOCore
import PorticoHTTP1
import PorticoConfig
import PorticoCore

/// What the exchange machine's actions do. Actions that need what came with their event (a
/// body part, the response head, the leased connection, the trailers of the response) are done
/// where the event arrives; every other one is done here.
extension ProxyHandler {
    func perform(_ action: ExchangeStateMachine.Action, _ exchange: Exchange) {
        switch action {
        case .none, .dropRequestBody:
            return
        case .leaseBackend:
            startRetry(exchange)
        case .sendRequestEnd(let startPerTryTimer):
            guard let upstream = exchange.upstream else { return }
            upstream.send(.end(exchange.trailers))
            upstream.flush()
            upstreamNeedsFlush = false
            if startPerTryTimer { self.startPerTryTimer(exchange) }
        case .scheduleRetry(let retry, let abandonUpstream):
            scheduleRetry(exchange, retry: retry, abandonUpstream: abandonUpstream)
        case .writeLocalAnswerNow(let reply, let abandonUpstream, let closeClient, let finish):
            settle(exchange, abandonUpstream: abandonUpstream)
            answer(exchange, reply, closeClient: closeClient, finish: finish)
        case .deferLocalAnswer(let abandonUpstream):
            // The answer is written when the request ends: answering sooner would let
            // `HTTP1ServerConnection` hand over a pipelined request while this one still reads.
            settle(exchange, abandonUpstream: abandonUpstream)
            resumeClientReads()
        case .writeLocalAnswer(let reply, let closeClient, let finish):
            answer(exchange, reply, closeClient: closeClient, finish: finish)
        case .requestDrained:
            becomeIdle(after: exchange)
        case .abort(let ending, let finish):
            settle(exchange, abandonUpstream: true)
            if exchange.grpcWeb != nil, finish.kind == .upstreamResetMidResponse, let downstream {
                // A gRPC-Web answer can still say what happened: its last frame carries the status.
                grpcStatus = GRPCStatus.unavailable
                end(exchange, finish)
                if let last = exchange.grpcWeb!.responseEnd(trailers: Self.upstreamResetTrailers, allocator: downstream.allocator) {
                    downstream.write(.body(last))
                }
                // The rest of the request may still be on its way: the connection ends here.
                state = .closing
                downstream.writeAndFlushThenClose(.end(nil))
                return
            }
            if grpcKind == .grpc, !connection.isHTTP1, finish.kind == .upstreamResetMidResponse, let downstream {
                // A gRPC client reads a reset stream as CANCELLED or INTERNAL; the upstream went
                // away, which gRPC calls UNAVAILABLE (what a retry policy and the client's own
                // error handling look for). The answer ends with that status in its trailers.
                grpcStatus = GRPCStatus.unavailable
                end(exchange, finish)
                state = .idle
                downstream.writeAndFlush(.end(Self.upstreamResetTrailers))
                return
            }
            end(exchange, finish)
            state = .closing
            if ending == .abandonBoth { downstream?.close() }
        case .abandonUpstreamAndFinish(let finish):
            settle(exchange, abandonUpstream: true)
            end(exchange, finish)
        case .cancelWaitAndFinish(let finish):
            settle(exchange, abandonUpstream: false)
            end(exchange, finish)
        case .finishOnly(let finish):
            end(exchange, finish)
        case .sendRequest, .forwardRequestBody, .bufferRequestBody, .writeResponseHead, .writeResponseEnd,
             .writeResponseEndEarly, .becomeTunnel, .releaseUpstream:
            assertionFailure("\(action) is done where its event arrives")
        }
    }

    /// The end of a gRPC answer whose upstream went away mid-answer: UNAVAILABLE, which gRPC
    /// clients and retry policies look for.
    static let upstreamResetTrailers = HTTPFieldList([
        ("grpc-status", String(GRPCStatus.unavailable)), ("grpc-message", "upstream reset before the end of the answer"),
    ])

    /// Stops everything the exchange waits on (timers, a lease, a connection on its way) and
    /// gives back what it holds of its backend; the connection is closed when `abandonUpstream`.
    func settle(_ exchange: Exchange, abandonUpstream: Bool) {
        releaseWaitingBody(exchange)
        exchange.cancelTimeout()
        exchange.retry?.cancelTimers()
        if let waiterID = exchange.waiterID {
            exchange.pool?.cancelLease(waiterID)
            exchange.waiterID = nil
            leftBreakerQueue(exchange)
        }
        if let leaseID = exchange.leaseID {
            exchange.leaseID = nil
            exchange.destination.cancelLease(id: leaseID)
        }
        assert(abandonUpstream || exchange.upstream == nil, "a held connection is given back by the action")
        if abandonUpstream, let upstream = exchange.upstream {
            exchange.upstream = nil
            upstream.release(reusable: false)
        }
        releaseBackendSlot(exchange)
    }

    /// Writes the gateway's answer for an exchange that did not get (or could not relay) one.
    func answer(_ exchange: Exchange, _ reply: LocalReply, closeClient: Bool, finish: ExchangeOutcome) {
        let response = LocalResponse(
            head: exchange.requestHead, status: reply.status, body: ByteBuffer(string: reply.body),
            contentType: "text/plain; charset=utf-8", extraHeaders: reply.headers + exchange.responseFields, close: closeClient,
            record: exchange.record(), localReply: reply.reason)
        becomeIdle(after: exchange, close: closeClient)
        let bytesOut = send(response)
        end(exchange, finish, bytesOut: bytesOut, upstream: nil)
    }

    /// The exchange is over: what it held of its backend goes back, and the layers that watch
    /// endings (the access log, the metrics) hear of it.
    func end(_ exchange: Exchange, _ outcome: ExchangeOutcome) {
        end(exchange, outcome, bytesOut: exchange.bytesOut, upstream: exchange.pool?.endpoint)
    }

    private func end(_ exchange: Exchange, _ outcome: ExchangeOutcome, bytesOut: Int, upstream: HostPort?) {
        releaseWaitingBody(exchange)
        releaseBackendSlot(exchange)
        var localReply: LocalReplyReason?
        if case .local(let reply) = outcome.kind { localReply = reply.reason }
        record(exchange.record(), method: exchange.requestHead.method, uri: exchange.requestHead.target,
               status: outcome.loggedStatus, bytesIn: outcome.requestBytes, bytesOut: bytesOut, upstream: upstream,
               retries: max(0, outcome.tries - 1), requestFields: exchange.upstreamHead.fields, localReply: localReply)
    }

    /// The handler can take the connection's next request (or closes with this one).
    func becomeIdle(after exchange: Exchange, close: Bool = false) {
        guard case .proxying(let current) = state, current === exchange else { return }
        state = close ? .closing : .idle
    }

    /// Gives back what the request held of its backend (the load balancer's in-flight count,
    /// a function worker's concurrency slot). Once.
    func releaseBackendSlot(_ exchange: Exchange) {
        guard !exchange.slotReleased else { return }
        exchange.slotReleased = true
        if let lease = exchange.lease { exchange.destination.release(lease) }
    }
}
