import NIOCore
import NIOHTTP1

/// Writes the requests of an upstream HTTP/1.1 connection to the wire.
///
/// It does what NIO's `HTTPRequestEncoder` and header validator do, in one handler, and
/// gathers a request's head, small body parts and end into one buffer that leaves in one
/// `write` at the flush. It sits before NIO's response decoder, which must see each request
/// head go by to know that a response to HEAD has no body.
final class HTTP1RequestWriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = IOData

    private var framing = HTTP1BodyFraming.none
    private var out = OutboundGatherer()

    func handlerRemoved(context: ChannelHandlerContext) {
        if let pending = out.take() {
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(pending)), promise: nil)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head):
            framing = head.headers.frameForSending(HTTP1BodyExpectation(requestMethod: head.method), version: head.version)
            out.prepare(context.channel.allocator)
            let start = out.gathered!.writerIndex
            out.gathered!.writeHTTP1RequestLine(head)
            guard head.uri.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }),
                  out.gathered!.writeHTTP1HeaderSection(head.headers) else {
                // A header that would split the request, or a target with a space or a
                // control character in it: nothing of this request is sent.
                out.gathered!.moveWriterIndex(to: start)
                promise?.fail(InvalidOutboundHeader())
                context.fireErrorCaught(InvalidOutboundHeader())
                return
            }
        case .body(let body):
            let size = body.readableBytes
            guard size > 0 else { break }
            let chunked = framing == .chunked
            if chunked {
                out.prepare(context.channel.allocator)
                out.gathered!.writeChunkSizeLine(size)
            }
            if case .byteBuffer(var buffer) = body, size <= OutboundGatherer.copyLimit {
                out.prepare(context.channel.allocator)
                out.gathered!.writeBuffer(&buffer)
                if chunked { out.gathered!.writeStaticString("\r\n") }
            } else {
                flushGathered(context)
                context.write(wrapOutboundOut(body), promise: promise)
                if chunked {
                    out.prepare(context.channel.allocator)
                    out.gathered!.writeStaticString("\r\n")
                }
                return
            }
        case .end(let trailers):
            if framing == .chunked {
                out.prepare(context.channel.allocator)
                if let trailers, !trailers.isEmpty {
                    out.gathered!.writeStaticString("0\r\n")
                    if !out.gathered!.writeHTTP1HeaderSection(trailers) {
                        out.gathered!.writeStaticString("\r\n")  // Trailers that cannot be sent are dropped.
                    }
                } else {
                    out.gathered!.writeStaticString("0\r\n\r\n")
                }
            }
            framing = .none
        }
        if promise != nil || out.isOverLimit { flushGathered(context, promise: promise) }
    }

    func flush(context: ChannelHandlerContext) {
        flushGathered(context)
        context.flush()
    }

    private func flushGathered(_ context: ChannelHandlerContext, promise: EventLoopPromise<Void>? = nil) {
        if let pending = out.take() {
            context.write(wrapOutboundOut(.byteBuffer(pending)), promise: promise)
        } else if let promise {
            context.write(wrapOutboundOut(.byteBuffer(context.channel.allocator.buffer(capacity: 0))), promise: promise)
        }
    }
}
