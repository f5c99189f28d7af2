import NIOCore
import NIOPosix
import NIOSSL
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
    static func get(host: String, port: Int, path: String, hostHeader: String, tls: NIOSSLContext?, serverName: String?,
                    peerCheck: UpstreamTLS? = nil, timeout: TimeAmount, maxBytes: Int,
                    on eventLoop: EventLoop) -> EventLoopFuture<Response> {
        let promise = eventLoop.makePromise(of: Response.self)
        let deadline = eventLoop.scheduleTask(in: timeout) {
            promise.fail(OneShotHTTPError("no complete answer within \(timeout.nanoseconds / 1_000_000) ms"))
        }
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                        if let peerCheck {
                            // A wrong name closes the connection, which fails the request.
                            try sync.addHandler(UpstreamHandshakeHandler(tls: peerCheck, promise: channel.eventLoop.makePromise()))
                        }
                    }
                    try sync.addHandler(HTTP1RequestWriter())
                    try sync.addHandler(HTTP1ResponseReader())
                    try sync.addHandler(ResponseCollector(promise: promise, maxBytes: maxBytes))
                }
            }
            .connect(host: host, port: port)
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    promise.fail(OneShotHTTPError("cannot connect: \(error)"))
                case .success(let channel):
                    let fields = HTTPFieldList([("host", hostHeader), ("user-agent", "portico"), ("connection", "close")])
                    channel.write(RequestPart.head(RequestHead(method: "GET", target: path, version: .http1_1, fields: fields)),
                                  promise: nil)
                    channel.writeAndFlush(RequestPart.end(nil), promise: nil)
                    promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                }
            }
        promise.futureResult.whenComplete { _ in deadline.cancel() }
        return promise.futureResult
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
