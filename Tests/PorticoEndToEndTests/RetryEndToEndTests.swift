import Foundation
import XCTest

/// Route retries through the real binary: conditions, another endpoint, the budget, per-try
/// and overall timeouts, on services and on a function.
final class RetryEndToEndTests: GatewayTestCase {
    private func retriesMetric(_ route: String) throws -> Int {
        let metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        let prefix = "portico_retries_total{route=\"\(route)\"} "
        guard let line = metrics.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return 0 }
        return Int(Double(line.dropFirst(prefix.count)) ?? -1)
    }

    func testTwoUpstream503sBecomeA200() throws {
        gateway = try PorticoProcess(config: """
            services:
              backend: { endpoints: [\(upstream.address)] }
            routes:
              - name: twice
                match: { prefix: /twice/ }
                service: backend
                rewrite: { prefix: / }
                retries: { attempts: 2, retryOn: [5xx] }
              - name: once
                match: { prefix: /once/ }
                service: backend
                rewrite: { prefix: / }
                retries: { attempts: 1, retryOn: [gateway-error] }
            """)
        let saved = try Curl.run(["-d", "a body to send again", "\(gateway.http)/twice/flaky/2/a"])
        XCTAssertEqual(saved.status, 200, saved.body)
        XCTAssertTrue(saved.body.contains("body=20"), "the retry sent the whole body again: \(saved.body)")
        XCTAssertEqual(upstream.count(), 3)
        XCTAssertEqual(try retriesMetric("twice"), 2)

        let givenUp = try Curl.run(["\(gateway.http)/once/flaky/2/b"])
        XCTAssertEqual(givenUp.status, 503, "one retry is not enough for two failures")
        XCTAssertEqual(try retriesMetric("once"), 1)

        XCTAssertEqual(try Curl.run(["\(gateway.http)/once/status/500"]).status, 500, "gateway-error does not retry a 500")
        XCTAssertEqual(try retriesMetric("once"), 1)
    }

    func testConnectFailureIsRetriedOnTheOtherEndpoint() throws {
        let closedPort = try freePort()
        gateway = try PorticoProcess(config: """
            services:
              backend: { endpoints: [127.0.0.1:\(closedPort), \(upstream.address)], connectTimeout: 1s }
            routes:
              - name: retried
                match: { prefix: /retried/ }
                service: backend
                retries: { attempts: 1, retryOn: [connect-failure] }
              - name: plain
                match: { prefix: / }
                service: backend
            """)
        for _ in 0..<6 {
            XCTAssertEqual(try Curl.run(["\(gateway.http)/retried/x"]).status, 200)
        }
        XCTAssertGreaterThan(try retriesMetric("retried"), 0, "some requests met the closed port first")
        let plain = try (0..<6).map { _ in try Curl.run(["\(gateway.http)/plain/x"]).status }
        XCTAssertTrue(plain.contains(502), "without retries the closed endpoint shows: \(plain)")
    }

    /// Issue 14 item 7: with the default budget, a quiet service with one dead endpoint of two
    /// gets every retry it asks for. One connection, so every request is on one event loop:
    /// the old floor (3 retries per 10 s per loop) answered some of these 502.
    func testTheDefaultBudgetAllowsEveryRetryAtLowTraffic() throws {
        let closedPort = try freePort()
        gateway = try PorticoProcess(config: """
            services:
              backend: { endpoints: [127.0.0.1:\(closedPort), \(upstream.address)], connectTimeout: 1s }
            routes:
              - name: retried
                match: { prefix: / }
                service: backend
                retries: { attempts: 2, retryOn: [connect-failure] }
            """)
        let url = "\(gateway.http)/x"
        let run = try runCommand("/usr/bin/curl", ["--silent", "--max-time", "30", "--write-out", "%{http_code}\n"]
                                 + (0..<10).flatMap { _ in ["--output", "/dev/null", url] })
        let statuses = run.output.split(separator: "\n").map(String.init)
        XCTAssertEqual(statuses, Array(repeating: "200", count: 10), run.output)
        XCTAssertGreaterThanOrEqual(try retriesMetric("retried"), 4, "half the requests met the closed port first")
        XCTAssertEqual(upstream.count(), 10)
    }

    func testTheRetryBudgetCapsRetriesUnderAFailingService() throws {
        gateway = try PorticoProcess(config: """
            services:
              backend:
                endpoints: [\(upstream.address)]
                retryBudget: { percent: 20, interval: 1m, minRetriesPerSecond: 0 }
            routes:
              - name: failing
                match: { prefix: / }
                service: backend
                retries: { attempts: 3, retryOn: [5xx] }
            """)
        for _ in 0..<20 {
            XCTAssertEqual(try Curl.run(["\(gateway.http)/status/503"]).status, 503)
        }
        let retries = try retriesMetric("failing")
        // Without the budget: 60 retries. With it: at most 20 % of the 20 requests.
        XCTAssertTrue((1...4).contains(retries), "retries: \(retries)")
        XCTAssertEqual(upstream.count(), 20 + retries)
    }

    /// The upstream answers after 10 s, so a try that is not cut by a timeout shows plainly:
    /// the bounds below leave seconds for a slow machine's curl, where a 0.5-0.9 s window left 0.4 s.
    func testPerTryTimeoutRetriesAndTheRouteTimeoutBoundsThemAll() throws {
        gateway = try PorticoProcess(config: """
            services:
              backend: { endpoints: [\(upstream.address)] }
            routes:
              - name: per-try
                match: { prefix: /per-try/ }
                service: backend
                rewrite: { prefix: / }
                retries: { attempts: 2, perTryTimeout: 300ms, retryOn: [reset] }
              - name: overall
                match: { prefix: /overall/ }
                service: backend
                rewrite: { prefix: / }
                timeout: 1500ms
                retries: { attempts: 8, perTryTimeout: 1s, retryOn: [5xx] }
            """)
        var started = Date()
        let perTry = try Curl.run(["\(gateway.http)/per-try/slow/10000/x"])
        var elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(perTry.status, 504)
        XCTAssertEqual(upstream.count(), 3, "three tries of 300 ms each")
        XCTAssertTrue((0.9..<5).contains(elapsed), "\(elapsed)")

        // Nine tries of 1 s would take 9 s at least; the route's 1.5 s ends them.
        started = Date()
        let overall = try Curl.run(["\(gateway.http)/overall/slow/10000/y"])
        elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(overall.status, 504)
        XCTAssertTrue((1.5..<5).contains(elapsed), "the route timeout ends the retries: \(elapsed)")
        XCTAssertGreaterThanOrEqual(try retriesMetric("overall"), 1, "a per-try timeout led to a retry")
    }

    /// A worker that answers 503 to its first two requests.
    static let flakyWorker = PythonWorker.script(
        before: "global seen\nseen += 1", status: "503 if seen <= 2 else 200", body: #"f"try {seen}\n""#,
        globals: "seen = 0")

    func testRetriesOnAFunctionRoute() throws {
        gateway = try PorticoProcess(config: """
            routes:
              - name: flaky
                match: { prefix: /flaky/ }
                function: flaky
                retries: { attempts: 2, retryOn: [5xx] }
            """, prepare: { root in try self.writeFunction("flaky", script: Self.flakyWorker, in: root) })
        let response = try Curl.run(["\(gateway.http)/flaky/x"])
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.body.trimmingCharacters(in: .whitespacesAndNewlines), "try 3", "the third try answered")
        XCTAssertEqual(try retriesMetric("flaky"), 2)
    }
}

