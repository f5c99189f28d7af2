import NIOCore
import NIOEmbedded
import NIOHTTP1
import PorticoConfig
@testable import PorticoProxy
import XCTest

/// The downstream pipeline on an `EmbeddedChannel`: request bytes in, exact response bytes out.
/// Only answers the gateway writes itself are tested here; proxying needs real sockets and is
/// covered end to end.
final class ProxyHandlerTests: XCTestCase {
    private func makeChannel(routes: [RouteConfig], services: [ServiceConfig] = [],
                             limits: LimitsConfig = LimitsConfig()) throws -> EmbeddedChannel {
        let config = GatewayConfig(
            sourceFile: "test.yaml",
            listeners: [ListenerConfig(name: "public", address: HostPort(host: "127.0.0.1", port: 0))],
            admin: nil, limits: limits, services: services, routes: routes)
        let channel = EmbeddedChannel()
        let loop = LoopContext(eventLoop: channel.embeddedEventLoop, loopIndex: 0,
                               snapshot: try RuntimeSnapshot(config: config, generation: 1),
                               metrics: GatewayMetrics(), accessLogWriter: nil)
        let info = DownstreamConnectionInfo(scheme: "http", listenerName: "public", clientAddress: "192.0.2.1",
                                            protocolName: "HTTP/1.1")
        try ServerPipeline.addHTTP1Handlers(channel.pipeline.syncOperations, maxRequestHeaders: limits.maxRequestHeaders,
                                            idleTimeout: .seconds(60))
        try channel.pipeline.syncOperations.addHandler(ProxyHandler(loop: loop, connection: info))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        return channel
    }

    private func route(_ index: Int, _ match: RouteMatch, _ action: RouteAction) -> RouteConfig {
        RouteConfig(index: index, name: "route-\(index)", match: match, action: action,
                    location: SourceLocation(file: "test.yaml", line: index + 1, column: 3))
    }

