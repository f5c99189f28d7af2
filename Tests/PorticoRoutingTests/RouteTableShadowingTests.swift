import PorticoConfig
import PorticoRouting
import XCTest

final class RouteTableShadowingTests: XCTestCase {
    private func shadowings(_ routes: RouteConfig...) throws -> [RouteShadowing] {
        try RouteTable(routes.enumerated().map { index, route in
            var route = route
            route.index = index
            return route
        }).shadowedRoutes()
    }

    func testCatchAllShadowsEverythingAfterIt() throws {
        XCTAssertEqual(try shadowings(
            route("all"),
            route("v1", path: .prefix("/v1/")),
            route("health", host: .exact("a.example.com"), path: .exact("/healthz"), methods: ["GET"])
        ), [RouteShadowing(shadowed: 1, by: 0), RouteShadowing(shadowed: 2, by: 0)])
    }

    func testShorterPrefixShadowsLongerPrefixAndExactPaths() throws {
        XCTAssertEqual(try shadowings(
            route("api", path: .prefix("/api/")),
            route("users", path: .prefix("/api/users/")),
            route("one-user", path: .exact("/api/users/42")),
            route("other", path: .prefix("/web/"))
        ), [RouteShadowing(shadowed: 1, by: 0), RouteShadowing(shadowed: 2, by: 0)])
    }

    func testMoreSpecificFirstIsNotReported() throws {
        XCTAssertEqual(try shadowings(
            route("users", path: .prefix("/api/users/")),
            route("api", path: .prefix("/api/")),
            route("exact", path: .exact("/api")),
            route("all")
        ), [])
    }

    func testEachShadowedRouteIsReportedOnceWithTheFirstCulprit() throws {
        XCTAssertEqual(try shadowings(
            route("api", path: .prefix("/api/")),
            route("all"),
            route("users", path: .prefix("/api/users/"))
        ), [RouteShadowing(shadowed: 2, by: 0)])
    }

    func testExactAndRegexOnlyCoverIdenticalConditions() throws {
        XCTAssertEqual(try shadowings(
            route("exact", path: .exact("/a")),
            route("same-exact", path: .exact("/a")),
            route("regex", path: .regex("/users/[0-9]+")),
            route("same-regex", path: .regex("/users/[0-9]+")),
            route("narrower-regex", path: .regex("/users/1[0-9]*")),
            route("prefix-under-exact", path: .prefix("/a"))
        ), [RouteShadowing(shadowed: 1, by: 0), RouteShadowing(shadowed: 3, by: 2)])
    }

    func testHostCoverage() throws {
        XCTAssertEqual(try shadowings(
            route("wildcard", host: .suffix(".example.com")),
            route("exact-under", host: .exact("api.example.com")),
            route("deeper-wildcard", host: .suffix(".eu.example.com")),
            route("apex", host: .exact("example.com")),
            route("other", host: .suffix(".example.org")),
            route("any-host")
        ), [RouteShadowing(shadowed: 1, by: 0), RouteShadowing(shadowed: 2, by: 0)])

        XCTAssertEqual(try shadowings(
            route("exact", host: .exact("Api.Example.com")),
            route("same-host", host: .exact("api.example.com."), path: .prefix("/x"))
        ), [RouteShadowing(shadowed: 1, by: 0)])
    }

    func testHeadersOfTheEarlierRouteMustAllAppearInTheLaterOne() throws {
        let canary = HeaderMatch(name: "x-canary", kind: .exact("true"))
        let debug = HeaderMatch(name: "x-debug", kind: .present(true))
        XCTAssertEqual(try shadowings(
            route("canary", headers: [canary]),
            route("canary-debug", headers: [debug, canary]),
            route("debug", headers: [debug]),
            route("canary-false", headers: [HeaderMatch(name: "x-canary", kind: .exact("false"))])
        ), [RouteShadowing(shadowed: 1, by: 0)])
    }

    func testMethods() throws {
        XCTAssertEqual(try shadowings(
            route("read", methods: ["GET", "HEAD"]),
            route("get", methods: ["GET"]),
            route("post", methods: ["POST"]),
            route("any-method")
        ), [RouteShadowing(shadowed: 1, by: 0)])
    }

    func testDescriptionNamesBothRoutes() {
        XCTAssertEqual(RouteShadowing(shadowed: 3, by: 1).description, "route 3 is shadowed by route 1")
    }
}
