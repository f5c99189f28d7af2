import NIOCore
import PorticoHTTP1
import XCTest

/// The response parser: status lines, framing by request method and status, and the same
/// strictness as requests, with 502 as the answer to every malformed response.
final class HTTP1ResponseParserTests: XCTestCase {
    func testAContentLengthResponse() {
        let outcome = Feeding.responses("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello")
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.messages.first?.startLine, "200")
        XCTAssertEqual(outcome.messages.first?.body, Array("hello".utf8))
        XCTAssertEqual(outcome.messages.first?.ended, true)
    }

    func testTheHeadKeepsStatusReasonAndFields() {
        var parser = HTTP1ResponseParser()
        parser.expectResponse(to: .other)
        parser.feed(ByteBuffer(string: "HTTP/1.0 404 Not Found Here\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"))
        guard case .head(let head) = parser.next() else { return XCTFail("no head") }
        XCTAssertEqual(head.status, 404)
        XCTAssertEqual(head.reason, "Not Found Here")
        XCTAssertEqual(head.version, .http1_0)
        XCTAssertTrue(head.keepAlive)
        XCTAssertEqual(head.framing, .none)
        guard case .end = parser.next() else { return XCTFail("no end") }
    }

    func testAChunkedResponseWithTrailers() {
        let outcome = Feeding.responses(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5;x=y\r\npedia\r\n0\r\ngrpc-status: 0\r\n\r\n"
        )
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.messages.first?.body, Array("wikipedia".utf8))
        XCTAssertEqual(outcome.messages.first?.trailers, [.init(name: "grpc-status", value: "0")])
    }

    func testABodyWithoutLengthRunsUntilTheUpstreamCloses() {
        let open = Feeding.responses("HTTP/1.1 200 OK\r\nX: y\r\n\r\npart one, part two")
        XCTAssertEqual(open.messages.first?.body, Array("part one, part two".utf8))
        XCTAssertEqual(open.messages.first?.ended, false)
        let closed = Feeding.responses("HTTP/1.1 200 OK\r\nX: y\r\n\r\npart one, part two", eof: true)
        XCTAssertEqual(closed.messages.first?.ended, true)
        XCTAssertNil(closed.error)
        XCTAssertTrue(closed.finished)
    }

    func testResponsesToHEADAnd204And304HaveNoBody() {
        let head = Feeding.responses(
            "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            to: [.head, .other]
        )
        XCTAssertNil(head.error)
        XCTAssertEqual(head.messages.map(\.body), [[], Array("ok".utf8)])
        XCTAssertEqual(head.messages.map(\.ended), [true, true])
        for status in ["204 No Content", "304 Not Modified"] {
            let outcome = Feeding.responses(
                "HTTP/1.1 \(status)\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                to: [.other, .other]
            )
            XCTAssertNil(outcome.error)
            XCTAssertEqual(outcome.messages.map(\.startLine), [String(status.prefix(3)), "200"])
        }
    }

    func testInterimResponsesComeBeforeTheFinalOne() {
        let outcome = Feeding.responses(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx"
        )
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.messages.map(\.startLine), ["100", "103", "201"])
        XCTAssertEqual(outcome.messages.map(\.ended), [false, false, true], "an interim head has no end of its own")
    }

    func testA101HandsBackTheBytesAfterIt() {
        var parser = HTTP1ResponseParser()
        parser.expectResponse(to: .other)
        var input = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        input.writeBytes([0x81, 0x05] + Array("hello".utf8))
        parser.feed(input)
        guard case .head(let head) = parser.next(), case .end = parser.next() else { return XCTFail() }
        XCTAssertEqual(head.status, 101)
        XCTAssertNil(parser.next())
        XCTAssertTrue(parser.isAwaitingUpgradeDecision)
        XCTAssertEqual(Array(parser.acceptUpgrade().readableBytesView), [0x81, 0x05] + Array("hello".utf8))
    }

    func testA2xxToCONNECTIsATunnel() {
        let outcome = Feeding.responses("HTTP/1.1 200 Connection Established\r\n\r\ntunnel bytes", to: [.connect])
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.messages.first?.body, [])
        XCTAssertTrue(outcome.awaitingUpgrade)
        let refused = Feeding.responses("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno", to: [.connect])
        XCTAssertEqual(refused.messages.first?.body, Array("no".utf8))
        XCTAssertFalse(refused.awaitingUpgrade)
    }

    func testMalformedResponsesAre502() {
        let cases: [(String, HTTP1ParseError.Reason)] = [
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", .contentLengthWithTransferEncoding),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", .duplicateContentLength),
            ("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", .invalidContentLength),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", .invalidTransferEncoding),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .unsupportedTransferCoding),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", .invalidTransferEncoding),
            ("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .transferEncodingOnHTTP10),
            ("HTTP/1.1 200 OK\r\nX : y\r\n\r\n", .whitespaceBeforeColon),
            ("HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n", .obsoleteLineFolding),
            ("HTTP/1.1 200 OK\r\nX: \u{0}\r\n\r\n", .controlByte),
            ("HTTP/1.1 200 OK\nX: y\r\n\r\n", .bareLF),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\n", .chunkSizeTooLarge),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\n", .invalidChunkExtension),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX", .invalidChunkDelimiter),
            ("HTTP/1.2 200 OK\r\n\r\n", .invalidStatusLine),
            ("HTTP/1.1 20 OK\r\n\r\n", .invalidStatusLine),
            ("HTTP/1.1 2000 OK\r\n\r\n", .invalidStatusLine),
            ("HTTP/1.1 099 OK\r\n\r\n", .invalidStatusLine),
            ("HTTP/1.1 600 OK\r\n\r\n", .invalidStatusLine),
            ("HTTP/1.1  200 OK\r\n\r\n", .invalidStatusLine),
            ("ICY 200 OK\r\n\r\n", .invalidStatusLine),
            ("\r\nHTTP/1.1 200 OK\r\n\r\n", .invalidStatusLine),
        ]
        for (input, reason) in cases {
            let outcome = Feeding.responses(input)
            XCTAssertEqual(outcome.error, HTTP1ParseError(reason, status: 502), input.debugDescription)
        }
    }

    func testAStatusLineWithoutReasonIsAccepted() {
        let outcome = Feeding.responses("HTTP/1.1 204\r\n\r\n")
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.messages.first?.startLine, "204")
    }

    func testAResponseNobodyAskedForIsRejected() {
        let outcome = Feeding.responses("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n")
        XCTAssertEqual(outcome.messages.count, 1)
        XCTAssertEqual(outcome.error, HTTP1ParseError(.unexpectedResponse, status: 502))
    }

    func testEOFInsideAFramedBodyIsAnError() {
        let outcome = Feeding.responses("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc", eof: true)
        XCTAssertEqual(outcome.error, HTTP1ParseError(.truncatedMessage, status: 502))
        XCTAssertEqual(outcome.messages.first?.body, Array("abc".utf8))
    }

    func testConnectionCloseEndsTheConnectionAfterTheResponse() {
        let outcome = Feeding.responses(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n\r\n",
            to: [.other, .other]
        )
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.messages.count, 1)
        XCTAssertTrue(outcome.finished)
    }
}
