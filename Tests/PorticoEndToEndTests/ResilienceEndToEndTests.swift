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
            outlierDetection: { consecutive5xx: 2, interval: 200ms, baseEjectionTime: 4s, maxEjectionPercent: 50 }
            """, endpoints: [upstream.address, "127.0.0.1:\(downPort)"]))

        // Round robin: the dead endpoint fails twice in a row, then it is ejected. The state is
        // read first, while the ejection surely lasts; a slow machine took over a second for the
        // requests below, and an ejection of one second had ended before it was read.
        let first = try statuses("/a", count: 4)
        XCTAssertEqual(first.filter { $0 == 502 }.count, 2, "\(first)")
        let ejected = try serviceState()
        XCTAssertEqual(ejected[1]["ejected"] as? Bool, true, "\(ejected)")
        XCTAssertEqual(ejected[0]["ejected"] as? Bool, false)
        let metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        XCTAssertTrue(metrics.contains(#"portico_outlier_ejections_total{service="backend"} 1"#), metrics)
        XCTAssertEqual(try statuses("/a", count: 6), Array(repeating: 200, count: 6), "the ejected endpoint gets nothing")

        // The endpoint comes back: after the ejection time it is picked again.
        second = try TestUpstream(name: "second", port: downPort)
        XCTAssertTrue(eventually { (try? self.serviceState()[1]["ejected"] as? Bool) == false })
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
        // One slow request holds the only connection; of two more, one may wait and the other
        // is refused. (A request waiting for a connection being opened counts as pending too,
        // as in Envoy, so the two are sent once the first holds its connection.) Which of the
        // two waits is whichever the gateway reads first: a sleep between them, meant to order
        // them, can be too short on a slow machine, so the test leaves the order open.
        let first = Statuses()
        first.start(curl: ["\(gateway.http)/slow/4000"])
        XCTAssertTrue(eventually { self.upstream.count() >= 1 })
        let others = Statuses()
        others.start(curl: ["\(gateway.http)/slow/4000"])
        others.start(curl: ["\(gateway.http)/slow/4000"])
        others.wait()
        first.wait()
        XCTAssertEqual(first.all, [200])
        let outcomes = others.timed.sorted { $0.status < $1.status }
        XCTAssertEqual(outcomes.map(\.status), [200, 503], "one waited for the connection, the other was refused")
        if outcomes.count == 2 {
            // Waiting would have taken the rest of the first request's 4 s at least.
            XCTAssertLessThan(outcomes[1].seconds, 2.0, "refused at once, not after waiting")
        }
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
        // The dead endpoint refuses at once; the time-out is for the live one, which two checks
        // slower than 200 ms in a row (a busy machine) would make unhealthy too.
        let downPort = try freePort()
        gateway = try PorticoProcess(config: services("""
            healthCheck: { path: /healthz, interval: 100ms, timeout: 1s, unhealthyThreshold: 2, healthyThreshold: 2 }
            """, endpoints: [upstream.address, "127.0.0.1:\(downPort)"]))
        XCTAssertTrue(eventually { (try? self.serviceState()[1]["healthy"] as? Bool) == false },
                      "two failed checks make it unhealthy")
        XCTAssertEqual(try serviceState()[0]["healthy"] as? Bool, true)
        XCTAssertEqual(try statuses("/a", count: 6), Array(repeating: 200, count: 6), "no request goes to it")

        second = try TestUpstream(name: "second", port: downPort)
        XCTAssertTrue(eventually { (try? self.serviceState()[1]["healthy"] as? Bool) == true },
                      "two passed checks bring it back")
        XCTAssertEqual(try statuses("/a", count: 6), Array(repeating: 200, count: 6))
        XCTAssertGreaterThan(second!.count(), 0)
        XCTAssertGreaterThan(upstream.count("requests"), 6, "health checks reach the endpoints (GET /healthz)")
    }
}

/// curl runs in the background, and the statuses they end with.
/// `@unchecked Sendable`: `values` is guarded by `lock`, which the compiler cannot connect to it.
final class Statuses: @unchecked Sendable {
    private let lock = NSLock()
    private let group = DispatchGroup()
    private var values: [(status: Int, seconds: TimeInterval)] = []

    /// Runs curl with `arguments` on another thread; its status joins `all` when it ends.
    func start(curl arguments: [String]) {
        group.enter()
        DispatchQueue.global().async {
            let started = Date()
            let status = (try? Curl.run(arguments).status) ?? -1
            let seconds = Date().timeIntervalSince(started)
            self.lock.lock()
            self.values.append((status, seconds))
            self.lock.unlock()
            self.group.leave()
        }
    }

    func wait() { group.wait() }

    /// The statuses, in the order the requests ended.
    var all: [Int] { timed.map(\.status) }

    /// Each status with how long its curl ran, in the order the requests ended.
    var timed: [(status: Int, seconds: TimeInterval)] {
        lock.lock()
        defer { lock.unlock() }
        return values
    }
}

/// Outlier detection and circuit breaking for a function: its workers are its endpoints.
final class FunctionResilienceTests: GatewayTestCase {
    /// `/fail` answers 500; anything else 200; every answer names the worker's pid.
    static let failingWorker = PythonWorker.script(
        before: """
            if self.path.startswith("/slow/"):
                time.sleep(int(self.path.split("/")[2]) / 1000)
            """,
        status: #"500 if self.path == "/fail" else 200"#, body: #"f"{os.getpid()}\n""#,
        headers: [("x-worker-pid", "str(os.getpid())")])

    /// The failing worker as function `flaky`, on every path unless `manifest` names routes.
    private func writeWorker(_ root: URL, manifest: String) throws {
        let routes = manifest.contains("routes:") ? "" : "routes: [{ prefix: / }]\n"
        try writeFunction("flaky", script: Self.failingWorker, in: root, manifest: routes + manifest)
    }

    private func pid(_ path: String) throws -> (status: Int, pid: String?) {
        let response = try Curl.run(["\(gateway.http)\(path)"])
        return (response.status, response.header("x-worker-pid"))
    }

    func testAFailingWorkerIsEjectedAndReplacedAtMostOncePerEjectionTime() throws {
        // 5 s, not 2: the checks within the ejection time include a worker's cold start, and on
        // a slow machine they can outlast 2 s, and then the new worker is ejected too.
        gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writeWorker(root, manifest: """
                maxWorkers: 1
                outlierDetection: { consecutive5xx: 2, baseEjectionTime: 5s }
                """)
        }
        let first = try pid("/fail")
        XCTAssertEqual(first.status, 500)
        // The ejection happens after this request is sent, and before the next one is served.
        let ejectedAfter = Date()
        XCTAssertEqual(try pid("/fail").status, 500)
        // Two 5xx in a row: that worker is taken out and replaced; the next request gets a new one.
        let replaced = try pid("/ok")
        let ejectedBefore = Date()
        XCTAssertEqual(replaced.status, 200)
        XCTAssertNotEqual(replaced.pid, first.pid, "a fresh worker serves")
        XCTAssertTrue(gateway.stderr.contains("ejected by outlier detection (status 500); replacing it"), gateway.stderr)
        var metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        XCTAssertTrue(metrics.contains(#"portico_outlier_ejections_total{service="function:flaky"} 1"#), metrics)

        // Within the ejection time the new worker is not ejected too: a function failing
        // everything is not restarted in a loop.
        XCTAssertEqual(try pid("/fail").status, 500)
        XCTAssertEqual(try pid("/fail").status, 500)
        XCTAssertEqual(try pid("/ok").pid, replaced.pid,
                       "ejected again \(Date().timeIntervalSince(ejectedAfter)) s after the first ejection (within 5 s unless the machine stalled)")
        // After it, the same failures eject again. Nothing shows when the ejection time ends,
        // so the test lets it pass, counted from the latest moment the ejection can have been.
        Thread.sleep(until: ejectedBefore.addingTimeInterval(5.3))
        XCTAssertEqual(try pid("/fail").status, 500)
        XCTAssertEqual(try pid("/fail").status, 500)
        let again = try pid("/ok")
        XCTAssertEqual(again.status, 200)
        XCTAssertNotEqual(again.pid, replaced.pid)
        metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        XCTAssertTrue(metrics.contains(#"portico_outlier_ejections_total{service="function:flaky"} 2"#), metrics)
    }

    /// A function's circuit breaker is its scaler's limits: `concurrency` per worker,
    /// `maxWorkers`, and `queueLimit` requests waiting; past them, 503 at once.
    func testAFullFunctionAnswers503AtOnce() throws {
        gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writeWorker(root, manifest: "concurrency: 1\nmaxWorkers: 1\nqueueLimit: 1\n")
        }
        XCTAssertEqual(try pid("/warm").status, 200)
        // One request on the only worker, then one in the queue, each seen by the gateway before
        // the next is sent (sleeps in their place can be too short on a slow machine). They take
        // 4 s, so a third request that waited could not pass for one refused at once.
        let slow = Statuses()
        slow.start(curl: ["\(gateway.http)/slow/4000"])
        XCTAssertTrue(eventually { self.gateway.functionLoad("flaky").map { $0 == (1, 0) } ?? false }, "the first runs")
        slow.start(curl: ["\(gateway.http)/slow/4000"])
        XCTAssertTrue(eventually { self.gateway.functionLoad("flaky").map { $0 == (1, 1) } ?? false }, "the second waits")
        let started = Date()
        let refused = try Curl.run(["\(gateway.http)/third"])
        XCTAssertEqual(refused.status, 503)
        XCTAssertEqual(refused.header("retry-after"), "1")
        XCTAssertLessThan(Date().timeIntervalSince(started), 2.0, "refused at once")
        slow.wait()
        XCTAssertEqual(slow.all, [200, 200], "one ran, one waited its turn")
    }

    private func retries(_ route: String) throws -> Int {
        let metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        let prefix = "portico_retries_total{route=\"\(route)\"} "
        return metrics.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) } ?? 0
    }

    func testTheRetryBudgetAndTimeoutsOnAFunctionRoute() throws {
        gateway = try PorticoProcess(config: """
            routes:
              - name: failing
                match: { prefix: /fail }
                function: flaky
                retries: { attempts: 3, retryOn: [5xx] }
              - name: overall
                match: { prefix: /slow/ }
                function: flaky
                timeout: 1500ms
                retries: { attempts: 8, perTryTimeout: 1s, retryOn: [gateway-error] }
            """, extraArguments: ["--threads", "1"]) { root in
            try self.writeWorker(root, manifest: "routes: []\nminWorkers: 1\nconcurrency: 1\n")
        }
        // Per-try timeouts retry a slow worker (another one where it can: concurrency 1); the
        // route's timeout ends them all. Without it the nine tries would take 9 s at least, and
        // more with the workers' cold starts: far enough from 1.5 s that a slow machine's curl
        // and process starts cannot blur the two (a 0.6-1.2 s window once measured 1.21 s).
        // The route's timeout counts from the first worker, so the timing starts once it is up.
        XCTAssertTrue(eventually { self.gateway.readyWorkers("flaky") == 1 }, "the minimum worker starts")
        let started = Date()
        XCTAssertEqual(try pid("/slow/10000").status, 504)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertTrue((1.5..<5).contains(elapsed), "the route timeout ends the retries: \(elapsed)")
        XCTAssertGreaterThanOrEqual(try retries("overall"), 1, "a per-try timeout led to a retry")

        // The budget caps retries of a failing function: per event loop (one here), 20 % of the
        // requests over 10 s plus 10 a second (100 over 10 s). 60 requests, each asking for 3
        // retries: 180 without the budget, at most 112 with it (the slow request above may have
        // spent a few of them). All must fall within the 10 s: one after another they took 6.5 s
        // on a busy machine, mostly the retries' backoff, so they go four at a time.
        let url = "\(gateway.http)/fail"
        let budgetStarted = Date()
        let run = try runCommand("/usr/bin/curl", ["--silent", "--no-progress-meter", "--max-time", "60", "--parallel", "--parallel-max", "4",
                                                   "--write-out", "%{http_code}\n"]
                                 + (0..<60).flatMap { _ in ["--output", "/dev/null", url] })
        let budgetSeconds = Date().timeIntervalSince(budgetStarted)
        XCTAssertEqual(run.output.split(separator: "\n"), Array(repeating: "500", count: 60), run.output)
        let taken = try retries("failing")
        XCTAssertTrue((100...112).contains(taken), "retries: \(taken) (180 without the budget), in \(budgetSeconds) s")
    }
}
