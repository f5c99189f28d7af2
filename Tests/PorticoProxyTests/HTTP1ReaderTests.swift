import NIOCore
import NIOEmbedded
import NIOHTTP1
import PorticoHTTP1
@testable import PorticoProxy
import XCTest

/// Collects what a reader hands on: parts and errors.
private final class PartCollector<Part>: ChannelInboundHandler {
    typealias InboundIn = Part
    var parts: [Part] = []
    var errors: [Error] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parts.append(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        errors.append(error)
    }
}

/// Put behind a reader just before it leaves: collects the raw bytes it hands on.
private final class ByteCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var bytes: [String] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes.append(String(buffer: unwrapInboundIn(data)))
    }
}

/// Removes `Reader` from `channel` the way `ByteGlue` does for an upgrade, and returns the
/// bytes it handed on as it left.
private func bytesLeftBehind<Reader: RemovableChannelHandler>(_ type: Reader.Type, in channel: EmbeddedChannel) throws -> [String] {
    let bytes = ByteCollector()
    let reader = try channel.pipeline.syncOperations.handler(type: type)
    try channel.pipeline.syncOperations.addHandler(bytes, position: .after(reader))
    let context = try channel.pipeline.syncOperations.context(handlerType: type)
    channel.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    channel.embeddedEventLoop.run()
    return bytes.bytes
}

/// The two readers that put Portico's parser on the wire, driven byte by byte through an
/// `EmbeddedChannel`: what they hand on, and what they keep for an upgrade.
final class HTTP1ReaderTests: XCTestCase {
    // MARK: Requests

    private func requestChannel() throws -> (EmbeddedChannel, PartCollector<RequestPart>) {
        let channel = EmbeddedChannel()
        let collector = PartCollector<RequestPart>()
        try channel.pipeline.syncOperations.addHandler(HTTP1RequestReader(maxHeadBytes: 1024))
        try channel.pipeline.syncOperations.addHandler(collector)
        return (channel, collector)
    }

    func testARequestSplitAtEveryByteArrivesWhole() throws {
        let text = "POST /submit?x=1 HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nX-Tag:  a b \r\n\r\n"
            + "5;ext=1\r\nhello\r\n0\r\nTrailer-One: 1\r\n\r\n"
        for cut in 1..<text.utf8.count {
            let (channel, collector) = try requestChannel()
            let bytes = Array(text.utf8)
            try channel.writeInbound(ByteBuffer(bytes: bytes[..<cut]))
            try channel.writeInbound(ByteBuffer(bytes: bytes[cut...]))
            guard case .head(let head) = collector.parts.first else { return XCTFail("no head, cut at \(cut)") }
            XCTAssertEqual(head.method, "POST")
            XCTAssertEqual(head.target, "/submit?x=1")
            XCTAssertEqual(head.version, .http1_1)
            XCTAssertEqual(head.fields.pairs.map { "\($0.name)=\($0.value)" },
                           ["Host=example.com", "Transfer-Encoding=chunked", "X-Tag=a b"], "cut at \(cut)")
            let body = collector.parts.compactMap { part -> String? in
                if case .body(let buffer) = part { return String(buffer: buffer) } else { return nil }
            }.joined()
            XCTAssertEqual(body, "hello", "cut at \(cut)")
            guard case .end(let trailers) = collector.parts.last else { return XCTFail("no end, cut at \(cut)") }
            XCTAssertEqual(trailers?.firstValue(of: "trailer-one"), "1")
            XCTAssertTrue(collector.errors.isEmpty)
            _ = try? channel.finish()
        }
    }

