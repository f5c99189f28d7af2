import Foundation
import PorticoConfig
import XCTest

/// What a valid file turns into: values, defaults and normalisation.
final class ConfigLoaderTests: XCTestCase {
    func testExampleParsesIntoExpectedValues() throws {
        let config = try ConfigLoader.parse(yaml: ExampleConfig.yaml, file: ExampleConfig.file)

        func at(_ line: Int) -> SourceLocation { SourceLocation(file: ExampleConfig.file, line: line, column: 5) }
        let expected = GatewayConfig(
            sourceFile: "config/gateway.yaml",
            listeners: [
                ListenerConfig(name: "public", address: HostPort(host: "127.0.0.1", port: 8080)),
                ListenerConfig(name: "public-tls", address: HostPort(host: "127.0.0.1", port: 8443),
                               tls: ListenerTLSConfig(certificate: "config/certs/gateway.pem",
                                                      key: "config/certs/gateway-key.pem")),
            ],
            admin: AdminConfig(address: HostPort(host: "127.0.0.1", port: 9901)),
            limits: LimitsConfig(maxRequestHeaders: 61440, maxRequestBody: 10_485_760,
                                 idleTimeout: .seconds(60), drainTimeout: .seconds(30)),
            services: [
                ServiceConfig(name: "legacy",
                              endpoints: [HostPort(host: "127.0.0.1", port: 9001), HostPort(host: "127.0.0.1", port: 9002)],
                              loadBalancer: .roundRobin, connectTimeout: .seconds(5), maxConnectionsPerEndpoint: 1024),
                ServiceConfig(name: "new", endpoints: [HostPort(host: "127.0.0.1", port: 9101)]),
            ],
            routes: [
                RouteConfig(index: 0, name: "route-0",
                            match: RouteMatch(host: .exact("api.example.com"), path: .prefix("/v1/")),
                            action: .service("legacy"), location: at(26)),
                RouteConfig(index: 1, name: "v1", match: RouteMatch(path: .prefix("/v1/")),
                            action: .service("legacy"), timeout: .seconds(10), location: at(28)),
                RouteConfig(index: 2, name: "route-2",
                            match: RouteMatch(path: .prefix("/beta/"),
                                              headers: [HeaderMatch(name: "x-canary", kind: .exact("true"))]),
                            action: .service("new"), rewrite: RewriteConfig(prefix: "/"), location: at(32)),
                RouteConfig(index: 3, name: "route-3", match: RouteMatch(path: .exact("/ping")),
                            action: .directResponse(DirectResponseConfig(status: 200, body: "pong")), location: at(35)),
                RouteConfig(index: 4, name: "route-4",
                            match: RouteMatch(path: .prefix("/old/"), methods: ["GET", "HEAD"]),
                            action: .redirect(RedirectConfig(host: "new.example.com", prefix: "/new/", status: 308)),
                            location: at(37)),
                RouteConfig(index: 5, name: "route-5",
                            match: RouteMatch(path: .regex("/items/[0-9]+"),
                                              headers: [HeaderMatch(name: "x-debug", kind: .present(true))]),
                            action: .directResponse(DirectResponseConfig(status: 204, body: "")), location: at(39)),
                RouteConfig(index: 6, name: "route-6", match: RouteMatch(path: .prefix("/")),
                            action: .split([WeightedBackend(service: "new", weight: 90),
                                            WeightedBackend(service: "legacy", weight: 10)]),
                            location: at(41)),
            ],
            accessLog: AccessLogConfig(format: .json)
        )

        // Compared piece by piece first so a failure names the part that differs.
        XCTAssertEqual(config.listeners, expected.listeners)
        XCTAssertEqual(config.admin, expected.admin)
        XCTAssertEqual(config.limits, expected.limits)
        XCTAssertEqual(config.services, expected.services)
        for (got, want) in zip(config.routes, expected.routes) {
            XCTAssertEqual(got, want, "route \(want.index)")
        }
        XCTAssertEqual(config.routes.count, expected.routes.count)
        XCTAssertEqual(config, expected)
    }

