import Foundation
import NIOCore
import NIOPosix
import PorticoConfig
import PorticoCore
@testable import PorticoProxy
import XCTest

/// The pieces behind the operators' metrics, without a gateway: the per-loop series, the
/// reasons read from connect and handshake errors, and the `/routes` listing.
final class OperatorMetricsTests: XCTestCase {
    private func lines(_ metrics: GatewayMetrics, prefix: String) -> [String] {
        String(decoding: metrics.render(), as: UTF8.self).split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) }
    }

    func testLocalRepliesAreCountedByRouteStatusAndReason() {
        let metrics = GatewayMetrics()
        let cache = MetricsCache(metrics: metrics)
        cache.recordLocalReply(route: "api", status: 401, reason: .jwtMissing)
        cache.recordLocalReply(route: "api", status: 401, reason: .jwtMissing)
        cache.recordLocalReply(route: "api", status: 401, reason: .jwtInvalid)
        cache.recordLocalReply(route: "-", status: 404, reason: .noRoute)
        XCTAssertEqual(Set(lines(metrics, prefix: "portico_local_replies_total{")), [
            #"portico_local_replies_total{route="api",status="401",reason="jwt_missing"} 2"#,
            #"portico_local_replies_total{route="api",status="401",reason="jwt_invalid"} 1"#,
            #"portico_local_replies_total{route="-",status="404",reason="no_route"} 1"#,
        ])
    }

    func testServerDurationIsByRouteStatusClassAndProtocolInSeconds() {
        let metrics = GatewayMetrics()
        let cache = MetricsCache(metrics: metrics)
        cache.recordServerDuration(route: "api", status: 204, http2: false, nanoseconds: 3_000_000)
        cache.recordServerDuration(route: "api", status: 200, http2: false, nanoseconds: 60_000_000)
        cache.recordServerDuration(route: "api", status: 503, http2: true, nanoseconds: 1_000_000)
        let labels = #"http_route="api",http_response_status_class="2xx",network_protocol_version="1.1""#
        let text = lines(metrics, prefix: "http_server_request_duration_seconds")
        XCTAssertTrue(text.contains("http_server_request_duration_seconds_count{\(labels)} 2"), "\(text)")
        XCTAssertTrue(text.contains("http_server_request_duration_seconds_bucket{\(labels),le=\"0.005\"} 1"), "\(text)")
        XCTAssertTrue(text.contains("http_server_request_duration_seconds_bucket{\(labels),le=\"0.075\"} 2"), "\(text)")
        XCTAssertTrue(text.contains(
            #"http_server_request_duration_seconds_count{http_route="api",http_response_status_class="5xx",network_protocol_version="2"} 1"#),
            "\(text)")
    }

    func testConnectFailureReasons() throws {
        // A real refused connect: nothing listens on a port just closed.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let listener = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        let port = try XCTUnwrap(listener.localAddress?.port)
        try listener.close().wait()
        var refused: Error?
        do {
            _ = try ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).wait()
        } catch {
            refused = error
        }
        XCTAssertEqual(UpstreamConnectMetrics.reason(for: try XCTUnwrap(refused)), "refused", "\(String(describing: refused))")
        XCTAssertEqual(UpstreamConnectMetrics.reason(for: ChannelError.connectTimeout(.seconds(1))), "timeout")
        XCTAssertEqual(UpstreamConnectMetrics.reason(for: UpstreamTLSError.handshakeTimeout), "timeout")
        XCTAssertEqual(UpstreamConnectMetrics.reason(for: UpstreamTLSError.nameMismatch), "tls")
        XCTAssertEqual(UpstreamConnectMetrics.reason(for: ChannelError.ioOnClosedChannel), "other")
    }

    func testConnectsAreCountedPerService() {
        let metrics = GatewayMetrics()
        let connects = UpstreamConnectMetrics(metrics: metrics, service: "api")
        connects.succeeded(since: connects.started())
        _ = connects.started()
        connects.failed(ChannelError.connectTimeout(.seconds(1)))
        XCTAssertEqual(lines(metrics, prefix: "portico_upstream_connect_attempts_total"),
                       [#"portico_upstream_connect_attempts_total{service="api"} 2"#])
        XCTAssertEqual(lines(metrics, prefix: "portico_upstream_connect_failures_total"),
                       [#"portico_upstream_connect_failures_total{service="api",reason="timeout"} 1"#])
        XCTAssertEqual(lines(metrics, prefix: "portico_upstream_connect_duration_seconds_count"),
                       [#"portico_upstream_connect_duration_seconds_count{service="api"} 1"#])
    }

    func testHandshakeFailureReasonsFromBoringSSLsText() {
        let table: [(String, String?)] = [
            ("error:100000c0:SSL routines:OPENSSL_internal:PEER_DID_NOT_RETURN_A_CERTIFICATE", "no_certificate"),
            ("error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED", "bad_certificate"),
            ("error:10000418:SSL routines:OPENSSL_internal:TLSV1_ALERT_UNKNOWN_CA", "unknown_ca"),
            ("error:100000f0:SSL routines:OPENSSL_internal:UNSUPPORTED_PROTOCOL", "protocol_version"),
            ("error:100000b8:SSL routines:OPENSSL_internal:NO_SHARED_CIPHER", "no_shared_cipher"),
            ("error:1000009c:SSL routines:OPENSSL_internal:HTTP_REQUEST", "http_request"),
            ("error:10000133:SSL routines:OPENSSL_internal:NO_APPLICATION_PROTOCOL", "no_application_protocol"),
            ("error:100000f3:SSL routines:OPENSSL_internal:WRONG_CURVE", "no_shared_cipher"),
            ("Error:  EOF during handshake", "closed"),
            ("error:1000008b:SSL routines:OPENSSL_internal:DECRYPTION_FAILED_OR_BAD_RECORD_MAC", nil),
        ]
        for (text, reason) in table {
            XCTAssertEqual(TLSHandshakeFailureCounter.reason(forBoringSSLReason: text), reason, text)
        }
    }

    func testConfigReloadMetrics() {
        let metrics = GatewayMetrics()
        metrics.configLoaded(generation: 1, byReload: false)
        metrics.configLoaded(generation: 2, byReload: true)
        metrics.reloadFailed.increment()
        XCTAssertEqual(lines(metrics, prefix: "portico_config_generation "), ["portico_config_generation 2.0"])
        XCTAssertEqual(Set(lines(metrics, prefix: "portico_config_reloads_total")), [
            #"portico_config_reloads_total{result="success"} 1"#, #"portico_config_reloads_total{result="failure"} 1"#,
        ])
        let stamp = lines(metrics, prefix: "portico_config_last_reload_success_timestamp_seconds ").first
        let seconds = try? XCTUnwrap(stamp.flatMap { Double($0.split(separator: " ")[1]) })
        XCTAssertEqual(seconds ?? 0, Date().timeIntervalSince1970, accuracy: 60)
    }

    func testRouteListingIsStructuredAndWrittenWithoutEscapedSlashes() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - { name: public, address: 127.0.0.1:8080 }
            services:
              a: { endpoints: [127.0.0.1:9001] }
              b: { endpoints: [127.0.0.1:9002] }
            routes:
              - name: api
                match: { host: api.example.com, prefix: /v1/, methods: [GET], headers: { x-canary: { exact: "true" } } }
                split:
                  backends: [{ service: a, weight: 90 }, { service: b, weight: 10 }]
                  stickyOn: { header: x-user }
                timeout: 3s
                rewrite: { prefix: /internal/ }
              - name: old
                match: { prefix: /old/ }
                redirect: { prefix: /new/, status: 308 }
            """, file: "/etc/portico/gateway.yaml")
        let data = AdminJSON.encode(RouteListing(generation: 7, routes: config.routes))
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertFalse(text.contains("\\/"), text)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(object["generation"] as? Int, 7)
        let routes = try XCTUnwrap(object["routes"] as? [[String: Any]])
        let api = routes[0]
        XCTAssertEqual(api["name"] as? String, "api")
        XCTAssertEqual(api["file"] as? String, "/etc/portico/gateway.yaml")
        XCTAssertEqual(api["line"] as? Int, 7)
        let match = try XCTUnwrap(api["match"] as? [String: Any])
        XCTAssertEqual(match["host"] as? String, "api.example.com")
        XCTAssertEqual(match["prefix"] as? String, "/v1/")
        XCTAssertEqual(match["methods"] as? [String], ["GET"])
        XCTAssertEqual(match["headers"] as? [[String: String]], [["name": "x-canary", "exact": "true"]])
        let action = try XCTUnwrap(api["action"] as? [String: Any])
        XCTAssertEqual(action["kind"] as? String, "split")
        XCTAssertEqual((action["split"] as? [[String: Any]])?.map { $0["weight"] as? Int }, [90, 10])
        XCTAssertEqual(action["stickyOn"] as? [String: String], ["header": "x-user"])
        XCTAssertEqual(api["timeout"] as? String, "3s")
        XCTAssertEqual(api["rewrite"] as? [String: String], ["prefix": "/internal/"])
        let old = routes[1]
        XCTAssertEqual((old["action"] as? [String: Any])?["kind"] as? String, "redirect")
        XCTAssertEqual(((old["action"] as? [String: Any])?["redirect"] as? [String: Any])?["status"] as? Int, 308)
        XCTAssertNil(old["timeout"])
    }
}
