import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import PorticoConfig
import PorticoHTTP1
@testable import PorticoProxy
import XCTest

/// The HTTP/2 connection handler on an `EmbeddedChannel`, frames in and frames out, with no
/// `NIOHTTP2Handler` in front: what it does with a stream's frames and events, and that each
/// stream's `ProxyHandler` goes when the stream does (a leak here is one per request).
final class HTTP2ServerConnectionTests: XCTestCase {
    private var channel: EmbeddedChannel!
    private var connection: HTTP2ServerConnection!

    override func setUpWithError() throws {
        try makeConnection(idleTimeout: .seconds(60))
    }

    private func makeConnection(idleTimeout: TimeAmount) throws {
        var slow = RouteConfig(index: 1, name: "slow", match: RouteMatch(path: .prefix("/slow")), action: .service("backend"),
                               location: SourceLocation(file: "test.yaml", line: 2, column: 3))
        slow.fault = FaultConfig(delay: .init(percent: 100, duration: .seconds(30)))
        let config = GatewayConfig(
            sourceFile: "test.yaml",
            listeners: [ListenerConfig(name: "public", address: HostPort(host: "127.0.0.1", port: 0))],
            admin: nil, limits: LimitsConfig(),
            services: [ServiceConfig(name: "backend", endpoints: [HostPort(host: "127.0.0.1", port: 9)])],
            routes: [
                RouteConfig(index: 0, name: "ping", match: RouteMatch(path: .exact("/ping")),
                            action: .directResponse(DirectResponseConfig(status: 200, body: "pong")),
                            location: SourceLocation(file: "test.yaml", line: 1, column: 3)),
                slow,
            ])
        channel = EmbeddedChannel()
        let loop = LoopContext(eventLoop: channel.embeddedEventLoop, loopIndex: 0,
                               snapshot: try RuntimeSnapshot(config: config, generation: 1),
                               metrics: GatewayMetrics(), accessLogWriter: nil)
        let info = DownstreamConnectionInfo(scheme: "http", listenerName: "public", clientAddress: "192.0.2.1",
                                            protocolName: "HTTP/2")
        connection = HTTP2ServerConnection(loop: loop, connection: info, idleTimeout: idleTimeout)
        try channel.pipeline.syncOperations.addHandler(connection)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
    }

    override func tearDownWithError() throws {
        _ = try? channel.finish()
    }

