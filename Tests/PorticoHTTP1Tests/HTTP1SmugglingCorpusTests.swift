import PorticoHTTP1
import XCTest

/// Request-smuggling shapes, as regression cases. Each hides a second request inside the
/// first for a parser that reads the framing differently. Portico rejects the message before
/// the hidden request is reached, or, where the shape is in fact unambiguous, reads it the one
/// way every strict parser does.
final class HTTP1SmugglingCorpusTests: XCTestCase {
    private let smuggled = "GET /admin HTTP/1.1\r\nHost: internal\r\n\r\n"

    private func assertRejected(
        _ input: String,
        _ reason: HTTP1ParseError.Reason,
        status: Int = 400,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        let outcome = Feeding.requests(input, file: file, line: line)
        XCTAssertEqual(outcome.error, HTTP1ParseError(reason, status: status), file: file, line: line)
        XCTAssertFalse(outcome.messages.contains { $0.startLine == "GET /admin" }, "the smuggled request was parsed", file: file, line: line)
        XCTAssertTrue(outcome.messages.allSatisfy { !$0.ended }, "a message was accepted before the error", file: file, line: line)
    }

    // MARK: CL.TE and TE.CL: both framings in one message

    func testCLTE() {
        // A front end using Content-Length forwards all of it; a back end using chunked sees
        // the request end at `0` and the smuggled one after it.
        let body = "0\r\n\r\n" + self.smuggled
        self.assertRejected(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\nTransfer-Encoding: chunked\r\n\r\n\(body)",
            .contentLengthWithTransferEncoding
        )
    }

    func testTECL() {
        let chunk = String(self.smuggled.utf8.count + 5, radix: 16)
        self.assertRejected(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n\(chunk)\r\nxxxxx\(self.smuggled)\r\n0\r\n\r\n",
            .contentLengthWithTransferEncoding
        )
    }

    // MARK: TE.TE: a Transfer-Encoding one parser sees and the other does not

    func testTETEObfuscations() {
        let cases: [(String, HTTP1ParseError.Reason?, Int)] = [
            ("Transfer-Encoding : chunked", .whitespaceBeforeColon, 400),
            ("Transfer-Encoding\t: chunked", .whitespaceBeforeColon, 400),
            ("Transfer-Encoding: xchunked", .invalidTransferEncoding, 400),
            ("Transfer-Encoding: chunked, chunked", .invalidTransferEncoding, 400),
            ("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity", .duplicateTransferEncoding, 400),
            ("Transfer-Encoding: identity\r\nTransfer-Encoding: chunked", .invalidTransferEncoding, 400),
            ("Transfer-Encoding:\r\n chunked", .invalidTransferEncoding, 400),
            (" Transfer-Encoding: chunked", .obsoleteLineFolding, 400),
            ("Transfer-Encoding: chunked\r", .bareCR, 400),
            ("Transfer-Encoding: \"chunked\"", .invalidTransferEncoding, 400),
            ("Transfer-Encoding: chunk\u{0}ed", .controlByte, 400),
            ("Transfer-Encoding: chunked\u{b}", .controlByte, 400),
            ("Transfer_Encoding: chunked", nil, 200),
            ("Transfer-Encoding: chunked;", .invalidTransferEncoding, 400),
            ("X: y\nTransfer-Encoding: chunked", .bareLF, 400),
            ("Transfer-Encoding: ch\u{fc}nked", .invalidTransferEncoding, 400),
        ]
        for (field, reason, status) in cases {
            let input = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\(field)\r\n\r\n0\r\n\r\n\(self.smuggled)"
            guard let reason else {
                // `Transfer_Encoding` is a different field: the body is the 5 bytes of
                // Content-Length, and what follows is parsed as the next request, the same way
                // any parser reads it. Nothing is hidden, so it parses.
                let outcome = Feeding.requests(input)
                XCTAssertNil(outcome.error)
                XCTAssertEqual(outcome.messages.first?.body, Array("0\r\n\r\n".utf8))
                continue
            }
            self.assertRejected(input, reason, status: status)
        }
    }

    func testTEWithoutContentLengthButWithObfuscatedChunkedStillCannotHideARequest() {
        self.assertRejected(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked , identity\r\n\r\n0\r\n\r\n\(self.smuggled)",
            .invalidTransferEncoding
        )
        self.assertRejected(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity , chunked\r\n\r\n0\r\n\r\n\(self.smuggled)",
            .unsupportedTransferCoding,
            status: 501
        )
        // A framing field among trailers, for whoever merges trailers into the head.
        self.assertRejected(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 40\r\n\r\n\(self.smuggled)",
            .framingFieldInTrailers
        )
        self.assertRejected(
            "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\(self.smuggled)",
            .transferEncodingOnHTTP10
        )
    }

    // MARK: Content-Length variants

    func testContentLengthVariants() {
        let body = "abc"
        for value in ["+3", "-3", "3 3", "3,3", "0x3", "3.0", "3e0", "\u{b}3", "9999999999999999999999"] {
            let input = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(value)\r\n\r\n\(body)\(self.smuggled)"
            let outcome = Feeding.requests(input)
            XCTAssertNotNil(outcome.error, value.debugDescription)
            XCTAssertFalse(outcome.messages.contains { $0.startLine == "GET /admin" })
        }
        self.assertRejected(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\n\(body)\(self.smuggled)",
            .duplicateContentLength
        )
    }

    func testLeadingZerosAreDecimalForEveryParser() {
        // `010` is ten bytes, not eight: the request after it starts exactly there.
        let outcome = Feeding.requests("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 010\r\n\r\n0123456789\(self.smuggled)")
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.messages.map(\.startLine), ["POST /", "GET /admin"])
        XCTAssertEqual(outcome.messages.first?.body, Array("0123456789".utf8))
    }

    // MARK: Chunk-level tricks

    func testChunkSizeOverflowAndExtensions() {
        // 2^64 + 5 wraps to 5 in a parser with 64-bit arithmetic.
        self.assertRejected(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n",
            .chunkSizeTooLarge
        )
        // A parser that skips extensions up to LF sees a different chunk boundary.
        self.assertRejected(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n",
            .bareLF
        )
        self.assertRejected(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 ;a\r\nhello\r\n0\r\n\r\n",
            .invalidChunkSize
        )
        // Chunk data longer than its size: the extra bytes would start a request elsewhere.
        self.assertRejected(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
            .invalidChunkDelimiter
        )
    }

    // MARK: Pipelining after a bad request

    func testNothingAfterABadRequestIsParsed() {
        let bad = [
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\u{0}b\r\n\r\n",
            "GET /\u{7f} HTTP/1.1\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "GET / HTTP/1.1\r\nX: y\r\n folded\r\n\r\n",
        ]
        for request in bad {
            let outcome = Feeding.requests("GET /first HTTP/1.1\r\nHost: a\r\n\r\n" + request + self.smuggled)
            XCTAssertNotNil(outcome.error, request.debugDescription)
            XCTAssertEqual(outcome.messages.filter(\.ended).map(\.startLine), ["GET /first"], request.debugDescription)
            XCTAssertFalse(outcome.messages.contains { $0.startLine == "GET /admin" })
            XCTAssertTrue(outcome.finished)
        }
    }

    func testAnHTTP10RequestWithoutKeepAliveEndsTheConnection() {
        let outcome = Feeding.requests("GET / HTTP/1.0\r\nContent-Length: 0\r\n\r\n" + self.smuggled)
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.messages.map(\.startLine), ["GET /"])
    }
}
