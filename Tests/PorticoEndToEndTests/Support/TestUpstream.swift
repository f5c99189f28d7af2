import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// A real HTTP/1.1 upstream on 127.0.0.1 with behaviours chosen by path:
/// - `/slow/MS/...`: answers after MS milliseconds
/// - `/bytes/N`: streams N bytes of body (in 64 KiB pieces, honouring backpressure)
/// - `/reset`: closes the connection without answering
/// - `/status/CODE/...`: answers CODE
/// - `/flaky/N/KEY...`: answers 503 to the first N requests naming KEY, then echoes
/// - `/ws`: WebSocket echo
/// - anything else: echoes; the body counts the request body bytes, headers describe the request
/// Every answer carries `x-upstream: NAME`.
final class TestUpstream: Sendable {
    let name: String
    let port: Int
    private let channel: Channel
    private let counters = NIOLockedValueBox<[String: Int]>([:])
    private let lastHeaders = NIOLockedValueBox<HTTPHeaders>(HTTPHeaders())

    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// `port` 0 picks a free one; a test that brings a dead endpoint back names its port.
    init(name: String, port: Int = 0) throws {
        self.name = name
        let box = CounterSink()
        let upgrader = NIOWebSocketServerUpgrader(
            shouldUpgrade: { channel, head in
                channel.eventLoop.makeSucceededFuture(head.uri.hasSuffix("/ws") ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(WebSocketEcho()) }
            })
        let channel = try ServerBootstrap(group: Self.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Made on the channel's loop, and only ever touched there.
                    let behaviour = NIOLoopBound(UpstreamBehaviour(name: name, sink: box), eventLoop: channel.eventLoop)
                    // After a WebSocket upgrade the HTTP behaviour must leave, or frames reach it.
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { context in
                            context.pipeline.syncOperations.removeHandler(behaviour.value, promise: nil)
                        }))
                    try channel.pipeline.syncOperations.addHandler(behaviour.value)
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .wait()
        self.channel = channel
        self.port = channel.localAddress!.port!
        box.upstream = self
    }

    var address: String { "127.0.0.1:\(port)" }

    func count(_ key: String = "requests") -> Int { counters.withLockedValue { $0[key] ?? 0 } }
    var lastRequestHeaders: HTTPHeaders { lastHeaders.withLockedValue { $0 } }

    fileprivate func recordRequest(_ head: HTTPRequestHead) {
        counters.withLockedValue { $0["requests", default: 0] += 1 }
        lastHeaders.withLockedValue { $0 = head.headers }
    }

    /// Counts one more request for `key` and returns the count.
    fileprivate func bump(_ key: String) -> Int {
        counters.withLockedValue { counters in
            counters[key, default: 0] += 1
            return counters[key]!
        }
    }

    fileprivate func recordConnection() {
        counters.withLockedValue { $0["connections", default: 0] += 1 }
    }

    func stop() {
        try? channel.close().wait()
    }
}

/// Lets the handlers reach the upstream that owns them without keeping it alive.
/// `@unchecked Sendable`: `upstream` is set once, at the end of `TestUpstream.init`, before
/// the test knows the port and can connect; after that the handlers only read it.
private final class CounterSink: @unchecked Sendable {
    weak var upstream: TestUpstream?
}

private final class UpstreamBehaviour: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let name: String
    let sink: CounterSink
    private var head: HTTPRequestHead?
    private var bodyBytes = 0
    private var remainingToSend = 0
    private var context: ChannelHandlerContext?

    init(name: String, sink: CounterSink) {
        self.name = name
        self.sink = sink
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        sink.upstream?.recordConnection()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            bodyBytes = 0
            sink.upstream?.recordRequest(head)
            if head.uri == "/reset" {
                context.close(promise: nil)
            }
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
        case .end:
            guard let head else { return }
            _ = sink.upstream?.bump("completed")
            respond(context: context, head: head)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let parts = head.uri.split(separator: "/", omittingEmptySubsequences: true)
        if parts.first == "slow", parts.count >= 2, let ms = Int(parts[1]) {
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(ms))) { [self] in
                self.echo(context: context, head: head)
            }
            return
        }
        if parts.first == "status", parts.count >= 2, let code = Int(parts[1]) {
            return answer(context: context, status: HTTPResponseStatus(statusCode: code))
        }
        if parts.first == "flaky", parts.count >= 3, let failures = Int(parts[1]),
           let seen = sink.upstream?.bump("flaky:" + parts[2]), seen <= failures {
            return answer(context: context, status: .serviceUnavailable)
        }
        if parts.first == "bytes", parts.count >= 2, let count = Int(parts[1]) {
            var headers = HTTPHeaders([("x-upstream", name), ("content-length", String(count))])
            headers.add(name: "content-type", value: "application/octet-stream")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            remainingToSend = count
            sendMore(context: context)
            return
        }
        echo(context: context, head: head)
    }

    /// Writes body pieces while the channel is writable; resumes on writability.
    private func sendMore(context: ChannelHandlerContext) {
        let chunk = 64 * 1024
        while remainingToSend > 0 && context.channel.isWritable {
            let size = min(chunk, remainingToSend)
            var buffer = context.channel.allocator.buffer(capacity: size)
            buffer.writeRepeatingByte(UInt8(ascii: "x"), count: size)
            remainingToSend -= size
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        if remainingToSend == 0 {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            remainingToSend = -1
        } else {
            context.flush()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && remainingToSend > 0 { sendMore(context: context) }
        context.fireChannelWritabilityChanged()
    }

    private func answer(context: ChannelHandlerContext, status: HTTPResponseStatus) {
        let body = ByteBuffer(string: "\(name) \(status.code)\n")
        let headers = HTTPHeaders([("x-upstream", name), ("content-length", String(body.readableBytes))])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func echo(context: ChannelHandlerContext, head: HTTPRequestHead) {
        var text = "\(name) \(head.method.rawValue) \(head.uri) body=\(bodyBytes)\n"
        for (headerName, value) in head.headers { text += "\(headerName.lowercased()): \(value)\n" }
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        let headers = HTTPHeaders([
            ("x-upstream", name), ("content-length", String(buffer.readableBytes)),
            ("content-type", "text/plain"), ("connection", "keep-alive"), ("keep-alive", "timeout=5"),
        ])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

/// Echoes text and binary frames; answers close with close.
private final class WebSocketEcho: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            var payload = frame.unmaskedData
            var reply = context.channel.allocator.buffer(capacity: payload.readableBytes + 5)
            reply.writeString("echo:")
            reply.writeBuffer(&payload)
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: frame.opcode, data: reply)), promise: nil)
        case .connectionClose:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: frame.unmaskedData)))
                .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        default:
            break
        }
    }
}
