import NIOCore
import PorticoCore

/// One side of a proxied TCP connection (the client's channel or the upstream's): hands its
/// events to the `TCPProxySession` and reads only when the session says the other side can
/// take the bytes, as swift-nio-examples' `GlueHandler` does.
final class TCPRelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let side: TCPProxyStateMachine.Side
    private var session: TCPProxySession?
    private(set) var context: ChannelHandlerContext?

    init(side: TCPProxyStateMachine.Side, session: TCPProxySession) {
        self.side = side
        self.session = session
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        session = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if side == .client { session?.clientActive(context) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        session?.read(Self.unwrapInboundIn(data), from: side)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        session?.readComplete(from: side)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let session = self.session
        self.session = nil
        session?.inactive(side, context: context)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            session?.inputClosed(side)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A reset or a write to a closed peer: the close that follows ends the session.
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { session?.becameWritable(side) }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if session?.mayRead(side) ?? true {
            context.read()
        } else {
            session?.holdRead(side)
        }
    }
}
