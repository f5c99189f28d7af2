import PorticoHTTP1
import XCTest

/// Every strictness rule of `HTTP1RequestParser`: each bad input is rejected with its status
/// and reason, and the nearby good forms are accepted. Every input is fed whole, split at each
/// byte and one byte at a time, and all must agree (see `Feeding.requests`).
final class HTTP1RequestStrictnessTests: XCTestCase {
    private func assertRejected(
        _ input: String,
        _ reason: HTTP1ParseError.Reason,
        status: Int = 400,
        limits: HTTP1ParserLimits = HTTP1ParserLimits(),
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        let outcome = Feeding.requests(input, limits: limits, file: file, line: line)
        XCTAssertEqual(outcome.error, HTTP1ParseError(reason, status: status), "\(input.debugDescription)", file: file, line: line)
        XCTAssertTrue(outcome.finished, file: file, line: line)
    }

    @discardableResult
    private func assertAccepted(
        _ input: String,
        limits: HTTP1ParserLimits = HTTP1ParserLimits(),
        file: StaticString = #filePath,
        line: UInt = #line
    ) -> ParsedMessage? {
        let outcome = Feeding.requests(input, limits: limits, file: file, line: line)
        XCTAssertNil(outcome.error, "\(input.debugDescription)", file: file, line: line)
        XCTAssertEqual(outcome.messages.count, 1, "\(input.debugDescription): \(outcome)", file: file, line: line)
        XCTAssertEqual(outcome.messages.first?.ended, true, "\(input.debugDescription)", file: file, line: line)
        return outcome.messages.first
    }

    private func head(_ fields: String, _ requestLine: String = "GET / HTTP/1.1") -> String {
        "\(requestLine)\r\nHost: example.com\r\n\(fields)\r\n"
    }

    // MARK: Field lines

    func testObsoleteLineFoldingIsRejected() {
        self.assertRejected(self.head("X-A: one\r\n two\r\n"), .obsoleteLineFolding)
        self.assertRejected(self.head("X-A: one\r\n\ttwo\r\n"), .obsoleteLineFolding)
        // Whitespace right after the request line would hide the first field from some parsers.
        self.assertRejected("GET / HTTP/1.1\r\n Host: example.com\r\n\r\n", .obsoleteLineFolding)
    }

    func testBareCRIsRejected() {
        self.assertRejected(self.head("X-A: o\rne\r\n"), .bareCR)
        self.assertRejected("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", .bareCR)
        self.assertRejected("GET / HTTP/1.1\rHost: a\r\n\r\n", .bareCR)
        self.assertRejected("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", .bareCR)
    }

    func testBareLFIsRejected() {
        self.assertRejected("GET / HTTP/1.1\nHost: a\n\n", .bareLF)
        self.assertRejected(self.head("X-A: one\nX-B: two\r\n"), .bareLF)
        self.assertRejected("GET / HTTP/1.1\r\nHost: a\r\n\n", .bareLF)
    }

    func testNULAndControlBytesAreRejected() {
        for control in [0x00, 0x01, 0x07, 0x0B, 0x0C, 0x1B, 0x1F, 0x7F] {
            let byte = String(UnicodeScalar(UInt8(control)))
            self.assertRejected(self.head("X-A: a\(byte)b\r\n"), .controlByte)
            self.assertRejected(self.head("X-\(byte)A: ab\r\n"), .controlByte)
            self.assertRejected("GET /a\(byte)b HTTP/1.1\r\n\r\n", .controlByte)
            self.assertRejected("G\(byte)ET / HTTP/1.1\r\n\r\n", .controlByte)
        }
    }

    func testWhitespaceBeforeTheColonIsRejected() {
        self.assertRejected(self.head("X-A : one\r\n"), .whitespaceBeforeColon)
        self.assertRejected(self.head("X-A\t: one\r\n"), .whitespaceBeforeColon)
        self.assertRejected(self.head("Transfer-Encoding : chunked\r\n"), .whitespaceBeforeColon)
    }

