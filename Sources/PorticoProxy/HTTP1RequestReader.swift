import NIOCore
import PorticoHTTP1

/// Reads a client connection's requests with Portico's strict parser (`HTTP1RequestParser`),
/// in place of NIO's llhttp-based request decoder.
///
/// The parser refuses what request smuggling is made of (see its header), including chunk
/// sizes beyond 63 bits, which NIO's decoder let through and a guard in front of it had to
/// catch. A refusal travels on as an `HTTP1ParseError` after the requests before it, so
/// `HTTP1ServerConnection` answers it in that request's turn, with the status the parser
/// chose (400, 431 or 501), and closes.
///
/// The requests leave as `RequestPart`s, the protocol-neutral model that HTTP/2 streams
/// deliver too; the fields are not copied on the way. To the `HTTP1ServerConnection` right
/// behind (`connection`) they go by a direct call: a part is too large for `NIOAny`'s inline
/// storage, and each one passed through the pipeline would be boxed on the heap.
final class HTTP1RequestReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = RequestPart

    private var parser: HTTP1RequestParser
    /// How long a request head may take from its first byte to its last (`limits.requestHeadersTimeout`).
    private let headTimeout: TimeAmount
    /// Set while a head is partly here: a slow client (slowloris) gets 408 when it fires.
    private var headTimer: Scheduled<Void>?
    private var timedOut = false
    /// Set by the connection handler when it is added right behind this one; strong, and
    /// let go of when either leaves the pipeline.
    var connection: HTTP1ServerConnection?

    init(maxHeadBytes: Int, headTimeout: TimeAmount = .seconds(10)) {
        self.parser = HTTP1RequestParser(limits: HTTP1ParserLimits(maxHeadBytes: maxHeadBytes))
        self.headTimeout = headTimeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !timedOut else { return }  // answered 408: nothing after it is read
        parser.feed(unwrapInboundIn(data))
        deliverEvents(context)
        watchHead(context)
    }

    /// A head that did not arrive in one read starts the clock; it stops once the head is
    /// whole. A request whose head comes in one read, nearly all of them, schedules nothing.
    private func watchHead(_ context: ChannelHandlerContext) {
        guard parser.isInsideHead else {
            headTimer?.cancel()
            headTimer = nil
            return
        }
        guard headTimer == nil else { return }
        headTimer = context.eventLoop.assumeIsolated().scheduleTask(in: headTimeout) { [self] in
            headTimer = nil
            guard parser.isInsideHead, !timedOut else { return }
            timedOut = true
            // Answered in its turn, after the requests before it, as a parse error is.
            context.fireErrorCaught(HTTP1ParseError.request(.headTimeout))
            context.fireChannelReadComplete()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // A message the client cut short is an error; a close between requests is not.
            parser.feedEOF()
            if deliverEvents(context) { context.fireChannelReadComplete() }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        headTimer?.cancel()
        headTimer = nil
        parser.feedEOF()
        if deliverEvents(context) { context.fireChannelReadComplete() }
        context.fireChannelInactive()
    }

    /// Leaving for an upgrade (`ByteGlue`): the bytes behind the upgrade request belong to the
    /// new protocol, a WebSocket frame sent right behind the request, say.
    func handlerRemoved(context: ChannelHandlerContext) {
        headTimer?.cancel()
        headTimer = nil
        connection = nil
        guard parser.isAwaitingUpgradeDecision else { return }
        let rest = parser.acceptUpgrade()
        guard rest.readableBytes > 0 else { return }
        context.fireChannelRead(NIOAny(rest))
        context.fireChannelReadComplete()
    }

    /// Hands on every event the parser has; whether it handed on any.
    @discardableResult
    private func deliverEvents(_ context: ChannelHandlerContext) -> Bool {
        var delivered = false
        while let event = parser.next() {
            delivered = true
            switch consume event {
            case .head(let head):
                deliver(context, .head(RequestHead(consume head)))
            case .body(let bytes):
                deliver(context, .body(bytes))
            case .end(let trailers):
                deliver(context, .end(trailers))
            case .error(let error):
                context.fireErrorCaught(error)
                return true
            }
        }
        return delivered
    }

    /// `consuming` down to `ProxyHandler.startRequest`: a head passed on, not copied, is held
    /// once there, and its fields can become the upstream head's without a copy.
    private func deliver(_ context: ChannelHandlerContext, _ part: consuming RequestPart) {
        if let connection, connection.isAttached {
            connection.receive(consume part)
        } else {
            context.fireChannelRead(wrapInboundOut(consume part))
        }
    }
}
