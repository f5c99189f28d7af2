import NIOCore
import NIOHTTP1
import PorticoHTTP1

/// Reads a client connection's requests with Portico's strict parser (`HTTP1RequestParser`),
/// in place of NIO's `HTTPRequestDecoder`.
///
/// The parser refuses what request smuggling is made of (see its header), including chunk
/// sizes beyond 63 bits, which NIO's decoder let through and a guard in front of it had to
/// catch. A refusal travels on as an `HTTP1ParseError` after the requests before it, so
/// `HTTP1ServerConnection` answers it in that request's turn, with the status the parser
/// chose (400, 431 or 501), and closes.
///
/// The requests still leave as NIO's `HTTPServerRequestPart`, because that is what the rest of
/// the request path reads today; the head is turned into one here, once.
final class HTTP1RequestReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPServerRequestPart

    private var parser: HTTP1RequestParser

    init(maxHeadBytes: Int) {
        self.parser = HTTP1RequestParser(limits: HTTP1ParserLimits(maxHeadBytes: maxHeadBytes))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parser.feed(unwrapInboundIn(data))
        deliverEvents(context)
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
        parser.feedEOF()
        if deliverEvents(context) { context.fireChannelReadComplete() }
        context.fireChannelInactive()
    }

    /// Leaving for an upgrade (`ByteGlue`): the bytes behind the upgrade request belong to the
    /// new protocol, a WebSocket frame sent right behind the request, say.
    func handlerRemoved(context: ChannelHandlerContext) {
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
            switch event {
            case .head(let head):
                context.fireChannelRead(wrapInboundOut(.head(HTTPRequestHead(head))))
            case .body(let bytes):
                context.fireChannelRead(wrapInboundOut(.body(bytes)))
            case .end(let trailers):
                context.fireChannelRead(wrapInboundOut(.end(trailers.map(HTTPHeaders.init))))
            case .error(let error):
                context.fireErrorCaught(error)
                return true
            }
        }
        return delivered
    }
}

extension HTTPRequestHead {
    /// The NIO head the request path reads, from a parsed head: one `String` per method,
    /// target, name and value.
    init(_ head: HTTP1RequestHead) {
        let version: HTTPVersion = head.version == .http1_1 ? .http1_1 : .http1_0
        self.init(version: version, method: HTTPMethod(rawValue: head.method), uri: head.target,
                  headers: HTTPHeaders(head.fields))
    }
}

extension HTTPHeaders {
    init(_ fields: HTTPFieldList) {
        self.init()
        reserveCapacity(fields.count)
        for index in 0..<fields.count {
            let field = fields[index]
            add(name: field.name, value: field.value)
        }
    }
}
