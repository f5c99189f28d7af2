import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Fetches a JWKS document over HTTP or HTTPS: one GET, no redirects, 1 MiB at most, 10 s.
///
/// A few dozen lines of NIO rather than an HTTP client library: a key set is fetched every few
/// minutes, and the gateway already carries NIO, NIOHTTP1 and NIOSSL.
enum JWKSFetcher {
    static let maxBytes = 1 << 20
    static let timeout = TimeAmount.seconds(10)

    static func fetch(_ url: String) async throws -> [UInt8] {
        guard let target = Target(url) else { throw JWKSFetchError("not an http(s) URL") }
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: [UInt8].self)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if target.tls {
                        let context = try NIOSSLContext(configuration: .makeClientConfiguration())
                        try sync.addHandler(NIOSSLClientHandler(context: context, serverHostname: target.host))
                    }
                    try sync.addHTTPClientHandlers()
                    try sync.addHandler(ResponseCollector(promise: promise))
                }
            }
        let channel: Channel
        do {
            channel = try await bootstrap.connect(host: target.host, port: target.port).get()
        } catch {
            promise.fail(error)
            throw JWKSFetchError("cannot connect: \(error)")
        }
        let deadline = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(JWKSFetchError("no complete answer within \(timeout)"))
        }
        var headers = HTTPHeaders([("host", target.hostHeader), ("accept", "application/json"), ("connection", "close")])
        headers.add(name: "user-agent", value: "portico")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target.path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        defer {
            deadline.cancel()
            channel.close(promise: nil)
        }
        return try await promise.futureResult.get()
    }

    private struct Target {
        let tls: Bool
        let host: String
        let port: Int
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
            if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
                host = String(authority[authority.index(after: authority.startIndex)..<close])
                let after = authority[authority.index(after: close)...]
                port = after.hasPrefix(":") ? Int(after.dropFirst()) ?? -1 : (tls ? 443 : 80)
            } else if let colon = authority.lastIndex(of: ":") {
                host = String(authority[..<colon])
                port = Int(authority[authority.index(after: colon)...]) ?? -1
            } else {
                host = String(authority)
                port = tls ? 443 : 80
            }
            guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        }
    }

    private final class ResponseCollector: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        private let promise: EventLoopPromise<[UInt8]>
        private var status: HTTPResponseStatus?
        private var body: [UInt8] = []

        init(promise: EventLoopPromise<[UInt8]>) { self.promise = promise }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                status = head.status
            case .body(let buffer):
                guard body.count + buffer.readableBytes <= JWKSFetcher.maxBytes else {
                    promise.fail(JWKSFetchError("the answer is larger than 1 MiB"))
                    context.close(promise: nil)
                    return
                }
                body.append(contentsOf: buffer.readableBytesView)
            case .end:
                if status == .ok {
                    promise.succeed(body)
                } else {
                    promise.fail(JWKSFetchError("the server answered \(status.map { "\($0.code)" } ?? "nothing")"))
                }
                context.close(promise: nil)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            promise.fail(error)
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(JWKSFetchError("the connection closed before the answer was complete"))
        }
    }
}

struct JWKSFetchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
