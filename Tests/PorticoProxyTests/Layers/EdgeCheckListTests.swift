import PorticoConfig
import PorticoCore
import PorticoHTTP1
@testable import PorticoProxy
import XCTest

/// The edge checks (`RequestPath.edge`), in their order, on heads built here: what each lets
/// through, what it learns for the ones after it, and which reply it fails with.
final class EdgeCheckListTests: XCTestCase {
    private func connection(_ underscores: UnderscoreHeaderAction = .drop, http1: Bool = true) -> DownstreamConnectionInfo {
        DownstreamConnectionInfo(scheme: "http", listenerName: "web", clientAddress: "10.0.0.1",
                                 protocolName: http1 ? "HTTP/1.1" : "HTTP/2", underscoreHeaders: underscores)
    }

    private func path(maxRequestHeaders: Int = 8192, maxRequestBody: Int = 1000) -> RequestPath {
        var limits = LimitsConfig()
        limits.maxRequestHeaders = maxRequestHeaders
        limits.maxRequestBody = maxRequestBody
        return RequestPath(routes: [], routePolicies: [], listenerPolicies: [:], limits: limits,
                           trustedOutputHeaders: ["x-user"])
    }

    /// Runs the edge list as `ProxyHandler` does: the first refusal ends it.
    private func run(_ target: String, _ fields: [(String, String)], version: HTTPProtocolVersion = .http1_1,
                     method: String = "GET", connection: DownstreamConnectionInfo? = nil,
                     path: RequestPath? = nil) -> (EdgeVerdict, EdgeRequest) {
        let head = RequestHead(method: method, target: target, version: version, fields: HTTPFieldList(fields))
        var request = EdgeRequest(head: head, connection: connection ?? self.connection())
        for check in (path ?? self.path()).edge {
            let verdict = check.check(&request)
            if verdict != .pass { return (verdict, request) }
        }
        return (.pass, request)
    }

    func testTheChecksComeInTheAssemblysOrder() {
        XCTAssertEqual(path().edge.map { String(describing: type(of: $0)) },
                       ["HeaderSizeCheck", "HostFieldCheck", "FramingCheck", "UnderscoreNameCheck", "BodySizeCheck",
                        "PathCheck", "AuthorityCheck"])
    }

    func testAPlainRequestPassesWithWhatRoutingNeeds() {
        let (verdict, request) = run("/a/./b/../c?x=1", [("Host", "api.example:8080"), ("Content-Length", "12")],
                                     method: "POST")
        XCTAssertEqual(verdict, .pass)
        XCTAssertEqual(request.contentLength, 12)
        XCTAssertEqual(request.target?.path, "/a/c")
        XCTAssertEqual(request.target?.query, "x=1")
        XCTAssertEqual(request.authority, "api.example:8080")
    }

    func testEachCheckFailsWithItsReply() {
        XCTAssertEqual(run("/" + String(repeating: "a", count: 200), [("host", "a")], path: path(maxRequestHeaders: 100)).0,
                       .reject(.headersTooLarge, close: true))
        XCTAssertEqual(run("/", [("host", "a"), ("host", "b")]).0, .reject(.malformedRequest, close: true))
        XCTAssertEqual(run("/", [("host", "a b")]).0, .reject(.malformedRequest, close: true))
        XCTAssertEqual(run("/", [("host", "a"), ("content-length", "1"), ("transfer-encoding", "chunked")]).0,
                       .reject(.malformedRequest, close: true))
        XCTAssertEqual(run("/", [("host", "a"), ("transfer-encoding", "gzip, chunked")]).0,
                       .reject(.unsupportedTransferCoding, close: true))
        XCTAssertEqual(run("/", [("host", "a"), ("content-length", "1001")]).0, .reject(.bodyTooLarge, close: true))
        XCTAssertEqual(run("/%2", [("host", "a")]).0, .reject(.malformedRequest, close: false),
                       "a path that cannot be read does not put the connection's framing in doubt")
        XCTAssertEqual(run("/", []).0, .reject(.malformedRequest, close: true), "HTTP/1.1 without a host")
        XCTAssertEqual(run("/", [], version: .http1_0).0, .pass, "HTTP/1.0 may leave Host out")
        XCTAssertEqual(run("http://a:8x/", [("host", "a")]).0, .reject(.malformedRequest, close: true),
                       "an absolute-form authority meets the Host grammar")
    }

    func testAnAbsoluteFormTargetsAuthorityReplacesHost() {
        let (verdict, request) = run("http://real.example/x", [("host", "other.example")])
        XCTAssertEqual(verdict, .pass)
        XCTAssertEqual(request.authority, "real.example")
        XCTAssertEqual(request.target?.path, "/x")
    }

    func testUnderscoreNamesFollowTheListener() {
        let fields = [("host", "a"), ("x_api_key", "k"), ("x_forwarded_for", "6.6.6.6"), ("x_user", "root")]
        let (dropped, droppedRequest) = run("/", fields)
        XCTAssertEqual(dropped, .pass)
        XCTAssertEqual(droppedRequest.head.fields.pairs.map(\.name), ["host"])

        XCTAssertEqual(run("/", fields, connection: connection(.reject)).0, .reject(.malformedRequest, close: true))
        XCTAssertEqual(run("/", [("host", "a"), ("content_length", "5"), ("content-length", "0")]).0,
                       .reject(.malformedRequest, close: true), "with a body, refused whatever the listener says")

        let (http2, http2Request) = run("/", [("host", "a"), ("content_length", "5"), ("content-length", "0")],
                                        connection: connection(http1: false))
        XCTAssertEqual(http2, .pass, "HTTP/2 frames its body itself: only the names go")
        XCTAssertEqual(http2Request.head.fields.pairs.map(\.name), ["host", "content-length"])

        let (allowed, allowedRequest) = run("/", fields, connection: connection(.allow))
        XCTAssertEqual(allowed, .pass)
        XCTAssertEqual(allowedRequest.head.fields.pairs.map(\.name), ["host", "x_api_key"],
                       "allowed, but never as a spelling of a field Portico writes or a policy vouches for")
    }
}
