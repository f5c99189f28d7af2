import Foundation
import PorticoConfig
import XCTest

/// A service's `outlierDetection`, `circuitBreaker`, `healthCheck` and `tls`.
final class ResilienceConfigTests: XCTestCase {
    func testServiceResilienceAndTLSParse() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - address: 127.0.0.1:8080
            services:
              orders:
                endpoints: [127.0.0.1:9001, 127.0.0.1:9002]
                outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 3, interval: 5s, baseEjectionTime: 1m, maxEjectionPercent: 50 }
                circuitBreaker: { maxConnections: 100, maxPendingRequests: 0, maxRequestsPerConnection: 1000 }
                healthCheck: { path: /healthz, interval: 2s, timeout: 500ms, unhealthyThreshold: 2, healthyThreshold: 1 }
                tls: { ca: ca.pem, certificate: c.pem, key: k.pem, serverName: orders.internal,
                       subjectAltNames: ["spiffe://example.org/ns/default/sa/orders"] }
              defaults:
                endpoints: [127.0.0.1:9003]
                outlierDetection: {}
                tls: {}
            routes:
              - match: { prefix: / }
                service: orders
            """, file: "gateway.yaml")
        let orders = config.services[0]
        XCTAssertEqual(orders.outlierDetection, OutlierDetectionConfig(
            consecutive5xx: nil, consecutiveGatewayErrors: 3, interval: .seconds(5), baseEjectionTime: .seconds(60),
            maxEjectionPercent: 50))
        XCTAssertEqual(orders.circuitBreaker, CircuitBreakerConfig(maxConnections: 100, maxPendingRequests: 0,
                                                                   maxRequestsPerConnection: 1000))
        XCTAssertEqual(orders.healthCheck, HealthCheckConfig(path: "/healthz", interval: .seconds(2), timeout: .milliseconds(500),
                                                             unhealthyThreshold: 2, healthyThreshold: 1))
        XCTAssertEqual(orders.tls, UpstreamTLSConfig(ca: "ca.pem", certificate: "c.pem", key: "k.pem", serverName: "orders.internal",
                                                     subjectAltNames: ["spiffe://example.org/ns/default/sa/orders"]))
        XCTAssertEqual(config.services[1].outlierDetection, OutlierDetectionConfig(), "Istio's defaults")
        XCTAssertEqual(config.services[1].tls, UpstreamTLSConfig(), "TLS with the system's roots")
        XCTAssertTrue(config.renderJSON().contains("\"maxPendingRequests\""))
    }

    func testBadResilienceValuesAreEachReported() {
        let text = rejectionText("""
            listeners:
              - address: 127.0.0.1:8080
            services:
              a:
                endpoints: [127.0.0.1:9001]
                outlierDetection: { consecutive5xx: -1, maxEjectionPercent: 150, ejectAfter: 3 }
                circuitBreaker: { maxConnections: 0 }
                healthCheck: { interval: 1s }
                tls: { certificate: c.pem }
              b:
                endpoints: [127.0.0.1:9002]
                healthCheck: { path: healthz }
            """)
        XCTAssertTrue(text.contains("gateway.yaml:6:41: services.a.outlierDetection.consecutive5xx: must be at least 0, got -1"), text)
        XCTAssertTrue(text.contains("services.a.outlierDetection.maxEjectionPercent: must be from 0 to 100, got 150"), text)
        XCTAssertTrue(text.contains("services.a.outlierDetection.ejectAfter: unknown key 'ejectAfter'"), text)
        XCTAssertTrue(text.contains("services.a.circuitBreaker.maxConnections: must be at least 1, got 0"), text)
        XCTAssertTrue(text.contains("services.a.healthCheck.path: a health check needs 'path'"), text)
        XCTAssertTrue(text.contains("services.a.tls.certificate: a client certificate needs both 'certificate' and 'key'"), text)
        XCTAssertTrue(text.contains("services.b.healthCheck.path: expected a path starting with '/', got 'healthz'"), text)
    }

    func testMirrorParsesAndChecksItsService() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - address: 127.0.0.1:8080
            services:
              api: { endpoints: [127.0.0.1:9001] }
              shadow: { endpoints: [127.0.0.1:9002] }
            routes:
              - match: { prefix: /a/ }
                service: api
                mirror: { service: shadow, percent: 12.5 }
              - match: { prefix: / }
                service: api
                mirror: { service: shadow }
            """, file: "gateway.yaml")
        XCTAssertEqual(config.routes[0].mirror, MirrorConfig(service: "shadow", percent: 12.5))
        XCTAssertEqual(config.routes[1].mirror, MirrorConfig(service: "shadow", percent: 100))

        let text = rejectionText("""
            listeners:
              - address: 127.0.0.1:8080
            services:
              api: { endpoints: [127.0.0.1:9001] }
            routes:
              - match: { prefix: /a/ }
                service: api
                mirror: { service: shadw }
              - match: { prefix: /b/ }
                service: api
                mirror: { service: api, percent: 101 }
              - match: { prefix: / }
                directResponse: { status: 200 }
                mirror: { service: api }
            """)
        XCTAssertTrue(text.contains("gateway.yaml:8:24: routes[0].mirror.service: unknown service 'shadw' (declared: api)"), text)
        XCTAssertTrue(text.contains("routes[1].mirror.percent: must be from 0 to 100, got 101"), text)
        XCTAssertTrue(text.contains("routes[2].mirror: mirror only applies to routes that forward"), text)
    }
}
