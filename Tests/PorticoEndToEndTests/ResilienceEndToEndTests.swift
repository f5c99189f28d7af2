import Foundation
import XCTest

/// Outlier detection, circuit breaking and active health checks through the real binary, with
/// real upstreams on loopback (and a port with nobody listening for an endpoint that is down).
final class ResilienceEndToEndTests: GatewayTestCase {
    private var second: TestUpstream?

    override func tearDown() {
        second?.stop()
        super.tearDown()
    }

    private func services(_ extra: String, endpoints: [String]) -> String {
        """
        services:
          backend:
            endpoints: [\(endpoints.joined(separator: ", "))]
            connectTimeout: 500ms
            \(extra)
        routes:
          - name: service
            match: { prefix: / }
            service: backend
            timeout: 10s
        """
    }

    private func statuses(_ path: String, count: Int) throws -> [Int] {
        try (0..<count).map { _ in try Curl.run(["\(gateway.http)\(path)"]).status }
    }

    private func serviceState() throws -> [[String: Any]] {
        let body = try Curl.run(["\(gateway.admin)/services"]).body
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        let services = json?["services"] as? [[String: Any]] ?? []
        return services.first?["endpoints"] as? [[String: Any]] ?? []
    }

    func testOutlierEjectionAndReturn() throws {
        let downPort = try freePort()
        gateway = try PorticoProcess(config: services("""
            outlierDetection: { consecutive5xx: 2, interval: 200ms, baseEjectionTime: 1s, maxEjectionPercent: 50 }
            """, endpoints: [upstream.address, "127.0.0.1:\(downPort)"]))

        // Round robin: the dead endpoint fails twice in a row, then it is ejected.
        let first = try statuses("/a", count: 4)
        XCTAssertEqual(first.filter { $0 == 502 }.count, 2, "\(first)")
        XCTAssertEqual(try statuses("/a", count: 10), Array(repeating: 200, count: 10), "the ejected endpoint gets nothing")
        let ejected = try serviceState()
        XCTAssertEqual(ejected[1]["ejected"] as? Bool, true, "\(ejected)")
        XCTAssertEqual(ejected[0]["ejected"] as? Bool, false)
        let metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        XCTAssertTrue(metrics.contains(#"portico_outlier_ejections_total{service="backend"} 1"#), metrics)

        // The endpoint comes back: after the ejection time it is picked again.
        second = try TestUpstream(name: "second", port: downPort)
        XCTAssertTrue(eventually(timeout: 5) { (try? self.serviceState()[1]["ejected"] as? Bool) == false })
        XCTAssertEqual(try statuses("/a", count: 6), Array(repeating: 200, count: 6))
        XCTAssertGreaterThan(second!.count(), 0, "the endpoint serves again once its ejection ends")
    }

    func testConsecutiveGatewayErrorsCountAnswersToo() throws {
        // Every request to the first endpoint answers 503 (the path says so); the second is down.
        second = try TestUpstream(name: "second")
        gateway = try PorticoProcess(config: services("""
            outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 3, interval: 200ms, baseEjectionTime: 30s, maxEjectionPercent: 50 }
            """, endpoints: [upstream.address, second!.address]))
        // /status/503 fails on both endpoints; only one may be ejected (50 % of two).
        _ = try statuses("/status/503", count: 8)
        let states = try serviceState()
        XCTAssertEqual(states.filter { $0["ejected"] as? Bool == true }.count, 1, "\(states)")
        XCTAssertEqual(try statuses("/ok", count: 4), Array(repeating: 200, count: 4), "the other endpoint serves")
    }

    /// The limits are per event loop; one loop makes them the whole gateway's.
    func testCircuitBreakerAnswers503AtOnceOverTheLimit() throws {
        gateway = try PorticoProcess(config: services("""
            circuitBreaker: { maxConnections: 1, maxPendingRequests: 1 }
            """, endpoints: [upstream.address]), extraArguments: ["--threads", "1"])
        // One slow request holds the only connection; one more may wait; the third is refused.
        // (A request waiting for a connection being opened counts as pending too, as in
        // Envoy, so the second is sent once the first holds its connection.)
        let group = DispatchGroup()
        let slow = Statuses()
        for index in 0..<2 {
            group.enter()
            DispatchQueue.global().async {
                slow.append((try? Curl.run(["\(self.gateway.http)/slow/1500"]).status) ?? -1)
                group.leave()
            }
            if index == 0 { XCTAssertTrue(eventually(timeout: 5) { self.upstream.count() >= 1 }) }
        }
        usleep(300_000)
        let started = Date()
        let refused = try Curl.run(["\(gateway.http)/fast"])
        XCTAssertEqual(refused.status, 503)
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0, "refused at once, not after waiting")
        group.wait()
        XCTAssertEqual(slow.all, [200, 200], "the request that waited got the connection after the first")
        XCTAssertEqual(upstream.count("connections"), 1, "never more than one connection")
    }

    func testMaxRequestsPerConnectionClosesTheConnectionAfterItsShare() throws {
        gateway = try PorticoProcess(config: services("""
            circuitBreaker: { maxRequestsPerConnection: 2 }
            """, endpoints: [upstream.address]), extraArguments: ["--threads", "1"])
        XCTAssertEqual(try statuses("/a", count: 6), Array(repeating: 200, count: 6))
        XCTAssertEqual(upstream.count("connections"), 3, "two requests per connection")
    }

    func testActiveHealthChecksKeepTrafficOffAnUnhealthyEndpoint() throws {
        let downPort = try freePort()
        gateway = try PorticoProcess(config: services("""
            healthCheck: { path: /healthz, interval: 100ms, timeout: 200ms, unhealthyThreshold: 2, healthyThreshold: 2 }
            """, endpoints: [upstream.address, "127.0.0.1:\(downPort)"]))
        XCTAssertTrue(eventually(timeout: 5) { (try? self.serviceState()[1]["healthy"] as? Bool) == false },
                      "two failed checks make it unhealthy")
        XCTAssertEqual(try serviceState()[0]["healthy"] as? Bool, true)
        XCTAssertEqual(try statuses("/a", count: 6), Array(repeating: 200, count: 6), "no request goes to it")

        second = try TestUpstream(name: "second", port: downPort)
        XCTAssertTrue(eventually(timeout: 5) { (try? self.serviceState()[1]["healthy"] as? Bool) == true },
                      "two passed checks bring it back")
        XCTAssertEqual(try statuses("/a", count: 6), Array(repeating: 200, count: 6))
        XCTAssertGreaterThan(second!.count(), 0)
        XCTAssertGreaterThan(upstream.count("requests"), 6, "health checks reach the endpoints (GET /healthz)")
    }
}

/// Statuses collected from several threads.
final class Statuses: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int] = []

    func append(_ value: Int) {
        lock.lock()
        values.append(value)
        lock.unlock()
    }

    var all: [Int] {
        lock.lock()
        defer { lock.unlock() }
        return values
    }
}