    func testARefusalFollowsTheRequestsBeforeItAndNothingAfterIt() throws {
        let (channel, collector) = try requestChannel()
        try channel.writeInbound(ByteBuffer(string: "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
            + "POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "GET /three HTTP/1.1\r\nHost: a\r\n\r\n"))
        XCTAssertEqual(collector.parts.count, 2, "the first request, head and end")
        XCTAssertEqual((collector.errors.first as? HTTP1ParseError)?.reason, .contentLengthWithTransferEncoding)
        XCTAssertEqual((collector.errors.first as? HTTP1ParseError)?.status, 400)
        try channel.writeInbound(ByteBuffer(string: "GET /four HTTP/1.1\r\nHost: a\r\n\r\n"))
        XCTAssertEqual(collector.parts.count, 2, "nothing is parsed after a refusal")
        XCTAssertEqual(collector.errors.count, 1)
    }

    func testAnUnknownTransferCodingIs501AndAHugeChunkSizeIs400() throws {
        let (channel, collector) = try requestChannel()
        try channel.writeInbound(ByteBuffer(string: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"))
        XCTAssertEqual((collector.errors.first as? HTTP1ParseError)?.status, 501)

        let (second, secondCollector) = try requestChannel()
        try second.writeInbound(ByteBuffer(string: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\n"))
        XCTAssertEqual((secondCollector.errors.first as? HTTP1ParseError)?.reason, .chunkSizeTooLarge)
        XCTAssertEqual((secondCollector.errors.first as? HTTP1ParseError)?.status, 400)
    }

    func testAHeadOverTheLimitIs431() throws {
        let (channel, collector) = try requestChannel()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\nX-Big: \(String(repeating: "v", count: 1100))\r\n\r\n"))
        XCTAssertTrue(collector.parts.isEmpty)
        XCTAssertEqual((collector.errors.first as? HTTP1ParseError)?.status, 431)
    }

    /// A head sent slowly (slowloris) gets 408 once `requestHeadersTimeout` has passed since its
    /// first byte, however steadily the bytes trickle; a head that arrives whole starts no clock.
    func testAHeadThatTakesTooLongIs408() throws {
        let channel = EmbeddedChannel()
        let collector = PartCollector<RequestPart>()
        try channel.pipeline.syncOperations.addHandler(HTTP1RequestReader(maxHeadBytes: 1024, headTimeout: .seconds(10)))
        try channel.pipeline.syncOperations.addHandler(collector)

        try channel.writeInbound(ByteBuffer(string: "GET /whole HTTP/1.1\r\nHost: a\r\n\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(11))
        XCTAssertTrue(collector.errors.isEmpty, "a head that came in one read is not timed")

        try channel.writeInbound(ByteBuffer(string: "GET /slow HTTP/1.1\r\n"))
        for second in 1...9 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(1))
            try channel.writeInbound(ByteBuffer(string: "X-\(second): 1\r\n"))
        }
        XCTAssertTrue(collector.errors.isEmpty, "9 s into the head")
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertEqual((collector.errors.first as? HTTP1ParseError)?.status, 408)
        try channel.writeInbound(ByteBuffer(string: "\r\n"))
        XCTAssertEqual(collector.parts.count, 2, "the first request's head and end; nothing of the slow one")

        // A head completed in time stops the clock.
        let (other, otherCollector) = try requestChannel()
        try other.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n"))
        try other.writeInbound(ByteBuffer(string: "Host: a\r\n\r\n"))
        other.embeddedEventLoop.advanceTime(by: .seconds(60))
        XCTAssertTrue(otherCollector.errors.isEmpty)
    }

    func testAClientThatShutsItsSideMidRequestGetsAnError() throws {
        let (channel, collector) = try requestChannel()
        try channel.writeInbound(ByteBuffer(string: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertEqual((collector.errors.first as? HTTP1ParseError)?.reason, .truncatedMessage)

        // Between requests, shutting the write side is how a client says it is done.
        let (idle, idleCollector) = try requestChannel()
        try idle.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
        idle.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertTrue(idleCollector.errors.isEmpty)
        XCTAssertEqual(idleCollector.parts.count, 2)
    }

    func testBytesBehindAnUpgradeRequestAreHandedOnWhenTheReaderLeaves() throws {
        let (channel, collector) = try requestChannel()
        try channel.writeInbound(ByteBuffer(string: "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            + "\u{81}\u{05}frame"))
        try channel.writeInbound(ByteBuffer(string: "GET /not-a-request HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(collector.parts.count, 2, "the upgrade request's head and end; nothing after it is parsed")
        XCTAssertEqual(try bytesLeftBehind(HTTP1RequestReader.self, in: channel),
                       ["\u{81}\u{05}frameGET /not-a-request HTTP/1.1\r\n\r\n"])
    }

    // MARK: Responses

    private func responseChannel() throws -> (EmbeddedChannel, PartCollector<ResponsePart>) {
        let channel = EmbeddedChannel()
        let collector = PartCollector<ResponsePart>()
        try channel.pipeline.syncOperations.addHandler(HTTP1ResponseReader())
        try channel.pipeline.syncOperations.addHandler(collector)
        return (channel, collector)
    }

    private func send(_ channel: EmbeddedChannel, _ method: String) throws {
        try channel.writeOutbound(RequestPart.head(RequestHead(method: method, target: "/", version: .http1_1, fields: HTTPFieldList())))
        try channel.writeOutbound(RequestPart.end(nil))
        while try channel.readOutbound(as: RequestPart.self) != nil {}
    }

    func testAResponseToHEADHasNoBodyWhateverItsFieldsSay() throws {
        let (channel, collector) = try responseChannel()
        try send(channel, "HEAD")
        try send(channel, "GET")
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
            + "HTTP/1.1 200 Fine Indeed\r\nContent-Length: 2\r\n\r\nhi"))
        XCTAssertEqual(collector.parts.count, 5, "head, end; head, body, end")
        guard case .head(let second) = collector.parts[2] else { return XCTFail("no second head") }
        XCTAssertEqual(second.status, 200)
        XCTAssertTrue(collector.errors.isEmpty)
    }

    func testABodyWithoutLengthRunsUntilTheUpstreamCloses() throws {
        let (channel, collector) = try responseChannel()
        try send(channel, "GET")
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\nall of"))
        try channel.writeInbound(ByteBuffer(string: " it"))
        guard case .head = collector.parts.first else { return XCTFail("no head") }
        XCTAssertEqual(collector.parts.count, 3, "no end before the close")
        channel.pipeline.fireChannelInactive()
        guard case .end = collector.parts.last else { return XCTFail("the close ends the body") }
        XCTAssertEqual(collector.parts.count, 4)
    }

    func testAResponseCutShortOrNobodyAskedForIsAnError() throws {
        let (channel, collector) = try responseChannel()
        try send(channel, "GET")
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
        channel.pipeline.fireChannelInactive()
        XCTAssertEqual((collector.errors.first as? HTTP1ParseError)?.reason, .truncatedMessage)
        XCTAssertEqual((collector.errors.first as? HTTP1ParseError)?.status, 502)

        let (unasked, unaskedCollector) = try responseChannel()
        try unasked.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
        XCTAssertTrue(unaskedCollector.parts.isEmpty)
        XCTAssertEqual((unaskedCollector.errors.first as? HTTP1ParseError)?.reason, .unexpectedResponse)
    }

    func testBytesBehindA101AreHandedOnWhenTheReaderLeaves() throws {
        let (channel, collector) = try responseChannel()
        try send(channel, "GET")
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            + "server speaks first"))
        XCTAssertEqual(collector.parts.count, 2, "the 101's head and end")
        XCTAssertEqual(try bytesLeftBehind(HTTP1ResponseReader.self, in: channel), ["server speaks first"])
    }
}
