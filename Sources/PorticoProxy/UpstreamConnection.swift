import NIOCore
import PorticoHTTP1

/// What a leased upstream connection reports to the request that holds it. Every call happens
/// on the connection's event loop, which is also the downstream channel's.
protocol UpstreamResponseDelegate: AnyObject {
    var downstreamIsWritable: Bool { get }
    func upstreamResponseHead(_ head: ResponseHead)
    func upstreamResponseBody(_ buffer: ByteBuffer)
    func upstreamResponseEnd(_ trailers: HTTPFieldList?)
    /// The end of one read burst: the moment to flush what was forwarded.
    func upstreamReadComplete()
    func upstreamWritabilityChanged(isWritable: Bool)
    func upstreamClosed()
    /// The upstream refused the request before processing any of it (HTTP/2 REFUSED_STREAM,
    /// or a stream above a GOAWAY's last stream id): safe to try again (`refused-stream`).
    func upstreamRefused()
}

/// One HTTP/1.1 connection to an upstream endpoint, and the handler at the end of its pipeline.
///
/// Reads are only requested while the downstream side can take more (explicit backpressure, as
/// in swift-nio-examples' GlueHandler): a slow client slows the upstream instead of growing a
/// buffer in Portico.
final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ResponsePart
    typealias OutboundIn = RequestPart
    typealias OutboundOut = RequestPart

    /// Strong: a pool a reload dropped must live until its last connection has closed and
    /// told it so (the pool lets go of a connection when it closes, which ends the cycle).
    let pool: UpstreamPool
    private(set) var context: ChannelHandlerContext?
    var delegate: UpstreamResponseDelegate?
    private var pendingRead = false
    /// Whether the last response allows the connection to carry another request.
    private(set) var responseAllowsReuse = true
    /// Set once a 101 was relayed: the connection is leaving HTTP, and what the decoder still
    /// emits for the 101 (its `.end`) is not a response anybody waits for.
    var isUpgrading = false
    /// Runs once the decoder has emitted the whole 101 message, so the pipeline can change.
    var onUpgradeMessageEnd: (() -> Void)?
    /// Requests this connection has been leased for (for `maxRequestsPerConnection`).
    var requestsServed = 0

    /// Upstream connections keep their own idle clock rather than a handler of their own in
    /// the pipeline, which every read and write would pass through.
    private let idle: IdleTimer
    /// The codec in front of this handler, called directly (`useCodec`): request and response
    /// parts are too large for `NIOAny`'s inline storage, and each one passed through the
    /// pipeline would be boxed on the heap, five times per request.
    private var writer: HTTP1RequestWriter?
    private var reader: HTTP1ResponseReader?

    init(pool: UpstreamPool, idleTimeout: TimeAmount) {
        self.pool = pool
        self.idle = IdleTimer(timeout: idleTimeout)
    }

    var channel: Channel? { context?.channel }
    var isActive: Bool { context?.channel.isActive ?? false }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { startIdleTimer(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        startIdleTimer(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idle.stop()
        self.context = nil
        writer = nil
        reader?.connection = nil
        reader = nil
    }

    /// The writer and reader that sit right in front of this handler, in that order: parts go
    /// to and come from them by direct calls while all three are in the pipeline.
    func useCodec(writer: HTTP1RequestWriter, reader: HTTP1ResponseReader) {
        self.writer = writer
        self.reader = reader
        reader.connection = self
    }

    func send(_ part: RequestPart) {
        idle.noteActivity()
        guard let context else { return }
        if let writer, let reader, writer.isAttached {
            reader.requestGoesOut(part)
            writer.send(part)
        } else {
            context.write(wrapOutboundOut(part), promise: nil)
        }
    }

    func flush() {
        context?.flush()
    }

    func close() {
        context?.close(promise: nil)
    }

    /// Starts a new exchange: the next response belongs to `delegate`.
    func attach(_ delegate: UpstreamResponseDelegate) {
        self.delegate = delegate
        self.responseAllowsReuse = true
    }

    func detach() {
        delegate = nil
    }

    /// Called when the downstream side drained its buffer: a read held back can go now.
    func resumeReading() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receive(unwrapInboundIn(data))
    }

    /// A response part from the reader in front (directly, or through the pipeline).
    func receive(_ part: ResponsePart) {
        guard let context else { return }
        idle.noteActivity()
        if isUpgrading {
            if case .end = part, let onEnd = onUpgradeMessageEnd {
                onUpgradeMessageEnd = nil
                onEnd()
            }
            return
        }
        guard let delegate else {
            // A response nobody asked for: the connection is out of step, so it cannot be reused.
            context.close(promise: nil)
            return
        }
        switch part {
        case .head(let head):
            if head.isInformational {
                return  // Interim responses: Portico answers `Expect: 100-continue` itself.
            }
            responseAllowsReuse = head.keepAlive
            delegate.upstreamResponseHead(head)
        case .body(let buffer):
            delegate.upstreamResponseBody(buffer)
        case .end(let trailers):
            delegate.upstreamResponseEnd(trailers)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if let delegate, !delegate.downstreamIsWritable {
            pendingRead = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idle.stop()
        let delegate = self.delegate
        self.delegate = nil
        pool.connectionClosed(self)
        delegate?.upstreamClosed()
    }

    private func startIdleTimer(_ context: ChannelHandlerContext) {
        // Strong (see `IdleTimer.schedule`): `channelInactive` stops the timer, which lets go
        // of this closure.
        idle.start(on: context.eventLoop) {
            guard context.channel.isActive, self.delegate == nil || !self.pendingRead else { return }
            // Idle in the pool, or an upstream that went silent mid-response for the whole idle
            // timeout (not one held back by a slow client): let it go. A request on it hears of
            // it as a close, and its client's stream is cut.
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Resets and parse errors both end the connection; the delegate hears of it as a close.
        context.close(promise: nil)
    }
}