    private func request(_ path: String, stream: HTTP2StreamID, endStream: Bool = true) throws {
        let fields = HPACKHeaders([(":method", "GET"), (":scheme", "http"), (":path", path), (":authority", "x")])
        try channel.writeInbound(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: fields, endStream: endStream))))
    }

    private func written() throws -> [HTTP2Frame] {
        var frames: [HTTP2Frame] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.self) { frames.append(frame) }
        return frames
    }

    func testAnAnswerBecomesHeadersAndDataAndTheStreamsHandlerIsFreedWhenItCloses() throws {
        weak var freed: ProxyHandler?
        try request("/ping", stream: 1)
        freed = connection.streams[1]?.proxy
        XCTAssertNotNil(freed)
        let frames = try written()
        // The last DATA frame carries END_STREAM itself: no empty DATA frame behind it.
        guard frames.count == 2, case .headers(let head) = frames[0].payload, case .data(let body) = frames[1].payload
        else { return XCTFail("\(frames)") }
        XCTAssertEqual(head.headers[":status"], ["200"])
        XCTAssertEqual(head.headers["content-length"], ["4"])
        XCTAssertFalse(head.endStream)
        guard case .byteBuffer(let bytes) = body.data else { return XCTFail("no bytes") }
        XCTAssertEqual(String(buffer: bytes), "pong")
        XCTAssertTrue(body.endStream)
        // NIOHTTP2Handler reports the stream closed once both sides ended.
        channel.pipeline.fireUserInboundEventTriggered(StreamClosedEvent(streamID: 1, reason: nil))
        XCTAssertTrue(connection.streams.isEmpty)
        XCTAssertNil(freed, "the stream's handler outlived its stream")
    }

    func testAClientResetEndsTheExchangeAndFreesItsHandler() throws {
        weak var freed: ProxyHandler?
        try request("/slow", stream: 3)
        freed = connection.streams[3]?.proxy
        XCTAssertNotNil(freed)
        XCTAssertTrue(try written().isEmpty, "the request waits out its delay")
        try channel.writeInbound(HTTP2Frame(streamID: 3, payload: .rstStream(.cancel)))
        channel.embeddedEventLoop.run()
        XCTAssertTrue(connection.streams.isEmpty)
        XCTAssertNil(freed, "the reset stream's handler is still held")
    }

    func testAGatewayResetFreesTheHandlerToo() throws {
        weak var freed: ProxyHandler?
        try request("/slow", stream: 5, endStream: false)
        freed = connection.streams[5]?.proxy
        // Trailers without END_STREAM are malformed: this side resets the stream.
        try channel.writeInbound(HTTP2Frame(streamID: 5, payload: .headers(.init(headers: HPACKHeaders([("x-t", "1")])))))
        let frames = try written()
        guard case .rstStream(let code) = frames.last?.payload else { return XCTFail("\(frames)") }
        XCTAssertEqual(code, .protocolError)
        channel.embeddedEventLoop.run()
        XCTAssertNil(freed)
    }

    func testRequestBodyCreditIsReturnedOnlyAsTheBodyIsTaken() throws {
        // /ping answers at once and drops the body it is sent: every byte is taken at the end
        // of its read burst (`writeInbound` ends one), and the window comes back in one
        // WINDOW_UPDATE once half of it is used, never before.
        try request("/ping", stream: 7, endStream: false)
        _ = try written()
        var updates: [[Int]] = []
        for _ in 0..<3 {
            try channel.writeInbound(HTTP2Frame(streamID: 7, payload: .data(.init(data: .byteBuffer(ByteBuffer(repeating: 1, count: 16_384))))))
            updates.append(try written().compactMap { frame -> Int? in
                if case .windowUpdate(let increment) = frame.payload, frame.streamID == 7 { return increment }
                return nil
            })
        }
        XCTAssertEqual(updates, [[], [32_768], []])
    }

    /// The idle timeout counts from when the last stream closed, and never while one is open:
    /// a GOAWAY (NO_ERROR) then closes the connection.
    func testTheConnectionGoesAwayAfterTheIdleTimeoutWithNoStreamOpen() throws {
        func goAways() throws -> [HTTP2ErrorCode] {
            try written().compactMap { frame in
                if case .goAway(_, let code, _) = frame.payload { return code }
                return nil
            }
        }
        // A connection with a timeout shorter than the /slow route's 30 s fault delay.
        _ = try? channel.finish()
        try makeConnection(idleTimeout: .seconds(10))
        // A stream held open across a whole timeout and more.
        channel.embeddedEventLoop.advanceTime(by: .seconds(8))
        try request("/slow", stream: 1, endStream: false)
        channel.embeddedEventLoop.advanceTime(by: .seconds(15))
        XCTAssertEqual(try goAways(), [], "a stream is open")
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .rstStream(.cancel)))
        channel.embeddedEventLoop.run()
        XCTAssertTrue(connection.streams.isEmpty)
        // Another stream, answered at once, a little later: the clock starts again when it ends.
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        try request("/ping", stream: 3)
        channel.pipeline.fireUserInboundEventTriggered(StreamClosedEvent(streamID: 3, reason: nil))
        XCTAssertTrue(connection.streams.isEmpty)
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        XCTAssertEqual(try goAways(), [], "idle for less than the timeout")
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        XCTAssertEqual(try goAways(), [.noError])
        XCTAssertFalse(channel.isActive, "the connection closes after its GOAWAY")
    }

    // MARK: What NIO's header and content-length checks did (they are off: ServerPipeline)

    private func post(_ path: String, stream: HTTP2StreamID, contentLength: String, endStream: Bool = false) throws {
        let fields = HPACKHeaders([(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "x"),
                                   ("content-length", contentLength)])
        try channel.writeInbound(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: fields, endStream: endStream))))
    }

    private func data(_ count: Int, stream: HTTP2StreamID, endStream: Bool) throws {
        let payload = HTTP2Frame.FramePayload.Data(data: .byteBuffer(ByteBuffer(repeating: 0x61, count: count)), endStream: endStream)
        try channel.writeInbound(HTTP2Frame(streamID: stream, payload: .data(payload)))
    }

    private func resets() throws -> [HTTP2StreamID: HTTP2ErrorCode] {
        var codes: [HTTP2StreamID: HTTP2ErrorCode] = [:]
        for frame in try written() {
            if case .rstStream(let code) = frame.payload { codes[frame.streamID] = code }
        }
        return codes
    }

    /// RFC 9113 8.1.1: a body that ends short of its `content-length`, or runs past it, makes
    /// the request malformed: the stream is reset and its exchange ends.
    func testABodyThatDisagreesWithItsContentLengthResetsTheStream() throws {
        try post("/slow", stream: 1, contentLength: "10")
        try data(5, stream: 1, endStream: true)
        try post("/slow", stream: 3, contentLength: "2")
        try data(5, stream: 3, endStream: false)
        // No body at all for a declared 5: the HEADERS frame ends the stream.
        try post("/slow", stream: 5, contentLength: "5", endStream: true)
        XCTAssertEqual(try resets(), [1: .protocolError, 3: .protocolError, 5: .protocolError])
        channel.embeddedEventLoop.run()
        XCTAssertTrue(connection.streams.isEmpty)
    }

    func testABodyThatMatchesItsContentLengthGoesThrough() throws {
        try post("/slow", stream: 1, contentLength: "10")
        try data(4, stream: 1, endStream: false)
        try data(6, stream: 1, endStream: true)
        // A length the framing check refuses is left to it: the answer is a 400, not a reset.
        try post("/slow", stream: 3, contentLength: "ten", endStream: true)
        let frames = try written()
        XCTAssertFalse(frames.contains { frame in
            if case .rstStream(let code) = frame.payload { return code == .protocolError }
            return false
        }, "\(frames)")
        XCTAssertNotNil(connection.streams[1])
        let status = frames.first { $0.streamID == 3 }.flatMap { frame -> String? in
            if case .headers(let head) = frame.payload { return head.headers.first(name: ":status") }
            return nil
        }
        XCTAssertEqual(status, "400")
    }

    /// A response field that cannot go out as it is never reaches the client: the stream is
    /// reset, as NIO's own check of outbound header blocks did.
    func testAnAnswerWithAFieldThatIsNoTokenResetsTheStream() throws {
        try request("/slow", stream: 1, endStream: true)
        guard let stream = connection.streams[1] else { return XCTFail("no stream") }
        var fields = HTTPFieldList()
        fields.append(name: "content-type", value: "text/plain")
        fields.append(name: "bad name", value: "x")
        let written = channel.embeddedEventLoop.makePromise(of: Void.self)
        stream.write(.head(ResponseHead(status: 200, version: .http2, fields: fields)), promise: written)
        XCTAssertThrowsError(try written.futureResult.wait())
        let frames = try self.written()
        XCTAssertFalse(frames.contains { if case .headers = $0.payload { return true } else { return false } }, "\(frames)")
        let codes = frames.compactMap { frame -> HTTP2ErrorCode? in
            if case .rstStream(let code) = frame.payload { return code }
            return nil
        }
        XCTAssertEqual(codes, [.internalError])
    }

    /// The same for trailers, while the request is still open: INTERNAL_ERROR, not the NO_ERROR
    /// that tells a client its answer came whole before its request did.
    func testTrailersWithAFieldThatIsNoTokenResetTheStreamAsAnError() throws {
        try request("/slow", stream: 1, endStream: false)
        guard let stream = connection.streams[1] else { return XCTFail("no stream") }
        stream.write(.head(ResponseHead(status: 200, version: .http2, fields: HTTPFieldList())), promise: nil)
        var trailers = HTTPFieldList()
        trailers.append(name: "grpc status", value: "0")
        let written = channel.embeddedEventLoop.makePromise(of: Void.self)
        stream.write(.end(trailers), promise: written)
        XCTAssertThrowsError(try written.futureResult.wait())
        channel.embeddedEventLoop.run()
        let codes = try self.written().compactMap { frame -> HTTP2ErrorCode? in
            if case .rstStream(let code) = frame.payload { return code }
            return nil
        }
        XCTAssertEqual(codes, [.internalError])
    }
}
