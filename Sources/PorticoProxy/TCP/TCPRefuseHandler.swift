import NIOCore

/// Closes a connection as soon as it is accepted: a tcp listener over its `maxConnections`, or
/// one a reload removed (its socket stays bound until the next start).
final class TCPRefuseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        context.close(promise: nil)
    }
}
