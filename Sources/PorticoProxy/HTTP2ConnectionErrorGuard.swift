import NIOCore

/// Ends an HTTP/2 connection once it has hit a connection error: the GOAWAY that reports the
/// error is flushed, then the connection closes, and nothing that arrives after it is read.
///
/// `NIOHTTP2Handler` sends the GOAWAY but leaves the connection open, and keeps appending what
/// the peer sends to its frame buffer without decoding it: one client could grow the process
/// by a gigabyte in seconds. HAProxy closes after flushing the GOAWAY (h2spec 5.4.1), and so
/// does this. Sits between the socket (or TLS) and the HTTP/2 handler, so it sees the frames
/// as bytes in both directions.
///
/// It also answers the one connection error the handler gets wrong, HEADERS on a closed stream
/// (see `HTTP2ClientStreamTracker`): the frames before it are passed on, the frame itself never
/// is, and a STREAM_CLOSED GOAWAY ends the connection the same way.
final class HTTP2ConnectionErrorGuard: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// RFC 9113 7: STREAM_CLOSED.
    private static let streamClosed: UInt32 = 0x5

    private var scanner = HTTP2FrameScanner()
    private var tracker = HTTP2ClientStreamTracker()
    private var closing = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After a connection error the peer's bytes are dropped, never buffered.
        guard !scanner.sawErrorGoAway else { return }
        let buffer = unwrapInboundIn(data)
        guard let offset = tracker.scan(buffer.readableBytesView) else {
            context.fireChannelRead(data)
            return
        }
        if offset > 0, let before = buffer.getSlice(at: buffer.readerIndex, length: offset) {
            context.fireChannelRead(wrapInboundOut(before))
        }
        // The frames before may have ended the connection already; their error stands.
        guard !scanner.sawErrorGoAway else { return }
        var goAway = context.channel.allocator.buffer(capacity: 17)
        goAway.writeInteger(UInt32(8) << 8 | 0x7) // length 8, type GOAWAY
        goAway.writeInteger(UInt8(0)) // flags
        goAway.writeInteger(UInt32(0)) // stream 0
        // Never above a GOAWAY already sent (a graceful one while shutting down): streams past
        // it were ignored, and the client may retry them elsewhere (RFC 9113 6.8).
        goAway.writeInteger(min(tracker.lastStreamID, scanner.lastGoAwayStreamID ?? .max))
        goAway.writeInteger(Self.streamClosed)
        write(context: context, data: wrapOutboundOut(.byteBuffer(goAway)), promise: nil)
        flush(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Passed on even after an error: the HTTP/2 handler flushes its GOAWAY here.
        context.fireChannelReadComplete()
        if scanner.sawErrorGoAway { flush(context: context) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if !scanner.sawErrorGoAway {
            switch unwrapOutboundIn(data) {
            case .byteBuffer(let buffer):
                scanner.scan(buffer.readableBytesView) { tracker.serverFrame($0) }
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
            // From the pipeline's tail, not from here: the close passes the flush coalescer
            // above the HTTP/2 handler, which flushes the answers still buffered there first
            // (the GOAWAY names them as processed; dropped, their clients could not retry).
            context.channel.close(promise: nil)
        }
    }

    func read(context: ChannelHandlerContext) {
        guard !scanner.sawErrorGoAway else { return }
        context.read()
    }
}
