import Foundation
import XCTest

/// Rate limits and fault injection through the real binary, on a service route and on a
/// function route alike (the one proxy core applies them to both).
final class PolicyEndToEndTests: GatewayTestCase {
    /// A function `hello` (the Python test worker) beside the gateway's config.
    private func prepareFunction(_ root: URL) throws {
        try writeFunction("hello", script: FunctionEndToEndTests.workerScript, in: root)
    }

    private func config(routePolicies: String = "", fault: String = "", timeout: String = "15s") -> String {
        """
        policies:
          three-per-minute:
            rateLimit: { requests: 3, per: 1m }
          two-per-key:
            rateLimit: { requests: 2, per: 1m, key: { header: x-api-key } }
        services:
          backend: { endpoints: [\(upstream.address)] }
        routes:
          - name: service
            match: { prefix: /service/ }
            service: backend
            timeout: \(timeout)
            \(routePolicies)
            \(fault)
          - name: function
            match: { prefix: /function/ }
            function: hello
            timeout: \(timeout)
            \(routePolicies)
            \(fault)
          - name: ping
            match: { path: /ping }
            directResponse: { status: 200, body: "pong" }
        """
    }

    private func statuses(_ url: String, count: Int, headers: [String] = []) throws -> [Int] {
        try (0..<count).map { _ in try Curl.run(headers.flatMap { ["-H", $0] } + [url]).status }
    }

