import PorticoConfig
import PorticoRouting
import XCTest

final class RouteTableRedirectingTests: XCTestCase {
    private func location(
        _ redirect: RedirectConfig,
        path: PathMatch = .any,
        scheme: String = "http",
        authority: String = "example.com",
        requestPath: String = "/a/b",
        query: String? = "q=1"
    ) throws -> String {
        let routes = try table(route("redirect", path: path, action: .redirect(redirect)))
        let matched = try XCTUnwrap(routes.match(TestRequest(authority: authority, normalizedPath: requestPath)))
        return routes.redirectLocation(redirect, matched: matched, scheme: scheme, authority: authority,
                                       normalizedPath: requestPath, query: query)
    }

    func testHTTPSRedirectKeepsHostPathAndQuery() throws {
        XCTAssertEqual(try location(RedirectConfig(scheme: "https")), "https://example.com/a/b?q=1")
        // The old default port means nothing for the new scheme.
        XCTAssertEqual(try location(RedirectConfig(scheme: "https"), authority: "example.com:80"), "https://example.com/a/b?q=1")
        // A non-default port is the client's choice and stays.
        XCTAssertEqual(try location(RedirectConfig(scheme: "https"), authority: "example.com:8080"), "https://example.com:8080/a/b?q=1")
    }

    func testPortIsOmittedWhenItIsTheSchemeDefault() throws {
        XCTAssertEqual(try location(RedirectConfig(scheme: "https", port: 443)), "https://example.com/a/b?q=1")
        XCTAssertEqual(try location(RedirectConfig(scheme: "https", port: 8443)), "https://example.com:8443/a/b?q=1")
        XCTAssertEqual(try location(RedirectConfig(port: 80), authority: "example.com:8080"), "http://example.com/a/b?q=1")
        XCTAssertEqual(try location(RedirectConfig(port: 443)), "http://example.com:443/a/b?q=1")
        XCTAssertEqual(try location(RedirectConfig(), authority: "example.com:8080"), "http://example.com:8080/a/b?q=1")
    }

    func testHostReplacement() throws {
        XCTAssertEqual(try location(RedirectConfig(host: "www.example.org")), "http://www.example.org/a/b?q=1")
        XCTAssertEqual(try location(RedirectConfig(host: "::1", port: 8443)), "http://[::1]:8443/a/b?q=1")
        // The port the request used belongs to this server, not to the new host.
        XCTAssertEqual(try location(RedirectConfig(host: "www.example.org"), authority: "example.com:8080"),
                       "http://www.example.org/a/b?q=1")
        XCTAssertEqual(try location(RedirectConfig(scheme: "https"), authority: "[::1]:80"), "https://[::1]/a/b?q=1")
    }

    func testPathAndPrefixReplacement() throws {
        XCTAssertEqual(try location(RedirectConfig(path: "/new")), "http://example.com/new?q=1")
        XCTAssertEqual(try location(RedirectConfig(prefix: "/v2/"), path: .prefix("/a/")), "http://example.com/v2/b?q=1")
        XCTAssertEqual(try location(RedirectConfig(prefix: "/"), path: .prefix("/a")), "http://example.com/b?q=1")
    }

    func testStripQuery() throws {
        XCTAssertEqual(try location(RedirectConfig(stripQuery: true)), "http://example.com/a/b")
        XCTAssertEqual(try location(RedirectConfig(), query: nil), "http://example.com/a/b")
    }

    func testEveryPartAtOnce() throws {
        let redirect = RedirectConfig(scheme: "https", host: "new.example.com", port: 8443, path: "/landing", status: 308, stripQuery: true)
        XCTAssertEqual(try location(redirect, authority: "old.example.com:8080"), "https://new.example.com:8443/landing")
    }
}
