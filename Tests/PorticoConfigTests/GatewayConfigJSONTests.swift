import Foundation
@testable import PorticoConfig
import XCTest

/// `GET /config` output: valid JSON, stable, complete, and itself a loadable config.
final class GatewayConfigJSONTests: XCTestCase {
    private func exampleConfig() throws -> GatewayConfig {
        try ConfigLoader.parse(yaml: ExampleConfig.yaml, file: ExampleConfig.file)
    }

    private func object(_ json: String) throws -> [String: Any] {
        let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8))
        return try XCTUnwrap(parsed as? [String: Any])
    }

    func testRenderedJSONReadsBackWithTheConfigsValues() throws {
        let json = try object(exampleConfig().renderJSON())

        let listeners = try XCTUnwrap(json["listeners"] as? [[String: Any]])
        XCTAssertEqual(listeners.map { $0["name"] as? String }, ["public", "public-tls"])
        XCTAssertEqual(listeners[0]["address"] as? String, "127.0.0.1:8080")
        XCTAssertNil(listeners[0]["tls"])
        let tls = try XCTUnwrap(listeners[1]["tls"] as? [String: Any])
        // A key *path* is not secret; only key material would be, and it never enters the config.
        XCTAssertEqual(tls["key"] as? String, "config/certs/gateway-key.pem")

        XCTAssertEqual((json["admin"] as? [String: Any])?["address"] as? String, "127.0.0.1:9901")
        let limits = try XCTUnwrap(json["limits"] as? [String: Any])
        XCTAssertEqual(limits["maxRequestHeaders"] as? Int, 61_440)
        XCTAssertEqual(limits["maxRequestBody"] as? Int, 10_485_760)
        XCTAssertEqual(limits["idleTimeout"] as? String, "60s")
        XCTAssertEqual((json["accessLog"] as? [String: Any])?["format"] as? String, "json")

        let services = try XCTUnwrap(json["services"] as? [String: [String: Any]])
        XCTAssertEqual(services["legacy"]?["endpoints"] as? [String], ["127.0.0.1:9001", "127.0.0.1:9002"])
        XCTAssertEqual(services["new"]?["loadBalancer"] as? String, "round_robin")
        XCTAssertEqual(services["new"]?["connectTimeout"] as? String, "5s")

        let routes = try XCTUnwrap(json["routes"] as? [[String: Any]])
        XCTAssertEqual(routes.map { $0["name"] as? String },
                       ["route-0", "v1", "route-2", "route-3", "route-4", "route-5", "route-6"])
        XCTAssertEqual(routes[0]["match"] as? [String: String], ["host": "api.example.com", "prefix": "/v1/"])
        XCTAssertEqual(routes[0]["service"] as? String, "legacy")
        XCTAssertEqual(routes[1]["timeout"] as? String, "10s")
        XCTAssertEqual(routes[2]["rewrite"] as? [String: String], ["prefix": "/"])
        XCTAssertEqual((routes[2]["match"] as? [String: Any])?["headers"] as? [String: [String: String]],
                       ["x-canary": ["exact": "true"]])
        XCTAssertEqual((routes[3]["directResponse"] as? [String: Any])?["body"] as? String, "pong")
        let redirect = try XCTUnwrap(routes[4]["redirect"] as? [String: Any])
        XCTAssertEqual(redirect["status"] as? Int, 308)
        XCTAssertEqual(redirect["prefix"] as? String, "/new/")
        XCTAssertEqual((routes[4]["match"] as? [String: Any])?["methods"] as? [String], ["GET", "HEAD"])
        XCTAssertEqual((routes[5]["match"] as? [String: Any])?["regex"] as? String, "/items/[0-9]+")
        let split = try XCTUnwrap(routes[6]["split"] as? [[String: Any]])
        XCTAssertEqual(split.map { $0["service"] as? String }, ["new", "legacy"])
        XCTAssertEqual(split.map { $0["weight"] as? Int }, [90, 10])
    }

    func testOutputIsStableAndReadable() throws {
        let config = try exampleConfig()
        let text = config.renderJSON()
        XCTAssertEqual(text, config.renderJSON())
        // Sorted keys: a diff between two snapshots shows changes, not reordering.
        let accessLog = try XCTUnwrap(text.range(of: "\"accessLog\""))
        let routes = try XCTUnwrap(text.range(of: "\"routes\""))
        XCTAssertLessThan(accessLog.lowerBound, routes.lowerBound)
        XCTAssertTrue(text.contains("\"/v1/\""), "paths should not be written with escaped slashes")
        XCTAssertTrue(text.contains("\n  "), "output should be pretty-printed")
    }

    func testRenderedJSONIsItselfAConfigThatLoadsToTheSameValues() throws {
        let original = try exampleConfig()
        let reloaded = try ConfigLoader.parse(yaml: original.renderJSON(), file: "running.json")

        XCTAssertEqual(reloaded.listeners, original.listeners)
        XCTAssertEqual(reloaded.admin, original.admin)
        XCTAssertEqual(reloaded.limits, original.limits)
        XCTAssertEqual(reloaded.accessLog, original.accessLog)
        // Services render as a JSON object, whose keys come back sorted rather than in file order.
        XCTAssertEqual(reloaded.services.sorted { $0.name < $1.name }, original.services.sorted { $0.name < $1.name })
        // Locations point into whichever file was read; everything else must survive.
        func withoutLocation(_ routes: [RouteConfig]) -> [RouteConfig] {
            routes.map { route in
                var route = route
                route.location = SourceLocation(file: "", line: 0, column: 0)
                return route
            }
        }
        XCTAssertEqual(withoutLocation(reloaded.routes), withoutLocation(original.routes))
    }

    func testFunctionRoutesRenderAndLoadBack() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - address: 127.0.0.1:8080
            services:
              api: { endpoints: [127.0.0.1:9001] }
            routes:
              - match: { prefix: /hello/ }
                function: hello
                rewrite: { prefix: / }
              - match: { prefix: / }
                split:
                  - { service: api, weight: 3 }
                  - { function: hello-v2, weight: 1 }
            """, file: "gateway.yaml")
        let text = config.renderJSON()
        let routes = try XCTUnwrap(object(text)["routes"] as? [[String: Any]])

        XCTAssertEqual(routes[0]["function"] as? String, "hello")
        XCTAssertNil(routes[0]["service"])
        XCTAssertEqual(routes[0]["rewrite"] as? [String: String], ["prefix": "/"])
        let split = try XCTUnwrap(routes[1]["split"] as? [[String: Any]])
        XCTAssertEqual(split[0]["service"] as? String, "api")
        XCTAssertEqual(split[1]["function"] as? String, "hello-v2")
        XCTAssertNil(split[1]["service"])
        XCTAssertEqual(split.map { $0["weight"] as? Int }, [3, 1])

        let reloaded = try ConfigLoader.parse(yaml: text, file: "running.json")
        XCTAssertEqual(reloaded.routes.map(\.action), config.routes.map(\.action))
        XCTAssertEqual(reloaded.routes.map(\.rewrite), config.routes.map(\.rewrite))
    }

    func testSecretKeyPathsAreRedacted() throws {
        let config = try exampleConfig()
        let json = try object(config.renderJSON(redacting: ["listeners[*].tls.key", "services.*.loadBalancer"]))

        let listeners = try XCTUnwrap(json["listeners"] as? [[String: Any]])
        let tls = try XCTUnwrap(listeners[1]["tls"] as? [String: Any])
        XCTAssertEqual(tls["key"] as? String, "<redacted>")
        XCTAssertEqual(tls["certificate"] as? String, "config/certs/gateway.pem")
        let services = try XCTUnwrap(json["services"] as? [String: [String: Any]])
        XCTAssertEqual(services["legacy"]?["loadBalancer"] as? String, "<redacted>")
        XCTAssertEqual(services["legacy"]?["connectTimeout"] as? String, "5s")
    }
}
