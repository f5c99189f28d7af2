import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS
import PorticoConfig
import PorticoHTTP1

/// One HTTP/1.1 GET on its own connection, for the gateway's own needs (a JWKS document, an
/// active health check): no redirects, a size cap, a deadline.
///
/// A few dozen lines of NIO rather than an HTTP client library: these requests are rare, and
/// the gateway already carries NIO, NIOSSL and its own HTTP/1 codec.
enum OneShotHTTPClient {
    struct Response {
        let status: Int
        let body: [UInt8]
    }

    /// `peerCheck`: a service's TLS settings whose names the peer's certificate must carry
    /// (`serverName`, `subjectAltNames`), checked after the handshake as for proxied requests.
    /// `http2`: HTTP/2 with prior knowledge in plaintext (an `h2c` service). Over TLS the
    /// protocol is what ALPN agreed on: HTTP/2 for `h2`, HTTP/1.1 otherwise.
    static func get(host: String, port: Int, path: String, hostHeader: String, tls: NIOSSLContext?, serverName: String?,
                    peerCheck: UpstreamTLS? = nil, http2: Bool = false, timeout: TimeAmount, maxBytes: Int,
                    on eventLoop: EventLoop) -> EventLoopFuture<Response> {
        let request = OneShotRequest(path: path, hostHeader: hostHeader, scheme: tls == nil ? "http" : "https")
        return exchange(host: host, port: port, timeout: timeout, on: eventLoop) { channel, promise in
            let sync = channel.pipeline.syncOperations
            if let tls {
                try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                if let peerCheck {
                    // A wrong name closes the connection, which fails the request.
                    try sync.addHandler(UpstreamHandshakeHandler(tls: peerCheck, promise: channel.eventLoop.makePromise()))
                }
                try sync.addHandler(ProtocolSelector(request: request, promise: promise, maxBytes: maxBytes))
            } else {
                try request.start(http2: http2, on: channel, promise: promise, maxBytes: maxBytes)
            }
        }
    }

    /// One HTTP/1.1 POST in plaintext (an OTLP export to a local collector), on its own
    /// connection.
    static func post(host: String, port: Int, path: String, hostHeader: String, contentType: String, body: ByteBuffer,
                     timeout: TimeAmount, maxBytes: Int, on eventLoop: EventLoop) -> EventLoopFuture<Response> {
        exchange(host: host, port: port, timeout: timeout, on: eventLoop) { channel, promise in
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(HTTP1RequestWriter())
            try sync.addHandler(HTTP1ResponseReader())
            try sync.addHandler(ResponseCollector(promise: promise, maxBytes: maxBytes))
            let fields = HTTPFieldList([
                ("host", hostHeader), ("user-agent", "portico"), ("content-type", contentType),
                ("content-length", String(body.readableBytes)), ("connection", "close"),
            ])
            channel.write(RequestPart.head(RequestHead(method: "POST", target: path, version: .http1_1, fields: fields)),
                          promise: nil)
            channel.write(RequestPart.body(body), promise: nil)
            channel.writeAndFlush(RequestPart.end(nil), promise: nil)
        }
    }

