import NIOCore
import PorticoHTTP1

/// Reads an upstream connection's responses with Portico's strict parser
/// (`HTTP1ResponseParser`), in place of NIO's llhttp-based response decoder.
///
/// A response is framed by the request it answers (no body for HEAD), so the request heads
/// going out pass through here on their way to `HTTP1RequestWriter`, in order. A malformed
/// response travels on as an `HTTP1ParseError`, and `UpstreamConnection` closes the
/// connection: an upstream that broke framing once cannot be trusted with the next request.
///
/// The responses leave as `ResponsePart`s. Behind an `UpstreamPool`'s connection they go to
/// the `UpstreamConnection` by a direct call (`connection`), and its requests come by
/// `requestGoesOut`: a part is too large for `NIOAny`'s inline storage, and each one passed
/// through the pipeline would be boxed on the heap. Elsewhere (`OneShotHTTPClient`) they
/// travel the pipeline.
final class HTTP1ResponseReader: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ResponsePart
    typealias OutboundIn = RequestPart
    typealias OutboundOut = RequestPart

    private var parser = HTTP1ResponseParser()
    /// The handler right behind this one, called directly while it is in the pipeline.
    /// Strong: the pair lets go of each other when either leaves the pipeline.
    var connection: UpstreamConnection?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        requestGoesOut(unwrapOutboundIn(data))
        context.write(data, promise: promise)
    }

    /// A request part on its way to the writer: a request's method decides how its response
    /// is framed.
    func requestGoesOut(_ part: RequestPart) {
        if case .head(let head) = part {
            switch head.method {
            case "HEAD": parser.expectResponse(to: .head)
            case "CONNECT": parser.expectResponse(to: .connect)
            default: parser.expectResponse(to: .other)
            }
        }
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
        connection = nil
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
                deliver(context, .head(ResponseHead(head)))
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

    private func deliver(_ context: ChannelHandlerContext, _ part: ResponsePart) {
        if let connection, connection.context != nil {
            connection.receive(part)
        } else {
            context.fireChannelRead(wrapInboundOut(part))
        }
    }
}