    func testInvalidFieldNamesAreRejected() {
        self.assertRejected(self.head(": empty name\r\n"), .invalidFieldName)
        self.assertRejected(self.head("X(A): one\r\n"), .invalidFieldName)
        self.assertRejected(self.head("X/A: one\r\n"), .invalidFieldName)
        self.assertRejected(self.head("NoColon\r\n"), .invalidFieldName)
        self.assertRejected(self.head("X-\u{e9}: one\r\n"), .invalidFieldName)
    }

    func testFieldValuesLoseSurroundingWhitespaceAndKeepObsText() {
        let message = self.assertAccepted(self.head("X-A: \t one  two \t \r\nX-B:\r\nX-C: caf\u{e9}\r\n"))
        XCTAssertEqual(message?.fields.map(\.value), ["example.com", "one  two", "", "caf\u{e9}"])
        XCTAssertEqual(message?.fields.map(\.name), ["Host", "X-A", "X-B", "X-C"])
    }

    // MARK: Content-Length and Transfer-Encoding

    func testContentLengthWithTransferEncodingIsRejected() {
        self.assertRejected(
            self.head("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "POST / HTTP/1.1"),
            .contentLengthWithTransferEncoding
        )
        self.assertRejected(
            self.head("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "POST / HTTP/1.1"),
            .contentLengthWithTransferEncoding
        )
    }

    func testTwoContentLengthsAreRejectedEqualOrNot() {
        self.assertRejected(self.head("Content-Length: 5\r\nContent-Length: 6\r\n"), .duplicateContentLength)
        self.assertRejected(self.head("Content-Length: 5\r\nContent-Length: 5\r\n"), .duplicateContentLength)
        self.assertRejected(self.head("Content-Length: 5, 5\r\n"), .invalidContentLength)
    }

    func testMalformedContentLengthsAreRejected() {
        for value in ["+5", "-5", "5 5", "5\t5", "0x5", "5a", "", "1e3", "5.0", "99999999999999999999", "9223372036854775808"] {
            self.assertRejected(self.head("Content-Length: \(value)\r\n", "POST / HTTP/1.1"), .invalidContentLength)
        }
    }

    func testContentLengthsThatFitAreAccepted() {
        let message = self.assertAccepted("POST / HTTP/1.1\r\nContent-Length:  \t007 \r\n\r\nabcdefg")
        XCTAssertEqual(message?.body, Array("abcdefg".utf8), "leading zeros are decimal, not octal")
        self.assertAccepted("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        // The largest length that fits is a valid head; its body just never ends here.
        let outcome = Feeding.requests("POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\nab")
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.messages.first?.body, Array("ab".utf8))
    }

    func testAnHTABAfterAFramingValueIsWhitespaceLikeSP() {
        // llhttp takes SP but not HTAB here; RFC 9110 §5.6.3 makes both OWS, and so does
        // Portico (the differential test checks that llhttp agrees once the HTAB is a SP).
        XCTAssertEqual(self.assertAccepted("POST / HTTP/1.1\r\nContent-Length: 3\t\r\n\r\nabc")?.body, Array("abc".utf8))
        XCTAssertEqual(
            self.assertAccepted("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\t\r\n\r\n1\r\nx\r\n0\r\n\r\n")?.body,
            Array("x".utf8)
        )
    }

    func testTransferCodingsOtherThanChunkedAreNotImplemented() {
        for value in ["gzip, chunked", "deflate,chunked", "identity, chunked"] {
            self.assertRejected(
                self.head("Transfer-Encoding: \(value)\r\n", "POST / HTTP/1.1"),
                .unsupportedTransferCoding,
                status: 501
            )
        }
    }

    func testMalformedTransferEncodingListsAreRejected() {
        for value in ["", "chunked,", ",chunked", "chunked, ,", "chunked;q=1", "chunked chunked", "\"chunked\""] {
            self.assertRejected(self.head("Transfer-Encoding: \(value)\r\n", "POST / HTTP/1.1"), .invalidTransferEncoding)
        }
        // Without a final `chunked` the length cannot be known (RFC 9112 §6.3): 400, not 501.
        for value in ["chunked, chunked", "chunked,chunked", "chunked, gzip", "gzip", "identity", "xchunked", "chunkedx"] {
            self.assertRejected(self.head("Transfer-Encoding: \(value)\r\n", "POST / HTTP/1.1"), .invalidTransferEncoding)
        }
        self.assertRejected(
            self.head("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "POST / HTTP/1.1"),
            .duplicateTransferEncoding
        )
    }

    func testChunkedIsAcceptedInAnyCaseWithWhitespace() {
        for value in ["chunked", "Chunked", "CHUNKED", " \tchunked\t "] {
            let message = self.assertAccepted(
                self.head("Transfer-Encoding: \(value)\r\n", "POST / HTTP/1.1") + "3\r\nabc\r\n0\r\n\r\n"
            )
            XCTAssertEqual(message?.body, Array("abc".utf8))
        }
    }

    func testTransferEncodingOnHTTP10IsRejected() {
        self.assertRejected(
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            .transferEncodingOnHTTP10
        )
    }

    // MARK: Chunked bodies

    private func chunked(_ body: String) -> String {
        self.head("Transfer-Encoding: chunked\r\n", "POST / HTTP/1.1") + body
    }

    func testChunkSizesOf2To63OrMoreAreRejected() {
        self.assertRejected(self.chunked("8000000000000000\r\n"), .chunkSizeTooLarge)
        self.assertRejected(self.chunked("10000000000000000\r\n"), .chunkSizeTooLarge)
        self.assertRejected(self.chunked("ffffffffffffffffff\r\n"), .chunkSizeTooLarge)
        // The largest size that fits starts a chunk.
        let outcome = Feeding.requests(self.chunked("7fffffffffffffff\r\nab"))
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.messages.first?.body, Array("ab".utf8))
    }

    func testMalformedChunkSizesAreRejected() {
        for line in ["\r\n", "0x5\r\n", " 5\r\n", "-5\r\n", "+5\r\n", "g\r\n", "5 \r\n", "5\t;a\r\n"] {
            self.assertRejected(self.chunked(line), .invalidChunkSize)
        }
        self.assertRejected(self.chunked("5\nabcde\r\n"), .bareLF)
        self.assertRejected(self.chunked("5\rabcde\r\n"), .bareCR)
    }

    func testMalformedChunkExtensionsAreRejected() {
        for line in ["5;\r\n", "5;;\r\n", "5;a=\r\n", "5; a\r\n", "5;a =b\r\n", "5;a= b\r\n", "5;a=b c\r\n",
                     "5;a=\"b\r\n", "5;a=\"b\"c\r\n", "5;a=\"\u{1}\"\r\n", "5;=b\r\n", "5;a@b\r\n"] {
            self.assertRejected(self.chunked(line), .invalidChunkExtension)
        }
    }

    func testWellFormedChunkExtensionsAreAccepted() {
        for line in ["5;a", "5;a=b", "5;a;b=c", "5;a=\"b c\"", "5;a=\"q\\\"uote\"", "5;a=\"\";b", "0005;A-1=x!"] {
            let message = self.assertAccepted(self.chunked("\(line)\r\nhello\r\n0;last\r\n\r\n"))
            XCTAssertEqual(message?.body, Array("hello".utf8), line)
        }
    }

    func testAnEndlessChunkLineIsRejected() {
        let line = "5;a=" + String(repeating: "b", count: 5000)
        let outcome = Feeding.parseRequests([Array(self.chunked(line).utf8)])
        XCTAssertEqual(outcome.error, HTTP1ParseError(.chunkLineTooLong, status: 400))
    }

    func testChunkDataMustEndWithCRLF() {
        self.assertRejected(self.chunked("5\r\nhelloX\r\n0\r\n\r\n"), .invalidChunkDelimiter)
        self.assertRejected(self.chunked("5\r\nhello\n0\r\n\r\n"), .invalidChunkDelimiter)
        self.assertRejected(self.chunked("5\r\nhello\rX0\r\n\r\n"), .invalidChunkDelimiter)
    }

    func testTrailersFollowTheLastChunkUnderTheSameRules() {
        let message = self.assertAccepted(self.chunked("3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Two:  2 \r\n\r\n"))
        XCTAssertEqual(message?.trailers, [.init(name: "X-Sum", value: "1"), .init(name: "X-Two", value: "2")])
        self.assertRejected(self.chunked("0\r\nX-Sum : 1\r\n\r\n"), .whitespaceBeforeColon)
        self.assertRejected(self.chunked("0\r\nX-Sum: 1\r\n folded\r\n\r\n"), .obsoleteLineFolding)
        self.assertRejected(self.chunked("0\r\nX-Sum: \u{0}\r\n\r\n"), .controlByte)
        // Found by the differential test: llhttp refuses framing fields among trailers.
        self.assertRejected(self.chunked("0\r\nTransfer-Encoding: identity\r\n\r\n"), .framingFieldInTrailers)
        self.assertRejected(self.chunked("0\r\ncontent-length: 3\r\n\r\n"), .framingFieldInTrailers)
        self.assertRejected(self.chunked("0\r\nHost: b.example\r\n\r\n"), .framingFieldInTrailers)
    }

    // MARK: Host

    func testADuplicateHostIsRejected() {
        self.assertRejected("GET / HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n\r\n", .duplicateHost)
        self.assertRejected("GET / HTTP/1.1\r\nHost: a.example\r\nhost: b.example\r\n\r\n", .duplicateHost)
    }

    func testHostValuesMustBeHostAndPort() {
        for value in ["a b", "a@b", "a/b", "a:b", "a:", ":80", "a:123456", "a:80:80", "[::1", "[]", "[::1]x", "a%zz", "a?b"] {
            self.assertRejected("GET / HTTP/1.1\r\nHost: \(value)\r\n\r\n", .invalidHost)
        }
        for value in ["", "example.com", "EXAMPLE.com:8080", "127.0.0.1:80", "[::1]", "[::1]:443", "a_b-c~d%41"] {
            self.assertAccepted("GET / HTTP/1.1\r\nHost: \(value)\r\n\r\n")
        }
    }

    // MARK: The request line

    func testInvalidMethodsAreRejected() {
        for line in [" GET / HTTP/1.1", "G(T / HTTP/1.1", "GET\t/ HTTP/1.1", "GE\u{e9}T / HTTP/1.1", "/ HTTP/1.1"] {
            self.assertRejected("\(line)\r\nHost: a\r\n\r\n", .invalidMethod)
        }
        // Extension methods are tokens like any other (RFC 9110 §9.1).
        XCTAssertEqual(self.assertAccepted("PROPFIND /dav HTTP/1.1\r\nHost: a\r\n\r\n")?.startLine, "PROPFIND /dav")
        XCTAssertEqual(self.assertAccepted("M-SEARCH /x HTTP/1.1\r\nHost: a\r\n\r\n")?.startLine, "M-SEARCH /x")
        self.assertRejected("M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget)
    }

    func testInvalidRequestTargetsAreRejected() {
        for line in [
            "GET  / HTTP/1.1", "GET /caf\u{e9} HTTP/1.1", "GET /a#frag HTTP/1.1", "GET * HTTP/1.1",
            "GET example.com:443 HTTP/1.1", "GET ftp://example.com/ HTTP/1.1", "GET http:// HTTP/1.1",
            "CONNECT / HTTP/1.1", "CONNECT example.com HTTP/1.1", "GET a/b HTTP/1.1",
        ] {
            self.assertRejected("\(line)\r\nHost: a\r\n\r\n", .invalidTarget)
        }
    }

    func testTheFourTargetFormsAreAccepted() {
        XCTAssertEqual(self.assertAccepted("GET /a/b?c=d&e=%20|{} HTTP/1.1\r\nHost: a\r\n\r\n")?.startLine, "GET /a/b?c=d&e=%20|{}")
        XCTAssertEqual(self.assertAccepted("GET http://a.example/x HTTP/1.1\r\nHost: a\r\n\r\n")?.startLine, "GET http://a.example/x")
        XCTAssertEqual(self.assertAccepted("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")?.startLine, "OPTIONS *")
        let connect = Feeding.requests("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n")
        XCTAssertEqual(connect.messages.first?.startLine, "CONNECT a.example:443")
        XCTAssertTrue(connect.awaitingUpgrade)
    }

    func testOnlyHTTP10And11AreAccepted() {
        for version in ["HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "http/1.1", "HTTP/1.1 ", "HTTP/1", "HTTP/11", "HTTP/1.10", "HTTP/ 1.1"] {
            self.assertRejected("GET / \(version)\r\nHost: a\r\n\r\n", .invalidVersion)
        }
        self.assertRejected("GET /\r\n\r\n", .invalidTarget)
        self.assertAccepted("GET / HTTP/1.0\r\n\r\n")
    }

    // MARK: Sizes, CONNECT bodies, leading empty lines

    func testAHeadOverTheLimitIs431() {
        let limits = HTTP1ParserLimits(maxHeadBytes: 64, maxFields: 4)
        let fits = "GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + String(repeating: "v", count: 27) + "\r\n\r\n"
        XCTAssertEqual(fits.utf8.count, 64)
        self.assertAccepted(fits, limits: limits)
        let over = "GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + String(repeating: "v", count: 28) + "\r\n\r\n"
        self.assertRejected(over, .headTooLarge, status: 431, limits: limits)
        // The limit is enforced while the head is still arriving, not only once it ends.
        let endless = "GET /" + String(repeating: "a", count: 100)
        self.assertRejected(endless, .headTooLarge, status: 431, limits: limits)
        self.assertRejected("GET / HTTP/1.1\r\na:\r\nb:\r\nc:\r\nd:\r\ne:\r\n\r\n", .tooManyFields, status: 431, limits: limits)
    }

    func testATrailerSectionOverTheLimitIs431() {
        let limits = HTTP1ParserLimits(maxHeadBytes: 64, maxFields: 4)
        let input = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + String(repeating: "t", count: 70) + "\r\n\r\n"
        self.assertRejected(input, .headTooLarge, status: 431, limits: limits)
    }

    func testACONNECTWithABodyIsRejected() {
        self.assertRejected("CONNECT a:443 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", .bodyOnConnect)
        self.assertRejected("CONNECT a:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", .bodyOnConnect)
    }

    func testTheFirstErrorIsTheOneReported() {
        // The parser stops at the line that breaks a rule; what follows is never looked at.
        self.assertRejected("GET / HTTP/1.1\r\nX : y\r\nZ: \u{0}\r\nContent-Length: -1\r\n\r\n", .whitespaceBeforeColon)
        self.assertRejected("GET / HTTP/1.1\r\nContent-Length: +1\r\nHost: a\r\nHost: b\r\n\r\n", .invalidContentLength)
        self.assertRejected("GET / HTTP/9.9\r\nX : y\r\n\r\n", .invalidVersion)
    }

    func testEmptyLinesBeforeARequestAreSkipped() {
        let outcome = Feeding.requests("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.messages.map(\.startLine), ["GET /"])
        self.assertRejected("\nGET / HTTP/1.1\r\n\r\n", .bareLF)
    }
}
