import NIOCore
import PorticoHTTP1

/// Writes the requests of an upstream HTTP/1.1 connection to the wire.
///
/// It does what NIO's `HTTPRequestEncoder` and header validator do, in one handler, and
/// gathers a request's head, small body parts and end into one buffer that leaves in one
/// `write` at the flush. It sits before `HTTP1ResponseReader`, which must see each request
/// head go by to know that a response to HEAD has no body.
///
/// An `UpstreamConnection` calls `send` directly rather than writing down the pipeline: a
/// `RequestPart` is too large for `NIOAny`'s inline storage, and every part written through
/// the pipeline would be boxed on the heap.
final class HTTP1RequestWriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = RequestPart
    typealias OutboundOut = IOData

    private var framing = HTTP1BodyFraming.none
    /// A request head was refused: its body and end are refused too, so nothing of it reaches
    /// the wire without a head in front (the connection is closing).
    private var dropping = false
    private var out = OutboundGatherer()
    private var context: ChannelHandlerContext?

    /// Whether the handler is in its pipeline, so that `send` can write.
    var isAttached: Bool { context != nil }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        out.write(to: context)
        context.flush()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        write(context, unwrapOutboundIn(data), promise: promise)
    }

    /// Writes a part as if it had come down the pipeline to this handler.
    func send(_ part: RequestPart) {
        guard let context else { return }
        write(context, part, promise: nil)
    }

    private func write(_ context: ChannelHandlerContext, _ part: RequestPart, promise: EventLoopPromise<Void>?) {
        if dropping {
            switch part {
            case .head:
                dropping = false  // another request: judged on its own
            case .body:
                promise?.fail(InvalidOutboundHeader())
                return
            case .end:
                dropping = false
                promise?.fail(InvalidOutboundHeader())
                return
            }
        }
        switch part {
        case .head(var head):
            framing = head.fields.frameForSending(HTTP1BodyExpectation(requestMethod: head.method))
            out.prepare(context.channel.allocator)
            let start = out.gathered!.writerIndex
            out.gathered!.writeHTTP1RequestLine(head)
            guard head.isSendableRequestLine, out.gathered!.writeHTTP1HeaderSection(head.fields) else {
                // A header that would split the request, a method that is not a token, or a
                // target with a space or a control character in it: nothing of this request
                // is sent.
                out.gathered!.moveWriterIndex(to: start)
                framing = .none
                dropping = true
                promise?.fail(InvalidOutboundHeader())
                context.fireErrorCaught(InvalidOutboundHeader())
                return
            }
        case .body(let body):
            out.writeBody(.byteBuffer(body), chunked: framing == .chunked, to: context, promise: promise)
            return
        case .end(let trailers):
            out.gatherEnd(trailers: trailers, chunked: framing == .chunked, allocator: context.channel.allocator)
            framing = .none
        }
        if promise != nil || out.isOverLimit { out.write(to: context, promise: promise) }
    }

    func flush(context: ChannelHandlerContext) {
        out.write(to: context)
        context.flush()
    }
}