    func testNonDefaultLimitsServiceSettingsAndAccessLogAreRead() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - address: 127.0.0.1:0
            limits:
              maxRequestHeaders: 8KiB
              maxRequestBody: 1MB
              idleTimeout: 250ms
              drainTimeout: 1m30s
            accessLog:
              format: off
            services:
              api:
                endpoints: ["[::1]:9001", localhost:9002]
                loadBalancer: least_request
                connectTimeout: 2s
                maxConnectionsPerEndpoint: 8
            """, file: "gateway.yaml")

        XCTAssertEqual(config.limits, LimitsConfig(maxRequestHeaders: 8192, maxRequestBody: 1_000_000,
                                                   idleTimeout: .milliseconds(250), drainTimeout: .seconds(90)))
        XCTAssertEqual(config.accessLog.format, .off)
        XCTAssertEqual(config.services, [
            ServiceConfig(name: "api", endpoints: [HostPort(host: "::1", port: 9001), HostPort(host: "localhost", port: 9002)],
                          loadBalancer: .leastRequest, connectTimeout: .seconds(2), maxConnectionsPerEndpoint: 8),
        ])
        // Defaults for what the file leaves out.
        XCTAssertEqual(config.listeners, [ListenerConfig(name: "listener-0", address: HostPort(host: "127.0.0.1", port: 0))])
        XCTAssertNil(config.admin)
        XCTAssertEqual(config.routes, [])
    }

    func testMatchValuesAreNormalised() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - address: 127.0.0.1:8080
            routes:
              - match:
                  host: "*.Example.COM"
                  methods: [get, Post]
                  headers:
                    X-Canary: yes
                    X-Trace: { exact: "On" }
                    Authorization: { present: false }
                redirect: { scheme: https, port: 8443, path: /login, status: 302, stripQuery: true }
            """, file: "gateway.yaml")

        let route = try XCTUnwrap(config.routes.first)
        XCTAssertEqual(route.match, RouteMatch(
            host: .suffix(".example.com"),
            path: .any,
            headers: [
                // `yes` and `On` stay text: a header value is never a YAML boolean.
                HeaderMatch(name: "x-canary", kind: .exact("yes")),
                HeaderMatch(name: "x-trace", kind: .exact("On")),
                HeaderMatch(name: "authorization", kind: .present(false)),
            ],
            methods: ["GET", "POST"]))
        XCTAssertEqual(route.action, .redirect(RedirectConfig(scheme: "https", port: 8443, path: "/login",
                                                              status: 302, stripQuery: true)))
        XCTAssertEqual(route.location, SourceLocation(file: "gateway.yaml", line: 4, column: 5))
    }

    func testFunctionActionAndMixedSplit() throws {
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

        XCTAssertEqual(config.routes.map(\.action), [
            // Not declared anywhere in this file: functions are found in their folder at run time.
            .function("hello"),
            .split([WeightedBackend(backend: .service("api"), weight: 3),
                    WeightedBackend(backend: .function("hello-v2"), weight: 1)]),
        ])
        XCTAssertEqual(config.routes[0].rewrite, RewriteConfig(prefix: "/"))
    }

    func testListenersOnPortZeroDoNotClash() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - { name: a, address: 127.0.0.1:0 }
              - { name: b, address: 127.0.0.1:0 }
            admin: { address: 127.0.0.1:0 }
            """, file: "gateway.yaml")
        XCTAssertEqual(config.listeners.map(\.name), ["a", "b"])
        XCTAssertEqual(config.admin?.address.port, 0)
    }

    func testLoadReadsTheFileAndKeepsItsPathAsSourceFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portico-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("gateway.yaml").path
        try ExampleConfig.yaml.write(toFile: path, atomically: true, encoding: .utf8)

        let config = try ConfigLoader.load(file: path)

        XCTAssertEqual(config.sourceFile, path)
        XCTAssertEqual(config.routes.count, 7)
        XCTAssertEqual(config.routes[3].location, SourceLocation(file: path, line: 35, column: 5))
    }

    func testLoadOfMissingFileIsADiagnosticAtLineOne() {
        let path = "/nonexistent/portico/gateway.yaml"
        XCTAssertThrowsError(try ConfigLoader.load(file: path)) { error in
            XCTAssertEqual("\(error)", "/nonexistent/portico/gateway.yaml:1:1: (file): no such file")
        }
    }
}
