import NIOCore
import PorticoHTTP1

/// Reads an upstream connection's responses with Portico's strict parser
/// (`HTTP1ResponseParser`), in place of NIO's `HTTPResponseDecoder`.
///
/// A response is framed by the request it answers (no body for HEAD), so the request heads
/// going out pass through here on their way to `HTTP1RequestWriter`, in order. A malformed
/// response travels on as an `HTTP1ParseError`, and `UpstreamConnection` closes the
/// connection: an upstream that broke framing once cannot be trusted with the next request.
///
/// The responses still leave as NIO's `HTTPClientResponsePart`, because that is what the rest
/// of the request path reads today; the head is turned into one here, once.
final class HTTP1ResponseReader: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ResponsePart
    typealias OutboundIn = RequestPart
    typealias OutboundOut = RequestPart

    private var parser = HTTP1ResponseParser()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .head(let head) = unwrapOutboundIn(data) {
            switch head.method {
            case "HEAD": parser.expectResponse(to: .head)
            case "CONNECT": parser.expectResponse(to: .connect)
            default: parser.expectResponse(to: .other)
            }
        }
        context.write(data, promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parser.feed(unwrapInboundIn(data))
        deliverEvents(context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            parser.feedEOF()
            if deliverEvents(context) { context.fireChannelReadComplete() }
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The upstream closed: that ends a body that runs until the close, and cuts short any
    /// other response (an error, so the request sees a broken response, not a short one).
    func channelInactive(context: ChannelHandlerContext) {
        parser.feedEOF()
        if deliverEvents(context) { context.fireChannelReadComplete() }
        context.fireChannelInactive()
    }

    /// Leaving for an upgrade (`ByteGlue`): what the upstream sent behind its 101 belongs to
    /// the new protocol. It arrives at the glue now, with no read-complete of its own, so the
    /// glue's caller flushes the client once this handler is gone.
    func handlerRemoved(context: ChannelHandlerContext) {
        guard parser.isAwaitingUpgradeDecision else { return }
        let rest = parser.acceptUpgrade()
        guard rest.readableBytes > 0 else { return }
        context.fireChannelRead(NIOAny(rest))
    }

    /// Hands on every event the parser has; whether it handed on any.
    @discardableResult
    private func deliverEvents(_ context: ChannelHandlerContext) -> Bool {
        var delivered = false
        while let event = parser.next() {
            delivered = true
            switch event {
            case .head(let head):
                context.fireChannelRead(wrapInboundOut(.head(ResponseHead(head))))
            case .body(let bytes):
                context.fireChannelRead(wrapInboundOut(.body(bytes)))
            case .end(let trailers):
                context.fireChannelRead(wrapInboundOut(.end(trailers)))
            case .error(let error):
                context.fireErrorCaught(error)
                return true
            }
        }
        return delivered
    }
}
