import NIOCore
import NIOEmbedded
import NIOHTTP1
import PorticoHTTP1
@testable import PorticoProxy
import XCTest

/// Counts the reads that reach the socket end of the pipeline.
private final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    var reads = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

/// Stands in for the `ProxyHandler`: records the request parts it is handed.
private final class RequestRecorder: ChannelInboundHandler {
    typealias InboundIn = RequestPart
    typealias OutboundOut = ResponsePart
    var parts: [RequestPart] = []
    var events: [Any] = []

    var heads: [String] {
        parts.compactMap { if case .head(let head) = $0 { return head.target } else { return nil } }
    }

    /// A request with this target closes the connection as soon as it arrives, as the
    /// `ProxyHandler` does after a local answer to an HTTP/1.0 request.
    var closeOn: String?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        parts.append(part)
        if case .head(let head) = part, head.target == closeOn { context.close(promise: nil) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        events.append(event)
    }

    var closeOnError = true

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if closeOnError { context.close(promise: nil) }
    }
}

final class HTTP1ServerConnectionTests: XCTestCase {
    private var channel: EmbeddedChannel!
    private var recorder: RequestRecorder!
    private var readCounter: ReadCounter!

    override func setUpWithError() throws {
        channel = EmbeddedChannel()
        recorder = RequestRecorder()
        readCounter = ReadCounter()
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(readCounter)
        try ServerPipeline.addHTTP1Handlers(sync, maxRequestHeaders: 1024, idleTimeout: .seconds(30))
        try sync.addHandler(recorder)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
    }

    override func tearDownWithError() throws {
        _ = try? channel.finish()
    }