    /// A connection made for one request: `setUp` adds the handlers (and may write the request)
    /// as the channel is initialized; the answer, a failure to connect or the deadline settles
    /// the promise, and the connection closes once it is settled.
    private static func exchange(host: String, port: Int, timeout: TimeAmount, on eventLoop: EventLoop,
                                 setUp: @escaping @Sendable (Channel, EventLoopPromise<Response>) throws -> Void)
        -> EventLoopFuture<Response> {
        let promise = eventLoop.makePromise(of: Response.self)
        let deadline = eventLoop.scheduleTask(in: timeout) {
            promise.fail(OneShotHTTPError("no complete answer within \(timeout.nanoseconds / 1_000_000) ms"))
        }
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try setUp(channel, promise) }
            }
            .connect(resolvingOnlyNames: host, port: port)
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    promise.fail(OneShotHTTPError("cannot connect: \(error)"))
                case .success(let channel):
                    promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                }
            }
        promise.futureResult.whenComplete { _ in deadline.cancel() }
        return promise.futureResult
    }

    /// The GET, ready to go out in either protocol once the channel is ready for it.
    private struct OneShotRequest {
        let path: String
        let hostHeader: String
        let scheme: String

        /// Adds the protocol's handlers behind what is in `channel`'s pipeline, and sends.
        func start(http2: Bool, on channel: Channel, promise: EventLoopPromise<Response>, maxBytes: Int) throws {
            let sync = channel.pipeline.syncOperations
            if http2 {
                try sync.addHandler(NIOHTTP2Handler(mode: .client))
                try sync.addHandler(HTTP2ResponseCollector(request: self, promise: promise, maxBytes: maxBytes))
                return
            }
            try sync.addHandler(HTTP1RequestWriter())
            try sync.addHandler(HTTP1ResponseReader())
            try sync.addHandler(ResponseCollector(promise: promise, maxBytes: maxBytes))
            let fields = HTTPFieldList([("host", hostHeader), ("user-agent", "portico"), ("connection", "close")])
            // Written once the channel is active: the bytes wait in the pipeline until then.
            channel.write(RequestPart.head(RequestHead(method: "GET", target: path, version: .http1_1, fields: fields)),
                          promise: nil)
            channel.writeAndFlush(RequestPart.end(nil), promise: nil)
        }

        var http2Headers: HPACKHeaders {
            HPACKHeaders([(":method", "GET"), (":scheme", scheme), (":path", path), (":authority", hostHeader),
                          ("user-agent", "portico")])
        }
    }

    /// Over TLS: waits for the handshake, then speaks what ALPN chose.
    private final class ProtocolSelector: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = NIOAny
        private let request: OneShotRequest
        private let promise: EventLoopPromise<Response>
        private let maxBytes: Int

        init(request: OneShotRequest, promise: EventLoopPromise<Response>, maxBytes: Int) {
            self.request = request
            self.promise = promise
            self.maxBytes = maxBytes
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case TLSUserEvent.handshakeCompleted(let negotiated) = event {
                do {
                    let channel = context.channel
                    context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                    try request.start(http2: negotiated == "h2", on: channel, promise: promise, maxBytes: maxBytes)
                } catch {
                    promise.fail(error)
                    context.close(promise: nil)
                }
            }
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// Reads the answer on stream 1 of an HTTP/2 connection.
    private final class HTTP2ResponseCollector: ChannelInboundHandler {
        typealias InboundIn = HTTP2Frame
        typealias OutboundOut = HTTP2Frame
        private let request: OneShotRequest
        private let promise: EventLoopPromise<Response>
        private let maxBytes: Int
        private var status = 0
        private var body: [UInt8] = []

        init(request: OneShotRequest, promise: EventLoopPromise<Response>, maxBytes: Int) {
            self.request = request
            self.promise = promise
            self.maxBytes = maxBytes
        }

        func handlerAdded(context: ChannelHandlerContext) {
            if context.channel.isActive { send(context) }
        }

        func channelActive(context: ChannelHandlerContext) {
            send(context)
            context.fireChannelActive()
        }

        private func send(_ context: ChannelHandlerContext) {
            let headers = HTTP2Frame(streamID: 1, payload: .headers(.init(headers: request.http2Headers, endStream: true)))
            context.writeAndFlush(wrapOutboundOut(headers), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            guard frame.streamID == 1 else { return }
            var ended = false
            switch frame.payload {
            case .headers(let headers):
                if status == 0, let value = headers.headers.first(name: ":status"), let code = Int(value), code >= 200 {
                    status = code
                }
                ended = headers.endStream
            case .data(let payload):
                if case .byteBuffer(let buffer) = payload.data {
                    guard body.count + buffer.readableBytes <= maxBytes else {
                        promise.fail(OneShotHTTPError("the answer is larger than \(maxBytes) bytes"))
                        context.close(promise: nil)
                        return
                    }
                    body.append(contentsOf: buffer.readableBytesView)
                }
                ended = payload.endStream
            case .rstStream(let code):
                promise.fail(OneShotHTTPError("the stream was reset (\(code))"))
                context.close(promise: nil)
                return
            default:
                return
            }
            if ended {
                promise.succeed(Response(status: status, body: body))
                context.close(promise: nil)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            promise.fail(error)
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(OneShotHTTPError("the connection closed before the answer was complete"))
        }
    }

    private final class ResponseCollector: ChannelInboundHandler {
        typealias InboundIn = ResponsePart
        private let promise: EventLoopPromise<Response>
        private let maxBytes: Int
        private var status = 0
        private var body: [UInt8] = []

        init(promise: EventLoopPromise<Response>, maxBytes: Int) {
            self.promise = promise
            self.maxBytes = maxBytes
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                status = head.status
            case .body(let buffer):
                guard body.count + buffer.readableBytes <= maxBytes else {
                    promise.fail(OneShotHTTPError("the answer is larger than \(maxBytes) bytes"))
                    context.close(promise: nil)
                    return
                }
                body.append(contentsOf: buffer.readableBytesView)
            case .end:
                promise.succeed(Response(status: status, body: body))
                context.close(promise: nil)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            promise.fail(error)
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(OneShotHTTPError("the connection closed before the answer was complete"))
        }
    }
}

struct OneShotHTTPError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Fetches a JWKS document over HTTP or HTTPS (the system's trusted roots): 1 MiB, 10 s.
enum JWKSFetcher {
    static func fetch(_ url: String) async throws -> [UInt8] {
        guard let target = Target(url) else { throw OneShotHTTPError("not an http(s) URL") }
        let tls = target.tls ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
        let response = try await OneShotHTTPClient.get(
            host: target.endpoint.host, port: target.endpoint.port, path: target.path, hostHeader: target.hostHeader,
            tls: tls, serverName: target.tls && !target.endpoint.hostIsIPAddress ? target.endpoint.host : nil,
            timeout: .seconds(10), maxBytes: 1 << 20, on: MultiThreadedEventLoopGroup.singleton.next()).get()
        guard response.status == 200 else { throw OneShotHTTPError("the server answered \(response.status)") }
        return response.body
    }

    private struct Target {
        let tls: Bool
        let endpoint: HostPort
        let path: String
        let hostHeader: String

        init?(_ url: String) {
            let rest: Substring
            if url.hasPrefix("https://") {
                tls = true
                rest = url.dropFirst(8)
            } else if url.hasPrefix("http://") {
                tls = false
                rest = url.dropFirst(7)
            } else {
                return nil
            }
            let authority = rest.prefix { $0 != "/" && $0 != "?" }
            let pathPart = rest.dropFirst(authority.count)
            path = pathPart.isEmpty ? "/" : String(pathPart)
            hostHeader = String(authority)
            // Without a port (after any IPv6 brackets), the scheme's.
            let hasPort = authority.lastIndex(of: ":").map { colon in !authority[colon...].contains("]") } ?? false
            guard let endpoint = HostPort.parse(hasPort ? String(authority) : authority + (tls ? ":443" : ":80")) else {
                return nil
            }
            self.endpoint = endpoint
        }
    }
}

/// The status of one HTTP/2 (prior knowledge) GET to a loopback port, for a function worker
/// that speaks h2c and has a readiness path.
public enum HTTP2ReadinessCheck {
    public static func status(port: Int, path: String, timeout: TimeAmount, on eventLoop: EventLoop) -> EventLoopFuture<Int> {
        OneShotHTTPClient.get(host: "127.0.0.1", port: port, path: path, hostHeader: "127.0.0.1:\(port)", tls: nil,
                              serverName: nil, http2: true, timeout: timeout, maxBytes: 64 * 1024, on: eventLoop)
            .map(\.status)
    }
}
