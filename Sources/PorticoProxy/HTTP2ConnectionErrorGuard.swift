import NIOCore

/// Ends an HTTP/2 connection once it has hit a connection error: the GOAWAY that reports the
/// error is flushed, then the connection closes, and nothing that arrives after it is read.
///
/// `NIOHTTP2Handler` sends the GOAWAY but leaves the connection open, and keeps appending what
/// the peer sends to its frame buffer without decoding it: one client could grow the process
/// by a gigabyte in seconds. HAProxy closes after flushing the GOAWAY (h2spec 5.4.1), and so
/// does this. Sits between the socket (or TLS) and the HTTP/2 handler, so it sees the frames
/// as bytes in both directions.
final class HTTP2ConnectionErrorGuard: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private var scanner = HTTP2FrameScanner()
    private var closing = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After a connection error the peer's bytes are dropped, never buffered.
        guard !scanner.sawErrorGoAway else { return }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Passed on even after an error: the HTTP/2 handler flushes its GOAWAY here.
        context.fireChannelReadComplete()
        if scanner.sawErrorGoAway { flush(context: context) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if !scanner.sawErrorGoAway {
            switch unwrapOutboundIn(data) {
            case .byteBuffer(let buffer): scanner.scan(buffer.readableBytesView)
            case .fileRegion(let region): scanner.skip(region.readableBytes)
            }
        }
        context.write(data, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        context.flush()
        // The GOAWAY is on its way to the socket: the connection is done.
        if scanner.sawErrorGoAway && !closing {
            closing = true
            context.close(promise: nil)
        }
    }

    func read(context: ChannelHandlerContext) {
        guard !scanner.sawErrorGoAway else { return }
        context.read()
    }
}
