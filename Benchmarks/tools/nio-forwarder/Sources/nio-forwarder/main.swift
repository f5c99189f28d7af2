import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

// The least a SwiftNIO proxy can do per request: one event loop, one upstream connection per
// client connection, bytes copied both ways as they come, nothing parsed. What it costs per
// proxied request is what SwiftNIO and the kernel cost; what Portico costs above it is
// Portico's HTTP layer.
//
//     swift build -c release
//     taskset -c 1 .build/release/nio-forwarder LISTEN_PORT UPSTREAM_PORT

/// One side of the pipe: writes what the other side reads, and reads only while the other
/// side can take it.
final class Glue: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    var partner: Glue?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    private var isWritable: Bool { context?.channel.isWritable ?? false }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { partner?.context?.write(data, promise: nil) }
    func channelReadComplete(context: ChannelHandlerContext) { partner?.context?.flush() }
    func channelInactive(context: ChannelHandlerContext) { partner?.context?.close(promise: nil) }
    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let partner, partner.pendingRead {
            partner.pendingRead = false
            partner.context?.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        if partner?.isWritable ?? false {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 3, let listenPort = Int(arguments[1]), let upstreamPort = Int(arguments[2]) else {
    print("usage: nio-forwarder LISTEN_PORT UPSTREAM_PORT  (both on 127.0.0.1)")
    exit(2)
}
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    // Nothing is read before the upstream connection is there to take it.
    .childChannelOption(.autoRead, value: false)
    .childChannelInitializer { client in
        ClientBootstrap(group: client.eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: upstreamPort)
            .flatMap { upstream in
                let clientSide = Glue()
                let upstreamSide = Glue()
                clientSide.partner = upstreamSide
                upstreamSide.partner = clientSide
                upstream.closeFuture.whenComplete { _ in client.close(promise: nil) }
                return upstream.pipeline.addHandler(upstreamSide)
                    .flatMap { client.pipeline.addHandler(clientSide) }
                    .flatMap { client.setOption(.autoRead, value: true) }
            }
    }
    .bind(host: "127.0.0.1", port: listenPort).wait()
try server.closeFuture.wait()
