import PorticoConfig
import PorticoRouting
import XCTest

final class RouteTableMatchingTests: XCTestCase {
    func testFirstMatchWinsEvenOverAMoreSpecificLaterRoute() throws {
        let routes = try table(
            route("catch-all-api", path: .prefix("/api/")),
            route("users", path: .prefix("/api/users/")),
            route("exact-user", path: .exact("/api/users/42"))
        )
        let matched = try XCTUnwrap(routes.match(TestRequest(normalizedPath: "/api/users/42")))
        XCTAssertEqual(matched.config.name, "catch-all-api")
        XCTAssertEqual(matched.index, 0)
        XCTAssertEqual(matched.matchedPrefix, "/api/")
    }

    func testNoRouteMatchesMeansNil() throws {
        let routes = try table(route("v1", path: .prefix("/v1/")))
        XCTAssertNil(routes.match(TestRequest(normalizedPath: "/v2/x")))
    }

    func testPrefixIsAPlainStringPrefix() throws {
        let routes = try table(route("v1", path: .prefix("/v1/")), route("fallback"))
        XCTAssertEqual(routes.routeName(for: TestRequest(normalizedPath: "/v1/users")), "v1")
        XCTAssertEqual(routes.routeName(for: TestRequest(normalizedPath: "/v1/")), "v1")
        // Envoy semantics: the prefix `/v1/` does not match `/v1` itself.
        XCTAssertEqual(routes.routeName(for: TestRequest(normalizedPath: "/v1")), "fallback")

        let bare = try table(route("v1", path: .prefix("/v1")), route("fallback"))
        XCTAssertEqual(bare.routeName(for: TestRequest(normalizedPath: "/v1")), "v1")
        XCTAssertEqual(bare.routeName(for: TestRequest(normalizedPath: "/v10/x")), "v1")
    }

    func testExactPathComparesTheWholePath() throws {
        let routes = try table(route("health", path: .exact("/healthz")), route("fallback"))
        XCTAssertEqual(routes.routeName(for: TestRequest(normalizedPath: "/healthz")), "health")
        XCTAssertEqual(routes.routeName(for: TestRequest(normalizedPath: "/healthz/")), "fallback")
        XCTAssertEqual(routes.routeName(for: TestRequest(normalizedPath: "/Healthz")), "fallback")
    }

    func testRegexMustMatchTheWholePath() throws {
        let routes = try table(route("user", path: .regex("/users/[0-9]+")), route("fallback"))
        XCTAssertEqual(routes.routeName(for: TestRequest(normalizedPath: "/users/42")), "user")
        XCTAssertEqual(routes.routeName(for: TestRequest(normalizedPath: "/users/42/orders")), "fallback")
        XCTAssertEqual(routes.routeName(for: TestRequest(normalizedPath: "/v1/users/42")), "fallback")
        XCTAssertNil(routes.match(TestRequest(normalizedPath: "/users/42")).flatMap(\.matchedPrefix))
    }

    func testAnInvalidRegexFailsTheTableWithItsLocation() {
        XCTAssertThrowsError(try table(route("broken", path: .regex("/users/(")))) { error in
            guard case .invalidRegex(let name, let pattern, let location, _) = error as? RouteTableError else {
                return XCTFail("unexpected error \(error)")
            }
            XCTAssertEqual(name, "broken")
            XCTAssertEqual(pattern, "/users/(")
            XCTAssertEqual(location.file, "gateway.yaml")
            XCTAssertTrue("\(error)".hasPrefix("gateway.yaml:1:1: route 'broken': invalid regex '/users/('"))
        }
    }

    func testExactHostIgnoresCasePortAndTrailingDot() throws {
        let routes = try table(route("api", host: .exact("api.example.com")), route("fallback"))
        for authority in ["api.example.com", "API.Example.COM", "api.example.com:8080", "api.example.com.", "Api.Example.Com.:443"] {
            XCTAssertEqual(routes.routeName(for: TestRequest(authority: authority)), "api", authority)
        }
        for authority in ["www.example.com", "api.example.com.evil", "xapi.example.com", ""] {
            XCTAssertEqual(routes.routeName(for: TestRequest(authority: authority)), "fallback", authority)
        }
    }

