import NIOCore
import PorticoHTTP1

/// Joins two channels into a byte pipe once an `Upgrade` succeeded (WebSocket and the like).
///
/// Each side reads only while its partner can write, flushes once per read burst and passes a
/// half-close through, after swift-nio-examples' connect-proxy `GlueHandler`.
final class GlueHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    static func matchedPair() -> (GlueHandler, GlueHandler) {
        let first = GlueHandler()
        let second = GlueHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    private func partnerWrite(_ data: NIOAny) {
        context?.write(data, promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    private func partnerWriteEOF() {
        context?.close(mode: .output, promise: nil)
    }

    private func partnerCloseFull() {
        context?.close(promise: nil)
    }

    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    private var partnerWritable: Bool { context?.channel.isWritable ?? false }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.partnerWrite(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerCloseFull()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            partner?.partnerWriteEOF()
        } else if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

enum ByteGlue {
    /// Strips the HTTP handlers from both pipelines and puts a `GlueHandler` pair in their place.
    /// The glue goes in before the decoders leave, so bytes they had already read (a WebSocket
    /// frame sent right behind the 101) reach it instead of being lost.
    static func join(downstream: Channel, upstream: Channel, idleTimeout: TimeAmount) throws {
        let (downstreamGlue, upstreamGlue) = GlueHandler.matchedPair()

        // The HTTP handlers kept the idle clocks; a tunnel gets its own.
        let down = downstream.pipeline.syncOperations
        try removeIfPresent(ProxyHandler.self, from: down)
        // A client that shut its side before the 101: the tunnel passes that on once it
        // stands, or the upstream would wait for more from it.
        let clientShutItsSide = (try? down.handler(type: HTTP1ServerConnection.self))?.inputClosed ?? false
        // Removing it writes out what it still held: the 101, if not yet sent.
        try removeIfPresent(HTTP1ServerConnection.self, from: down)
        try down.addHandler(IdleConnectionHandler(timeout: idleTimeout), position: .first)
        try down.addHandler(downstreamGlue)
        try removeIfPresent(HTTP1RequestReader.self, from: down)

        let up = upstream.pipeline.syncOperations
        try removeIfPresent(UpstreamConnection.self, from: up)
        try up.addHandler(IdleConnectionHandler(timeout: idleTimeout), position: .first)
        try up.addHandler(upstreamGlue)
        // What the reader still held arrives as a read with no read-complete after it: flush
        // it to the client once the reader is gone, or a server-speaks-first protocol stalls.
        if let decoder = try? up.context(handlerType: HTTP1ResponseReader.self) {
            let removed = upstream.eventLoop.makePromise(of: Void.self)
            removed.futureResult.whenComplete { _ in downstream.flush() }
            up.removeHandler(context: decoder, promise: removed)
        }
        try removeIfPresent(HTTP1RequestWriter.self, from: up)

        // Half-closes must reach the glue rather than close the socket outright.
        _ = downstream.setOption(.allowRemoteHalfClosure, value: true)
        _ = upstream.setOption(.allowRemoteHalfClosure, value: true)
        downstream.read()
        upstream.read()
        if clientShutItsSide { downstream.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
    }

    private static func removeIfPresent<Handler: RemovableChannelHandler>(
        _ type: Handler.Type, from pipeline: ChannelPipeline.SynchronousOperations
    ) throws {
        guard let context = try? pipeline.context(handlerType: type) else { return }
        pipeline.removeHandler(context: context, promise: nil)
    }
}
