import NIOCore
import PorticoHTTP1
import PorticoConfig
import PorticoCore
import PorticoRouting

/// Serves the requests of one HTTP/1.1 connection or one HTTP/2 stream: checks the request at
/// the edge, matches a route, and either answers locally or streams the exchange through an
/// upstream connection leased from this event loop's pool.
///
/// HTTP/1 pipelining reaches this handler one request at a time (`HTTP1ServerConnection`
/// sits before it), so there is at most one `Exchange` in flight per handler.
///
/// The exchange's decisions are its `ExchangeStateMachine`'s: this handler feeds it the events
/// (the client's, the backend's, the upstream's, the timers') and does what it answers.
///
/// This file holds its state and the client's side; the rest is in extensions, one step each:
/// `+RequestStart` (edge checks, route, policies, the backend chosen), `+Backend` (an endpoint
/// leased for each try, and a connection to it), `+Upstream` (local responders, the connection
/// and the response), `+Actions` (what the machine's actions do), `+Retries` (retries and
/// timeouts) and `+Answers` (upgrades, local answers, the log).
final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = RequestPart
    typealias OutboundIn = ResponsePart
    typealias OutboundOut = ResponsePart

    enum State {
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

    let loop: LoopContext
    let connection: DownstreamConnectionInfo
    var state: State = .idle
    /// Set while this handler sits in an HTTP/1.1 connection's pipeline (an upgrade needs it).
    var context: ChannelHandlerContext?
    /// Where answers go: the HTTP/1.1 connection, or the HTTP/2 stream that drives this handler.
    var downstream: ProxyDownstream?
    var pendingRead = false
    var upstreamNeedsFlush = false
    /// The current request is a gRPC call (its `content-type`): the gateway's own answers to
    /// it are gRPC answers, and its `grpc-status` is logged.
    var grpcKind: GRPCContentType?
    /// The current request's gRPC status, once known (the upstream's, or the gateway's own).
    var grpcStatus: Int?
    /// The current request's cold start, when its backend had to start an endpoint for it.
    var coldStart: ColdStartPhases?
    /// When that endpoint was handed over, for the first response's time.
    var coldStartLeased: NIODeadline?
    /// The current request's trace (with `tracing:`): its ids, and what its spans will say.
    var trace: RequestTrace?
    /// Set once a WebSocket over HTTP/2 is a byte pipe: the stream's bytes go to it.
    var tunnel: HTTP2StreamTunnel?

    init(loop: LoopContext, connection: DownstreamConnectionInfo) {
        self.loop = loop
        self.connection = connection
    }

    /// Driven by one HTTP/2 stream rather than by a pipeline (see `HTTP2ServerConnection`).
    convenience init(loop: LoopContext, connection: DownstreamConnectionInfo, stream: ProxyDownstream) {
        self.init(loop: loop, connection: connection)
        self.downstream = stream
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.downstream = ChannelDownstream(context: context)
    }

    /// The context holds this handler: kept after removal, the pair would keep each other (and
    /// the channel) alive.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.downstream = nil
    }

    // MARK: Inbound (from the pipeline, or from an HTTP/2 stream)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receive(unwrapInboundIn(data))
    }

    func receive(_ part: consuming RequestPart) {
        switch consume part {
        case .head(let head):
            startRequest(head: consume head)
        case .body(let buffer):
            requestBody(buffer: buffer)
        case .end(let trailers):
            requestEnd(trailers: trailers)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readComplete()
        context.fireChannelReadComplete()
    }

    func readComplete() {
        tunnel?.clientReadBurstEnded()
        if upstreamNeedsFlush, case .proxying(let exchange) = state {
            upstreamNeedsFlush = false
            exchange.upstream?.flush()
        }
    }

    func read(context: ChannelHandlerContext) {
        if holdsReads() { return }
        context.read()
    }

    /// Holds the client back while the request body has nowhere to go (the exchange machine
    /// says when). The read is issued once it has (`resumeClientReads`).
    func holdsReads() -> Bool {
        if let tunnel, !tunnel.upstreamWritable {
            pendingRead = true
            return true
        }
        if case .proxying(let exchange) = state,
           exchange.machine.holdsClientReads(upstreamWritable: exchange.upstream?.isWritable ?? false) {
            pendingRead = true
            return true
        }
        return false
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func writabilityChanged() {
        if let tunnel, downstream?.isWritable ?? false { tunnel.clientWritable() }
        if downstream?.isWritable ?? false, case .proxying(let exchange) = state {
            exchange.upstream?.resumeReading()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientLeft()
        context.fireChannelInactive()
    }

    func clientLeft() {
        tunnel?.clientLeft()
        tunnel = nil
        if case .proxying(let exchange) = state {
            perform(exchange.machine.clientClosed(), exchange)
        }
        state = .closing
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
            case .proxying(let exchange) where exchange.machine.isDrainingRequest:
                context.close(promise: nil)
            default:
                break
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Request body

    func requestBody(buffer: ByteBuffer) {
        if let tunnel {
            tunnel.clientSent(buffer)
            return
        }
        if case .execCollecting(let exec) = state {
            var buffer = buffer
            guard exec.body.readableBytes + buffer.readableBytes <= exec.maxRequestBody else {
                writeLocalReply(.bodyTooLarge, head: exec.head, close: true, record: exec.record)
                return
            }
            exec.body.writeBuffer(&buffer)
            return
        }
        guard case .proxying(let exchange) = state else { return }  // discarding or closing
        var buffer = buffer
        if exchange.grpcWeb != nil {
            guard let decoded = exchange.grpcWeb!.requestBody(buffer, allocator: downstream?.allocator ?? ByteBufferAllocator()) else {
                return perform(exchange.machine.requestBodyMalformed(), exchange)
            }
            buffer = decoded
        }
        let action = exchange.machine.requestBodyReceived(size: buffer.readableBytes)
        switch action {
        case .forwardRequestBody(let keep):
            exchange.retry?.keep(buffer, forReplay: keep)
            exchange.shadow?.send(buffer)
            exchange.upstream?.send(.body(buffer))
            upstreamNeedsFlush = true
        case .bufferRequestBody(let keep):
            if exchange.leaseID != nil, !holdWaitingBody(exchange, buffer.readableBytes) { return }
            exchange.retry?.keep(buffer, forReplay: keep)
            exchange.shadow?.send(buffer)
            exchange.bufferedBody.append(buffer)
        case .dropRequestBody:
            if let shadow = exchange.shadow, buffer.readableBytes > 0 {
                exchange.shadow = nil
                shadow.cancel()
            }
        default:
            perform(action, exchange)
        }
    }

    func requestEnd(trailers: HTTPFieldList?) {
        if let tunnel { return tunnel.clientEnded() }
        switch state {
        case .proxying(let exchange):
            if let grpcWeb = exchange.grpcWeb, !grpcWeb.requestEnded() {
                return perform(exchange.machine.requestBodyMalformed(), exchange)
            }
            exchange.trailers = trailers
            // Whole, unless a body part was dropped (which cancelled the copy).
            exchange.shadow?.end(trailers)
            perform(exchange.machine.requestEnded(), exchange)
        case .awaitingRequestEnd(let pending):
            state = .idle
            if let pending { write(pending) }
        case .execCollecting(let exec):
            state = .execRunning(exec)
            runExec(exec)
        case .idle, .upgraded, .closing, .execRunning:
            break
        }
    }
}