    func testIPv6HostWithPort() throws {
        let routes = try table(route("local", host: .exact("::1")), route("fallback"))
        XCTAssertEqual(routes.routeName(for: TestRequest(authority: "[::1]:8443")), "local")
        XCTAssertEqual(routes.routeName(for: TestRequest(authority: "[::1]")), "local")
        XCTAssertEqual(routes.routeName(for: TestRequest(authority: "[::2]:8443")), "fallback")

        // The config may spell the literal with brackets too.
        let bracketed = try table(route("local", host: .exact("[::1]")))
        XCTAssertEqual(bracketed.routeName(for: TestRequest(authority: "[::1]:8443")), "local")
    }

    func testSuffixHostNeedsAtLeastOneMoreLabel() throws {
        let routes = try table(route("wildcard", host: .suffix(".example.com")), route("fallback"))
        XCTAssertEqual(routes.routeName(for: TestRequest(authority: "a.example.com")), "wildcard")
        XCTAssertEqual(routes.routeName(for: TestRequest(authority: "a.b.example.com")), "wildcard")
        XCTAssertEqual(routes.routeName(for: TestRequest(authority: "A.Example.com:8080")), "wildcard")
        XCTAssertEqual(routes.routeName(for: TestRequest(authority: "a.example.com.")), "wildcard")
        XCTAssertEqual(routes.routeName(for: TestRequest(authority: "example.com")), "fallback")
        XCTAssertEqual(routes.routeName(for: TestRequest(authority: ".example.com")), "fallback")
        XCTAssertEqual(routes.routeName(for: TestRequest(authority: "badexample.com")), "fallback")
    }

    func testHeaderExactValueIsCaseSensitive() throws {
        let routes = try table(
            route("canary", headers: [HeaderMatch(name: "x-canary", kind: .exact("true"))]),
            route("fallback")
        )
        XCTAssertEqual(routes.routeName(for: TestRequest(headers: ["x-canary": "true"])), "canary")
        XCTAssertEqual(routes.routeName(for: TestRequest(headers: ["x-canary": "True"])), "fallback")
        XCTAssertEqual(routes.routeName(for: TestRequest(headers: ["x-canary": "true "])), "fallback")
        XCTAssertEqual(routes.routeName(for: TestRequest()), "fallback")
    }

    func testHeaderPresence() throws {
        let routes = try table(
            route("debug", headers: [HeaderMatch(name: "x-debug", kind: .present(true))]),
            route("anonymous", headers: [HeaderMatch(name: "authorization", kind: .present(false))]),
            route("fallback")
        )
        XCTAssertEqual(routes.routeName(for: TestRequest(headers: ["x-debug": ""])), "debug")
        XCTAssertEqual(routes.routeName(for: TestRequest(headers: ["x-debug": "1", "authorization": "x"])), "debug")
        XCTAssertEqual(routes.routeName(for: TestRequest()), "anonymous")
        XCTAssertEqual(routes.routeName(for: TestRequest(headers: ["authorization": "Bearer t"])), "fallback")
    }

    func testEveryHeaderConditionMustHold() throws {
        let routes = try table(
            route("both", headers: [
                HeaderMatch(name: "x-a", kind: .exact("1")),
                HeaderMatch(name: "x-b", kind: .present(true)),
            ]),
            route("fallback")
        )
        XCTAssertEqual(routes.routeName(for: TestRequest(headers: ["x-a": "1", "x-b": "y"])), "both")
        XCTAssertEqual(routes.routeName(for: TestRequest(headers: ["x-a": "1"])), "fallback")
        XCTAssertEqual(routes.routeName(for: TestRequest(headers: ["x-b": "y"])), "fallback")
    }

    func testMethods() throws {
        let routes = try table(
            route("read", path: .prefix("/items"), methods: ["GET", "HEAD"]),
            route("any-method", path: .prefix("/items"))
        )
        XCTAssertEqual(routes.routeName(for: TestRequest(method: "GET", normalizedPath: "/items")), "read")
        XCTAssertEqual(routes.routeName(for: TestRequest(method: "HEAD", normalizedPath: "/items")), "read")
        XCTAssertEqual(routes.routeName(for: TestRequest(method: "POST", normalizedPath: "/items")), "any-method")
        XCTAssertEqual(routes.routeName(for: TestRequest(method: "DELETE", normalizedPath: "/items")), "any-method")
    }

