import PorticoConfig
import PorticoRouting
import XCTest

final class RouteTableRewritingTests: XCTestCase {
    private func upstreamPath(_ route: RouteConfig, _ path: String, query: String? = nil) throws -> String {
        let routes = try table(route)
        let matched = try XCTUnwrap(routes.match(TestRequest(normalizedPath: path)), "no match for \(path)")
        return routes.upstreamPath(for: matched, normalizedPath: path, query: query)
    }

    func testWithoutRewriteThePathAndQueryPassThrough() throws {
        XCTAssertEqual(try upstreamPath(route("r", path: .prefix("/beta/")), "/beta/x", query: "a=1&b=%2F"), "/beta/x?a=1&b=%2F")
        XCTAssertEqual(try upstreamPath(route("r"), "/x"), "/x")
        XCTAssertEqual(try upstreamPath(route("r"), "/x", query: ""), "/x?")
    }

    func testPrefixRewriteReplacesTheMatchedPrefix() throws {
        let rewrite = RewriteConfig(prefix: "/v2/")
        XCTAssertEqual(try upstreamPath(route("r", path: .prefix("/v1/"), rewrite: rewrite), "/v1/users/42", query: "page=2"),
                       "/v2/users/42?page=2")
    }

    func testPrefixRewriteToRootDoesNotDoubleTheSlash() throws {
        let withSlash = route("r", path: .prefix("/beta/"), rewrite: RewriteConfig(prefix: "/"))
        XCTAssertEqual(try upstreamPath(withSlash, "/beta/x"), "/x")
        XCTAssertEqual(try upstreamPath(withSlash, "/beta/"), "/")

        let withoutSlash = route("r", path: .prefix("/beta"), rewrite: RewriteConfig(prefix: "/"))
        XCTAssertEqual(try upstreamPath(withoutSlash, "/beta/x"), "/x")
        XCTAssertEqual(try upstreamPath(withoutSlash, "/beta"), "/")
        XCTAssertEqual(try upstreamPath(withoutSlash, "/beta/x", query: "q"), "/x?q")
    }

    func testPrefixRewriteToEmptyStillGivesAnAbsolutePath() throws {
        let stripped = route("r", path: .prefix("/beta/"), rewrite: RewriteConfig(prefix: ""))
        XCTAssertEqual(try upstreamPath(stripped, "/beta/x"), "/x")
        XCTAssertEqual(try upstreamPath(stripped, "/beta/"), "/")
    }

    func testRewriteOnANonPrefixRouteReplacesTheWholePath() throws {
        let exact = route("r", path: .exact("/old"), rewrite: RewriteConfig(prefix: "/new"))
        XCTAssertEqual(try upstreamPath(exact, "/old", query: "q=1"), "/new?q=1")

        let regex = route("r", path: .regex("/users/[0-9]+"), rewrite: RewriteConfig(prefix: "/user"))
        XCTAssertEqual(try upstreamPath(regex, "/users/42"), "/user")
    }

    func testHostOnlyRewriteKeepsThePath() throws {
        let hostOnly = route("r", path: .prefix("/a/"), rewrite: RewriteConfig(host: "internal"))
        XCTAssertEqual(try upstreamPath(hostOnly, "/a/b", query: "c"), "/a/b?c")
    }
}
