import PorticoConfig
import PorticoRouting
import XCTest

final class RouteTableDescribingTests: XCTestCase {
    func testOneAlignedLinePerRouteInMatchOrder() throws {
        let routes = try table(
            route("v1", host: .exact("api.example.com"), path: .prefix("/v1/"),
                  headers: [HeaderMatch(name: "x-canary", kind: .exact("true"))], methods: ["GET", "HEAD"],
                  action: .service("legacy"), timeout: .seconds(10), rewrite: RewriteConfig(prefix: "/")),
            route("shop", host: .suffix(".shop.example.com"), path: .regex("/item/[0-9]+"),
                  action: .split([WeightedBackend(service: "new", weight: 90), WeightedBackend(service: "legacy", weight: 10)]),
                  timeout: .milliseconds(2500)),
            route("health", path: .exact("/healthz"), action: .directResponse(DirectResponseConfig(status: 200, body: "ok"))),
            route("tls", headers: [HeaderMatch(name: "x-debug", kind: .present(true)), HeaderMatch(name: "cookie", kind: .present(false))],
                  action: .redirect(RedirectConfig(scheme: "https", port: 8443, prefix: "/new/", status: 308, stripQuery: true))),
            route("route-4")
        )
        XCTAssertEqual(routes.describe(), [
            "0  v1       host=api.example.com prefix=/v1/ headers=x-canary=true methods=GET,HEAD  -> service legacy          timeout=10s rewrite=/",
            "1  shop     host=*.shop.example.com regex=/item/[0-9]+                               -> split new:90 legacy:10  timeout=2500ms",
            "2  health   path=/healthz                                                            -> direct 200",
            "3  tls      headers=x-debug,!cookie                                                  -> redirect 308 scheme=https port=8443 prefix=/new/ strip-query",
            "4  route-4  any                                                                      -> service backend         timeout=15s",
        ])
    }

    func testEmptyTable() throws {
        XCTAssertEqual(try RouteTable([]).describe(), [])
        XCTAssertNil(try RouteTable([]).match(TestRequest()))
    }
}