    func testAllConditionsTogether() throws {
        let routes = try table(
            route("v1-canary", host: .exact("api.example.com"), path: .prefix("/v1/"),
                  headers: [HeaderMatch(name: "x-canary", kind: .exact("true"))], methods: ["GET"]),
            route("fallback")
        )
        let hit = TestRequest(method: "GET", authority: "api.example.com:443", normalizedPath: "/v1/x", headers: ["x-canary": "true"])
        XCTAssertEqual(routes.routeName(for: hit), "v1-canary")

        var wrongHost = hit
        wrongHost.authority = "web.example.com"
        var wrongPath = hit
        wrongPath.normalizedPath = "/v2/x"
        var wrongHeader = hit
        wrongHeader.headers = [:]
        var wrongMethod = hit
        wrongMethod.method = "PUT"
        for miss in [wrongHost, wrongPath, wrongHeader, wrongMethod] {
            XCTAssertEqual(routes.routeName(for: miss), "fallback", "\(miss)")
        }
    }

    func testSplitRoutesPickTheirServiceFromTheDraw() throws {
        let routes = try table(route("split", action: .split([
            WeightedBackend(service: "new", weight: 1),
            WeightedBackend(service: "old", weight: 0),
        ])))
        let matched = try XCTUnwrap(routes.match(TestRequest()))
        XCTAssertEqual(matched.route.backend(draw: StableHash.hash("anything")), .service("new"))
        XCTAssertNil(matched.route.stickyHash(of: TestRequest(headers: ["x-user": "a"])), "no stickyOn: every request draws")

        let plain = try table(route("plain", action: .service("users")))
        XCTAssertEqual(plain.match(TestRequest())?.route.backend(draw: 0), .service("users"))
    }

    func testStickySplitsHashTheHeaderOrCookieValue() throws {
        var byHeader = route("by-header", action: .split([WeightedBackend(service: "a", weight: 1), WeightedBackend(service: "b", weight: 1)]))
        byHeader.splitStickyOn = .header("x-user")
        let header = try XCTUnwrap(table(byHeader).match(TestRequest())).route
        XCTAssertEqual(header.stickyHash(of: TestRequest(headers: ["x-user": "alice"])), StableHash.hash("alice"))
        XCTAssertNil(header.stickyHash(of: TestRequest(headers: ["cookie": "x-user=alice"])))

        var byCookie = byHeader
        byCookie.splitStickyOn = .cookie("session")
        let cookie = try XCTUnwrap(table(byCookie).match(TestRequest())).route
        XCTAssertEqual(cookie.stickyHash(of: TestRequest(headers: ["cookie": "theme=dark; session=s1"])), StableHash.hash("s1"))
        XCTAssertNil(cookie.stickyHash(of: TestRequest(headers: ["cookie": "Session=s1; sessionid=s2"])), "names compare exactly")
        XCTAssertNil(cookie.stickyHash(of: TestRequest(headers: ["session": "s1"])))
        // HTTP/2 may send each cookie as its own field.
        XCTAssertEqual(cookie.stickyHash(of: SeveralCookies(cookies: ["theme=dark", "session=s2"])), StableHash.hash("s2"))
    }

    func testCookieValues() {
        XCTAssertEqual(CookieHeader.value(named: "a", in: "a=1"), "1")
        XCTAssertEqual(CookieHeader.value(named: "b", in: "a=1; b=2;c=3"), "2")
        XCTAssertEqual(CookieHeader.value(named: "c", in: "a=1; b=2;c=3"), "3")
        XCTAssertEqual(CookieHeader.value(named: "q", in: #"q="quoted value""#), "quoted value")
        XCTAssertEqual(CookieHeader.value(named: "e", in: "e=; f=1"), "")
        XCTAssertEqual(CookieHeader.value(named: "a", in: "a = 1 "), "1")
        XCTAssertEqual(CookieHeader.value(named: "t", in: "t=x=y"), "x=y", "the value runs to the ';'")
        XCTAssertNil(CookieHeader.value(named: "a", in: "ab=1; ba=2; noequals"))
        XCTAssertEqual(CookieHeader.value(named: "a", in: "a=first; a=second"), "first")
    }
}

/// A request whose `cookie` came as several header fields.
private struct SeveralCookies: RoutableRequest {
    var method = "GET"
    var authority = "api.example.com"
    var normalizedPath = "/"
    var cookies: [String]

    func firstHeaderValue(lowercasedName: String) -> String? {
        lowercasedName == "cookie" ? cookies.first : nil
    }

    func headerValues(lowercasedName: String) -> [String] {
        lowercasedName == "cookie" ? cookies : []
    }
}