    private func send(_ channel: EmbeddedChannel, _ text: String) throws -> String {
        _ = try? channel.writeInbound(ByteBuffer(string: text))
        var output = ""
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            output += buffer.readString(length: buffer.readableBytes) ?? ""
        }
        return output
    }

    func testDirectResponseBytes() throws {
        let channel = try makeChannel(routes: [
            route(0, RouteMatch(path: .exact("/ping")), .directResponse(DirectResponseConfig(status: 200, body: "pong"))),
        ])
        let output = try send(channel, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(output, "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 4\r\n\r\npong")
        XCTAssertTrue(channel.isActive, "keep-alive: the connection stays open")
    }

    /// The request reader parses nothing after a CONNECT (what follows is the tunnel's), so a
    /// connection kept open after answering one would hang: it closes.
    func testAnAnswerToCONNECTClosesTheConnection() throws {
        let channel = try makeChannel(routes: [
            route(0, RouteMatch(path: .exact("/ping")), .directResponse(DirectResponseConfig(status: 200, body: "pong"))),
        ])
        let output = try send(channel, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        XCTAssertTrue(output.hasPrefix("HTTP/1.1 "), output)
        XCTAssertTrue(output.contains("connection: close\r\n"), output)
        XCTAssertFalse(channel.isActive)
    }

    /// Every HTTP/2 stream gets its own handler: one kept alive after its stream closed is a
    /// leak per request (it was: the handler and its channel context held each other).
    func testTheHandlerIsFreedWhenItsChannelCloses() throws {
        weak var freed: ProxyHandler?
        try {
            let channel = try makeChannel(routes: [
                route(0, RouteMatch(path: .exact("/ping")), .directResponse(DirectResponseConfig(status: 200, body: "pong"))),
            ])
            freed = try channel.pipeline.syncOperations.handler(type: ProxyHandler.self)
            XCTAssertTrue(try send(channel, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n").hasSuffix("pong"))
            _ = try channel.finish()
        }()
        XCTAssertNil(freed, "the handler outlived its channel")
    }

    /// The handler's timers and waits hold it strongly (a weak reference would send every
    /// retain and release of it down the runtime's slow path): a client that leaves while its
    /// request waits must still let it go.
    func testTheHandlerIsFreedWhenItsClientLeavesDuringAFaultDelay() throws {
        weak var freed: ProxyHandler?
        // Outlives the channel, as a real loop does: a task not cancelled would stay in it.
        var loop: EmbeddedEventLoop?
        try {
            var delayed = route(0, RouteMatch(path: .prefix("/")), .service("backend"))
            delayed.fault = FaultConfig(delay: .init(percent: 100, duration: .seconds(30)))
            let channel = try makeChannel(
                routes: [delayed], services: [ServiceConfig(name: "backend", endpoints: [HostPort(host: "127.0.0.1", port: 9)])])
            loop = channel.embeddedEventLoop
            freed = try channel.pipeline.syncOperations.handler(type: ProxyHandler.self)
            XCTAssertEqual(try send(channel, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"), "", "the request waits out its delay")
            // Not `finish()`, which runs every scheduled task and so would free it anyway; only
            // what is due now runs (the pipeline's teardown).
            try channel.close().wait()
            channel.embeddedEventLoop.run()
        }()
        XCTAssertNil(freed, "the delay's task still holds the handler after its client left")
        try loop?.syncShutdownGracefully()
    }

    func testHeadGetsHeadersWithoutBody() throws {
        let channel = try makeChannel(routes: [
            route(0, RouteMatch(path: .exact("/ping")), .directResponse(DirectResponseConfig(status: 200, body: "pong"))),
        ])
        let output = try send(channel, "HEAD /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(output, "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 4\r\n\r\n")
    }

    func testNoRouteIs404() throws {
        let channel = try makeChannel(routes: [])
        let output = try send(channel, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(output, "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 10\r\n\r\nnot found\n")
    }

    func testLocalAnswerWaitsForTheRequestBody() throws {
        let channel = try makeChannel(routes: [])
        XCTAssertEqual(try send(channel, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc"), "",
                       "nothing is written while the body is still arriving")
        XCTAssertTrue(try send(channel, "def").hasPrefix("HTTP/1.1 404 Not Found\r\n"))
    }

    func testRedirectLocation() throws {
        let channel = try makeChannel(routes: [
            route(0, RouteMatch(path: .prefix("/old/")), .redirect(RedirectConfig(scheme: "https", prefix: "/new/", status: 308))),
        ])
        let output = try send(channel, "GET /old/a?b=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        XCTAssertTrue(output.hasPrefix("HTTP/1.1 308 Permanent Redirect\r\n"), output)
        XCTAssertTrue(output.contains("location: https://example.com/new/a?b=1\r\n"), output)
    }

    func testBadPathIs400() throws {
        let channel = try makeChannel(routes: [route(0, RouteMatch(), .directResponse(DirectResponseConfig(status: 204)))])
        XCTAssertTrue(try send(channel, "GET /a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n").hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        XCTAssertTrue(try send(channel, "GET /../x HTTP/1.1\r\nHost: x\r\n\r\n").hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
    }

    func testMissingHostIs400() throws {
        let channel = try makeChannel(routes: [route(0, RouteMatch(), .directResponse(DirectResponseConfig(status: 204)))])
        XCTAssertTrue(try send(channel, "GET / HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
    }

    func testDeclaredBodyOverTheLimitIs413AndCloses() throws {
        var limits = LimitsConfig()
        limits.maxRequestBody = 10
        let channel = try makeChannel(routes: [route(0, RouteMatch(), .directResponse(DirectResponseConfig(status: 204)))],
                                      limits: limits)
        let output = try send(channel, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n")
        XCTAssertTrue(output.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"), output)
        XCTAssertTrue(output.contains("connection: close\r\n"), output)
        channel.embeddedEventLoop.run()
        XCTAssertFalse(channel.isActive)
    }

    func testContentLengthWithTransferEncodingIs400AndCloses() throws {
        let channel = try makeChannel(routes: [route(0, RouteMatch(), .directResponse(DirectResponseConfig(status: 204)))])
        let output = try send(channel, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        XCTAssertTrue(output.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), output)
        channel.embeddedEventLoop.run()
        XCTAssertFalse(channel.isActive)
    }

    func testHeaderSectionOverTheLimitIs431() throws {
        var limits = LimitsConfig()
        limits.maxRequestHeaders = 1024
        let channel = try makeChannel(routes: [route(0, RouteMatch(), .directResponse(DirectResponseConfig(status: 204)))],
                                      limits: limits)
        let output = try send(channel, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 2000))\r\n\r\n")
        XCTAssertTrue(output.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"), output)
    }

    func testGarbageIs400() throws {
        let channel = try makeChannel(routes: [])
        let output = try send(channel, "NOT HTTP AT ALL\r\n\r\n")
        XCTAssertEqual(output, "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
    }
}