    func testRateLimitGives429WithRetryAfterOnServiceAndFunctionRoutes() throws {
        gateway = try PorticoProcess(config: config(routePolicies: "policies: [three-per-minute]"), prepare: prepareFunction)

        XCTAssertEqual(try statuses("\(gateway.http)/service/a", count: 3), [200, 200, 200])
        let limited = try Curl.run(["\(gateway.http)/service/a"])
        XCTAssertEqual(limited.status, 429)
        let retryAfter = try XCTUnwrap(limited.header("retry-after").flatMap(Int.init), "429 carries Retry-After")
        XCTAssertTrue((1...20).contains(retryAfter), "one token comes back every 20 s: \(retryAfter)")
        XCTAssertEqual(upstream.count(), 3, "a limited request never reaches the backend")

        // Both routes name the same policy, so they share its bucket (the client's address).
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/x"]).status, 429)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/ping"]).status, 200, "routes without the policy are not limited")

        let metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        XCTAssertTrue(metrics.contains(#"portico_rate_limited_total{policy="three-per-minute"} 2"#), metrics)
        XCTAssertTrue(metrics.contains(#"portico_requests_total{route="service",backend="rate_limit",code="429"} 1"#), metrics)
    }

    func testRateLimitOnAFunctionRouteAndPerHeaderKeys() throws {
        gateway = try PorticoProcess(config: config(routePolicies: "policies: [two-per-key]"), prepare: prepareFunction)

        XCTAssertEqual(try statuses("\(gateway.http)/function/x", count: 3, headers: ["x-api-key: alice"]), [200, 200, 429])
        XCTAssertEqual(try statuses("\(gateway.http)/function/x", count: 2, headers: ["x-api-key: bob"]), [200, 200],
                       "another key has its own bucket")
        XCTAssertEqual(try statuses("\(gateway.http)/function/x", count: 3), [200, 200, 429],
                       "requests without the header share one bucket")
    }

    func testListenerPoliciesApplyToEveryRouteOnIt() throws {
        gateway = try PorticoProcess(config: config(), listenerPolicies: ["three-per-minute"])
        XCTAssertEqual(try statuses("\(gateway.http)/ping", count: 4), [200, 200, 200, 429])
        XCTAssertEqual(try Curl.run(["\(gateway.http)/service/a"]).status, 429)
        // The TLS listener names no policy.
        let overTLS = try Curl.run(["--cacert", gateway.certificateAuthority, "\(gateway.https)/ping"])
        XCTAssertEqual(overTLS.status, 200)
    }

    func testFaultAbortAnswersWithoutReachingTheBackend() throws {
        gateway = try PorticoProcess(config: config(fault: "fault: { abort: { percent: 100, status: 503 } }"),
                                     prepare: prepareFunction)
        XCTAssertEqual(try statuses("\(gateway.http)/service/a", count: 3), [503, 503, 503])
        XCTAssertEqual(upstream.count(), 0)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/x"]).status, 503)
        XCTAssertTrue(Processes.matching(marker).isEmpty, "an aborted request does not start a worker")
        let metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        XCTAssertTrue(metrics.contains(#"portico_requests_total{route="service",backend="fault",code="503"} 3"#), metrics)
    }

    func testFaultDelayHoldsTheRequestAndTheRouteTimeoutStartsAfterIt() throws {
        // A 1.5 s delay on a route whose timeout is 1 s: the request is delayed, then served.
        // (With 600 ms, an undelayed request had to answer within 0.6 s, curl's start included,
        // which a busy machine need not manage.)
        gateway = try PorticoProcess(config: config(fault: "fault: { delay: { percent: 100, duration: 1500ms } }",
                                                    timeout: "1s"),
                                     prepare: prepareFunction)
        func timed(_ path: String) throws -> (status: Int, seconds: TimeInterval) {
            let started = Date()
            let status = try Curl.run(["\(gateway.http)\(path)"]).status
            return (status, Date().timeIntervalSince(started))
        }
        let service = try timed("/service/a")
        XCTAssertEqual(service.status, 200, "served after the delay, though the delay outlasts the route timeout")
        XCTAssertGreaterThanOrEqual(service.seconds, 1.5)
        XCTAssertEqual(upstream.count(), 1)

        XCTAssertEqual(try timed("/function/x").status, 200, "the cold start")
        let warm = try timed("/function/x")
        XCTAssertEqual(warm.status, 200)
        XCTAssertGreaterThanOrEqual(warm.seconds, 1.5, "a warm function request is delayed too")

        let ping = try timed("/ping")
        XCTAssertEqual(ping.status, 200)
        XCTAssertLessThan(ping.seconds, 1.2, "a route without the fault is not delayed")
    }

    /// A request delayed across a reload keeps the endpoint it was given; the reload's smaller
    /// endpoint list is what every later request sees (a stale pick once crashed the gateway).
    func testReloadDuringAFaultDelayKeepsServing() throws {
        let second = try TestUpstream(name: "second")
        defer { second.stop() }
        func routes(_ endpoints: String) -> String {
            """
            services:
              backend: { endpoints: [\(endpoints)] }
            routes:
              - match: { prefix: /slowly/ }
                service: backend
                fault: { delay: { percent: 100, duration: 8s } }
              - match: { prefix: / }
                service: backend
            """
        }
        gateway = try PorticoProcess(config: routes("\(upstream.address), \(second.address)"))
        let delayed = (0..<4).map { _ in DispatchSemaphore(value: 0) }
        for semaphore in delayed {
            let url = "\(gateway.http)/slowly/x"
            Thread.detachNewThread {
                _ = try? Curl.run([url], timeout: 20)
                semaphore.signal()
            }
        }
        // The reload comes once the gateway holds the four (a sleep in place of this wait can be
        // too short on a slow machine, and then the reload comes first); their delay outlasts it.
        // 8 s: on a loaded machine four curl processes took more than 3 s to all connect.
        XCTAssertTrue(eventually {
            (try? Curl.run(["\(self.gateway.admin)/metrics"]).body.contains("portico_downstream_connections 4")) == true
        }, "the delayed requests arrived")
        try gateway.writeConfig(routes(upstream.address))
        XCTAssertEqual(try Curl.run(["-X", "POST", "\(gateway.admin)/reload"]).status, 200)
        for semaphore in delayed { XCTAssertEqual(semaphore.wait(timeout: .now() + 20), .success) }

        let before = second.count()
        XCTAssertEqual(try statuses("\(gateway.http)/after", count: 8), Array(repeating: 200, count: 8))
        XCTAssertEqual(second.count(), before, "the endpoint the reload removed gets nothing more")
        XCTAssertNil(gateway.waitForExit(timeout: 0.1), "the gateway is still running: \(gateway.stderr)")
    }

    func testNoFaultAtZeroPercent() throws {
        gateway = try PorticoProcess(config: config(fault: "fault: { abort: { percent: 0, status: 503 } }"))
        XCTAssertEqual(try statuses("\(gateway.http)/service/a", count: 5), [200, 200, 200, 200, 200])
    }
}
