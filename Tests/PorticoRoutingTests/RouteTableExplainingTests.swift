import PorticoConfig
@testable import PorticoRouting
import XCTest

/// `RouteTable.explain`: the route-by-route walk behind `portico explain`, which must agree with
/// `match` and name the condition each passed-over route failed.
final class RouteTableExplainingTests: XCTestCase {
    private func outcomes(_ trace: RouteTrace) -> [String] {
        trace.trials.map { trial in
            switch trial.outcome {
            case .matched: return "\(trial.route.config.name): matched"
            case .failed(let mismatch): return "\(trial.route.config.name): \(mismatch.condition): \(mismatch)"
            case .notReached(let wouldMatch): return "\(trial.route.config.name): notReached\(wouldMatch ? " (would match)" : "")"
            }
        }
    }

    func testEachFailedConditionIsNamedInMatchOrder() throws {
        let routes = try table(
            route("posts-only", methods: ["POST"]),
            route("other-host", host: .exact("admin.example.com")),
            route("wildcard", host: .suffix(".internal")),
            route("exact", path: .exact("/healthz")),
            route("prefix", path: .prefix("/v2/")),
            route("needs-canary", headers: [HeaderMatch(name: "x-canary", kind: .exact("true"))]),
            route("no-debug", headers: [HeaderMatch(name: "x-debug", kind: .present(false))]),
            route("regex", path: .regex("^/v1/[0-9]+$")),
            route("v1", path: .prefix("/v1/")))
        var request = TestRequest(method: "GET", authority: "API.example.com:8080", normalizedPath: "/v1/users")
        request.headers = ["x-canary": "false", "x-debug": "1"]
        let trace = routes.explain(request)
        XCTAssertEqual(outcomes(trace), [
            "posts-only: method: method GET is not one of POST",
            "other-host: host: host API.example.com is not admin.example.com",
            "wildcard: host: host API.example.com is not *.internal",
            "exact: path: path /v1/users does not match path /healthz",
            "prefix: path: path /v1/users does not match prefix /v2/",
            "needs-canary: header: header x-canary is \"false\", wants \"true\"",
            "no-debug: header: header x-debug must be absent, but is \"1\"",
            "regex: path: path /v1/users does not match regex ^/v1/[0-9]+$",
            "v1: matched",
        ])
        XCTAssertEqual(trace.matched?.config.name, routes.routeName(for: request))
    }

    func testAMissingHeaderIsNamed() throws {
        let routes = try table(route("canary", headers: [HeaderMatch(name: "x-canary", kind: .exact("true"))]),
                               route("rest"))
        let trace = routes.explain(TestRequest(normalizedPath: "/"))
        guard case .failed(let mismatch) = trace.trials[0].outcome else { return XCTFail("\(trace.trials[0].outcome)") }
        XCTAssertEqual(mismatch, .header(name: "x-canary", wanted: .exact("true"), got: nil))
        XCTAssertEqual(mismatch.description, "header x-canary is missing (wants \"true\")")
        XCTAssertEqual(trace.matched?.config.name, "rest")
    }

    func testAShadowedRouteSaysWhichRouteTakesItsRequests() throws {
        let routes = try table(route("api", path: .prefix("/api/")),
                               route("api-users", path: .prefix("/api/users/")),
                               route("docs", path: .prefix("/docs/")))
        let trace = routes.explain(TestRequest(normalizedPath: "/api/users/7"))
        XCTAssertEqual(outcomes(trace), ["api: matched", "api-users: notReached (would match)", "docs: notReached"])
        XCTAssertEqual(trace.trials[1].shadowedBy?.config.name, "api", "api-users never matches anything")
        XCTAssertNil(trace.trials[2].shadowedBy)
        XCTAssertNil(trace.trials[0].shadowedBy)
    }

    func testNoRouteLeavesEveryRouteFailed() throws {
        let routes = try table(route("a", path: .prefix("/a/")), route("b", path: .prefix("/b/")))
        let trace = routes.explain(TestRequest(normalizedPath: "/c"))
        XCTAssertNil(trace.matched)
        XCTAssertEqual(outcomes(trace), ["a: path: path /c does not match prefix /a/", "b: path: path /c does not match prefix /b/"])
    }

    func testAGRPCRouteNamesTheContentTypeItRefused() throws {
        var grpcRoute = route("grpc")
        grpcRoute.match.grpc = true
        let routes = try table(grpcRoute)
        var request = TestRequest(method: "POST", normalizedPath: "/pkg.Service/Call")
        request.headers = ["content-type": "application/json"]
        guard case .failed(let mismatch) = routes.explain(request).trials[0].outcome else { return XCTFail("matched") }
        XCTAssertEqual(mismatch, .grpc(contentType: "application/json"))
        request.headers = ["content-type": "application/grpc+proto"]
        XCTAssertEqual(routes.explain(request).matched?.config.name, "grpc")
    }

    /// The explaining walk and `match` must never disagree: every request of a small grid, on
    /// a table with every kind of condition.
    func testExplainAgreesWithMatchOnEveryRequestOfAGrid() throws {
        var grpcRoute = route("grpc", path: .prefix("/pkg."))
        grpcRoute.match.grpc = true
        let routes = try table(
            route("get-admin", host: .exact("admin.example.com"), methods: ["GET"]),
            route("canary", path: .prefix("/v1/"), headers: [HeaderMatch(name: "x-canary", kind: .present(true))]),
            grpcRoute,
            route("digits", path: .regex("^/n/[0-9]+$")),
            route("health", path: .exact("/healthz")),
            route("internal", host: .suffix("internal")))
        for method in ["GET", "POST", "OPTIONS"] {
            for host in ["admin.example.com", "api.example.com", "a.internal", "internal"] {
                for path in ["/v1/x", "/pkg.S/M", "/n/12", "/n/x", "/healthz", "/"] {
                    for headers in [[:], ["x-canary": "1"], ["content-type": "application/grpc"],
                                    ["access-control-request-method": "POST"]] {
                        let request = TestRequest(method: method, authority: host, normalizedPath: path, headers: headers)
                        XCTAssertEqual(routes.explain(request).matched?.config.name, routes.routeName(for: request),
                                       "\(method) \(host) \(path) \(headers)")
                    }
                }
            }
        }
    }
}