/// What retries mean for functions: a worker that stops answering hands its request to another,
/// and a cold start is not a slow try.
final class FunctionWorkerRefusalTests: GatewayTestCase {
    /// `/deaf` answers, then closes its listening socket and lives on (so its exit does not
    /// tell the gateway anything): every later connection to it is refused.
    static let deafeningWorker = """
        import os, sys, signal, threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                body = f"{os.getpid()}\\n".encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.send_header("x-worker-pid", str(os.getpid()))
                self.send_header("x-worker-port", os.environ["PORT"])
                if self.path == "/deaf":
                    self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(body)
                if self.path == "/deaf":
                    server.socket.close()

            def log_message(self, *args):
                pass

        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        signal.pause()
        """

    func testARefusedConnectionGoesToAnotherWorkerWithoutRouteRetries() throws {
        gateway = try PorticoProcess(config: """
            routes:
              - name: deaf
                match: { prefix: / }
                function: deaf
            """, prepare: { root in try self.writeFunction("deaf", script: Self.deafeningWorker, in: root) })
        let first = try Curl.run(["\(gateway.http)/deaf"])
        XCTAssertEqual(first.status, 200)
        let deafPID = try XCTUnwrap(first.header("x-worker-pid"))
        let deafPort = try XCTUnwrap(first.header("x-worker-port").flatMap(Int.init))
        // Once its port refuses (a connection already queued there would be reset instead).
        XCTAssertTrue(eventually { (try? RawSocket(port: deafPort, timeout: 1)) == nil }, "the port closes")

        // The scaler still counts the deaf worker as ready; its port refuses.
        let second = try Curl.run(["\(gateway.http)/after"])
        XCTAssertEqual(second.status, 200, second.body)
        XCTAssertNotEqual(second.header("x-worker-pid"), deafPID, "another worker answered")
        XCTAssertTrue(gateway.stderr.contains("worker refused a connection; replacing it"), gateway.stderr)
        XCTAssertTrue(eventually { kill(pid_t(deafPID)!, 0) != 0 }, "the deaf worker is killed")
        let metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        XCTAssertFalse(metrics.contains("portico_retries_total{route=\"deaf\"}"), "not one of the route's retries")
    }

    func testAColdStartDoesNotCountAgainstThePerTryTimeout() throws {
        // The worker takes 1.5 s to listen; each try may take 0.5 s once it has a worker.
        let slowStart = FunctionEndToEndTests.workerScript.replacingOccurrences(
            of: "signal.signal(signal.SIGTERM", with: "time.sleep(1.5)\nsignal.signal(signal.SIGTERM")
        XCTAssertTrue(slowStart.contains("time.sleep(1.5)"))
        gateway = try PorticoProcess(config: """
            routes:
              - name: cold
                match: { prefix: / }
                function: cold
                timeout: 10s
                retries: { attempts: 2, perTryTimeout: 500ms, retryOn: [gateway-error, reset] }
            """, prepare: { root in try self.writeFunction("cold", script: slowStart, in: root) })
        let started = Date()
        let response = try Curl.run(["\(gateway.http)/a"])
        XCTAssertEqual(response.status, 200)
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 1.4, "it was a cold start")
        let metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        XCTAssertFalse(metrics.contains("portico_retries_total{route=\"cold\"}"), "no try timed out: \(metrics)")
        // A warm slow answer is still bounded by the per-try timeout.
        XCTAssertEqual(try Curl.run(["\(gateway.http)/slow/2000"]).status, 504)
    }
}
