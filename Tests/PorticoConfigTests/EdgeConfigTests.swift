import PorticoConfig
import XCTest

/// The keys issue 14 added at the edge: a route's `upgrades` and a listener's
/// `headersWithUnderscores`.
final class EdgeConfigTests: XCTestCase {
    private let service = """
        services: { backend: { endpoints: [127.0.0.1:9001] } }
        """

    func testUpgradesDefaultToWebSocketAndAreLowerCased() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners: [{ address: 127.0.0.1:8080 }]
            \(service)
            routes:
              - { match: { prefix: /a/ }, service: backend }
              - { match: { prefix: /b/ }, service: backend, upgrades: [WebSocket, foo, foo] }
              - { match: { prefix: /c/ }, service: backend, upgrades: [] }
            """, file: "gateway.yaml")
        XCTAssertEqual(config.routes.map(\.upgrades), [["websocket"], ["websocket", "foo"], []])
    }

    func testBadUpgradesAreRejectedWithLineAndKey() {
        XCTAssertEqual(rejectionText("""
            listeners: [{ address: 127.0.0.1:8080 }]
            \(service)
            routes:
              - match: { prefix: / }
                service: backend
                upgrades: [h2c, "web socket"]
            """), """
            gateway.yaml:6:16: routes[0].upgrades[0]: h2c is never proxied (RFC 9113 deprecates the h2c upgrade); clients reach HTTP/2 by prior knowledge or TLS
            gateway.yaml:6:21: routes[0].upgrades[1]: expected a protocol name such as websocket, got 'web socket'
            """)
        XCTAssertTrue(rejectionText("""
            listeners: [{ address: 127.0.0.1:8080 }]
            routes:
              - match: { prefix: / }
                directResponse: { status: 200 }
                upgrades: [websocket]
            """).contains("routes[0].upgrades: upgrades only applies to routes that forward"))
    }

    func testHeadersWithUnderscores() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - { name: a, address: 127.0.0.1:8080 }
              - { name: b, address: 127.0.0.1:8081, headersWithUnderscores: reject }
              - { name: c, address: 127.0.0.1:8082, headersWithUnderscores: allow }
            routes: [{ match: { prefix: / }, directResponse: { status: 200 } }]
            """, file: "gateway.yaml")
        XCTAssertEqual(config.listeners.map(\.headersWithUnderscores), [.drop, .reject, .allow])
        XCTAssertTrue(rejectionText("""
            listeners:
              - { address: 127.0.0.1:8080, headersWithUnderscores: keep }
            routes: [{ match: { prefix: / }, directResponse: { status: 200 } }]
            """).hasPrefix("gateway.yaml:2:56: listeners[0].headersWithUnderscores:"))
    }
}
