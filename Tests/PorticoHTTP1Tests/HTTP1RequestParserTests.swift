import NIOCore
import PorticoHTTP1
import XCTest

/// The request parser's behaviour beyond single-message strictness: what it hands out, and
/// what happens between messages (pipelining, close, upgrade, EOF).
final class HTTP1RequestParserTests: XCTestCase {
    func testAHeadIsHandedOutAsTheReceivedBytesWithOffsets() {
        let input = "POST /submit?x=1 HTTP/1.1\r\nHost: api.example\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
        var parser = HTTP1RequestParser()
        parser.feed(ByteBuffer(string: input))
        guard case .head(let head) = parser.next() else { return XCTFail("no head") }
        XCTAssertEqual(head.method, "POST")
        XCTAssertEqual(head.target, "/submit?x=1")
        XCTAssertTrue(head.methodIs("POST"))
        XCTAssertFalse(head.methodIs("post"), "methods are case-sensitive")
        XCTAssertEqual(head.version, .http1_1)
        XCTAssertEqual(head.framing, .length(5))
        XCTAssertTrue(head.keepAlive)
        XCTAssertFalse(head.isUpgradeRequest)
        XCTAssertEqual(Array(head.bytes.readableBytesView), Array(input.utf8.dropLast(5)))
        XCTAssertEqual(head.fields.firstValue(of: "content-type"), "text/plain")
        XCTAssertEqual(head.fields.firstValue(of: "host"), "api.example")
        guard case .body(let body) = parser.next() else { return XCTFail("no body") }
        XCTAssertEqual(String(buffer: body), "hello")
        guard case .end(nil) = parser.next() else { return XCTFail("no end") }
        XCTAssertNil(parser.next())
    }

    func testBodyBytesAreSlicesOfTheFedBufferNotCopies() {
        let input = ByteBuffer(string: "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        var parser = HTTP1RequestParser()
        parser.feed(input)
        guard case .head(let head) = parser.next(), case .body(let body) = parser.next() else { return XCTFail() }
        let inputStart = input.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let headStart = head.bytes.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let bodyStart = body.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        XCTAssertEqual(headStart, inputStart, "the head is the fed bytes, not a copy")
        XCTAssertEqual(bodyStart, inputStart + UInt(head.bytes.readableBytes), "the body is the fed bytes, not a copy")
    }

    func testPipelinedRequestsParseOneAfterAnother() {
        let input = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
            + "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
            + "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
            + "GET /d HTTP/1.1\r\nHost: h\r\n\r\n"
        let outcome = Feeding.requests(input)
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.messages.map(\.startLine), ["GET /a", "POST /b", "PUT /c", "GET /d"])
        XCTAssertEqual(outcome.messages.map { String(decoding: $0.body, as: UTF8.self) }, ["", "xyz", "hi", ""])
        XCTAssertEqual(outcome.messages.map(\.ended), [true, true, true, true])
    }

    func testNothingAfterAnErrorIsParsed() {
        let input = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n" + "GET /b HTTP/1.1\r\nHost : h\r\n\r\n" + "GET /c HTTP/1.1\r\nHost: h\r\n\r\n"
        let outcome = Feeding.requests(input)
        XCTAssertEqual(outcome.messages.map(\.startLine), ["GET /a"])
        XCTAssertEqual(outcome.error, HTTP1ParseError(.whitespaceBeforeColon, status: 400))

        var parser = HTTP1RequestParser()
        parser.feed(ByteBuffer(string: "GET /b HTTP/1.1\r\nHost : h\r\n\r\n"))
        guard case .error = parser.next() else { return XCTFail("no error") }
        parser.feed(ByteBuffer(string: "GET /c HTTP/1.1\r\nHost: h\r\n\r\n"))
        parser.feedEOF()
        XCTAssertNil(parser.next(), "the error is reported once and nothing follows")
        XCTAssertTrue(parser.isFinished)
    }

    func testConnectionCloseStopsParsingAfterThatMessage() {
        let outcome = Feeding.requests(
            "GET /a HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\nGET /b HTTP/1.1\r\n\r\n"
        )
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.messages.map(\.startLine), ["GET /a"])
        XCTAssertTrue(outcome.finished)
    }

    func testHTTP10KeepsTheConnectionOnlyWhenAsked() {
        let closing = Feeding.requests("GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n")
        XCTAssertEqual(closing.messages.map(\.startLine), ["GET /a"])
        XCTAssertTrue(closing.finished)
        let keeping = Feeding.requests(
            "GET /a HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n"
        )
        XCTAssertEqual(keeping.messages.map(\.startLine), ["GET /a", "GET /b"])
    }

    func testAnUpgradeRequestHandsBackTheBytesAfterIt() {
        let head = "GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        let outcome = Feeding.requests(head + "\u{81}\u{0}GET / HTTP/1.1\r\n\r\n")
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.messages.map(\.startLine), ["GET /chat"])
        XCTAssertTrue(outcome.awaitingUpgrade)

        var parser = HTTP1RequestParser()
        parser.feed(ByteBuffer(string: head + "frame"))
        guard case .head(let parsed) = parser.next(), case .end = parser.next() else { return XCTFail() }
        XCTAssertTrue(parsed.isUpgradeRequest)
        XCTAssertNil(parser.next())
        parser.feed(ByteBuffer(string: "-more"))
        XCTAssertEqual(String(buffer: parser.acceptUpgrade()), "frame-more")
        parser.feed(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"))
        XCTAssertNil(parser.next(), "an upgraded connection is no longer HTTP/1")
    }

    func testADeclinedUpgradeGoesOnWithTheNextRequest() {
        var parser = HTTP1RequestParser()
        parser.feed(ByteBuffer(string: "GET /a HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\nGET /b HTTP/1.1\r\n\r\n"))
        guard case .head = parser.next(), case .end = parser.next() else { return XCTFail() }
        XCTAssertTrue(parser.isAwaitingUpgradeDecision)
        parser.declineUpgrade()
        guard case .head(let next) = parser.next() else { return XCTFail("the next request was not parsed") }
        XCTAssertEqual(next.target, "/b")
    }

    func testAnUpgradeRequestWithABodyReadsTheBodyFirst() {
        let outcome = Feeding.requests(
            "POST /u HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 3\r\n\r\nabcTUNNEL"
        )
        XCTAssertEqual(outcome.messages.first?.body, Array("abc".utf8))
        XCTAssertTrue(outcome.awaitingUpgrade)
    }

    func testEOFInsideAMessageIsAnError() {
        XCTAssertEqual(
            Feeding.requests("GET / HTTP/1.1\r\nHost: h\r\n", eof: true).error,
            HTTP1ParseError(.truncatedMessage, status: 400)
        )
        XCTAssertEqual(
            Feeding.requests("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabc", eof: true).error?.reason,
            .truncatedMessage
        )
        XCTAssertEqual(
            Feeding.requests("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n", eof: true).error?.reason,
            .truncatedMessage
        )
        let clean = Feeding.requests("GET / HTTP/1.1\r\n\r\n", eof: true)
        XCTAssertNil(clean.error, "a close between requests is the normal end")
        XCTAssertTrue(clean.finished)
    }

    func testAChunkedBodyIsHandedOutAsItsChunksData() {
        let outcome = Feeding.requests(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n000\r\n\r\n"
        )
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.messages.first?.body, Array("hello 0123456789".utf8))
        XCTAssertEqual(outcome.messages.first?.ended, true)
        XCTAssertNil(outcome.messages.first?.trailers ?? nil)
    }
}
