import NIOCore
import NIOHTTP1
import NIOPosix

/// A real HTTP/1.1 backend on 127.0.0.1, on an event loop of its own (SwiftNIO's own server
/// codec, so it shares no code with what it tests): each request is answered 200 with the body
/// `answer` makes from its head.
final class LoopbackHTTPServer {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel: Channel
    var port: Int { channel.localAddress!.port! }

    init(answer: @escaping @Sendable (HTTPRequestHead) -> String) throws {
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Responder(answer: answer))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    /// A port nothing listens on: bound, then closed, so a connection to it is refused.
    static func refusedPort() throws -> Int {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let channel = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        let port = channel.localAddress!.port!
        try channel.close().wait()
        return port
    }

    func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    private final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        private let answer: @Sendable (HTTPRequestHead) -> String
        private var body = ""

        init(answer: @escaping @Sendable (HTTPRequestHead) -> String) {
            self.answer = answer
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                body = answer(head)
            case .body:
                break
            case .end:
                var headers = HTTPHeaders()
                headers.add(name: "content-length", value: String(body.utf8.count))
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
