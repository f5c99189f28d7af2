import NIOCore
import PorticoHTTP1

/// A WebSocket over HTTP/2 (RFC 8441, extended CONNECT) once its HTTP/1.1 upstream answered
/// 101: the client's stream and the upstream's socket become one byte pipe.
///
/// The client's side is an `HTTP2ServerStream` (DATA frames, no channel of its own), so this is
/// the handler that takes the HTTP handlers' place in the upstream's pipeline, and the stream's
/// `ProxyHandler` hands it the client's bytes. Backpressure as in `GlueHandler`: the upstream is
/// read only while the client's stream takes more (its window and the connection's buffer),
/// and the client's window is given back only while the upstream socket is writable.
/// Half-closes pass through: the client's END_STREAM shuts the upstream's write side, and the
/// upstream's end of input ends the stream.
final class HTTP2StreamTunnel: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Weak: the stream owns its `ProxyHandler`, which owns this; the stream goes first.
    private weak var stream: HTTP2ServerStream?
    private var context: ChannelHandlerContext?
    /// The client's bytes that came before the pipe stood (they wait for the upstream).
    private var early: [ByteBuffer] = []
    private var clientEndedEarly = false
    private var pendingRead = false
    private var streamEnded = false

    init(stream: HTTP2ServerStream) {
        self.stream = stream
    }

    /// Swaps the upstream's HTTP handlers for this one (once the 101 has been read whole, on a
    /// fresh tick), as `ByteGlue.join` does for an HTTP/1.1 client.
    func install(on upstream: Channel, idleTimeout: TimeAmount) throws {
        // The client left before the pipe stood: nothing to join.
        guard !streamEnded else { return upstream.close(promise: nil) }
        let up = upstream.pipeline.syncOperations
        if let connection = try? up.context(handlerType: UpstreamConnection.self) {
            up.removeHandler(context: connection, promise: nil)
        }
        try up.addHandler(IdleConnectionHandler(timeout: idleTimeout), position: .first)
        try up.addHandler(self)
        // What the reader still held arrives as a read with no read-complete after it: flush it.
        if let reader = try? up.context(handlerType: HTTP1ResponseReader.self) {
            let removed = upstream.eventLoop.makePromise(of: Void.self)
            removed.futureResult.whenComplete { [weak self] _ in self?.stream?.flush() }
            up.removeHandler(context: reader, promise: removed)
        }
        if let writer = try? up.context(handlerType: HTTP1RequestWriter.self) {
            up.removeHandler(context: writer, promise: nil)
        }
        _ = upstream.setOption(.allowRemoteHalfClosure, value: true)
        for buffer in early { context?.write(wrapOutboundOut(buffer), promise: nil) }
        early.removeAll()
        context?.flush()
        if clientEndedEarly { context?.close(mode: .output, promise: nil) }
        upstream.read()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: From the client (the stream's ProxyHandler)

    var upstreamWritable: Bool { context?.channel.isWritable ?? true }

    func clientSent(_ buffer: ByteBuffer) {
        guard let context else { return early.append(buffer) }
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    func clientReadBurstEnded() {
        context?.flush()
    }

    /// The client ended its stream: the upstream hears end of input, and may still answer.
    func clientEnded() {
        guard let context else {
            clientEndedEarly = true
            return
        }
        context.close(mode: .output, promise: nil)
    }

    /// The client's stream was reset or its connection closed: the pipe ends.
    func clientLeft() {
        streamEnded = true
        context?.close(promise: nil)
    }

    /// The client's stream can take more: a read held back goes now.
    func clientWritable() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }

    // MARK: From the upstream

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        stream?.write(.body(unwrapInboundIn(data)), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        stream?.flush()
    }

    func read(context: ChannelHandlerContext) {
        if stream?.isWritable ?? false {
            context.read()
        } else {
            pendingRead = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // The client's window comes back as the upstream takes its bytes.
        if context.channel.isWritable { stream?.read() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            endStream()
        } else if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        endStream()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    /// The upstream has no more to send: the stream ends (END_STREAM), as a FIN would.
    private func endStream() {
        guard !streamEnded else { return }
        streamEnded = true
        stream?.write(.end(nil), promise: nil)
        stream?.flush()
    }
}