    private func receive(_ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    private func respond(_ parts: [ResponsePart], flush: Bool = true) {
        for part in parts { channel.write(part, promise: nil) }
        if flush { channel.flush() }
    }

    /// Every buffer written to the socket, as text; empty writes (which carry only a promise)
    /// put nothing on the wire and are left out.
    private func written() throws -> [String] {
        var buffers: [String] = []
        while let data = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let buffer) = data else { XCTFail("not a buffer"); break }
            if buffer.readableBytes > 0 { buffers.append(String(buffer: buffer)) }
        }
        return buffers
    }

    private func head(_ status: Int, _ headers: [(String, String)] = [], reason: String? = nil,
                      version: HTTPProtocolVersion = .http1_1) -> ResponsePart {
        .head(ResponseHead(status: status, reason: reason, version: version, fields: HTTPFieldList(headers)))
    }

    private func body(_ text: String) -> ResponsePart {
        .body(ByteBuffer(string: text))
    }

    func testResponseLeavesInOneWrite() throws {
        try receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        respond([head(200, [("content-length", "5")]), body("hel"), body("lo"), .end(nil)])
        XCTAssertEqual(try written(), ["HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"])
    }

    func testResponseWithoutLengthIsChunked() throws {
        try receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        respond([head(200, [("x-a", "1")]), body(String(repeating: "z", count: 26)), .end(nil)])
        XCTAssertEqual(try written(), [
            "HTTP/1.1 200 OK\r\nx-a: 1\r\ntransfer-encoding: chunked\r\n\r\n1a\r\n" + String(repeating: "z", count: 26) + "\r\n0\r\n\r\n",
        ])
    }

    func testChunkedTrailers() throws {
        try receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        respond([head(200, [("transfer-encoding", "chunked")]), body("ab"), .end(HTTPFieldList([("grpc-status", "0")]))])
        XCTAssertEqual(try written(), [
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n0\r\ngrpc-status: 0\r\n\r\n",
        ])
    }

    func testHTTP10ResponseWithoutLengthIsNotChunked() throws {
        try receive("GET / HTTP/1.0\r\n\r\n")
        respond([head(200, version: .http1_0), body("raw"), .end(nil)])
        // The connection's close ends the body, and the head says it will.
        XCTAssertEqual(try written(), ["HTTP/1.0 200 OK\r\nconnection: close\r\n\r\nraw"])
    }

    /// An HTTP/1.0 client that asked for keep-alive cannot tell where a body without a length
    /// ends unless the connection does: it is told so, and the connection closes after it.
    func testAnHTTP10KeepAliveClientGetsABodyWithoutLengthThenTheClose() throws {
        try receive("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        respond([head(200, version: .http1_0), body("raw"), .end(nil)])
        XCTAssertEqual(try written(), ["HTTP/1.0 200 OK\r\nconnection: close\r\n\r\nraw"])
        XCTAssertFalse(channel.isActive, "the end of the body is the end of the connection")
    }

    func testLargeBodyIsPassedOnWithoutCopying() throws {
        try receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let large = String(repeating: "b", count: OutboundGatherer.copyLimit + 1)
        respond([head(200, [("content-length", String(large.utf8.count))]), body(large), .end(nil)])
        XCTAssertEqual(try written(), ["HTTP/1.1 200 OK\r\ncontent-length: 4097\r\n\r\n", large])
    }

    func testResponseToHEADHasNoBody() throws {
        try receive("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        let bodyWrite = channel.eventLoop.makePromise(of: Void.self)
        channel.write(head(200, [("content-length", "5")]), promise: nil)
        channel.write(body("hello"), promise: bodyWrite)
        channel.writeAndFlush(ResponsePart.end(nil), promise: nil)
        XCTAssertThrowsError(try bodyWrite.futureResult.wait())
        XCTAssertEqual(try written(), ["HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"])
    }

    func testNoContentLosesFramingHeaders() throws {
        try receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        respond([head(204, [("content-length", "0"), ("x-a", "1")]), .end(nil)])
        XCTAssertEqual(try written(), ["HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n"])
    }

    func testInterimResponseThenFinal() throws {
        try receive("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        respond([head(100)])
        respond([head(200, [("content-length", "0")]), .end(nil)])
        XCTAssertEqual(try written(), ["HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"])
    }

    func testHeaderThatWouldSplitTheResponseIsRefused() throws {
        try receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let headWrite = channel.eventLoop.makePromise(of: Void.self)
        channel.write(head(200, [("x-a", "1\r\nset-cookie: evil=1")]), promise: headWrite)
        channel.flush()
        XCTAssertThrowsError(try headWrite.futureResult.wait())
        XCTAssertEqual(try written(), [])
        XCTAssertFalse(channel.isActive, "the connection is closed rather than answered half")
    }

    func testAnUpstreamReasonPhraseIsPassedOnUnlessItHasAControlCharacter() throws {
        try receive("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        respond([head(299, [("content-length", "0")], reason: "Fine, Thanks"), .end(nil)])
        respond([head(200, [("content-length", "0")], reason: "OK\u{01}\u{7F}"), .end(nil)])
        XCTAssertEqual(try written(), ["HTTP/1.1 299 Fine, Thanks\r\ncontent-length: 0\r\n\r\n",
                                       "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"])
    }

    func testBadHeaderNameIsRefused() throws {
        try receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let headWrite = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(head(200, [("x a", "1")]), promise: headWrite)
        XCTAssertThrowsError(try headWrite.futureResult.wait())
        XCTAssertEqual(try written(), [])
    }

    func testPipelinedRequestWaitsForTheResponse() throws {
        try receive("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(recorder.heads, ["/a"], "the second request waits")
        respond([head(200, [("content-length", "1")]), body("a"), .end(nil)])
        XCTAssertEqual(recorder.heads, ["/a"], "handed on after the write, not inside it")
        channel.embeddedEventLoop.run()
        XCTAssertEqual(recorder.heads, ["/a", "/b"])
        respond([head(200, [("content-length", "1")]), body("b"), .end(nil)])
        XCTAssertEqual(try written(), ["HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na", "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb"])
    }

    func testAPipelinedRequestThatClosesTheConnectionEndsTheQueue() throws {
        recorder.closeOn = "/close"
        try receive("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /close HTTP/1.0\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        respond([head(200, [("content-length", "0")]), .end(nil)])
        channel.embeddedEventLoop.run()
        XCTAssertEqual(recorder.heads, ["/a", "/close"], "nothing is handed on after the close")
        XCTAssertFalse(channel.isActive)
    }

    func testAClientThatShutsItsSideStillGetsItsAnswer() throws {
        try receive("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertTrue(channel.isActive, "the answer is still coming")
        respond([head(200, [("content-length", "1")]), body("a"), .end(nil)])
        channel.embeddedEventLoop.run()
        XCTAssertEqual(try written(), ["HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na"])
        XCTAssertFalse(channel.isActive, "closed after the last answer")
    }

    func testAClientThatShutsItsSideWhileIdleIsClosed() throws {
        try receive("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        respond([head(200, [("content-length", "0")]), .end(nil)])
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        channel.embeddedEventLoop.run()
        XCTAssertFalse(channel.isActive)
    }

    func testABadPipelinedRequestIsAnsweredInItsTurn() throws {
        try receive("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHo st: x\r\n\r\n")
        XCTAssertEqual(try written(), [], "the 400 waits for the answer before it")
        XCTAssertTrue(channel.isActive)
        respond([head(200, [("content-length", "1")]), body("a"), .end(nil)])
        channel.embeddedEventLoop.run()
        XCTAssertEqual(try written(), [
            "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na",
            "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        ])
        XCTAssertFalse(channel.isActive)
    }

    func testTheRestOfARefusedResponseIsDropped() throws {
        try receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        recorder.closeOnError = false
        channel.write(head(200, [("x-a", "1\r\nx-b: 2")]), promise: nil)
        let bodyWrite = channel.eventLoop.makePromise(of: Void.self)
        channel.write(body("a"), promise: bodyWrite)
        channel.writeAndFlush(ResponsePart.end(nil), promise: nil)
        XCTAssertThrowsError(try bodyWrite.futureResult.wait())
        XCTAssertEqual(try written(), [])
    }

    func testNothingIsServedAfterAConnectionCloseAnswer() throws {
        try receive("GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        respond([head(200, [("content-length", "0"), ("connection", "close")]), .end(nil)])
        channel.embeddedEventLoop.run()
        XCTAssertEqual(recorder.heads, ["/a"], "RFC 9112 9.6: no request after a close is processed")
        let before = readCounter.reads
        channel.read()
        XCTAssertEqual(readCounter.reads, before, "and nothing more is read")
    }

    func testARequestCutOffAfterItsAnswerGetsNoSecondAnswer() throws {
        try receive("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        // The upstream answered before the body was complete.
        respond([head(200, [("content-length", "0")]), .end(nil)])
        _ = try? receive("lo\r\nzz\r\n")  // not a chunk size: a parse error
        channel.embeddedEventLoop.run()
        XCTAssertEqual(try written(), ["HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"], "no stray 400")
        XCTAssertFalse(channel.isActive)
    }

    func testReadsContinueWhileAResponseIsPending() throws {
        try receive("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        let before = readCounter.reads
        channel.read()
        XCTAssertEqual(readCounter.reads, before + 1, "no read is held back for one request in flight")
    }

    func testReadsStopWhenPipelinedRequestsPileUp() throws {
        let many = String(repeating: "GET /p HTTP/1.1\r\nHost: x\r\n\r\n", count: HTTP1ServerConnection.maxQueuedParts)
        try receive("GET /first HTTP/1.1\r\nHost: x\r\n\r\n" + many)
        let before = readCounter.reads
        channel.read()
        XCTAssertEqual(readCounter.reads, before, "held while the queue is full")
        var answered = 0
        while answered <= HTTP1ServerConnection.maxQueuedParts {
            respond([head(200, [("content-length", "0")]), .end(nil)])
            channel.embeddedEventLoop.run()
            answered += 1
        }
        XCTAssertEqual(recorder.heads.count, 1 + HTTP1ServerConnection.maxQueuedParts)
        XCTAssertEqual(readCounter.reads, before + 1, "the held read goes out once the queue drained")
    }

    func testUnparsableRequestGets400() throws {
        _ = try? receive("GET / HTTP/1.1\r\nHo st: x\r\n\r\n")
        XCTAssertEqual(try written(), ["HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"])
        XCTAssertFalse(channel.isActive)
    }

    func testOversizedHeadersGet431() throws {
        let big = String(repeating: "v", count: 2000)
        _ = try? receive("GET / HTTP/1.1\r\nHost: x\r\nx-big: \(big)\r\n\r\n")
        XCTAssertEqual(try written(), ["HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"])
    }

    func testQuiesceClosesAnIdleConnection() throws {
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        XCTAssertFalse(channel.isActive)
    }

    func testQuiesceLetsTheResponseInFlightFinishWithConnectionClose() throws {
        try receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        XCTAssertTrue(channel.isActive)
        respond([head(200, [("content-length", "0")]), .end(nil)], flush: false)
        channel.embeddedEventLoop.run()
        XCTAssertEqual(try written(), ["HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"])
        XCTAssertFalse(channel.isActive)
    }

    func testIdleConnectionIsReported() throws {
        channel.embeddedEventLoop.advanceTime(by: .seconds(31))
        XCTAssertTrue(recorder.events.contains { ($0 as? IdleStateHandler.IdleStateEvent) == .all })
    }

    func testTrafficKeepsTheConnectionFromIdling() throws {
        channel.embeddedEventLoop.advanceTime(by: .seconds(20))
        try receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        channel.embeddedEventLoop.advanceTime(by: .seconds(20))
        XCTAssertTrue(recorder.events.isEmpty, "traffic 20 s ago: not idle yet")
        channel.embeddedEventLoop.advanceTime(by: .seconds(11))
        XCTAssertFalse(recorder.events.isEmpty)
    }
}

final class HTTP1RequestWriterTests: XCTestCase {
    private var channel: EmbeddedChannel!

    override func setUpWithError() throws {
        channel = EmbeddedChannel(handler: HTTP1RequestWriter())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
    }

    override func tearDownWithError() throws {
        _ = try? channel.finish()
    }

    private func send(_ parts: [RequestPart]) {
        for part in parts { channel.write(part, promise: nil) }
        channel.flush()
    }

    private func written() throws -> [String] {
        var buffers: [String] = []
        while let data = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let buffer) = data else { XCTFail("not a buffer"); break }
            buffers.append(String(buffer: buffer))
        }
        return buffers
    }

    private func head(_ method: String, _ uri: String, _ headers: [(String, String)]) -> RequestPart {
        .head(RequestHead(method: method, target: uri, version: .http1_1, fields: HTTPFieldList(headers)))
    }

    func testGetLeavesInOneWriteWithoutFraming() throws {
        send([head("GET", "/a?b=c", [("host", "up")]), .end(nil)])
        XCTAssertEqual(try written(), ["GET /a?b=c HTTP/1.1\r\nhost: up\r\n\r\n"])
    }

    func testPostWithoutLengthIsChunked() throws {
        send([head("POST", "/", [("host", "up")]), .body(ByteBuffer(string: "hi")), .end(nil)])
        XCTAssertEqual(try written(), ["POST / HTTP/1.1\r\nhost: up\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"])
    }

    func testLengthWinsOverTransferEncoding() throws {
        send([head("PUT", "/", [("content-length", "2"), ("transfer-encoding", "chunked")]),
              .body(ByteBuffer(string: "hi")), .end(nil)])
        XCTAssertEqual(try written(), ["PUT / HTTP/1.1\r\ncontent-length: 2\r\n\r\nhi"])
    }

    func testInjectedHeaderValueIsRefused() throws {
        let headWrite = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(head("GET", "/", [("x-user", "a\r\nx-admin: true")]), promise: headWrite)
        XCTAssertThrowsError(try headWrite.futureResult.wait())
        XCTAssertEqual(try written(), [])
        // The refused request's body and end never reach the wire without their head.
        let bodyWrite = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(RequestPart.body(ByteBuffer(string: "GET /admin HTTP/1.1\r\n\r\n")), promise: bodyWrite)
        XCTAssertThrowsError(try bodyWrite.futureResult.wait())
        channel.writeAndFlush(RequestPart.end(nil), promise: nil)
        XCTAssertEqual(try written(), [])
    }

    /// An HTTP/2 client's `:method` is not parsed as an HTTP/1 request line before it is sent
    /// as one.
    func testMethodThatIsNotATokenIsRefused() throws {
        for method in ["GET /admin", "GET\u{01}"] {
            let headWrite = channel.eventLoop.makePromise(of: Void.self)
            channel.writeAndFlush(head(method, "/", [("host", "up")]), promise: headWrite)
            XCTAssertThrowsError(try headWrite.futureResult.wait(), method)
            XCTAssertEqual(try written(), [], method)
        }
        send([head("PURGE", "/", [("host", "up")]), .end(nil)])
        XCTAssertEqual(try written(), ["PURGE / HTTP/1.1\r\nhost: up\r\n\r\n"], "an extension method that is a token goes")
    }

    func testTargetWithASpaceIsRefused() throws {
        let headWrite = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(head("GET", "/a HTTP/1.1\r\nx: y", [("host", "up")]), promise: headWrite)
        XCTAssertThrowsError(try headWrite.futureResult.wait())
        XCTAssertEqual(try written(), [])
    }

    func testWritePromiseCompletesInOrder() throws {
        let headWrite = channel.eventLoop.makePromise(of: Void.self)
        channel.write(head("GET", "/", [("host", "up")]), promise: headWrite)
        channel.flush()
        XCTAssertNoThrow(try headWrite.futureResult.wait())
        XCTAssertEqual(try written(), ["GET / HTTP/1.1\r\nhost: up\r\n\r\n"])
    }
}
