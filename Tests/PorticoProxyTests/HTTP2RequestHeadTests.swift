import Foundation
import NIOHPACK
import NIOHTTP1
import PorticoHTTP1
@testable import PorticoProxy
import XCTest

/// The checks an HTTP/2 header block passes before it becomes a request the proxy reads
/// (RFC 9113 8.2 and 8.3), one rule at a time.
final class HTTP2RequestHeadTests: XCTestCase {
    private let base: [(String, String)] = [(":method", "GET"), (":scheme", "https"), (":path", "/a?b=1"),
                                            (":authority", "api.example")]

    private func head(_ fields: [(String, String)], endStream: Bool = true) throws(HTTP2MalformedRequest) -> RequestHead {
        try RequestHead(http2Fields: HPACKHeaders(fields), endStream: endStream)
    }

    private func assertMalformed(_ fields: [(String, String)], _ expected: HTTP2MalformedRequest,
                                 file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try head(fields)
            XCTFail("accepted \(fields)", file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, "\(fields)", file: file, line: line)
        }
    }

    func testAWellFormedRequestBecomesAnHTTP1Head() throws {
        let request = try head(base + [("accept", "*/*"), ("cookie", "a=1")])
        XCTAssertEqual(request.method, "GET")
        XCTAssertEqual(request.target, "/a?b=1")
        XCTAssertEqual(request.version, .http2)
        // Host from :authority comes after the client's fields (appended to the field list; the
        // order of differently named fields carries no meaning, RFC 9110 5.3).
        XCTAssertEqual(request.fields.pairs.map { "\($0.name)=\($0.value)" }, ["accept=*/*", "cookie=a=1", "host=api.example"])
    }

    func testABodyIsFramedForTheUpstream() throws {
        let post = base.map { $0.0 == ":method" ? (":method", "POST") : $0 }
        XCTAssertEqual(try head(post, endStream: false).fields.values(of: "transfer-encoding"), ["chunked"])
        XCTAssertEqual(try head(post, endStream: true).fields.values(of: "content-length"), ["0"])
        XCTAssertEqual(try head(post + [("content-length", "5")], endStream: false).fields.values(of: "content-length"), ["5"])
        XCTAssertFalse(try head(base, endStream: false).fields.contains("transfer-encoding"), "GET frames no body")
    }

    func testAnExtendedConnectBecomesAWebSocketUpgrade() throws {
        let request = try head([(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/chat"),
                                (":authority", "api.example"), ("sec-websocket-version", "13")], endStream: false)
        XCTAssertEqual(request.method, "GET")
        XCTAssertEqual(request.target, "/chat")
        XCTAssertEqual(request.fields.firstValue(of: "upgrade"), "websocket")
        XCTAssertEqual(request.fields.firstValue(of: "connection"), "upgrade")
        XCTAssertEqual(request.fields.firstValue(of: "host"), "api.example")
        XCTAssertEqual(request.fields.firstValue(of: "sec-websocket-version"), "13")
        let key = try XCTUnwrap(request.fields.firstValue(of: "sec-websocket-key"))
        XCTAssertEqual(Data(base64Encoded: key)?.count, 16, "16 random bytes, base64 (RFC 6455 4.1)")
        XCTAssertTrue(request.fields.isUpgradeRequest)
        // Without :authority, or on another method, it is malformed.
        assertMalformed([(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/chat")],
                        .missingPseudoHeader)
        assertMalformed(base + [(":protocol", "websocket")], .unknownPseudoHeader)
    }

    func testPseudoHeaderRules() {
        assertMalformed([(":method", "GET"), (":scheme", "https"), (":authority", "a")], .missingPseudoHeader)
        assertMalformed([(":method", "GET"), (":scheme", "https"), (":path", ""), (":authority", "a")], .missingPseudoHeader)
        assertMalformed(base + [(":method", "POST")], .duplicatePseudoHeader)
        assertMalformed([(":method", "GET"), ("accept", "*/*"), (":scheme", "https"), (":path", "/")], .pseudoHeaderAfterRegular)
        assertMalformed(base + [(":status", "200")], .unknownPseudoHeader)
        assertMalformed(base + [(":protocol", "websocket")], .unknownPseudoHeader)
        assertMalformed([(":method", "GET"), (":scheme", "https"), (":path", "/a b"), (":authority", "a")], .invalidPseudoHeaderValue)
        assertMalformed([(":method", "GET"), (":scheme", "https"), (":path", "/a\r\nx: y"), (":authority", "a")],
                        .invalidPseudoHeaderValue)
    }

    func testFieldNamesAreLowercaseTokens() {
        assertMalformed(base + [("Accept", "*/*")], .invalidFieldName)
        assertMalformed(base + [("a b", "1")], .invalidFieldName)
        assertMalformed(base + [("a:b", "1")], .invalidFieldName)
    }

    func testValuesWithCRLFNULOrEdgeWhitespaceAreMalformed() {
        for value in ["a\rb", "a\nb", "a\u{0}b", " a", "a ", "\ta", "a\t"] {
            assertMalformed(base + [("x-v", value)], .invalidFieldValue)
        }
        XCTAssertNoThrow(try head(base + [("x-v", "a b\tc")]), "inner whitespace is allowed")
    }

    /// HTTP/1 forbids every control byte but HTAB, and DEL, in a value (RFC 9110 5.5): refused at
    /// the edge, not by the upstream writer after routing (which counted as the endpoint's failure).
    func testOtherControlBytesAndDELAreMalformedAndAMethodIsAToken() {
        for value in ["a\u{1}b", "a\u{1F}b", "a\u{7F}b", "\u{8}"] {
            assertMalformed(base + [("x-v", value)], .invalidFieldValue)
        }
        let noMethod = base.filter { $0.0 != ":method" }
        for method in ["GE(T", "GET/", "GE\"T", ""] {
            assertMalformed([(":method", method)] + noMethod, .invalidPseudoHeaderValue)
        }
        XCTAssertNoThrow(try head([(":method", "PURGE")] + noMethod), "an extension method that is a token")
    }

    /// RFC 9113 8.2.3: split `cookie` fields become one, joined with "; ", for HTTP/1.
    func testSplitCookiesAreJoined() throws {
        let request = try head(base + [("cookie", "a=1"), ("accept", "*/*"), ("cookie", "b=2")])
        XCTAssertEqual(request.fields.values(of: "cookie"), ["a=1; b=2"])
        XCTAssertEqual(try head(base + [("cookie", "only=1")]).fields.values(of: "cookie"), ["only=1"])
    }

    func testConnectionSpecificFieldsAndTEAreRefused() {
        for name in ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"] {
            assertMalformed(base + [(name, "x")], .connectionSpecificField)
        }
        assertMalformed(base + [("te", "gzip")], .teOtherThanTrailers)
        XCTAssertNoThrow(try head(base + [("te", "trailers")]))
    }

    func testHostMustAgreeWithAuthority() throws {
        assertMalformed(base + [("host", "other.example")], .hostDiffersFromAuthority)
        assertMalformed(base + [("host", "api.example"), ("host", "api.example")], .hostDiffersFromAuthority)
        XCTAssertEqual(try head(base + [("host", "API.example")]).fields.values(of: "host"), ["API.example"], "case does not matter")
        let noAuthority = base.filter { $0.0 != ":authority" } + [("host", "h.example")]
        XCTAssertEqual(try head(noAuthority).fields.values(of: "host"), ["h.example"])
    }

    func testTrailersFollowTheSameRules() throws {
        XCTAssertEqual(try RequestHead.http2Trailers(HPACKHeaders([("x-sum", "1")])).values(of: "x-sum"), ["1"])
        XCTAssertThrowsError(try RequestHead.http2Trailers(HPACKHeaders([(":path", "/")])))
        XCTAssertThrowsError(try RequestHead.http2Trailers(HPACKHeaders([("x-v", "a\nb")])))
    }

    func testResponsesLoseConnectionSpecificFieldsAndGetLowercaseNames() {
        var headers = HTTPFieldList([("Content-Type", "text/plain"), ("Connection", "close"), ("Keep-Alive", "5"),
                                     ("Transfer-Encoding", "chunked"), ("x-ok", "1")])
        headers.append(name: "Upgrade", value: "h2c")
        let fields = HPACKHeaders(response: ResponseHead(status: 200, fields: headers))
        XCTAssertEqual(fields.map { "\($0.name)=\($0.value)" }, [":status=200", "content-type=text/plain", "x-ok=1"])
    }

    /// An upstream's request block keeps values that repeat (the path, the host, the
    /// forwarding headers) indexable, and values new on every request out of the HPACK table.
    func testPerRequestIDsGoUpstreamWithoutIndexing() throws {
        var request = try head(base + [("accept", "*/*"), ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")])
        request.fields.append(name: "X-Request-Id", value: "4bf92f3577b34da6a3ce929d0e0e4736")
        let block = HPACKHeaders(upstreamRequest: request, scheme: "http")
        var indexing: [String: HPACKIndexing] = [:]
        for (name, _, how) in block { indexing[name] = how }
        XCTAssertEqual(indexing["x-request-id"], .nonIndexable)
        XCTAssertEqual(indexing["traceparent"], .nonIndexable)
        XCTAssertEqual(indexing[":path"], .indexable)
        XCTAssertEqual(indexing["accept"], .indexable)
        XCTAssertEqual(indexing["host"], nil, "`:authority` carries it")
    }

    /// RFC 9113 8.5: a CONNECT that is not extended carries only `:method` and `:authority`.
    func testAConnectWithASchemeOrPathIsMalformed() {
        assertMalformed([(":method", "CONNECT"), (":scheme", "https"), (":path", "/x"), (":authority", "db:5432")],
                        .schemeOrPathOnConnect)
        assertMalformed([(":method", "CONNECT"), (":path", "/x"), (":authority", "db:5432")], .schemeOrPathOnConnect)
    }
}
